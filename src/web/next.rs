//! Where a browser goes after logging in: `next`, when it is a plain local path, or
//! `rd`, a page of an app Wicket guards (see [`crate::guard::ReturnPolicy`]).

use std::borrow::Cow;

use crate::guard::Guard;

/// Where to go after login: `next` if it is a plain local path ([`safe_next`]) or a
/// page Wicket guards (`rd`, as the browser will parse it), else nowhere in particular.
pub fn return_to<'a>(guard: &Guard, next: &'a str) -> Option<Cow<'a, str>> {
    match safe_next(next) {
        Some(path) => Some(Cow::Borrowed(path)),
        None => guard.return_to(next).map(Cow::Owned),
    }
}

/// Where to go after login: `next` if it is a plain local path, else the cabinet.
///
/// Only `/` followed by path-ish characters passes: no scheme, no `//host`, no
/// backslashes, no percent-escapes, no control characters — and no empty, `.` or `..`
/// path segment, since a browser resolves `/..//evil.test` to `//evil.test`, which a
/// later relative step could read as another host.
pub fn safe_next(next: &str) -> Option<&str> {
    let path = next.split('?').next().unwrap_or_default();
    let no_dot_segments = path
        .split('/')
        .all(|segment| segment != "." && segment != "..");
    let local = next.starts_with('/')
        && !next.contains("//")
        && no_dot_segments
        && next.len() <= 512
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.~-?=&".contains(&b));
    local.then_some(next)
}

/// The landing page for members.
pub const CABINET: &str = "/cabinet";

/// The login form, returning to `next` (if it is safe) after login.
pub fn login_url(next: &str) -> String {
    with_next("/", next)
}

/// `page` (a local path without a query), then going on to `next` if it is safe.
pub fn with_next(page: &str, next: &str) -> String {
    match safe_next(next) {
        // `next` may hold `?`, `&` and `=`: escape them so it stays one query value.
        Some(next) => {
            let escaped = next
                .replace('?', "%3F")
                .replace('&', "%26")
                .replace('=', "%3D");
            format!("{page}?next={escaped}")
        }
        None => page.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn the_login_url_keeps_next_as_one_query_value() {
        assert_eq!(super::login_url("/cabinet"), "/?next=/cabinet");
        assert_eq!(super::login_url("/a?x=1&y=2"), "/?next=/a%3Fx%3D1%26y%3D2");
        assert_eq!(super::login_url("//evil.example"), "/");
    }

    #[test]
    fn local_paths_are_accepted_as_next() {
        for good in [
            "/",
            "/cabinet",
            "/cabinet?tab=1&x=y",
            "/a/b.c-d_e~f",
            "/a/",
            "/.well",
        ] {
            assert_eq!(safe_next(good), Some(good));
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_is_refused_as_next() {
        for bad in [
            "",
            "cabinet",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%5cevil",
            "/\tx",
            "/\r\nSet-Cookie:x",
            "/\u{0}",
            " /cabinet",
            "/caf\u{e9}",
            "/..//evil.test",
            "/../evil.test",
            "/a/../..//evil.test",
            "/./x",
            "/a//b",
            "/a/..",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?} was accepted");
        }
    }
}
