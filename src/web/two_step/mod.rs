//! Two-step login with an authenticator app (TOTP) and recovery codes.
//!
//! - `/account`'s "Two-step login" section: a QR code (SVG drawn here) and the key as
//!   text; `POST /account/totp` (`code`, `current_password`, and the sealed key the
//!   page carried) turns it on and shows ten recovery codes once;
//!   `POST /account/totp/recovery` replaces them; `POST /account/totp/off` (password
//!   and a code) turns it off.
//! - Login: a right password for such an account logs nothing in. The browser gets a
//!   pending login (a 256-bit token in an HttpOnly cookie, stored as its hash, five
//!   minutes, single use) and the code form; `POST /login/code` (`code`: an app's code
//!   or a recovery code) finishes the login.
//!
//! Keys are stored sealed, recovery codes as keyed hashes ([`crate::accounts::second_factor`]). A code works once: the step of the last one used is kept,
//! and a code of that step or older is refused.

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::http::header::SET_COOKIE;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, Result, handler};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::{self, Login};
use super::client::Client;
use super::csrf::Csrf;
use super::form::Form;
use super::layout::wait_message;
use super::messages::{WRONG_CODE, WRONG_PASSWORD};
use super::{AppState, CABINET, Hx, throttled, too_many};
use super::{Member, account_of};
use crate::accounts::{Checked, Refusal, Used, links};
use crate::cookies::CookiePolicy;
use crate::error::AppError;
use crate::session::CurrentSession;
use crate::store::tokens::{Purpose, Token, TokenRecord};
use crate::store::{StoreError, User};
use crate::throttle::{Limit, Throttle};
use crate::totp::TotpKey;

mod view;

pub use self::view::{SectionState, Setup, code_view, section};

/// Wrong codes one pending login may try.
const PENDING_TRIES: u32 = 3;

/// What the second step of a login needs: its cookie, and its count of tries.
#[derive(Debug, Clone)]
pub struct TwoStep {
    policy: CookiePolicy,
    cookie: String,
    /// "Trust this browser": `<account id>.<secret>` (see `accounts::trust`).
    pub trust_cookie: String,
    /// Wrong codes per pending login.
    tries: Arc<Throttle>,
}

impl TwoStep {
    /// Cookies named and flagged by `policy`; tries counted in `counters`.
    pub fn new(policy: CookiePolicy, counters: Arc<dyn crate::store::CounterStore>) -> Self {
        let limit = Some(Limit {
            max: PENDING_TRIES,
            window: Duration::from_secs(5 * 60),
        });
        Self {
            cookie: policy.name("wicket_pending"),
            trust_cookie: policy.name("wicket_trust"),
            policy,
            tries: Arc::new(Throttle::new("pending", limit, counters)),
        }
    }
}

/// After the right password for an account with two-step login: a pending login and
/// the code form, instead of a session.
pub async fn begin(
    state: &AppState,
    user: &User,
    remember: bool,
    next: Option<&str>,
    csrf: &Csrf,
    hx: Hx,
) -> Result<Response, StoreError> {
    let pending = |record| TokenRecord {
        remember,
        next: next.map(str::to_owned),
        ..record
    };
    let purpose = Purpose::PendingLogin;
    let token = state.accounts.issue(purpose, user, "", pending).await?;
    tracing::info!(user = %user.name, "password right; waiting for the second factor");
    let mut resp = hx
        .page("Two-step login", code_view(csrf, None, None))
        .into_response();
    let cookie = state.two_step.policy.set(
        &state.two_step.cookie,
        token.as_str(),
        Some(links::valid_for(Purpose::PendingLogin)),
    );
    resp.headers_mut().append(SET_COOKIE, cookie);
    Ok(resp)
}

/// The pending login of this browser, if it is still good.
async fn pending(
    state: &AppState,
    req: &Request,
) -> Result<Option<(Token, TokenRecord, User)>, StoreError> {
    let Some(token) =
        crate::cookies::find(req, &state.two_step.cookie).and_then(|v| Token::parse(&v))
    else {
        return Ok(None);
    };
    let good = state
        .accounts
        .peek_good(&token, Purpose::PendingLogin)
        .await?;
    Ok(good.map(|(record, user)| (token, record, user)))
}

/// `GET /login/code`: the code form, while a pending login lasts.
#[handler]
pub async fn code_page(
    state: Data<&Arc<AppState>>,
    req: &Request,
    csrf: Csrf,
    hx: Hx,
) -> Result<Response> {
    if pending(&state, req).await?.is_none() {
        return Ok(Hx(false).redirect("/"));
    }
    Ok(hx
        .page("Two-step login", code_view(&csrf, None, None))
        .into_response())
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
    /// "Trust this browser for 30 days": present (`on`) only when ticked.
    trust: String,
}

