//! `GET /login/step-up` and `POST /login/step-up`: a member whose session used no
//! second factor, sent here by an access rule with `policy = "two-step"`, gives a code
//! (or logs in with a passkey), and goes back to the app's page (`rd`).

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::http::header::SET_COOKIE;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::client::Client;
use super::csrf::Csrf;
use super::form::Form;
use super::layout::{code_field, hx_form, wait_message};
use super::login::NextQuery;
use super::messages::WRONG_CODE;
use super::{AppState, CABINET, Hx, Member, account_of, return_to, too_many};
use crate::accounts::Checked;
use crate::session::{Origin, SessionChange};
use crate::store::User;

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct StepUpForm {
    code: String,
    next: String,
}

/// `GET /login/step-up?rd=…`: the code form (and the passkey button), or straight on
/// when this session already used a second factor.
#[handler]
pub fn page(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    Query(query): Query<NextQuery>,
) -> Result<Response> {
    let next = return_to(&state.guard, query.wanted());
    if session.record.second_factor {
        return Ok(hx.redirect(next.as_deref().unwrap_or(CABINET)));
    }
    let user = account_of(&session)?;
    let view = StepUp {
        user: &user,
        next: next.as_deref(),
        passkeys: state.passkeys.is_some(),
        error: None,
        alert: None,
    };
    Ok(hx
        .page("Confirm it is you", view.render(&csrf))
        .into_response())
}

/// `POST /login/step-up`: checks the code (counted like any other) and carries on
/// under a new session id that records the second factor.
#[handler]
pub async fn submit(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<StepUpForm>,
) -> Result<Response> {
    let next = return_to(&state.guard, &form.next);
    let user = account_of(&session)?;
    let view = |error, alert| StepUp {
        user: &user,
        next: next.as_deref(),
        passkeys: state.passkeys.is_some(),
        error,
        alert,
    };
    if user.totp.is_none() {
        return Ok(hx
            .page("Confirm it is you", view(None, None).render(&csrf))
            .with_status(StatusCode::CONFLICT)
            .into_response());
    }
    match state
        .accounts
        .check_code(&user, &form.code, &client)
        .await?
    {
        Checked::Right(_) => {}
        Checked::Wrong => {
            let shown = hx.page(
                "Confirm it is you",
                view(Some(WRONG_CODE), None).render(&csrf),
            );
            return Ok(shown.with_status(StatusCode::UNAUTHORIZED).into_response());
        }
        Checked::Throttled(wait) => {
            let alert = wait_message(wait);
            let shown = hx.page("Confirm it is you", view(None, Some(&alert)).render(&csrf));
            return Ok(too_many(shown, wait));
        }
    }
    // More rights, a new id: whoever knew the old one gains nothing.
    let origin = Origin {
        browser: session.record.browser.clone().unwrap_or_default(),
        address: session.record.address.clone().unwrap_or_default(),
        remember: session.record.remember,
        second_factor: true,
        amr: super::auth::PASSWORD_AND_CODE.to_vec(),
    };
    let fresh = state.sessions.start(&user, Some(&session), origin).await?;
    tracing::info!(user = %user.name, "stepped up with a second factor");
    let mut resp = hx.redirect(next.as_deref().unwrap_or(CABINET));
    resp.extensions_mut().insert(SessionChange::Started {
        id: fresh.id,
        remember: fresh.record.remember,
    });
    resp.headers_mut().append(SET_COOKIE, csrf.rotate());
    Ok(resp)
}

/// The step-up card.
struct StepUp<'a> {
    user: &'a User,
    next: Option<&'a str>,
    passkeys: bool,
    error: Option<&'a str>,
    alert: Option<&'a str>,
}

impl StepUp<'_> {
    fn render(&self, csrf: &Csrf) -> Markup {
        let has_code = self.user.totp.is_some();
        let has_passkey = self.passkeys && !self.user.passkeys.is_empty();
        let fields = html! {
            @if let Some(alert) = self.alert { p.alert role="alert" { (alert) } }
            (code_field("step-up-code", self.error))
            @if let Some(next) = self.next { input type="hidden" name="next" value=(next); }
            button type="submit" { "Continue" }
        };
        html! {
            section.card id="step-up" {
                h1 { "Confirm it is you" }
                @if has_code || has_passkey {
                    p.lead {
                        "The page you asked for needs a second factor, " (self.user.name) "."
                    }
                    @if has_code { (hx_form("/login/step-up", csrf, fields)) }
                    @if has_passkey { (super::login::passkey_login(csrf, self.next)) }
                } @else {
                    p.lead {
                        "The page you asked for needs two-step login, which your account \
                         does not have yet."
                    }
                    p { "Turn it on (an authenticator app, or a passkey) in your account, then open the page again." }
                    p.switch { a href="/account" { "Set up two-step login" } }
                }
                p.switch { a href=(CABINET) { "Not now" } }
            }
        }
    }
}
