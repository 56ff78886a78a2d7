//! Passkeys (WebAuthn, through `webauthn-rs`): log in with a fingerprint, a face or a
//! screen lock, no name or password typed. A passkey login counts as both factors.
//!
//! - `/account`'s "Passkeys" section lists them; each can be removed (password). Adding
//!   one: `POST /account/passkeys/options` (`name`, `current_password`, and `code` with
//!   two-step login on) answers the browser's creation options as JSON, then
//!   `POST /account/passkeys` (`ceremony`, `credential`) stores the new key.
//! - Login: `POST /login/passkey/options` answers request options for a discoverable
//!   credential (anyone's), then `POST /login/passkey` (`ceremony`, `credential`)
//!   finds the account from the credential and logs it in.
//!
//! Each ceremony's state (its challenge) waits in the token store under a single-use
//! 256-bit token that expires after five minutes, so any instance can finish it. The
//! relying party is `--public-url`: without one (or with an IP address for its host,
//! which WebAuthn does not allow) passkeys are off. The browser side is
//! `static/passkey.js`; without JavaScript the passkey parts of a page stay hidden.

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, Result, handler};
use serde::{Deserialize, Serialize};

use super::Member;
use super::account_of;
use super::auth::{self, Login};
use super::client::Client;
use super::csrf::Csrf;
use super::form::{Form, NoFields};
use super::layout::wait_message;
use super::messages::{WRONG_CODE, WRONG_PASSWORD};
use super::{AppState, CABINET, Hx, return_to, throttled};
use crate::accounts::{Begun, Checked, PasskeyRefusal, Passkeys, Refusal};
use crate::error::AppError;
use crate::metrics::{Method, Outcome};
use crate::session::CurrentSession;
use crate::store::User;

mod view;

use self::view::id_text;
pub use self::view::{SectionState, section};

/// The longest passkey name kept.
const NAME_MAX: usize = 64;

const TOO_SLOW: &str = "That took too long, or this page was used already. Try again.";
const DID_NOT_WORK: &str = "That passkey did not work. Try again, or log in with your password.";
const UNKNOWN: &str = "That passkey is not (or no longer) registered here. Log in with your \
                       password.";

/// What a ceremony's options answer carries: the token to finish it with, and what
/// the browser passes to `navigator.credentials`.
#[derive(Serialize)]
struct Started<T> {
    ceremony: String,
    options: T,
}

impl<T: Serialize + Send> Started<T> {
    /// The script's answer for a ceremony begun.
    fn answer(begun: Begun<T>) -> Response {
        let started = Self {
            ceremony: begun.ceremony.as_str().to_owned(),
            options: begun.options,
        };
        Json(started).into_response()
    }
}

/// What the member is told when a passkey was not accepted.
fn said(refusal: PasskeyRefusal) -> &'static str {
    match refusal {
        PasskeyRefusal::TooSlow => TOO_SLOW,
        PasskeyRefusal::DidNotWork => DID_NOT_WORK,
        PasskeyRefusal::Unknown => UNKNOWN,
        PasskeyRefusal::Taken => "That passkey is registered to another account already.",
        PasskeyRefusal::Raced => TOO_SLOW,
    }
}

/// A throttled client's answer: 429 with the wait, as JSON for the script.
fn slow_down(wait: Duration) -> Response {
    let mut resp = Json(serde_json::json!({ "error": wait_message(wait) }))
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .into_response();
    resp.headers_mut().insert(
        poem::http::header::RETRY_AFTER,
        wait.as_secs().max(1).to_string().parse().expect("digits"),
    );
    resp
}

fn enabled(state: &AppState) -> Result<&Passkeys> {
    state
        .passkeys
        .as_ref()
        .ok_or_else(|| poem::Error::from_status(StatusCode::NOT_FOUND))
}

