//! "This wasn't me", from a new-login notice: `GET /not-me/<token>` moves the token
//! into the link cookie, `GET /not-me` asks, `POST /not-me` ends every session of the
//! account and opens the reset form with a fresh reset link (bound, like the one it
//! came from, to the account, its password and its confirmed address).

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::header::SET_COOKIE;
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, Result, handler};

use super::client::Client;
use super::csrf::Csrf;
use super::email::unusable;
use super::form::{Form, NoFields};
use super::layout::hx_form;
use super::reset::{open_link, pending};
use super::{AppState, Hx};
use crate::store::tokens::{Purpose, TokenRecord};
use crate::store::{EndReason, User};

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
    let ask = Ask {
        purpose: Purpose::NotMe,
        action: "/not-me",
        button: "End every session and choose a new password",
    };
    ask.page(&state, req, &csrf, hx, |user| {
        html! {
            "Someone logged in to " strong { (user.name) } " from a browser the account "
            "had not used before. If it was not you, end every session of the account "
            "now (whoever it was is logged out) and choose a new password."
        }
    })
    .await
}

/// `POST /not-me`: ends every session of the account, then opens the reset form with
/// a fresh reset token.
#[handler]
pub async fn not_me_submit(
    state: Data<&Arc<AppState>>,
    req: &Request,
    client: Client,
    hx: Hx,
    Form(_): Form<NoFields>,
) -> Result<Response> {
    let Some((record, user)) = taken(&state, req, Purpose::NotMe).await? else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    end_everything(&state, hx, &client, &user, Some(&record.email)).await
}

/// The link in the link cookie, used up, with its account, if it still holds for
/// `purpose`.
pub(super) async fn taken(
    state: &AppState,
    req: &Request,
    purpose: Purpose,
) -> Result<Option<(TokenRecord, User)>> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(None);
    };
    Ok(state.accounts.take_good(&token, purpose).await?)
}

/// The page a "This wasn't me" link leads to, asking before anything changes.
pub(super) struct Ask<'a> {
    /// The link's purpose.
    pub purpose: Purpose,
    /// Where the form posts.
    pub action: &'a str,
    /// What its button says.
    pub button: &'a str,
}

impl Ask<'_> {
    /// The page for the link in the link cookie, `lead` saying what happened to the
    /// account; a used or expired link gets the way to a new one.
    pub async fn page(
        &self,
        state: &AppState,
        req: &Request,
        csrf: &Csrf,
        hx: Hx,
        lead: impl FnOnce(&User) -> Markup,
    ) -> Result<Response> {
        let Some(token) = state.link_cookie.of(req) else {
            return Ok(Hx(false).redirect("/"));
        };
        let Some(user) = pending(state, &token, self.purpose).await? else {
            return Ok(unusable(hx, "/forgot", "Reset your password"));
        };
        let fields = html! { button.danger type="submit" { (self.button) } };
        let body = html! {
            section.card id="not-me" {
                h1 { "Not you?" }
                p.lead { (lead(&user)) }
                (hx_form(self.action, csrf, fields))
                p.switch { "It was you after all? " a href="/" { "Back to the login form" } }
            }
        };
        Ok(hx.page("Not you?", body).into_response())
    }
}

/// What "This wasn't me" does once asked, wherever it came from (a mailed link, the
/// account's journal): every session of `user`'s account ends and is written down
/// (as reported from `client`),
/// its trusted browsers are forgotten, and the reset form opens for `address` (the
/// confirmed one); without one, the browser is sent home.
pub(super) async fn end_everything(
    state: &AppState,
    hx: Hx,
    client: &Client,
    user: &User,
    address: Option<&str>,
) -> Result<Response> {
    let reason = EndReason::ReportedNotMe;
    let ended = state.sessions.end_all(&user.name, None, reason).await?;
    tracing::warn!(user = %user.name, ended, "reported as not the owner's; every session ended");
    let event = crate::store::journal::Event::ReportedNotMe;
    state.accounts.note(user, event, Some(client), None).await;
    let user = state.accounts.forget_browsers(user).await?;
    let Some(address) = address else {
        return Ok(hx.redirect("/"));
    };
    let reset = state
        .accounts
        .issue(Purpose::ResetPassword, &user, address, |r| r)
        .await?;
    let mut resp = hx.redirect("/reset");
    resp.headers_mut()
        .append(SET_COOKIE, state.link_cookie.set(&reset));
    Ok(resp)
}
