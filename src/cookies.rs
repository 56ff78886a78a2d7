//! Cookie naming and flags, shared by the session and CSRF cookies.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use poem::Request;
use poem::http::HeaderValue;
use poem::http::header::COOKIE;

/// How Wicket's cookies are named and flagged.
///
/// Every cookie is `HttpOnly`, `SameSite=Lax` and `Path=/`. Behind TLS
/// (`--secure-cookies`) they are also `Secure` and carry the `__Host-` prefix, which
/// browsers only accept from a secure origin, without a `Domain`, on `Path=/`: a
/// sibling subdomain cannot plant or overwrite them.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    secure: bool,
}

impl CookiePolicy {
    /// `secure`: the site is served over TLS.
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    /// The full name for a cookie called `base`.
    pub fn name(&self, base: &'static str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// `Set-Cookie` for `name=value` lasting `max_age` (`None`: until the browser closes).
    pub fn set(&self, name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
        self.set_for(None, name, value, max_age)
    }

    /// The same, sent to `domain` and every name below it when given (always
    /// `Secure`: only the session cookie is shared so, under `--cookie-domain`).
    pub fn set_for(
        &self,
        domain: Option<&str>,
        name: &str,
        value: &str,
        max_age: Option<Duration>,
    ) -> HeaderValue {
        let mut cookie = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure || domain.is_some());
        if let Some(domain) = domain {
            cookie = cookie.domain(domain.to_owned());
        }
        if let Some(max_age) = max_age {
            let secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            cookie = cookie.max_age(cookie::time::Duration::seconds(secs));
        }
        HeaderValue::from_str(&cookie.build().to_string())
            .expect("cookie names and values are built from safe characters")
    }

    /// `Set-Cookie` that makes the browser forget `name`.
    pub fn clear(&self, name: &str) -> HeaderValue {
        self.set(name, "", Some(Duration::ZERO))
    }
}

/// The raw value of cookie `name` in the request's `Cookie` headers, if any (the
/// first, if there are several).
///
/// Read on every page request, so it only splits `a=1; b=2` text (no decoding, no
/// allocation but the result). A value in double quotes is taken without them.
pub fn find(req: &Request, name: &str) -> Option<String> {
    values(req, name).next().map(str::to_owned)
}

/// Every value of cookie `name`, in the order sent. A browser sends several when
/// another site on the domain or a script planted its own beside ours. None is left
/// out, or a planted few could hide ours; the 64 KiB head bounds how many there are.
pub fn find_all(req: &Request, name: &str) -> Vec<String> {
    values(req, name).map(str::to_owned).collect()
}

/// Every value of cookie `name`, in the order sent, borrowed from the request (for
/// a path that reads them once, without collecting them).
pub fn values<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| *key == name)
        .map(|(_, value)| {
            let value = value.trim();
            let unquoted = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            unquoted.unwrap_or(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cookies_are_http_only_lax_and_site_wide() {
        let header = CookiePolicy::new(false).set("a", "b", Some(Duration::from_secs(60)));
        let text = header.to_str().unwrap();
        assert!(text.starts_with("a=b"));
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(text.contains(attribute), "{text} lacks {attribute}");
        }
        assert!(!text.contains("Secure"));
    }

    #[test]
    fn secure_cookies_get_the_host_prefix_and_the_secure_flag() {
        let policy = CookiePolicy::new(true);
        let name = policy.name("x");
        assert_eq!(name, "__Host-x");
        let text = policy.set(&name, "v", None).to_str().unwrap().to_owned();
        assert!(
            text.contains("Secure") && !text.contains("Domain"),
            "{text}"
        );
    }

    #[test]
    fn a_cleared_cookie_expires_now() {
        let text = CookiePolicy::new(false)
            .clear("a")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            text.starts_with("a=;") && text.contains("Max-Age=0"),
            "{text}"
        );
    }

    #[test]
    fn a_cookie_is_found_among_several_headers() {
        let req = Request::builder()
            .header(COOKIE, "x=1; y=2")
            .header(COOKIE, "wicket_session=abc.def")
            .finish();
        assert_eq!(find(&req, "wicket_session").as_deref(), Some("abc.def"));
        assert_eq!(find(&req, "y").as_deref(), Some("2"));
        assert_eq!(find(&req, "z"), None);
        let quoted = Request::builder().header(COOKIE, "a=\"q\"; b=").finish();
        assert_eq!(find(&quoted, "a").as_deref(), Some("q"));
        assert_eq!(find(&quoted, "b").as_deref(), Some(""));
        let twice = Request::builder()
            .header(COOKIE, "s=bogus; t=1")
            .header(COOKIE, "s=\"real\"")
            .finish();
        assert_eq!(find_all(&twice, "s"), ["bogus", "real"]);
    }

    #[test]
    fn every_value_of_a_cookie_is_found_however_many() {
        let planted: Vec<String> = (0..40).map(|n| format!("s=bogus{n}")).collect();
        let header = format!("{}; s=real", planted.join("; "));
        let req = Request::builder().header(COOKIE, header).finish();
        let all = find_all(&req, "s");
        assert_eq!(all.len(), 41);
        assert_eq!(all.last().map(String::as_str), Some("real"));
    }
}
