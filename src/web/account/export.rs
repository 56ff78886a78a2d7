//! "Your data": `GET /account/export` asks the password (and a code with two-step
//! login on), `POST /account/export` answers with a JSON download of everything the
//! site keeps about the member: the account, its sessions, its journal, its passkeys'
//! names, the apps it let in. Never a hash, a key, a token or a session id.

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{IntoResponse, Response, Result, handler};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::accounts::{Checked, Refusal};
use crate::store::User;
use crate::store::journal::{Entry, KEPT};
use crate::web::client::Client;
use crate::web::csrf::Csrf;
use crate::web::form::Form;
use crate::web::layout::{Field, wait_message};
use crate::web::messages::{WRONG_CODE, WRONG_PASSWORD};
use crate::web::{AppState, Hx, Member, account_of, throttled};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ExportForm {
    current_password: String,
    /// With two-step login on, a code.
    code: String,
}

/// `GET /account/export`: the form.
#[handler]
pub fn page(Member(session): Member, csrf: Csrf, hx: Hx) -> Result<Response> {
    let user = account_of(&session)?;
    Ok(hx
        .page("Your data", form(&csrf, &user, Errors::default()))
        .into_response())
}

/// What a refused form says.
#[derive(Debug, Default, Clone, Copy)]
struct Errors<'a> {
    password: Option<&'a str>,
    code: Option<&'a str>,
    alert: Option<&'a str>,
}

/// The form. A plain one, without htmx: its answer is a download.
fn form(csrf: &Csrf, user: &User, errors: Errors<'_>) -> Markup {
    let two_step = user.totp.is_some();
    html! {
        section.card id="export" {
            h1 { "Your data" }
            p.lead {
                "Download everything this site keeps about you as a JSON file: your account, "
                "your sessions, your activity, your passkeys' names and the apps you let in. "
                "No password, key or code is in it."
            }
            @if let Some(alert) = errors.alert { p.alert role="alert" { (alert) } }
            form method="post" action="/account/export" {
                input type="hidden" name="csrf" value=(csrf.token());
                (Field {
                    id: Some("export-password"),
                    name: "current_password", label: "Your password", kind: "password",
                    autocomplete: "current-password", value: "", error: errors.password,
                    autofocus: errors.password.is_some(), hint: None, optional: false,
                }.render())
                @if two_step {
                    (Field {
                        id: Some("export-code"),
                        name: "code", label: "Code from your authenticator app (or a recovery code)",
                        kind: "text", autocomplete: "one-time-code", value: "", error: errors.code,
                        autofocus: errors.code.is_some(), hint: None, optional: false,
                    }.render())
                }
                button type="submit" { "Download my data" }
            }
            p.switch { a href="/account" { "Back to your account" } }
        }
    }
}

/// `POST /account/export`: with the password (and a code), the download.
#[handler]
pub async fn download(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    client: Client,
    Form(typed): Form<ExportForm>,
) -> Result<Response> {
    let user = account_of(&session)?;
    let refuse = |errors: Errors<'_>, wait: Option<std::time::Duration>| {
        let shown = Hx(false).page("Your data", form(&csrf, &user, errors));
        throttled(
            shown
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response(),
            wait,
        )
    };
    let checked = state
        .accounts
        .check_password_of(&user, &typed.current_password, &client)
        .await?;
    match checked.right() {
        Ok(_) => {}
        Err(Refusal::Wrong) => {
            let errors = Errors {
                password: Some(WRONG_PASSWORD),
                ..Errors::default()
            };
            return Ok(refuse(errors, None));
        }
        Err(Refusal::Throttled(wait)) => {
            let message = wait_message(wait);
            let errors = Errors {
                alert: Some(&message),
                ..Errors::default()
            };
            return Ok(refuse(errors, Some(wait)));
        }
    }
    if user.totp.is_some() {
        match state
            .accounts
            .check_code(&user, &typed.code, &client)
            .await?
        {
            Checked::Right(_) => {}
            Checked::Wrong => {
                let errors = Errors {
                    code: Some(WRONG_CODE),
                    ..Errors::default()
                };
                return Ok(refuse(errors, None));
            }
            Checked::Throttled(wait) => {
                let message = wait_message(wait);
                let errors = Errors {
                    alert: Some(&message),
                    ..Errors::default()
                };
                return Ok(refuse(errors, Some(wait)));
            }
        }
    }
    let sessions = state.sessions.of_user(&user.name).await?;
    let (activity, _) = state.accounts.journal.entries(&user.id, 0, KEPT).await?;
    let apps = match &state.oidc {
        Some(provider) => provider.apps_of(&user.id).await?,
        None => Vec::new(),
    };
    let data = Export {
        exported: OffsetDateTime::now_utc(),
        site: crate::brand::name(),
        account: AccountData::of(&user),
        sessions: sessions
            .iter()
            .map(|s| SessionData {
                started: s.record.created,
                last_active: s.record.last_seen,
                browser: s.record.browser.clone(),
                address: s.record.address.clone(),
                kept_logged_in: s.record.remember,
                this_browser: s.id == session.id,
            })
            .collect(),
        activity,
        apps: apps
            .into_iter()
            .map(|app| AppData {
                id: app.client,
                name: app.name,
                learns: app.scopes,
                last_used: app.last_used,
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&data).map_err(crate::error::AppError::internal)?;
    tracing::info!(user = %user.name, "account data exported");
    let filename = format!("account-{}.json", user.name);
    Ok(Response::builder()
        .content_type("application/json")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        )
        .body(json))
}

/// The download.
#[derive(Serialize)]
struct Export<'a> {
    #[serde(with = "time::serde::rfc3339")]
    exported: OffsetDateTime,
    site: &'a str,
    account: AccountData,
    sessions: Vec<SessionData>,
    activity: Vec<Entry>,
    apps: Vec<AppData>,
}

#[derive(Serialize)]
struct AccountData {
    id: String,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    email: Option<String>,
    email_confirmed: bool,
    groups: Vec<String>,
    two_step: bool,
    recovery_codes_left: usize,
    passkeys: Vec<PasskeyData>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_login: Option<OffsetDateTime>,
    failed_logins_since: u32,
}

impl AccountData {
    fn of(user: &User) -> Self {
        Self {
            id: user.id.as_str().to_owned(),
            name: user.name.to_string(),
            created: user.created,
            email: user.email.as_ref().map(|e| e.address.clone()),
            email_confirmed: user.email.as_ref().is_some_and(|e| e.verified),
            groups: user.groups.iter().map(|g| g.as_str().to_owned()).collect(),
            two_step: user.totp.is_some(),
            recovery_codes_left: user.totp.as_ref().map_or(0, |t| t.recovery.len()),
            passkeys: user
                .passkeys
                .iter()
                .map(|p| PasskeyData {
                    name: p.name.clone(),
                    added: p.added,
                    last_used: p.last_used,
                })
                .collect(),
            last_login: user.last_login.as_ref().map(|l| l.at),
            failed_logins_since: user.failed_logins,
        }
    }
}

#[derive(Serialize)]
struct PasskeyData {
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    added: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used: Option<OffsetDateTime>,
}

#[derive(Serialize)]
struct SessionData {
    #[serde(with = "time::serde::rfc3339")]
    started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_active: OffsetDateTime,
    browser: Option<String>,
    address: Option<String>,
    kept_logged_in: bool,
    this_browser: bool,
}

#[derive(Serialize)]
struct AppData {
    id: String,
    name: String,
    learns: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used: Option<OffsetDateTime>,
}
