//! `GET /register/` and `POST /register/`: creating an account.

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::auth::{self, Login};
use super::client::Client;
use super::csrf::Csrf;
use super::form::Form;
use super::layout::{Field, hx_form, wait_message};
use super::messages::MISMATCH;
use super::{AppState, CABINET, Hx, login, too_many};
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
#[handler]
pub fn page(state: Data<&Arc<AppState>>, current: CurrentSession, csrf: Csrf, hx: Hx) -> Response {
    if current.0.is_some() {
        return hx.redirect(CABINET);
    }
    let filled = Filled {
        mail: state.mail.is_some(),
        ..Filled::default()
    };
    hx.page(
        "Create an account",
        view(&csrf, &filled, &Errors::default()),
    )
    .into_response()
}

/// What the form is refilled with (never the passwords), and whether it asks for an
/// address.
#[derive(Default)]
struct Filled<'a> {
    username: &'a str,
    email: &'a str,
    mail: bool,
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
    };
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
    let mut user = User::new(&name, state.hasher.hash(password).await?);
    // The account's first login is this one: recorded with it, not written again.
    user.last_login = Some(auth::login_record(&client));
    user.email = email.as_ref().map(|address| Email {
        address: address.as_str().to_owned(),
        verified: false,
    });
    if state.users.create(&user).await?.is_err() {
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
