//! `POST /account/email`: setting, changing or removing the address.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, Result, handler};
use serde::Deserialize;

use super::view::{self, EmailState, FormState};
use super::*;
use crate::accounts::Refusal;
use crate::store::User;
use crate::web::client::Client;
use crate::web::csrf::Csrf;
use crate::web::form::Form;
use crate::web::layout::wait_message;
use crate::web::messages::WRONG_PASSWORD;
use crate::web::{AppState, Hx, Member, throttled};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    email: String,
    current_password: String,
}

/// `POST /account/email`: with the password, sets, changes or (empty) removes the
/// address; a new address is mailed a link to confirm it.
#[handler]
pub async fn change_email(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<EmailForm>,
) -> Result<Response> {
    if state.mail.is_none() {
        return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
    }
    let shown = Shown::load(&state, &session).await?;
    let answer = |user: &User, email: EmailState, status| {
        let mut view = shown.view(
            &state,
            &csrf,
            &session,
            FormState::default(),
            FormState::default(),
        );
        view.user = user;
        view.email = Some(email);
        section(hx, &csrf, &view, view::email(&csrf, user, &email), status)
    };
    let typed = form.email.trim();
    let address = match typed {
        "" => None,
        typed => match crate::domain::EmailAddress::parse(typed) {
            Ok(address) => Some(address),
            Err(err) => {
                let message = err.to_string();
                let errors = EmailState {
                    typed: Some(typed),
                    email: Some(&message),
                    ..EmailState::default()
                };
                return Ok(answer(
                    &shown.user,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                ));
            }
        },
    };
    let name = shown.user.name.clone();
    let checked = state
        .accounts
        .check_password(&name, &form.current_password, &client)
        .await?;
    let member = match checked.right() {
        Ok(member) => member,
        Err(refusal) => {
            return Ok(match refusal {
                Refusal::Wrong => {
                    let errors = EmailState {
                        typed: Some(typed),
                        current: Some(WRONG_PASSWORD),
                        ..EmailState::default()
                    };
                    answer(&shown.user, errors, StatusCode::UNPROCESSABLE_ENTITY)
                }
                Refusal::Throttled(wait) => {
                    let message = wait_message(wait);
                    let errors = EmailState {
                        typed: Some(typed),
                        alert: Some(&message),
                        ..EmailState::default()
                    };
                    let resp = answer(&shown.user, errors, StatusCode::UNPROCESSABLE_ENTITY);
                    throttled(resp, Some(wait))
                }
            });
        }
    };
    let address = address.as_ref().map(crate::domain::EmailAddress::as_str);
    let user = state
        .accounts
        .change_address(&member, address, &client)
        .await?;
    if !hx.0 {
        return Ok(Hx(false).redirect("/account?done=email"));
    }
    let done = EmailState {
        notice: Some(email_saved(user.email.as_ref())),
        ..EmailState::default()
    };
    Ok(answer(&user, done, StatusCode::OK))
}
