//! `POST /account/delete`: leaving, with the password (and a code).

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, Result, handler};
use serde::Deserialize;

use super::view::{self, FormState};
use super::*;
use crate::accounts::{Checked, Refusal};
use crate::store::EndReason;
use crate::web::auth;
use crate::web::client::Client;
use crate::web::csrf::Csrf;
use crate::web::form::Form;
use crate::web::messages::WRONG_CODE;
use crate::web::{AppState, Hx, Member};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    current_password: String,
    /// With two-step login on, deleting needs a code.
    code: String,
}

/// `POST /account/delete`: with the password, removes the user and every session;
/// every browser that held one is told why.
#[handler]
pub async fn delete(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<DeleteForm>,
) -> Result<Response> {
    let shown = Shown::load(&state, &session).await?;
    let refuse = |errors: FormState, status| {
        let view = shown.view(&state, &csrf, &session, FormState::default(), errors);
        section(
            hx,
            &csrf,
            &view,
            view::delete(&csrf, &errors, shown.user.totp.is_some()),
            status,
        )
    };
    let name = shown.user.name.clone();
    let checked = state
        .accounts
        .check_password(&name, &form.current_password, &client)
        .await?;
    if let Err(refusal) = checked.right() {
        return Ok(refused(refusal, refuse));
    }
    if shown.user.totp.is_some() {
        match state
            .accounts
            .check_code(&shown.user, &form.code, &client)
            .await?
        {
            Checked::Right(_) => {}
            Checked::Wrong => {
                let errors = FormState {
                    code: Some(WRONG_CODE),
                    ..FormState::default()
                };
                return Ok(refuse(errors, StatusCode::UNPROCESSABLE_ENTITY));
            }
            Checked::Throttled(wait) => return Ok(refused(Refusal::Throttled(wait), refuse)),
        }
    }
    state
        .accounts
        .delete(&shown.user, Some(&session.id), Some(&client))
        .await?;
    Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::AccountDeleted, "/").await?)
}