/// `POST /login/passkey/options`: a challenge for any passkey of this site.
#[handler]
pub async fn login_options(
    state: Data<&Arc<AppState>>,
    client: Client,
    Form(_): Form<NoFields>,
) -> Result<Response> {
    let passkeys = enabled(&state)?;
    if let Err(wait) = passkeys
        .may_start(&client.throttle_key(state.ipv6_prefix))
        .await
        .map_err(AppError::from)?
    {
        return Ok(slow_down(wait));
    }
    let begun = state.accounts.start_passkey_login(passkeys).await?;
    Ok(Started::answer(begun))
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    ceremony: String,
    credential: String,
    next: String,
    /// "Keep me logged in", copied by the script from the password form.
    remember: String,
}

/// `POST /login/passkey`: checks the signed challenge and logs its account in.
#[handler]
pub async fn login(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let passkeys = enabled(&state)?;
    let next = return_to(&state.guard, &form.next);
    let next = next.as_deref();
    let signed = state
        .accounts
        .finish_passkey_login(passkeys, &form.ceremony, &form.credential)
        .await?;
    let counted = |outcome| crate::metrics::metrics().login(Method::passkey, outcome);
    let user = match signed {
        Ok(user) if user.disabled.is_some() => {
            counted(Outcome::disabled);
            let filled = super::login::Filled::default();
            return Ok(super::login::disabled(&state, &csrf, hx, filled));
        }
        Ok(user) => {
            counted(Outcome::ok);
            user
        }
        Err(refusal) => {
            counted(Outcome::wrong);
            let why = said(refusal);
            tracing::warn!(address = %client.address, why, "passkey login refused");
            let view = super::login::LoginView {
                error: Some(why),
                next,
                forgot: state.mail.is_some(),
                passkeys: true,
                registration_shut: state.registration != crate::config::Registration::Open,
                ..Default::default()
            };
            let page = hx.page("Log in", super::login::view(&csrf, &view));
            return Ok(page.with_status(StatusCode::UNAUTHORIZED).into_response());
        }
    };
    let known_browser = state.accounts.known_browser(&client, &user);
    let login = Login {
        user: &user,
        client: &client,
        remember: !form.remember.is_empty(),
        record: true,
        second_factor: true,
        amr: auth::PASSKEY,
        method: "passkey",
    };
    tracing::info!(user = %user.name, "passkey right");
    let to = next.unwrap_or(CABINET);
    let resp = auth::log_in(&state, current.0.as_ref(), &csrf, hx, login, to).await?;
    if !known_browser {
        state.accounts.notify_new_login(&user, &client).await;
    }
    Ok(resp)
}

