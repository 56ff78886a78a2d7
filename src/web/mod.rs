//! Routes, handlers and views. Each flow owns its module; `layout` holds the page
//! frame, `errors` the error pages and `respond` the layer around everything.

mod account;
mod auth;
mod cabinet;
mod client;
pub mod csrf;
pub mod email;
mod errors;
mod form;
pub mod health;
pub mod layout;
mod login;
mod logout;
pub mod passkey;
mod register;
pub mod reset;
pub mod respond;
pub mod statics;
pub mod two_step;

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Redirect;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response, Route, get, post};

use crate::password::Hasher;
use crate::session::Sessions;
use crate::store::UserStore;
use crate::throttle::Throttle;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The user store.
    pub users: Arc<dyn UserStore>,
    /// Session lifecycle.
    pub sessions: Sessions,
    /// scrypt.
    pub hasher: Hasher,
    /// CSRF token keys.
    pub csrf: csrf::CsrfKeys,
    /// The account service: checks and changes of accounts.
    pub accounts: crate::accounts::Accounts,
    /// Registration limits per client address.
    pub register_throttle: Arc<Throttle>,
    /// IPv6 clients are throttled per network of this many bits.
    pub ipv6_prefix: u8,
    /// The site's one address, if pinned (`--public-url`): forms must come from it.
    pub public_url: Option<crate::net::PublicUrl>,
    /// Mailed tokens and the confirmed-address index.
    pub tokens: Arc<dyn crate::store::TokenStore>,
    /// Where mail goes, if anywhere (`--smtp-url`, `--mail-dir`).
    pub mail: Option<crate::mail::Mailer>,
    /// The cookie a mailed link's token waits in.
    pub link_cookie: reset::LinkCookie,
    /// Limits on reset mails.
    pub forgot_throttle: Arc<reset::ForgotThrottle>,
    /// Two-step login's keys and cookie.
    pub two_step: two_step::TwoStep,
    /// Passkeys' relying party, when `--public-url` names a domain.
    pub passkeys: Option<crate::accounts::Passkeys>,
}

/// The pages: every route but `/static`.
pub fn pages() -> Route {
    Route::new()
        .at("/", get(login::page))
        .at("/login", get(login::elsewhere).post(login::submit))
        .at("/register", get(to_register).post(to_register))
        .at("/register/", get(register::page).post(register::submit))
        .at("/cabinet", get(cabinet::page))
        .at("/account", get(account::page))
        .at("/account/password", post(account::change_password))
        .at("/account/sessions/end", post(account::end_session))
        .at("/account/delete", post(account::delete))
        .at("/logout", get(logout::confirm).post(logout::submit))
        .at("/account/email", post(account::change_email))
        .at("/verify-email/:token", get(email::verify))
        .at(
            "/forgot",
            get(reset::forgot_page).post(reset::forgot_submit),
        )
        .at("/reset/:token", get(reset::open_reset_link))
        .at("/reset", get(reset::reset_page).post(reset::reset_submit))
        .at("/not-me/:token", get(reset::open_not_me_link))
        .at(
            "/not-me",
            get(reset::not_me_page).post(reset::not_me_submit),
        )
        .at(
            "/login/code",
            get(two_step::code_page).post(two_step::code_submit),
        )
        .at("/account/totp/setup", post(two_step::start_setup))
        .at("/account/totp", post(two_step::enable))
        .at("/account/totp/recovery", post(two_step::regenerate))
        .at("/account/totp/off", post(two_step::disable))
        .at("/login/passkey/options", post(passkey::login_options))
        .at("/login/passkey", post(passkey::login))
        .at("/account/passkeys/options", post(passkey::add_options))
        .at("/account/passkeys", post(passkey::add))
        .at("/account/passkeys/remove", post(passkey::remove))
}

/// Client-supplied text (a path, an `Origin`) cut for a log line: at most 200
/// characters, so no request makes a line longer than about 1 KB.
pub fn clipped(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// `/register` (no slash): `308` keeps a POST a POST.
#[poem::handler]
fn to_register() -> Redirect {
    Redirect::permanent("/register/")
}

/// Whether the request wants an htmx fragment (rather than a whole page).
///
/// Boosted requests and history restores come from htmx but expect full pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hx(pub bool);

impl<'a> FromRequest<'a> for Hx {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(wants_fragment(req)))
    }
}

/// Whether `req` is an htmx request that expects a fragment, not a whole page.
pub fn wants_fragment(req: &Request) -> bool {
    let has = |name: &str| req.headers().get(name).is_some_and(|v| v == "true");
    has("hx-request") && !has("hx-boosted") && !has("hx-history-restore-request")
}

impl Hx {
    /// Sends the browser to `location`: `HX-Redirect` (a full load) for htmx, else `303`.
    pub fn redirect(self, location: &str) -> Response {
        if self.0 {
            Response::builder()
                .status(StatusCode::OK)
                .header("HX-Redirect", location)
                .finish()
        } else {
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, location)
                .finish()
        }
    }

    /// An account-page section after its form: alone for htmx (it swaps itself),
    /// else on a page of its own titled `title`, with the way back to `/account`.
    pub fn account_section(self, title: &str, part: maud::Markup, status: StatusCode) -> Response {
        let body = if self.0 {
            part
        } else {
            maud::html! {
                (part)
                p.switch { a href="/account" { "Back to your account" } }
            }
        };
        self.page(title, body).with_status(status).into_response()
    }

    /// The fragment alone for htmx, or inside the full page.
    pub fn page(self, title: &str, fragment: maud::Markup) -> maud::Markup {
        if self.0 {
            fragment
        } else {
            layout::page(title, fragment)
        }
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
    match safe_next(next) {
        // `next` may hold `?`, `&` and `=`: escape them so it stays one query value.
        Some(next) => {
            let escaped = next
                .replace('?', "%3F")
                .replace('&', "%26")
                .replace('=', "%3D");
            format!("/?next={escaped}")
        }
        None => "/".to_owned(),
    }
}

/// A `429 Too Many Requests` with `Retry-After`, around an inline explanation.
pub fn too_many(markup: maud::Markup, wait: std::time::Duration) -> Response {
    let mut resp = markup
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .into_response();
    let secs = wait.as_secs().max(1);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        secs.to_string().parse().expect("digits"),
    );
    resp
}

/// A refused form's answer as `429 Too Many Requests` with `Retry-After` when it was
/// refused for `wait` (too many wrong guesses), else as it is.
pub fn throttled(mut resp: Response, wait: Option<std::time::Duration>) -> Response {
    if let Some(wait) = wait {
        resp.set_status(StatusCode::TOO_MANY_REQUESTS);
        let secs = wait.as_secs().max(1);
        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    resp
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
