//! `GET /` and `POST /login`: the login form and checking a password.

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query, RemoteAddr};
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::csrf::Csrf;
use super::form::Form;
use super::layout::{Field, hx_form, wait_message};
use super::{AppState, CABINET, Hx, auth, client_ip, login_url, safe_next, too_many};
use crate::domain::{Password, Username};
use crate::error::{AppError, chain};
use crate::session::{CurrentSession, Notice, NoticeShown, Sessions};
use crate::store::{EndReason, User};

/// One message for every failure, so the form does not reveal which names exist.
const INVALID: &str = "Invalid username or password.";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: String,
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
    let next = safe_next(&query.next);
    if current.0.is_some() {
        return hx.redirect(next.unwrap_or(CABINET));
    }
    let said = notice.0.map(|reason| why_it_ended(reason, &state.sessions));
    let form = LoginView {
        notice: said.as_deref(),
        next,
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
        EndReason::EndedElsewhere => {
            "You were logged out because the session was ended from another device.".into()
        }
        EndReason::AccountDeleted => "You were logged out because the account was deleted.".into(),
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
    Hx(false).redirect(&login_url(&query.next))
}

/// `POST /login`: checks the password and starts a new session.
#[handler]
pub async fn submit(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    remote: &RemoteAddr,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let next = safe_next(&form.next);
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
        };
        hx.page("Log in", view(&csrf, &form))
    };

    // Throttle before any scrypt work. The account key is what was typed, so a
    // malformed name is throttled like any other.
    let account: String = form
        .username
        .trim()
        .to_lowercase()
        .chars()
        .take(64)
        .collect();
    let address = client_ip(remote);
    if let Err(wait) = state.login_throttle.attempt(&account, &address) {
        tracing::warn!(username = ?form.username, %address, "login throttled");
        return Ok(too_many(refuse(&wait_message(wait)), wait));
    }

    // A malformed name cannot exist, but it still costs a (dummy) scrypt run.
    let user = match Username::parse(&form.username) {
        Ok(name) => state.users.get(&name).await?,
        Err(_) => None,
    };
    let verified = state
        .hasher
        .verify(
            form.password.clone(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    let Some(user) = user.filter(|_| verified) else {
        tracing::warn!(username = ?form.username, %address, "login failed");
        return Ok(refuse(INVALID)
            .with_status(StatusCode::UNAUTHORIZED)
            .into_response());
    };
    state.login_throttle.succeeded(&account, &address);
    if state.hasher.needs_rehash(&user.password_hash) {
        rehash(&state, user.clone(), form.password.clone()).await;
    }
    let to = next.unwrap_or(CABINET);
    let current = current.0.as_ref();
    Ok(auth::log_in(&state, current, &csrf, hx, &user.name, filled.remember, to).await?)
}

/// Replaces a verified hash made at another cost (`--scrypt-log-n` changed since) by
/// one at this server's cost. A failure is logged, never a reason to refuse the login.
async fn rehash(state: &AppState, mut user: User, password: String) {
    let password = match Password::parse(password) {
        Ok(password) => password,
        // A password accepted long ago that today's rules refuse keeps its old hash.
        Err(_) => return,
    };
    let replaced = match state.hasher.hash(password).await {
        Ok(hash) => {
            user.password_hash = hash;
            state.users.replace(&user).await.map_err(AppError::from)
        }
        Err(err) => Err(AppError::from(err)),
    };
    match replaced {
        Ok(_) => tracing::info!(user = %user.name, "password rehashed at the configured cost"),
        Err(err) => {
            tracing::warn!(user = %user.name, error = %chain(&err), "could not rehash the password")
        }
    }
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
            name: "username", label: "Username", kind: "text", autocomplete: "username",
            value: filled.username, error: None, autofocus: true, hint: None,
        }.render())
        (Field {
            name: "password", label: "Password", kind: "password",
            autocomplete: "current-password", value: "", error: None,
            autofocus: false, hint: None,
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
    html! {
        section.card id="login" {
            h1 { "Log in" }
            @if let Some(notice) = form.notice {
                p.notice role="status" { (notice) }
            }
            p.lead { "Welcome back. Log in to open your cabinet." }
            (hx_form("/login", csrf, fields))
            p.switch { "New here? " a href="/register/" { "Create an account" } }
        }
    }
}