/// The section for htmx (and the script), the account page with it without.
fn answer(
    state: &AppState,
    hx: Hx,
    csrf: &Csrf,
    user: &User,
    shown: &SectionState,
    status: StatusCode,
) -> Response {
    let enabled = state.passkeys.is_some();
    hx.account_section("Passkeys", section(enabled, csrf, user, shown), status)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AddForm {
    name: String,
    current_password: String,
    code: String,
}

/// `POST /account/passkeys/options`: with the password (and a code, with two-step
/// login on), a challenge for a new passkey of this account, as JSON; else the
/// section with the errors.
#[handler]
pub async fn add_options(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    client: Client,
    Form(form): Form<AddForm>,
) -> Result<Response> {
    let passkeys = enabled(&state)?;
    let user = account_of(&session)?;
    let name = form.name.trim();
    let refuse = |shown: SectionState, wait: Option<Duration>| {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let resp = answer(&state, Hx(true), &csrf, &user, &shown, status);
        Ok(throttled(resp, wait))
    };
    let typed = |error| Some((form.name.clone(), error));
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return refuse(
            SectionState {
                name: typed(Some("Give it a name of 1 to 64 characters.")),
                ..SectionState::default()
            },
            None,
        );
    }
    if user.passkeys.iter().any(|p| p.name == name) {
        return refuse(
            SectionState {
                name: typed(Some("You already have a passkey by that name.")),
                ..SectionState::default()
            },
            None,
        );
    }
    let checked = state
        .accounts
        .check_password(&user.name, &form.current_password, &client)
        .await?;
    match checked.right() {
        Err(Refusal::Wrong) => {
            return refuse(
                SectionState {
                    name: typed(None),
                    current: Some(WRONG_PASSWORD),
                    ..SectionState::default()
                },
                None,
            );
        }
        Err(Refusal::Throttled(wait)) => {
            return refuse(
                SectionState {
                    name: typed(None),
                    alert: Some(wait_message(wait)),
                    ..SectionState::default()
                },
                Some(wait),
            );
        }
        Ok(_) => {}
    }
    // A passkey opens the account alone: with two-step login on, adding one takes a code.
    if user.totp.is_some() {
        match state
            .accounts
            .check_code(&user, &form.code, &client)
            .await?
        {
            Checked::Right(_) => {}
            Checked::Wrong => {
                let shown = SectionState {
                    name: typed(None),
                    code: Some(WRONG_CODE),
                    ..SectionState::default()
                };
                return refuse(shown, None);
            }
            Checked::Throttled(wait) => {
                let shown = SectionState {
                    name: typed(None),
                    alert: Some(wait_message(wait)),
                    ..SectionState::default()
                };
                return refuse(shown, Some(wait));
            }
        }
    }
    let begun = state
        .accounts
        .start_adding_passkey(passkeys, &user, name)
        .await?;
    Ok(Started::answer(begun))
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct FinishForm {
    ceremony: String,
    credential: String,
}

/// `POST /account/passkeys`: stores the passkey the browser made for this account.
#[handler]
pub async fn add(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<FinishForm>,
) -> Result<Response> {
    let passkeys = enabled(&state)?;
    let user = account_of(&session)?;
    let refuse = |alert: &str, status| {
        let shown = SectionState {
            alert: Some(alert.to_owned()),
            ..SectionState::default()
        };
        Ok(answer(&state, hx, &csrf, &user, &shown, status))
    };
    let added = state
        .accounts
        .finish_adding_passkey(passkeys, &user, &form.ceremony, &form.credential, &client)
        .await?;
    let updated = match added {
        Ok(updated) => updated,
        Err(PasskeyRefusal::DidNotWork) => {
            let why = "The new passkey could not be checked, so it was not added. Try again.";
            return refuse(why, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(PasskeyRefusal::TooSlow | PasskeyRefusal::Unknown) => {
            return refuse(TOO_SLOW, StatusCode::GONE);
        }
        Err(PasskeyRefusal::Raced) => return refuse(TOO_SLOW, StatusCode::CONFLICT),
        Err(taken @ PasskeyRefusal::Taken) => return refuse(said(taken), StatusCode::CONFLICT),
    };
    let shown = SectionState {
        notice: Some("Passkey added. You can log in with it now."),
        ..SectionState::default()
    };
    Ok(answer(&state, hx, &csrf, &updated, &shown, StatusCode::OK))
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RemoveForm {
    id: String,
    current_password: String,
}

/// `POST /account/passkeys/remove`: with the password, forgets a passkey.
#[handler]
pub async fn remove(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<RemoveForm>,
) -> Result<Response> {
    enabled(&state)?;
    let user = account_of(&session)?;
    let Some(key) = user.passkeys.iter().find(|p| id_text(&p.key) == form.id) else {
        let shown = SectionState {
            alert: Some("That passkey was removed already.".into()),
            ..SectionState::default()
        };
        return Ok(answer(&state, hx, &csrf, &user, &shown, StatusCode::GONE));
    };
    let checked = state
        .accounts
        .check_password(&user.name, &form.current_password, &client)
        .await?;
    let shown = match checked.right() {
        Err(Refusal::Wrong) => Some((
            SectionState {
                removing: Some((form.id.clone(), WRONG_PASSWORD)),
                ..SectionState::default()
            },
            None,
        )),
        Err(Refusal::Throttled(wait)) => Some((
            SectionState {
                alert: Some(wait_message(wait)),
                ..SectionState::default()
            },
            Some(wait),
        )),
        Ok(_) => None,
    };
    if let Some((shown, wait)) = shown {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let resp = answer(&state, hx, &csrf, &user, &shown, status);
        return Ok(throttled(resp, wait));
    }
    let updated = state.accounts.remove_passkey(&user, key, &client).await?;
    let shown = SectionState {
        notice: Some("Passkey removed."),
        ..SectionState::default()
    };
    Ok(answer(&state, hx, &csrf, &updated, &shown, StatusCode::OK))
}
