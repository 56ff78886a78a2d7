//! "This wasn't me", from a new-login notice: `GET /not-me/<token>` moves the token
//! into the link cookie, `GET /not-me` asks, `POST /not-me` ends every session of the
//! account and opens the reset form with a fresh reset link (bound, like the one it
//! came from, to the account, its password and its confirmed address).

use std::sync::Arc;

use maud::html;
use poem::http::header::SET_COOKIE;
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, Result, handler};

use super::csrf::Csrf;
use super::email::unusable;
use super::form::{Form, NoFields};
use super::layout::hx_form;
use super::reset::{open_link, pending};
use super::{AppState, Hx};
use crate::store::EndReason;
use crate::store::tokens::Purpose;

/// `GET /not-me/<token>`: as [`open_reset_link`], for the new-login notice's link.
#[handler]
pub async fn open_not_me_link(
    state: Data<&Arc<AppState>>,
    hx: Hx,
    Path(token): Path<String>,
) -> Result<Response> {
    open_link(&state, hx, &token, Purpose::NotMe, "/not-me").await
}

/// `GET /not-me`: asks before ending every session.
#[handler]
pub async fn not_me_page(
    state: Data<&Arc<AppState>>,
    req: &Request,
    csrf: Csrf,
    hx: Hx,
) -> Result<Response> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(Hx(false).redirect("/"));
    };
    let Some(user) = pending(&state, &token, Purpose::NotMe).await? else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let fields = html! {
        button.danger type="submit" { "End every session and choose a new password" }
    };
    let body = html! {
        section.card id="not-me" {
            h1 { "Not you?" }
            p.lead {
                "Someone logged in to " strong { (user.name) } " from a browser the account "
                "had not used before. If it was not you, end every session of the account "
                "now (whoever it was is logged out) and choose a new password."
            }
            (hx_form("/not-me", &csrf, fields))
            p.switch { "It was me after all? " a href="/" { "Back to the login form" } }
        }
    };
    Ok(hx.page("Not you?", body).into_response())
}

/// `POST /not-me`: ends every session of the account, then opens the reset form with
/// a fresh reset token.
#[handler]
pub async fn not_me_submit(
    state: Data<&Arc<AppState>>,
    req: &Request,
    hx: Hx,
    Form(_): Form<NoFields>,
) -> Result<Response> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let Some((record, user)) = state.accounts.take_good(&token, Purpose::NotMe).await? else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let ended = state
        .sessions
        .end_all(&user.name, None, EndReason::ReportedNotMe)
        .await?;
    tracing::warn!(user = %user.name, ended, "a login was reported as not the owner's; every session ended");
    let event = crate::store::journal::Event::ReportedNotMe;
    state.accounts.note(&user, event, None, None).await;
    let user = state.accounts.forget_browsers(&user).await?;
    let purpose = Purpose::ResetPassword;
    let reset = state
        .accounts
        .issue(purpose, &user, &record.email, |r| r)
        .await?;
    let mut resp = hx.redirect("/reset");
    resp.headers_mut()
        .append(SET_COOKIE, state.link_cookie.set(&reset));
    Ok(resp)
}
