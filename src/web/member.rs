//! The `Member` extractor: what guards every members-only route.

use poem::{FromRequest, Request, RequestBody};

use super::{Hx, login_url};
use crate::error::AppError;
use crate::session::{CurrentSession, Session};
use crate::store::User;

/// A logged-in member. Extracting it sends anyone else to the login form,
/// with `next` pointing back here.
pub struct Member(pub Session);

impl<'a> FromRequest<'a> for Member {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let current = CurrentSession::from_request(req, body).await?;
        let hx = Hx::from_request(req, body).await?;
        if let CurrentSession(Some(session)) = current {
            let changing = session
                .account
                .as_ref()
                .is_some_and(|user| user.must_change_password);
            if changing && !choosing_a_password(req) {
                // The operator asked for a new password: nothing else until then.
                return Err(poem::Error::from_response(hx.redirect(NEW_PASSWORD)));
            }
            return Ok(Self(session));
        }
        // After logging in, come back here; a form's target is no page to come back to.
        let path = req.original_uri().path();
        let back = match *req.method() {
            poem::http::Method::GET | poem::http::Method::HEAD => path,
            _ if path.starts_with("/account") => "/account",
            _ => "/cabinet",
        };
        let location = login_url(back);
        Err(poem::Error::from_response(hx.redirect(&location)))
    }
}

/// Where a member the operator asked for a new password is sent: the account page,
/// which leads with the change-password form.
pub const NEW_PASSWORD: &str = "/account";

/// Whether `req` is the account page or its change-password form: the only member
/// pages open to an account that must choose a new password first.
fn choosing_a_password(req: &Request) -> bool {
    let path = req.original_uri().path();
    match *req.method() {
        poem::http::Method::GET | poem::http::Method::HEAD => path == "/account",
        poem::http::Method::POST => path == "/account/password",
        _ => false,
    }
}

/// The member's account, as read when the session was resumed for this request (no
/// second read).
pub fn account_of(session: &Session) -> Result<User, AppError> {
    session
        .account
        .as_deref()
        .cloned()
        .ok_or_else(|| AppError::internal("a member's session without its account"))
}