/// `POST /login/code`: checks the code and finishes the login.
#[handler]
pub async fn code_submit(
    state: Data<&Arc<AppState>>,
    req: &Request,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<CodeForm>,
) -> Result<Response> {
    let Some((token, record, user)) = pending(&state, req).await? else {
        let body = super::email::message_card(
            "Please log in again",
            "This login waited too long for its code (five minutes), or it was finished \
             or replaced. Log in again to get a new one.",
            "/",
            "Log in",
        );
        return Ok(hx
            .page("Please log in again", body)
            .with_status(StatusCode::GONE)
            .into_response());
    };
    let refuse = |error: Option<&str>, alert: Option<&str>, status: StatusCode| {
        hx.page("Two-step login", code_view(&csrf, error, alert))
            .with_status(status)
            .into_response()
    };
    // Counted per pending login, then like a password: per account or known device.
    let checked = match state.two_step.tries.hit(token.key().as_str()).await? {
        Err(wait) => Checked::Throttled(wait),
        Ok(()) => {
            state
                .accounts
                .check_code(&user, &form.code, &client)
                .await?
        }
    };
    let used = match checked {
        Checked::Right(used) => used,
        Checked::Wrong => return Ok(refuse(Some(WRONG_CODE), None, StatusCode::UNAUTHORIZED)),
        Checked::Throttled(wait) => {
            let alert = wait_message(wait);
            let page = hx.page("Two-step login", code_view(&csrf, None, Some(&alert)));
            return Ok(too_many(page, wait));
        }
    };
    // Single use: whoever takes the token finishes the login.
    if state.tokens.take_token(&token.key()).await?.is_none() {
        return Ok(refuse(
            None,
            Some("This login was already finished."),
            StatusCode::GONE,
        ));
    }
    let known_browser = state.accounts.known_browser(&client, &user);
    let login = Login {
        user: &user,
        client: &client,
        remember: record.remember,
        record: true,
        second_factor: true,
        amr: auth::PASSWORD_AND_CODE,
        method: match used {
            Used::AppCode => "password and code",
            Used::RecoveryCode(_) => "password and recovery code",
        },
    };
    let back = record
        .next
        .as_deref()
        .and_then(|next| super::return_to(&state.guard, next));
    let to = match used {
        Used::AppCode => back.as_deref().unwrap_or(CABINET),
        Used::RecoveryCode(_) => "/account?done=recovery",
    };
    tracing::info!(user = %user.name, ?used, "second factor right");
    let mut resp = auth::log_in(&state, current.0.as_ref(), &csrf, hx, login, to).await?;
    resp.headers_mut().append(
        SET_COOKIE,
        state.two_step.policy.clear(&state.two_step.cookie),
    );
    if !form.trust.is_empty() {
        let secret = state.accounts.trust_browser(&user, &client).await?;
        let value = crate::accounts::trust::cookie_value(&user, &secret);
        let lifetime = crate::accounts::trust::TRUSTED_FOR.unsigned_abs();
        let cookie =
            state
                .two_step
                .policy
                .set(&state.two_step.trust_cookie, &value, Some(lifetime));
        resp.headers_mut().append(SET_COOKIE, cookie);
    }
    if !known_browser {
        state.accounts.notify_new_login(&user, &client).await;
    }
    Ok(resp)
}

