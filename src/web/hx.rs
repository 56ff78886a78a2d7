//! How an answer is shaped for who asked: an htmx request gets the fragment (or an
//! `HX-Redirect`), a plain form post the whole page (or a `303`); a refused guess a
//! `429` with `Retry-After`.

use poem::http::{StatusCode, header};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};

use super::layout;

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
