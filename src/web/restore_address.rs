//! "This wasn't me", from the notice to an address given up: `GET
//! /restore-address/<token>` moves the token into the link cookie, `GET
//! /restore-address` asks, `POST /restore-address` puts the address back, ends every
//! session of the account and opens the reset form (a reset link for the address put
//! back). The link works for 7 days, whatever password the account has meanwhile.

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

/// `GET /restore-address/<token>`.
#[handler]
pub async fn open_restore_link(
    state: Data<&Arc<AppState>>,
    hx: Hx,
    Path(token): Path<String>,
) -> Result<Response> {
    open_link(
        &state,
        hx,
        &token,
        Purpose::RestoreAddress,
        "/restore-address",
    )
    .await
}

/// `GET /restore-address`: asks before changing anything.
#[handler]
pub async fn restore_page(
    state: Data<&Arc<AppState>>,
    req: &Request,
    csrf: Csrf,
    hx: Hx,
) -> Result<Response> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(Hx(false).redirect("/"));
    };
    let Some(user) = pending(&state, &token, Purpose::RestoreAddress).await? else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let fields = html! {
        button.danger type="submit" { "Put my address back and choose a new password" }
    };
    let body = html! {
        section.card id="restore-address" {
            h1 { "Not you?" }
            p.lead {
                "The email address of " strong { (user.name) } " was changed. If it was not "
                "you, put this address back: every session of the account ends (whoever "
                "changed it is logged out), and you choose a new password."
            }
            (hx_form("/restore-address", &csrf, fields))
            p.switch { "It was you after all? " a href="/" { "Back to the login form" } }
        }
    };
    Ok(hx.page("Not you?", body).into_response())
}

/// `POST /restore-address`.
#[handler]
pub async fn restore_submit(
    state: Data<&Arc<AppState>>,
    req: &Request,
    hx: Hx,
    Form(_): Form<NoFields>,
) -> Result<Response> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let taken = state
        .accounts
        .take_good(&token, Purpose::RestoreAddress)
        .await?;
    let Some((record, user)) = taken else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let restored = state.accounts.restore_address(&user, &record.email).await?;
    let restored = state.accounts.forget_browsers(&restored).await?;
    let ended = state
        .sessions
        .end_all(&user.name, None, EndReason::ReportedNotMe)
        .await?;
    tracing::warn!(user = %user.name, ended, "an address change was reported as not the owner's; every session ended");
    if restored.verified_email().is_none() {
        // Another account confirmed the address meanwhile: no reset can go there.
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    }
    let reset = state
        .accounts
        .issue(Purpose::ResetPassword, &restored, &record.email, |r| r)
        .await?;
    let mut resp = hx.redirect("/reset");
    resp.headers_mut()
        .append(SET_COOKIE, state.link_cookie.set(&reset));
    Ok(resp)
}
