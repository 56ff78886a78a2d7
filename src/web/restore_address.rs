//! "This wasn't me", from the notice to an address given up: `GET
//! /restore-address/<token>` moves the token into the link cookie, `GET
//! /restore-address` asks, `POST /restore-address` puts the address back, ends every
//! session of the account and opens the reset form (a reset link for the address put
//! back). The link works for 7 days, whatever password the account has meanwhile.

use std::sync::Arc;

use maud::html;
use poem::web::{Data, Path};
use poem::{Request, Response, Result, handler};

use super::client::Client;
use super::csrf::Csrf;
use super::email::unusable;
use super::form::{Form, NoFields};
use super::not_me::{Ask, end_everything, taken};
use super::reset::open_link;
use super::{AppState, Hx};
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
    let ask = Ask {
        purpose: Purpose::RestoreAddress,
        action: "/restore-address",
        button: "Put my address back and choose a new password",
    };
    ask.page(&state, req, &csrf, hx, |user| {
        html! {
            "The email address of " strong { (user.name) } " was changed. If it was not "
            "you, put this address back: every session of the account ends (whoever "
            "changed it is logged out), and you choose a new password."
        }
    })
    .await
}

/// `POST /restore-address`.
#[handler]
pub async fn restore_submit(
    state: Data<&Arc<AppState>>,
    req: &Request,
    client: Client,
    hx: Hx,
    Form(_): Form<NoFields>,
) -> Result<Response> {
    let Some((record, user)) = taken(&state, req, Purpose::RestoreAddress).await? else {
        return Ok(unusable(hx, "/forgot", "Reset your password"));
    };
    let restored = state.accounts.restore_address(&user, &record.email).await?;
    // Another account may have confirmed the address meanwhile: then no reset can go
    // there, and the browser is sent home (every session still ends).
    let address = restored.verified_email().map(str::to_owned);
    end_everything(&state, hx, &client, &restored, address.as_deref()).await
}
