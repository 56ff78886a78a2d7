//! `GET /register/` and `POST /register/`: creating an account.

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
use super::messages::MISMATCH;
use super::{AppState, CABINET, Hx, login, too_many};
use crate::config::Registration;
use crate::domain::{EmailAddress, Username};
use crate::error::{AppError, chain};
use crate::session::CurrentSession;
use crate::store::{Email, User};

const TAKEN: &str = "That name is taken. Please choose another.";

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    username: String,
    password: String,
    confirm: String,
    /// Optional, and only offered when the site sends mail.
    email: String,
    /// The invitation's token (`--registration invite`).
    invite: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct InviteQuery {
    invite: String,
}

/// Inline errors, one per field, and one for the whole form.
#[derive(Default)]
struct Errors {
    form: Option<String>,
    username: Option<String>,
    password: Option<String>,
    confirm: Option<String>,
    email: Option<String>,
}

/// `GET /register/`: the registration form, or the cabinet for someone logged in.
/// With `--registration invite` only for a live invitation (`?invite=…`); with
/// `closed`, never.
#[handler]
pub async fn page(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    Query(query): Query<InviteQuery>,
) -> Result<Response> {
    if current.0.is_some() {
        return Ok(hx.redirect(CABINET));
    }
    if let Some(shut) = shut(&state, &query.invite, hx).await? {
        return Ok(shut);
    }
    let filled = Filled {
        mail: state.mail.is_some(),
        invite: &query.invite,
        ..Filled::default()
    };
    Ok(hx
        .page(
            "Create an account",
            view(&csrf, &filled, &Errors::default()),
        )
        .into_response())
}

/// The page instead of the form when registration is closed, or by invitation and
/// `invite` is no live one; `None` when the form may be shown.
async fn shut(state: &AppState, invite: &str, hx: Hx) -> Result<Option<Response>> {
    let (title, text) = match state.registration {
        Registration::Open => return Ok(None),
        Registration::Closed => (
            "Registration is closed",
            "New accounts are not being created here. If you should have one, ask \
             whoever runs this site.",
        ),
        Registration::Invite if invite.is_empty() => (
            "Registration is by invitation",
            "New accounts are created with an invitation link. If you should have one, \
             ask whoever runs this site for a link.",
        ),
        Registration::Invite => {
            if state.accounts.open_invite(invite).await?.is_some() {
                return Ok(None);
            }
            return Ok(Some(invitation_void(hx)));
        }
    };
    Ok(Some(refused(hx, title, text)))
}

/// The page for an invitation that is expired, used up or withdrawn.
fn invitation_void(hx: Hx) -> Response {
    refused(
        hx,
        "This invitation does not work",
        "It has expired, been used up or been withdrawn. Ask whoever sent it for a new one.",
    )
}

/// A `403` page saying why there is no form.
fn refused(hx: Hx, title: &str, text: &str) -> Response {
    let body = super::email::message_card(title, text, "/", "Log in");
    hx.page(title, body)
        .with_status(StatusCode::FORBIDDEN)
        .into_response()
}

/// What the form is refilled with (never the passwords), and whether it asks for an
/// address.
#[derive(Default)]
struct Filled<'a> {
    username: &'a str,
    email: &'a str,
    mail: bool,
    invite: &'a str,
}

