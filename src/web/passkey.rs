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

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, Result, handler};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::auth::{self, Login, WRONG_CODE};
use super::cabinet::Member;
use super::client::Client;
use super::csrf::Csrf;
use super::form::{Form, NoFields};
use super::layout::{Field, ON_TWO_STEP_CHANGED, hx_form, time, wait_message};
use super::two_step::member;
use super::{AppState, CABINET, Hx, safe_next, throttled};
use crate::accounts::{Checked, Refusal};
use crate::error::AppError;
use crate::net::PublicUrl;
use crate::session::CurrentSession;
use crate::store::tokens::{ClaimKey, Purpose, Token, TokenRecord};
use crate::store::{CounterStore, PasskeySetting, User};
use crate::throttle::{Limit, Throttle};

/// Ceremonies one client address may start per minute (each is a stored record).
const STARTS_PER_MINUTE: u32 = 30;
/// The longest passkey name kept.
const NAME_MAX: usize = 64;

const TOO_SLOW: &str = "That took too long, or this page was used already. Try again.";
const DID_NOT_WORK: &str = "That passkey did not work. Try again, or log in with your password.";
const UNKNOWN: &str = "That passkey is not (or no longer) registered here. Log in with your \
                       password.";

/// The relying party and a limit on ceremonies started.
#[derive(Debug, Clone)]
pub struct Passkeys {
    webauthn: Arc<Webauthn>,
    starts: Arc<Throttle>,
}

impl Passkeys {
    /// The relying party for `site`; `None` when its host is an IP address (WebAuthn
    /// needs a domain name; `localhost` is one).
    pub fn new(site: &PublicUrl, counters: Arc<dyn CounterStore>) -> Result<Option<Self>, String> {
        let host = site.host();
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(None);
        }
        let origin = Url::parse(site.origin()).map_err(|err| format!("--public-url: {err}"))?;
        let webauthn = WebauthnBuilder::new(host, &origin)
            .and_then(|b| b.rp_name("Wicket").timeout(ceremony_life()).build())
            .map_err(|err| format!("passkeys for {}: {err}", site.origin()))?;
        let limit = Some(Limit {
            max: STARTS_PER_MINUTE,
            window: Duration::from_secs(60),
        });
        Ok(Some(Self {
            webauthn: Arc::new(webauthn),
            starts: Arc::new(Throttle::new("passkey-start", limit, counters)),
        }))
    }
}

fn ceremony_life() -> Duration {
    crate::accounts::links::valid_for(Purpose::PasskeyLogin)
}

/// What a ceremony's options answer carries: the token to finish it with, and what
/// the browser passes to `navigator.credentials`.
#[derive(Serialize)]
struct Started<T> {
    ceremony: String,
    options: T,
}

/// What a registration ceremony keeps besides the challenge.
#[derive(Serialize, Deserialize)]
struct Adding {
    state: PasskeyRegistration,
    name: String,
    handle: Uuid,
}

/// Stores `ceremony` for `purpose` (on behalf of `user`, if known) under a new token,
/// and answers the script with that token and `options` for `navigator.credentials`.
async fn begin<C: Serialize, O: Serialize + Send>(
    state: &AppState,
    purpose: Purpose,
    user: Option<&User>,
    ceremony: &C,
    options: O,
) -> Result<Response, AppError> {
    let token = Token::generate();
    let expires = OffsetDateTime::now_utc() + ceremony_life();
    let json = serde_json::to_string(ceremony)
        .map_err(|_| AppError::internal("a passkey ceremony does not serialise"))?;
    let record = TokenRecord {
        ceremony: Some(json),
        ..TokenRecord::new(purpose, user, expires)
    };
    state.tokens.put_token(&token.key(), &record).await?;
    let started = Started {
        ceremony: token.as_str().to_owned(),
        options,
    };
    Ok(Json(started).into_response())
}

/// Takes (uses up) the ceremony `typed` names, if it is still good for `purpose`.
async fn take(
    state: &AppState,
    typed: &str,
    purpose: Purpose,
) -> Result<Option<TokenRecord>, AppError> {
    let Some(token) = Token::parse(typed) else {
        return Ok(None);
    };
    let record = state.tokens.take_token(&token.key()).await?;
    Ok(record.filter(|r| r.is_live(purpose, OffsetDateTime::now_utc())))
}

