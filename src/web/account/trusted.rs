//! `POST /account/trusted/forget`: "Forget" on a trusted browser.

use std::sync::Arc;

use poem::web::Data;
use poem::{Response, Result, handler};
use serde::Deserialize;

use crate::web::client::Client;
use crate::web::form::Form;
use crate::web::{AppState, Hx, Member, account_of};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ForgetForm {
    /// The trusted browser's public handle.
    browser: String,
}

/// Forgets a trusted browser: it is asked for a code at its next login.
#[handler]
pub async fn forget(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    hx: Hx,
    client: Client,
    Form(form): Form<ForgetForm>,
) -> Result<Response> {
    let user = account_of(&session)?;
    state
        .accounts
        .forget_browser(&user, &form.browser, &client)
        .await?;
    Ok(hx.redirect("/account"))
}
