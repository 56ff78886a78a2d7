//! Logging in and out: the one way a handler starts or ends a browser's session.

use poem::Response;
use poem::http::header::SET_COOKIE;

use super::csrf::Csrf;
use super::{AppState, Hx};
use crate::error::AppError;
use crate::session::{Session, SessionChange};
use crate::store::{EndReason, StoreError};

/// Logs `user` in and sends the browser to `to`: a brand-new session (the browser's
/// `current` one, if any, is deleted), its cookie (set by the session layer; kept past
/// the browser's closing only if `remember`) and a fresh CSRF cookie, so no token from
/// before the login works after it.
pub async fn log_in(
    state: &AppState,
    current: Option<&Session>,
    csrf: &Csrf,
    hx: Hx,
    user: &str,
    remember: bool,
    to: &str,
) -> Result<Response, StoreError> {
    let session = state.sessions.start(user, current).await?;
    tracing::info!(user, "logged in");
    let mut resp = hx.redirect(to);
    resp.extensions_mut().insert(SessionChange::Started {
        id: session.id,
        remember,
    });
    resp.headers_mut().append(SET_COOKIE, csrf.rotate());
    Ok(resp)
}

/// Logs out and sends the browser home: the session is deleted, the session layer
/// clears its cookie, and the CSRF cookie is replaced. If the store cannot delete the
/// session it is still valid, so the browser keeps its cookie and is told so.
pub async fn log_out(
    state: &AppState,
    session: &Session,
    csrf: &Csrf,
    hx: Hx,
) -> Result<Response, AppError> {
    state
        .sessions
        .end(session)
        .await
        .map_err(AppError::LogoutFailed)?;
    tracing::info!(user = %session.record.user, "logged out");
    let mut resp = hx.redirect("/");
    resp.extensions_mut()
        .insert(SessionChange::Ended(EndReason::LoggedOut));
    // What the browser kept of the member's pages goes too; not "cookies": the site's
    // other cookies are not the session's to drop.
    resp.headers_mut().insert(
        "clear-site-data",
        poem::http::HeaderValue::from_static(r#""cache", "storage""#),
    );
    resp.headers_mut().append(SET_COOKIE, csrf.rotate());
    Ok(resp)
}