/// The ceremony state inside `record`, if it reads as `T`.
fn ceremony_of<T: serde::de::DeserializeOwned>(record: &TokenRecord) -> Option<T> {
    serde_json::from_str(record.ceremony.as_deref()?).ok()
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
        .starts
        .hit(&client.throttle_key(state.ipv6_prefix))
        .await
        .map_err(AppError::from)?
    {
        return Ok(slow_down(wait));
    }
    let (mut options, ceremony) = passkeys
        .webauthn
        .start_discoverable_authentication()
        .map_err(|err| AppError::internal(format!("passkey login options: {err}")))?;
    // A button asked for it: a modal prompt, not autofill's conditional one.
    options.mediation = None;
    Ok(begin(&state, Purpose::PasskeyLogin, None, &ceremony, options).await?)
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
    enabled(&state)?;
    let next = safe_next(&form.next);
    let user = match signed_in(&state, &form).await? {
        Ok(user) => user,
        Err(why) => {
            tracing::warn!(address = %client.address, why, "passkey login refused");
            let view = super::login::LoginView {
                error: Some(why),
                next,
                forgot: state.mail.is_some(),
                passkeys: true,
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
    };
    tracing::info!(user = %user.name, "passkey right");
    let to = next.unwrap_or(CABINET);
    let resp = auth::log_in(&state, current.0.as_ref(), &csrf, hx, login, to).await?;
    if !known_browser {
        state.accounts.notify_new_login(&user, &client).await;
    }
    Ok(resp)
}

/// The account whose passkey signed this login's challenge (its counter and last use
/// now updated), or why there is none.
async fn signed_in(state: &AppState, form: &LoginForm) -> Result<Result<User, &'static str>> {
    let passkeys = enabled(state)?;
    let Some(record) = take(state, &form.ceremony, Purpose::PasskeyLogin).await? else {
        return Ok(Err(TOO_SLOW));
    };
    let (Some(ceremony), Ok(credential)) = (
        ceremony_of::<DiscoverableAuthentication>(&record),
        serde_json::from_str::<PublicKeyCredential>(&form.credential),
    ) else {
        return Ok(Err(DID_NOT_WORK));
    };
    let Ok((handle, id)) = passkeys
        .webauthn
        .identify_discoverable_authentication(&credential)
    else {
        return Ok(Err(DID_NOT_WORK));
    };
    let owner = state.tokens.owner(&ClaimKey::passkey(id)).await?;
    let user = match owner.map(|name| crate::domain::Username::parse(&name)) {
        Some(Ok(name)) => state.users.get(&name).await.map_err(AppError::from)?,
        _ => None,
    };
    let Some(user) = user.filter(|u| u.passkey_handle == Some(handle)) else {
        return Ok(Err(UNKNOWN));
    };
    let Some(setting) = user.passkeys.iter().find(|p| p.key.cred_id()[..] == *id) else {
        return Ok(Err(UNKNOWN));
    };
    // `finish_discoverable_authentication_v2` wants the key's inner `Credential`,
    // which webauthn-rs only hands out behind its `danger-credential-internals`.
    #[allow(deprecated)]
    let checked = passkeys.webauthn.finish_discoverable_authentication(
        &credential,
        ceremony,
        &[DiscoverableKey::from(&setting.key)],
    );
    let result = match checked {
        // Required by the ceremony already; said again so no change can lose it.
        Ok(result) if result.user_verified() => result,
        Ok(_) => return Ok(Err(DID_NOT_WORK)),
        Err(err) => {
            tracing::warn!(user = %user.name, error = %err, "passkey signature refused");
            return Ok(Err(DID_NOT_WORK));
        }
    };
    // The counter is checked again against the stored one in the update that raises
    // it: of two signatures racing with one counter (a clone and its original), one wins.
    let now = OffsetDateTime::now_utc();
    let counts = result.counter() > 0;
    let fresh = Arc::new(std::sync::Mutex::new(false));
    let seen = fresh.clone();
    let used = move |u: &mut User| {
        let mut ok = false;
        for setting in &mut u.passkeys {
            let mut candidate = setting.key.clone();
            if let Some(changed) = candidate.update_credential(&result)
                && (changed || !counts)
            {
                setting.key = candidate;
                setting.last_used = Some(now);
                ok = true;
            }
        }
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = ok;
    };
    let updated = state.accounts.update(&user, &used).await?;
    if !*fresh.lock().unwrap_or_else(|p| p.into_inner()) {
        tracing::warn!(user = %user.name, "passkey counter did not rise (a race or a clone)");
        return Ok(Err(DID_NOT_WORK));
    }
    Ok(Ok(updated))
}

/// What the account page's passkey section says.
#[derive(Debug, Default, Clone)]
pub struct SectionState {
    /// Success, said once.
    pub notice: Option<&'static str>,
    /// An error for the whole section.
    pub alert: Option<String>,
    /// The name as typed, and its error.
    pub name: Option<(String, Option<&'static str>)>,
    /// The password's error (adding).
    pub current: Option<&'static str>,
    /// The code's error (adding).
    pub code: Option<&'static str>,
    /// Which passkey's removal was refused, and why.
    pub removing: Option<(String, &'static str)>,
}

/// The account page's "Passkeys" section for `user` (nothing when passkeys are off).
/// Without JavaScript it shows only when there are passkeys to remove.
pub fn section(state: &AppState, csrf: &Csrf, user: &User, shown: &SectionState) -> Markup {
    if state.passkeys.is_none() {
        return html! {};
    }
    let (typed, name_error) = shown
        .name
        .as_ref()
        .map_or(("", None), |(typed, error)| (typed.as_str(), *error));
    let fields = html! {
        (Field {
            id: Some("passkey_name"), name: "name", label: "Name it", kind: "text",
            autocomplete: "off", value: typed, error: name_error, autofocus: false,
            hint: Some("So you can tell your passkeys apart, e.g. “Phone” or “Laptop”."),
            optional: false,
        }.render())
        (Field {
            id: Some("passkey_password"), name: "current_password", label: "Your password",
            kind: "password", autocomplete: "current-password", value: "",
            error: shown.current, autofocus: false, hint: None, optional: false,
        }.render())
        @if user.totp.is_some() {
            (Field {
                id: Some("passkey_code"), name: "code", label: "Code from your app",
                kind: "text", autocomplete: "one-time-code", value: "", error: shown.code,
                autofocus: false, hint: None, optional: false,
            }.render())
        }
        button.secondary type="submit" { "Add a passkey" }
    };
    html! {
        section.card id="passkeys" data-passkey-only[user.passkeys.is_empty()]
            hidden[user.passkeys.is_empty()] hx-get="/account"
            hx-trigger=(ON_TWO_STEP_CHANGED) hx-select="#passkeys" hx-swap="outerHTML" {
            h2 { "Passkeys" }
            @if let Some(notice) = shown.notice { p.notice role="status" { (notice) } }
            @if let Some(alert) = &shown.alert { p.alert role="alert" { (alert) } }
            p.lead {
                "Log in with your fingerprint, face or screen lock instead of your password. "
                "A passkey counts as both steps of two-step login, and it cannot be phished: "
                "it only works on this site."
            }
            @if !user.passkeys.is_empty() {
                ul.passkeys { @for key in &user.passkeys { (listed(csrf, key, shown)) } }
            }
            div data-passkey-only hidden {
                form method="post" action="/account/passkeys" data-passkey="add"
                    data-options="/account/passkeys/options" novalidate {
                    input type="hidden" name="csrf" value=(csrf.token());
                    @if !user.passkeys.is_empty() { h3 { "Add another" } }
                    p.alert role="alert" data-passkey-error hidden {}
                    (fields)
                }
            }
        }
    }
}

/// One passkey in the list, with its removal form.
fn listed(csrf: &Csrf, key: &PasskeySetting, shown: &SectionState) -> Markup {
    let id = id_text(&key.key);
    let refused = shown
        .removing
        .as_ref()
        .filter(|(which, _)| *which == id)
        .map(|(_, why)| *why);
    let field_id = format!("remove_{}", &id[..id.len().min(12)]);
    html! {
        li {
            div.who {
                strong { (key.name) }
                small {
                    "Added " (time(key.added)) " · "
                    @match key.last_used {
                        Some(at) => { "last used " (time(at)) }
                        None => "not used yet",
                    }
                }
            }
            details open[refused.is_some()] {
                summary { "Remove" }
                (hx_form("/account/passkeys/remove", csrf, html! {
                    input type="hidden" name="id" value=(id);
                    (Field {
                        id: Some(&field_id), name: "current_password", label: "Your password",
                        kind: "password", autocomplete: "current-password", value: "",
                        error: refused, autofocus: false, hint: None, optional: false,
                    }.render())
                    button.danger type="submit" { "Remove “" (key.name) "”" }
                }))
            }
        }
    }
}

/// A passkey's credential id as it appears in forms, in hex.
fn id_text(key: &Passkey) -> String {
    crate::secret::hex(key.cred_id())
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
    hx.account_section("Passkeys", section(state, csrf, user, shown), status)
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
    let user = member(&state, &session.record.user).await?;
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
                    current: Some(auth::WRONG_PASSWORD),
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
    let handle = user.passkey_handle.unwrap_or_else(Uuid::new_v4);
    let exclude = user
        .passkeys
        .iter()
        .map(|p| p.key.cred_id().clone())
        .collect();
    let (mut options, registration) = passkeys
        .webauthn
        .start_passkey_registration(handle, &user.name, &user.name, Some(exclude))
        .map_err(|err| AppError::internal(format!("passkey options: {err}")))?;
    // Login finds the account from the passkey alone: it must be discoverable.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    let adding = Adding {
        state: registration,
        name: name.to_owned(),
        handle,
    };
    let purpose = Purpose::PasskeyRegistration;
    Ok(begin(&state, purpose, Some(&user), &adding, options).await?)
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
    Form(form): Form<FinishForm>,
) -> Result<Response> {
    let passkeys = enabled(&state)?;
    let user = member(&state, &session.record.user).await?;
    let refuse = |alert: &str, status| {
        let shown = SectionState {
            alert: Some(alert.to_owned()),
            ..SectionState::default()
        };
        Ok(answer(&state, hx, &csrf, &user, &shown, status))
    };
    let record = take(&state, &form.ceremony, Purpose::PasskeyRegistration).await?;
    // The ceremony must be this account's, started under its current password.
    let record = record.filter(|r| r.belongs_to(&user));
    let Some(adding) = record.as_ref().and_then(ceremony_of::<Adding>) else {
        return refuse(TOO_SLOW, StatusCode::GONE);
    };
    let made = serde_json::from_str::<RegisterPublicKeyCredential>(&form.credential)
        .map_err(|err| err.to_string())
        .and_then(|credential| {
            passkeys
                .webauthn
                .finish_passkey_registration(&credential, &adding.state)
                .map_err(|err| err.to_string())
        });
    let key = match made {
        Ok(key) => key,
        Err(err) => {
            tracing::warn!(user = %user.name, error = %err, "passkey registration refused");
            return refuse(
                "The new passkey could not be checked, so it was not added. Try again.",
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let claim = ClaimKey::passkey(key.cred_id());
    if !state.tokens.claim(&claim, &user.name).await? {
        return refuse(
            "That passkey is registered to another account already.",
            StatusCode::CONFLICT,
        );
    }
    let setting = PasskeySetting {
        name: adding.name.clone(),
        key,
        added: OffsetDateTime::now_utc(),
        last_used: None,
    };
    let handle = adding.handle;
    let added = Arc::new(std::sync::Mutex::new(false));
    let seen = added.clone();
    let store = move |u: &mut User| {
        let fits = u.passkey_handle.is_none_or(|h| h == handle);
        let fresh = !u.passkeys.iter().any(|p| p.key == setting.key);
        let ok = fits && fresh;
        if ok {
            u.passkey_handle = Some(handle);
            u.passkeys.push(setting.clone());
        }
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = ok;
    };
    let updated = state.accounts.update(&user, &store).await?;
    if !*added.lock().unwrap_or_else(|p| p.into_inner()) {
        return refuse(TOO_SLOW, StatusCode::CONFLICT);
    }
    tracing::info!(user = %user.name, "passkey added");
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
    let user = member(&state, &session.record.user).await?;
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
                removing: Some((form.id.clone(), auth::WRONG_PASSWORD)),
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
    let gone = key.key.clone();
    let forget = move |u: &mut User| u.passkeys.retain(|p| p.key != gone);
    let updated = state.accounts.update(&user, &forget).await?;
    let claim = ClaimKey::passkey(key.key.cred_id());
    state.tokens.release(&claim, &user.name).await?;
    tracing::info!(user = %user.name, "passkey removed");
    let shown = SectionState {
        notice: Some("Passkey removed."),
        ..SectionState::default()
    };
    Ok(answer(&state, hx, &csrf, &updated, &shown, StatusCode::OK))
}