/// `POST /account/totp/setup`: a new key, shown as a QR code and as text, for the
/// form that turns two-step login on. Nothing is stored until a code confirms it.
#[handler]
pub async fn start_setup(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    Form(_): Form<super::form::NoFields>,
) -> Result<Response> {
    let user = account_of(&session)?;
    if user.totp.is_some() {
        return Ok(Hx(false).redirect("/account"));
    }
    let key = TotpKey::generate();
    let sealed = state.accounts.second_factor.seal_for_setup(&key, &user);
    let shown = SectionState {
        setup: Some(Setup { key, sealed }),
        ..SectionState::default()
    };
    Ok(answer(hx, &csrf, &user, shown, StatusCode::OK))
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EnableForm {
    setup: String,
    code: String,
    current_password: String,
}

/// `POST /account/totp`: turns two-step login on, with the key the page showed.
#[handler]
pub async fn enable(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<EnableForm>,
) -> Result<Response> {
    let user = account_of(&session)?;
    if user.totp.is_some() {
        return Ok(Hx(false).redirect("/account"));
    }
    let key = state.accounts.second_factor.open_setup(&form.setup, &user);
    let now = OffsetDateTime::now_utc()
        .unix_timestamp()
        .max(0)
        .unsigned_abs();
    let step = key.as_ref().and_then(|k| k.check(&form.code, now, None));
    let checked = state
        .accounts
        .check_password(&user.name, &form.current_password, &client)
        .await?;
    if let Err(refused) = checked.right() {
        let (shown, wait) = refused_state(refused);
        let shown = SectionState {
            setup: key.clone().map(|key| Setup {
                key,
                sealed: form.setup.clone(),
            }),
            ..shown
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(throttled(answer(hx, &csrf, &user, shown, status), wait));
    }
    let opened = key.clone();
    let (Some(key), Some(step)) = (key, step) else {
        let shown = SectionState {
            code: Some(WRONG_CODE),
            setup: opened.map(|key| Setup {
                key,
                sealed: form.setup.clone(),
            }),
            ..SectionState::default()
        };
        return Ok(answer(
            hx,
            &csrf,
            &user,
            shown,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };
    let (updated, codes) = state
        .accounts
        .turn_on_two_step(&user, &key, step, &client)
        .await?;
    let shown = SectionState {
        notice: Some("Two-step login is on."),
        recovery_codes: codes.shown,
        ..SectionState::default()
    };
    Ok(changed(answer(hx, &csrf, &updated, shown, StatusCode::OK)))
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CodeAndPassword {
    code: String,
    current_password: String,
}

/// `POST /account/totp/recovery`: ten new recovery codes; the old ones die.
#[handler]
pub async fn regenerate(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<CodeAndPassword>,
) -> Result<Response> {
    let asked = Asked {
        session: &session,
        csrf: &csrf,
        hx,
        client: &client,
        form: &form,
    };
    confirmed_change(&state, asked, Change::NewRecoveryCodes).await
}

/// `POST /account/totp/off`: with the password and a code, turns it off.
#[handler]
pub async fn disable(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<CodeAndPassword>,
) -> Result<Response> {
    let asked = Asked {
        session: &session,
        csrf: &csrf,
        hx,
        client: &client,
        form: &form,
    };
    confirmed_change(&state, asked, Change::TurnOff).await
}

/// What a confirmed form changes.
enum Change {
    NewRecoveryCodes,
    TurnOff,
}

/// One of the forms that need the password and a code, as posted.
struct Asked<'a> {
    session: &'a crate::session::Session,
    csrf: &'a Csrf,
    hx: Hx,
    client: &'a Client,
    form: &'a CodeAndPassword,
}

/// Checks the password and a code, then makes `change`.
async fn confirmed_change(state: &AppState, asked: Asked<'_>, change: Change) -> Result<Response> {
    let Asked {
        session,
        csrf,
        hx,
        client,
        form,
    } = asked;
    let user = account_of(session)?;
    if let Some((refused, wait)) = confirm(state, &user, form, client).await? {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(throttled(answer(hx, csrf, &user, refused, status), wait));
    }
    let turned_off = matches!(change, Change::TurnOff);
    let (updated, shown) = match change {
        Change::NewRecoveryCodes => {
            let (updated, codes) = state.accounts.renew_recovery_codes(&user, client).await?;
            let shown = SectionState {
                notice: Some("New recovery codes made; the old ones no longer work."),
                recovery_codes: codes.shown,
                ..SectionState::default()
            };
            (updated, shown)
        }
        Change::TurnOff => {
            let updated = state.accounts.turn_off_two_step(&user, client).await?;
            let shown = SectionState {
                notice: Some("Two-step login is off."),
                ..SectionState::default()
            };
            (updated, shown)
        }
    };
    let resp = answer(hx, csrf, &updated, shown, StatusCode::OK);
    Ok(if turned_off { changed(resp) } else { resp })
}

/// Tells the page (htmx) that two-step login was turned on or off: the sections whose
/// forms ask for a code then redraw themselves.
fn changed(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "HX-Trigger",
        poem::http::HeaderValue::from_static(super::layout::TWO_STEP_CHANGED),
    );
    resp
}

/// What the section says when the password was refused, and how long to wait if it
/// was throttled.
fn refused_state(refused: Refusal) -> (SectionState, Option<Duration>) {
    match refused {
        Refusal::Wrong => (
            SectionState {
                current: Some(WRONG_PASSWORD),
                ..SectionState::default()
            },
            None,
        ),
        Refusal::Throttled(wait) => (
            SectionState {
                alert: Some(wait_message(wait)),
                ..SectionState::default()
            },
            Some(wait),
        ),
    }
}

/// Checks the password and then a second factor (used up), each counted like a
/// login; what to say if either is refused (and how long to wait, if throttled).
async fn confirm(
    state: &AppState,
    user: &User,
    form: &CodeAndPassword,
    client: &Client,
) -> Result<Option<(SectionState, Option<Duration>)>, AppError> {
    if user.totp.is_none() {
        let shown = SectionState {
            alert: Some("Two-step login is off.".into()),
            ..SectionState::default()
        };
        return Ok(Some((shown, None)));
    }
    let checked = state
        .accounts
        .check_password(&user.name, &form.current_password, client)
        .await?;
    if let Err(refusal) = checked.right() {
        return Ok(Some(refused_state(refusal)));
    }
    let checked = state.accounts.check_code(user, &form.code, client).await?;
    Ok(checked.right().err().map(|refusal| match refusal {
        Refusal::Wrong => {
            let shown = SectionState {
                code: Some(WRONG_CODE),
                ..SectionState::default()
            };
            (shown, None)
        }
        throttled @ Refusal::Throttled(_) => refused_state(throttled),
    }))
}

/// The section for htmx, the account page (with the section in this state) without.
fn answer(hx: Hx, csrf: &Csrf, user: &User, shown: SectionState, status: StatusCode) -> Response {
    hx.account_section("Two-step login", section(csrf, user, &shown), status)
}
