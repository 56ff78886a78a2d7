//! `POST /account/password`: a new password, with the current one.

use std::sync::Arc;

use maud::html;
use poem::http::StatusCode;
use poem::http::header::SET_COOKIE;
use poem::web::Data;
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::view::{self, FormState};
use super::*;
use crate::accounts::{PasswordSet, Refusal};
use crate::error::AppError;
use crate::session::{Origin, Session, SessionChange};
use crate::web::auth;
use crate::web::client::Client;
use crate::web::csrf::Csrf;
use crate::web::form::Form;
use crate::web::layout::wait_message;
use crate::web::messages::{MISMATCH, WRONG_PASSWORD};
use crate::web::{AppState, Hx, Member, throttled};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    password: String,
    confirm: String,
}

/// `POST /account/password`: checks the current password like a login, sets the new
/// one, ends every other session, and moves this browser to a new session id.
///
/// Each store is read once: the account comes with the session, the sessions are read
/// where they are ended, and afterwards this browser's is the only one left. Only a
/// refused form without htmx (which redraws the whole page) reads the page's data.
#[handler]
pub async fn change_password(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let user = session
        .account
        .clone()
        .ok_or_else(|| AppError::internal("a member's session without its account"))?;
    let answer = PasswordAnswer {
        state: &state,
        csrf: &csrf,
        session: &session,
        hx,
    };
    // The new password first: it costs no scrypt work to refuse.
    let new = auth::new_password(form.password.clone(), &user.name)
        .await
        .map_err(|err| err.to_string())
        .and_then(|new| match form.password == form.current_password {
            true => Err(SAME.to_owned()),
            false => Ok(new),
        });
    let mismatch = form.password != form.confirm;
    let new = match (new, mismatch) {
        (Ok(new), false) => new,
        (new, mismatch) => {
            let error = new.err();
            let errors = FormState {
                password: error.as_deref(),
                confirm: mismatch.then_some(MISMATCH),
                ..FormState::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(answer.refused(errors, status, None).await?);
        }
    };
    let checked = state
        .accounts
        .check_password_of(&user, &form.current_password, &client)
        .await?;
    let checked_user = match checked.right() {
        Ok(user) => user,
        Err(Refusal::Wrong) => {
            let errors = FormState {
                current: Some(WRONG_PASSWORD),
                ..FormState::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(answer.refused(errors, status, None).await?);
        }
        Err(Refusal::Throttled(wait)) => {
            let message = wait_message(wait);
            let errors = FormState {
                alert: Some(&message),
                ..FormState::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(answer.refused(errors, status, Some(wait)).await?);
        }
    };
    let how = PasswordSet::Changed(&client);
    let keep = Some(&session.id);
    let Some((updated, ended)) = state
        .accounts
        .set_password(&checked_user, new, keep, how)
        .await?
    else {
        // Changed by another route meanwhile: that one stands; this form starts over.
        let errors = FormState {
            alert: Some(CHANGED_MEANWHILE),
            ..FormState::default()
        };
        return Ok(answer.refused(errors, StatusCode::CONFLICT, None).await?);
    };
    // This browser goes on under a new id; the old one is deleted.
    let origin = Origin {
        browser: client.browser.clone(),
        address: client.address.clone(),
        remember: session.record.remember,
        second_factor: session.record.second_factor,
        amr: crate::web::auth::kept_amr(&session.record.amr),
    };
    let fresh = state
        .sessions
        .start(&updated, Some(&session), origin)
        .await?;
    tracing::info!(user = %updated.name, ended, "password changed; this browser under a new id");
    let (csrf, csrf_cookie) = csrf.rotated();
    let mut resp = if hx.0 && !user.must_change_password {
        // Every other session ended: this browser's is the only one left.
        let shown = Shown {
            user: updated,
            sessions: vec![fresh.clone()],
            sessions_notice: None,
            two_step_notice: None,
            // Only the sessions are swapped out of band; the apps and the activity
            // stay as shown.
            apps: None,
            apps_notice: None,
            activity: (Vec::new(), 0),
        };
        let done = FormState {
            notice: Some(PASSWORD_CHANGED),
            ..FormState::default()
        };
        let view = shown.view(&state, &csrf, &fresh, done, FormState::default());
        // The sessions list changed too: swap it out of band.
        html! {
            (view::password(&csrf, &done))
            div hx-swap-oob="outerHTML:#sessions" { (view::sessions(&csrf, &view)) }
        }
        .into_response()
    } else {
        // Without htmx, or after a password the operator asked for: the whole page.
        hx.redirect("/account?done=password")
    };
    resp.extensions_mut().insert(SessionChange::Started {
        id: fresh.id,
        remember: fresh.record.remember,
    });
    resp.headers_mut().append(SET_COOKIE, csrf_cookie);
    Ok(resp)
}

/// What a refused password form needs to answer.
struct PasswordAnswer<'a> {
    state: &'a AppState,
    csrf: &'a Csrf,
    session: &'a Session,
    hx: Hx,
}

impl PasswordAnswer<'_> {
    /// The form with `errors`: alone for htmx (nothing more to read), else on the
    /// whole account page; `429` with `Retry-After` when refused for `wait`.
    async fn refused(
        &self,
        errors: FormState<'_>,
        status: StatusCode,
        wait: Option<std::time::Duration>,
    ) -> Result<Response, AppError> {
        let required = self
            .session
            .account
            .as_ref()
            .is_some_and(|user| user.must_change_password);
        let errors = FormState { required, ..errors };
        let part = view::password(self.csrf, &errors);
        let resp = if self.hx.0 {
            part.with_status(status).into_response()
        } else {
            let shown = Shown::load(self.state, self.session).await?;
            let view = shown.view(
                self.state,
                self.csrf,
                self.session,
                errors,
                FormState::default(),
            );
            section(self.hx, self.csrf, &view, part, status)
        };
        Ok(throttled(resp, wait))
    }
}
