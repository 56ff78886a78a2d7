//! `POST /account/sessions/end`: ending one session, or every other one.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::view::{self, FormState};
use super::*;
use crate::accounts::Checked;
use crate::store::EndReason;
use crate::web::auth;
use crate::web::client::Client;
use crate::web::csrf::Csrf;
use crate::web::form::Form;
use crate::web::layout::wait_message;
use crate::web::{AppState, Hx, Member, throttled};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EndForm {
    session: String,
    /// With two-step login on, ending every other session needs a code.
    code: String,
}

/// `POST /account/sessions/end`: ends one session (by its handle) or all others.
#[handler]
pub async fn end_session(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<EndForm>,
) -> Result<Response> {
    let name = session.record.user.clone();
    let (notice, done) = if form.session == "others" {
        let user = Shown::load(&state, &session).await?.user;
        // A stolen session must not end the owner's others by guessing: a code is
        // counted like a login.
        let refused = match user.totp.is_some() {
            true => match state
                .accounts
                .check_code(&user, &form.code, &client)
                .await?
            {
                Checked::Right(_) => None,
                Checked::Wrong => Some((CODE_NEEDED.to_owned(), None)),
                Checked::Throttled(wait) => Some((wait_message(wait), Some(wait))),
            },
            false => None,
        };
        if let Some((message, wait)) = refused {
            let mut shown = Shown::load(&state, &session).await?;
            shown.sessions_notice = Some(message.into());
            let view = shown.view(
                &state,
                &csrf,
                &session,
                FormState::default(),
                FormState::default(),
            );
            let resp = section(
                hx,
                &csrf,
                &view,
                view::sessions(&csrf, &view),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
            return Ok(throttled(resp, wait));
        }
        let ended = state
            .sessions
            .end_all(&name, Some(&session.id), EndReason::EndedElsewhere)
            .await?;
        tracing::info!(user = %name, ended, "ended every other session");
        let event = crate::store::journal::Event::OtherSessionsEnded;
        state.accounts.note(&user, event, Some(&client), None).await;
        (OTHERS_ENDED, "others")
    } else if form.session == state.sessions.handle(&session.id) {
        // This browser's own session: that is a logout.
        return Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::LoggedOut, "/").await?);
    } else if let Some(ended) = state
        .sessions
        .end_by_handle(&name, &form.session, EndReason::EndedElsewhere)
        .await?
    {
        tracing::info!(user = %name, "ended a session from elsewhere");
        if let Some(user) = session.account.as_deref() {
            // Which one: its browser and address, as the sessions list showed them.
            let which = format!(
                "{} · {}",
                ended.browser.as_deref().unwrap_or("a browser"),
                ended.address.as_deref().unwrap_or("an unknown address")
            );
            let event = crate::store::journal::Event::SessionEnded;
            state
                .accounts
                .note(user, event, Some(&client), Some(&which))
                .await;
        }
        (ONE_ENDED, "ended")
    } else {
        (ALREADY_ENDED, "ended")
    };
    if !hx.0 {
        return Ok(Hx(false).redirect(&format!("/account?done={done}")));
    }
    let mut shown = Shown::load(&state, &session).await?;
    shown.sessions_notice = Some(notice.into());
    let view = shown.view(
        &state,
        &csrf,
        &session,
        FormState::default(),
        FormState::default(),
    );
    Ok(view::sessions(&csrf, &view).into_response())
}