/// `POST /register/`: creates the user and logs them in, or explains what to fix.
#[handler]
pub async fn submit(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<RegisterForm>,
) -> Result<Response> {
    let filled = Filled {
        username: &form.username,
        email: &form.email,
        mail: state.mail.is_some(),
        invite: &form.invite,
    };
    if let Some(shut) = shut(&state, &form.invite, hx).await? {
        return Ok(shut);
    }
    let render = |errors: Errors| hx.page("Create an account", view(&csrf, &filled, &errors));
    let refuse = |errors: Errors| {
        render(errors)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response()
    };
    let mut errors = Errors::default();
    let name = Username::parse(&form.username)
        .map_err(|err| errors.username = Some(err.to_string()))
        .ok();
    let password = auth::new_password(form.password.clone(), form.username.trim())
        .await
        .map_err(|err| errors.password = Some(err.to_string()))
        .ok();
    if form.password != form.confirm {
        errors.confirm = Some(MISMATCH.into());
    }
    let email = match form.email.trim() {
        typed if typed.is_empty() || !filled.mail => None,
        typed => EmailAddress::parse(typed)
            .map_err(|err| errors.email = Some(err.to_string()))
            .ok(),
    };
    let (Some(name), Some(password), None, None) = (name, password, &errors.confirm, &errors.email)
    else {
        return Ok(refuse(errors));
    };
    // Count only attempts that would create an account (and cost scrypt work).
    let address = client.throttle_key(state.ipv6_prefix);
    if let Err(wait) = state.register_throttle.hit(&address).await? {
        tracing::warn!(address = %client.address, "registration throttled");
        let errors = Errors {
            form: Some(wait_message(wait)),
            ..Errors::default()
        };
        return Ok(too_many(render(errors), wait));
    }
    // A cheap look first spares scrypt work for names already taken; the atomic
    // create below still decides races.
    let taken = || {
        refuse(Errors {
            username: Some(TAKEN.into()),
            ..Errors::default()
        })
    };
    if state.users.get(&name).await?.is_some() {
        return Ok(taken());
    }
    // One use of the invitation, taken before the account exists: of two
    // registrations racing for its last use, one gets it.
    let invite = match state.registration {
        Registration::Invite => match state.accounts.take_invite(&form.invite, &name).await? {
            Some(taken) => Some(taken),
            // Used up meanwhile (by a registration racing this one), or withdrawn.
            None => return Ok(invitation_void(hx)),
        },
        _ => None,
    };
    let mut user = User::new(&name, state.hasher.hash(password).await?);
    user.groups = invite
        .as_ref()
        .map(|i| i.groups.clone())
        .unwrap_or_default();
    // The account's first login is this one: recorded with it, not written again.
    user.last_login = Some(auth::login_record(&client));
    user.email = email.as_ref().map(|address| Email {
        address: address.as_str().to_owned(),
        verified: false,
    });
    if state.users.create(&user).await?.is_err() {
        if let Some(invite) = invite {
            state.accounts.give_back(invite).await?;
        }
        return Ok(taken());
    }
    tracing::info!(user = %user.name, email = email.is_some(), "registered");
    if let Some(address) = &email {
        state
            .accounts
            .send_verification(&user, address.as_str())
            .await;
    }
    // "Keep me logged in" is a login choice: a new account's session ends with the browser.
    let login = Login {
        user: &user,
        client: &client,
        remember: false,
        record: false,
        second_factor: false,
        amr: auth::PASSWORD,
        method: "password (a new account)",
    };
    let logged_in = auth::log_in(&state, current.0.as_ref(), &csrf, hx, login, CABINET);
    match logged_in.await {
        Ok(resp) => Ok(resp),
        // The account exists; only the session could not be started. Say exactly that
        // and offer the login form, rather than a 500 that hides a half-done state.
        Err(err) => {
            let err = AppError::from(err);
            tracing::error!(user = %user.name, error = %chain(&err), "registered, but the session could not be started");
            let filled = login::Filled {
                username: &user.name,
                remember: false,
            };
            let form = login::LoginView {
                filled,
                notice: Some(
                    "Your account was created, but you could not be logged in just now. \
                     Please log in.",
                ),
                ..login::LoginView::default()
            };
            let mut resp = hx
                .page("Log in", login::view(&csrf, &form))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response();
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                "5".parse().expect("digits"),
            );
            Ok(resp)
        }
    }
}

/// The registration card: the fragment htmx swaps, and the body of `GET /register/`.
fn view(csrf: &Csrf, filled: &Filled, errors: &Errors) -> Markup {
    let first_bad = if errors.username.is_some() {
        "username"
    } else if errors.password.is_some() {
        "password"
    } else if errors.confirm.is_some() {
        "confirm"
    } else if errors.email.is_some() {
        "email"
    } else {
        "username"
    };
    let fields = html! {
        @if let Some(error) = &errors.form {
            p.alert role="alert" { (error) }
        }
        (Field {
            id: None,
            name: "username", label: "Username", kind: "text", autocomplete: "username",
            value: filled.username, error: errors.username.as_deref(), autofocus: first_bad == "username",
            hint: Some("3–32 letters, digits, dots, dashes or underscores."), optional: false,
        }.render())
        (Field {
            id: None,
            name: "password", label: "Password", kind: "password", autocomplete: "new-password",
            value: "", error: errors.password.as_deref(), autofocus: first_bad == "password",
            hint: Some("At least 8 characters."), optional: false,
        }.render())
        (Field {
            id: None,
            name: "confirm", label: "Password again", kind: "password",
            autocomplete: "new-password", value: "", error: errors.confirm.as_deref(),
            autofocus: first_bad == "confirm", hint: None, optional: false,
        }.render())
        @if filled.mail {
            (Field {
                id: None,
                name: "email", label: "Email address (optional)", kind: "email",
                autocomplete: "email", value: filled.email, error: errors.email.as_deref(),
                autofocus: first_bad == "email",
                hint: Some("Only for resetting a forgotten password and for notices of new logins. We mail it a link to confirm it."),
                optional: true,
            }.render())
        }
        @if !filled.invite.is_empty() {
            input type="hidden" name="invite" value=(filled.invite);
        }
        button type="submit" { "Create account" }
    };
    html! {
        section.card id="register" {
            h1 { "Create an account" }
            p.lead { "Pick a name and a password; you will be logged in right away." }
            (hx_form("/register/", csrf, fields))
            p.switch { "Already registered? " a href="/" { "Log in" } }
        }
    }
}
