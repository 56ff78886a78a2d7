//! `GET /` and `POST /login`: the login form and checking a password.

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::auth::{self, Login};
use super::client::Client;
use super::csrf::Csrf;
use super::form::Form;
use super::layout::{Field, hx_form, wait_message};
use super::{AppState, CABINET, Hx, login_url, return_to, too_many};
use crate::accounts::Checked;
use crate::config::Registration;
use crate::metrics::{Method, Outcome, metrics};
use crate::session::{CurrentSession, Notice, NoticeShown, Sessions};
use crate::store::EndReason;

/// One message for every failure, so the form does not reveal which names exist.
const INVALID: &str = "Invalid username or password.";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: String,
    /// Where forward-auth sends a browser back to (a guarded app's page).
    rd: String,
}

impl NextQuery {
    /// `rd` if given, else `next`.
    pub fn wanted(&self) -> &str {
        if self.rd.is_empty() {
            &self.next
        } else {
            &self.rd
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    username: String,
    password: String,
    next: String,
    /// The "Keep me logged in" checkbox: present (`on`) only when ticked.
    remember: String,
}

/// `GET /`: the login form, or the cabinet for someone already logged in.
#[handler]
pub fn page(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    notice: Notice,
    csrf: Csrf,
    hx: Hx,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = return_to(&state.guard, query.wanted());
    let next = next.as_deref();
    if current.0.is_some() {
        return hx.redirect(next.unwrap_or(CABINET));
    }
    let said = notice.0.map(|reason| why_it_ended(reason, &state.sessions));
    let form = LoginView {
        notice: said.as_deref(),
        next,
        forgot: state.mail.is_some(),
        passkeys: state.passkeys.is_some(),
        registration_shut: state.registration != Registration::Open,
        ..LoginView::default()
    };
    let mut resp = hx.page("Log in", view(&csrf, &form)).into_response();
    if said.is_some() {
        resp.extensions_mut().insert(NoticeShown);
    }
    resp
}

/// The one sentence a browser whose session ended is told.
fn why_it_ended(reason: EndReason, sessions: &Sessions) -> String {
    match reason {
        EndReason::LoggedOut => "You are logged out.".into(),
        EndReason::PasswordChanged => {
            "You were logged out because your password was changed.".into()
        }
        EndReason::PasswordReset => "You were logged out because your password was reset.".into(),
        EndReason::ReportedNotMe => {
            "You were logged out because a login to this account was reported as not \
             its owner's."
                .into()
        }
        EndReason::EndedElsewhere => {
            "You were logged out because the session was ended from another device.".into()
        }
        EndReason::AccountDeleted => "You were logged out because the account was deleted.".into(),
        EndReason::AccountDisabled => {
            "You were logged out because the site's operator disabled this account.".into()
        }
        EndReason::SecondFactorReset => {
            "You were logged out because the site's operator reset this account's two-step \
             login."
                .into()
        }
        EndReason::PasswordChangeRequired => {
            "You were logged out because the site's operator asks for a new password: log \
             in to choose one."
                .into()
        }
        EndReason::Idle => format!(
            "You were logged out after {} without activity.",
            spoken(sessions.idle())
        ),
        EndReason::Lifetime => format!(
            "You were logged out because sessions last at most {}.",
            spoken(sessions.lifetime())
        ),
    }
}

/// `30 minutes`, `1 hour`, `7 days`, `90 seconds`: a configured duration in words.
fn spoken(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// `GET /login`: the form lives at `/`.
#[handler]
pub fn elsewhere(Query(query): Query<NextQuery>) -> Response {
    if query.rd.is_empty() {
        return Hx(false).redirect(&login_url(&query.next));
    }
    // Carried as it came: the form checks it before anything goes there.
    let rd: String = url::form_urlencoded::byte_serialize(query.rd.as_bytes()).collect();
    Hx(false).redirect(&format!("/?rd={rd}"))
}

/// `POST /login`: checks the password and starts a new session.
#[handler]
pub async fn submit(
    state: Data<&Arc<AppState>>,
    req: &poem::Request,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let next = return_to(&state.guard, &form.next);
    let next = next.as_deref();
    // A refused form comes back as it was typed (never the password).
    let filled = Filled {
        username: &form.username,
        remember: !form.remember.is_empty(),
    };
    let refuse = |message: &str| {
        let form = LoginView {
            filled,
            error: Some(message),
            next,
            notice: None,
            forgot: state.mail.is_some(),
            passkeys: state.passkeys.is_some(),
            registration_shut: state.registration != Registration::Open,
        };
        hx.page("Log in", view(&csrf, &form))
    };

    let checked = state
        .accounts
        .check_password(&form.username, &form.password, &client)
        .await?;
    let counted = |outcome| metrics().login(Method::password, outcome);
    let user = match checked {
        Checked::Right(user) => user,
        Checked::Wrong => {
            counted(Outcome::wrong);
            return Ok(refuse(INVALID)
                .with_status(StatusCode::UNAUTHORIZED)
                .into_response());
        }
        Checked::Throttled(wait) => {
            counted(Outcome::throttled);
            return Ok(too_many(refuse(&wait_message(wait)), wait));
        }
    };
    if user.disabled.is_some() {
        // Said only to whoever knows the password: a guesser learns nothing.
        counted(Outcome::disabled);
        return Ok(disabled(&state, &csrf, hx, filled));
    }
    counted(Outcome::ok);
    let trust = crate::cookies::find(req, &state.two_step.trust_cookie);
    let trusted = user.totp.is_some() && state.accounts.trusts(&user, trust.as_deref());
    if user.totp.is_some() && !trusted {
        let begun = super::two_step::begin(&state, &user, filled.remember, next, &csrf, hx);
        return Ok(begun.await?);
    }
    let login = Login {
        user: &user,
        client: &client,
        remember: filled.remember,
        record: true,
        second_factor: false,
        amr: auth::PASSWORD,
        method: if trusted {
            "password (a trusted browser)"
        } else {
            "password"
        },
    };
    let to = next.unwrap_or(CABINET);
    // Asked of the request: the response is what makes this browser known.
    let known_browser = state.accounts.known_browser(&client, &user);
    let resp = auth::log_in(&state, current.0.as_ref(), &csrf, hx, login, to).await?;
    if !known_browser {
        state.accounts.notify_new_login(&user, &client).await;
    }
    Ok(resp)
}

/// Why a disabled account's right password logs nobody in.
pub const DISABLED: &str = "This account is disabled. Ask the site's operator if you think \
                            it should not be.";

/// The login form saying the account is disabled (`403`), refilled with `filled`.
pub fn disabled(state: &AppState, csrf: &Csrf, hx: Hx, filled: Filled<'_>) -> Response {
    tracing::warn!("login to a disabled account refused");
    let form = LoginView {
        filled,
        error: Some(DISABLED),
        forgot: state.mail.is_some(),
        passkeys: state.passkeys.is_some(),
        registration_shut: state.registration != Registration::Open,
        ..LoginView::default()
    };
    hx.page("Log in", view(csrf, &form))
        .with_status(StatusCode::FORBIDDEN)
        .into_response()
}

/// What the login card shows besides its fields.
#[derive(Debug, Default)]
pub struct LoginView<'a> {
    /// What the form is refilled with.
    pub filled: Filled<'a>,
    /// Why the login was refused (an alert).
    pub error: Option<&'a str>,
    /// Why the browser is here (e.g. its session ended), said politely.
    pub notice: Option<&'a str>,
    /// Where to go after logging in.
    pub next: Option<&'a str>,
    /// Offer "Forgot your password?" (the site sends mail).
    pub forgot: bool,
    /// Offer "Log in with a passkey" (to browsers with JavaScript and WebAuthn).
    pub passkeys: bool,
    /// Registration is by invitation or closed: no "Create an account" link.
    pub registration_shut: bool,
}

/// What the login form is refilled with.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filled<'a> {
    /// The name as typed.
    pub username: &'a str,
    /// Whether "Keep me logged in" was ticked.
    pub remember: bool,
}

/// The login card: the fragment htmx swaps, and the body of `GET /`; `error` is an
/// alert above the fields.
pub fn view(csrf: &Csrf, form: &LoginView) -> Markup {
    let filled = form.filled;
    let fields = html! {
        @if let Some(error) = form.error {
            p.alert role="alert" { (error) }
        }
        (Field {
            id: None,
            name: "username", label: "Username", kind: "text",
            // With passkeys, the field offers them too (autofill), where browsers can.
            autocomplete: if form.passkeys { "username webauthn" } else { "username" },
            value: filled.username, error: None, autofocus: true, hint: None, optional: false,
        }.render())
        (Field {
            id: None,
            name: "password", label: "Password", kind: "password",
            autocomplete: "current-password", value: "", error: None,
            autofocus: false, hint: None, optional: false,
        }.render())
        div.check {
            input id="remember" name="remember" type="checkbox" checked[filled.remember];
            label for="remember" { "Keep me logged in" }
        }
        @if let Some(next) = form.next {
            input type="hidden" name="next" value=(next);
        }
        button type="submit" { "Log in" }
    };
    let forgot = form.forgot;
    html! {
        section.card id="login" {
            h1 { "Log in" }
            @if let Some(notice) = form.notice {
                p.notice role="status" { (notice) }
            }
            p.lead { "Welcome back. Log in to open your cabinet." }
            (hx_form("/login", csrf, fields))
            @if form.passkeys { (passkey_login(csrf, form.next)) }
            @if forgot {
                p.switch { a href="/forgot" { "Forgot your password?" } }
            }
            @if !form.registration_shut {
                p.switch { "New here? " a href="/register/" { "Create an account" } }
            }
        }
    }
}

/// "Log in with a passkey": hidden until `passkey.js` finds WebAuthn in the browser,
/// which then runs the ceremony and posts its result.
pub(super) fn passkey_login(csrf: &Csrf, next: Option<&str>) -> Markup {
    html! {
        div.passkey-login data-passkey-only hidden {
            p.or { span { "or" } }
            form method="post" action="/login/passkey" data-passkey="login"
                data-options="/login/passkey/options" {
                input type="hidden" name="csrf" value=(csrf.token());
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                p.alert role="alert" data-passkey-error hidden {}
                button.secondary type="submit" { "Log in with a passkey" }
            }
        }
    }
}
