//! A forgotten password: `GET`/`POST /forgot` mails a link, `GET /reset/<token>`
//! opens it, `GET`/`POST /reset` sets the new password (asking a code first on a
//! two-step account). `not_me.rs` opens the same form from a new-login notice.
//!
//! The token leaves the address bar at once: the link's page moves it into an
//! HttpOnly cookie (`wicket_link`, 30 minutes, `SameSite=Lax` so that the click from a
//! mail carries it) and redirects to `/reset`, whose links and Referer never hold it.
//! Opening a link changes nothing (mail scanners open links too); a form does.

use std::sync::Arc;
use std::time::Duration;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::http::header::SET_COOKIE;
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, Result, handler};
use serde::Deserialize;

use super::auth::{self, Login};
use super::client::Client;
use super::csrf::Csrf;
use super::email::{self, unusable};
use super::form::Form;
use super::layout::{Field, hx_form, wait_message};
use super::messages::{MISMATCH, WRONG_CODE};
use super::{AppState, CABINET, Hx, too_many};
use crate::accounts::{Checked, PasswordSet};
use crate::cookies::CookiePolicy;
use crate::domain::{Username, loggable};
use crate::error::chain;
use crate::session::CurrentSession;
use crate::store::tokens::{ClaimKey, Purpose, Token};
use crate::store::{StoreError, User};
use crate::throttle::{Limit, Throttle};

/// What `/forgot` always answers, whoever was asked for.
const ASKED: &str = "If that is the name or the confirmed email address of an account, a \
                     link to choose a new password is on its way to the account's address. \
                     It works once, for 30 minutes. No mail? Check the spam folder, or ask \
                     again in a few minutes.";

/// The cookie a mailed link's token waits in while its form is open.
#[derive(Debug, Clone)]
pub struct LinkCookie {
    policy: CookiePolicy,
    name: String,
}

impl LinkCookie {
    /// Named and flagged by `policy` (`__Host-wicket_link` behind TLS).
    pub fn new(policy: CookiePolicy) -> Self {
        Self {
            name: policy.name("wicket_link"),
            policy,
        }
    }

    pub(super) fn set(&self, token: &Token) -> poem::http::HeaderValue {
        self.policy.set(
            &self.name,
            token.as_str(),
            Some(Duration::from_secs(30 * 60)),
        )
    }

    fn clear(&self) -> poem::http::HeaderValue {
        self.policy.clear(&self.name)
    }

    pub(super) fn of(&self, req: &Request) -> Option<Token> {
        crate::cookies::find(req, &self.name).and_then(|value| Token::parse(&value))
    }
}

/// Limits on reset mails: per account asked for, and (four times looser) per client.
#[derive(Debug)]
pub struct ForgotThrottle {
    accounts: Throttle,
    addresses: Throttle,
}

impl ForgotThrottle {
    /// `limit` per account; four times its count per client address.
    pub fn new(limit: Option<Limit>, counters: Arc<dyn crate::store::CounterStore>) -> Self {
        let per_address = limit.map(|l| Limit {
            max: l.max.saturating_mul(4),
            ..l
        });
        Self {
            accounts: Throttle::new("forgot-account", limit, counters.clone()),
            addresses: Throttle::new("forgot-address", per_address, counters),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ForgotForm {
    username: String,
}

/// `GET /forgot`: asks for a name or an address.
#[handler]
pub fn forgot_page(state: Data<&Arc<AppState>>, csrf: Csrf, hx: Hx) -> Response {
    if state.mail.is_none() {
        return no_mail(hx);
    }
    hx.page("Forgot your password?", forgot_view(&csrf, "", None, None))
        .into_response()
}

/// Without mail there is no reset: say whom to ask.
fn no_mail(hx: Hx) -> Response {
    let body = email::message_card(
        "Forgot your password?",
        "This site sends no mail, so passwords cannot be reset by email. Please ask \
         the site's administrator (`wicket user passwd`).",
        "/",
        "Back to the login form",
    );
    hx.page("Forgot your password?", body)
        .with_status(StatusCode::NOT_FOUND)
        .into_response()
}

/// `POST /forgot`: always the same sentence and status, known or unknown; the lookup
/// and the mail happen after the answer, off the request.
#[handler]
pub async fn forgot_submit(
    state: Data<&Arc<AppState>>,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<ForgotForm>,
) -> Result<Response> {
    if state.mail.is_none() {
        return Ok(no_mail(hx));
    }
    let typed: String = form.username.trim().chars().take(254).collect();
    if typed.is_empty() {
        let body = forgot_view(
            &csrf,
            "",
            Some("Enter your username or email address."),
            None,
        );
        return Ok(hx
            .page("Forgot your password?", body)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response());
    }
    // The address first: a client over its limit touches no account's count.
    let address = client.throttle_key(state.ipv6_prefix);
    let account = typed.to_lowercase();
    let throttle = &state.forgot_throttle;
    let allowed = match throttle.addresses.hit(&address).await? {
        Ok(()) => throttle.accounts.hit(&account).await?,
        refused => refused,
    };
    if let Err(wait) = allowed {
        tracing::warn!(username = %loggable(&typed), address = %client.address, "reset request throttled");
        let body = forgot_view(&csrf, &typed, None, Some(&wait_message(wait)));
        return Ok(too_many(hx.page("Forgot your password?", body), wait));
    }
    let state = Arc::clone(&state);
    let who = client.clone();
    // The lookup runs after the answer (so its time says nothing); the outbox counts
    // it until it is done, so it is not idle while a mail may yet be queued.
    let preparing = state.mail.as_ref().map(|mailer| mailer.outbox.preparing());
    tokio::spawn(async move {
        if let Err(err) = mail_reset_link(&state, &typed, &who).await {
            tracing::error!(error = %chain(&err), "could not handle a reset request");
        }
        drop(preparing);
    });
    let body = email::message_card("Check your mail", ASKED, "/", "Back to the login form");
    Ok(hx.page("Check your mail", body).into_response())
}

/// Finds the account `typed` names (a username, or a confirmed address) and mails a
/// reset link to its confirmed address, if it has one.
async fn mail_reset_link(state: &AppState, typed: &str, client: &Client) -> Result<(), StoreError> {
    let by_address = typed.contains('@');
    let name = if by_address {
        state.tokens.owner(&ClaimKey::email(typed)).await?
    } else {
        Some(typed.to_owned())
    };
    let user = match name.as_deref().map(Username::parse) {
        Some(Ok(name)) => state.users.get(&name).await?,
        _ => None,
    };
    let Some((user, address)) = user.as_ref().and_then(|u| Some((u, u.verified_email()?))) else {
        tracing::info!(username = %loggable(typed), "reset asked for; no account with a confirmed address");
        return Ok(());
    };
    if by_address && !address.eq_ignore_ascii_case(typed) {
        return Ok(()); // the index is stale: the account has another address now
    }
    state.accounts.send_reset_link(user, client).await;
    Ok(())
}

fn forgot_view(csrf: &Csrf, typed: &str, error: Option<&str>, alert: Option<&str>) -> Markup {
    let fields = html! {
        @if let Some(alert) = alert { p.alert role="alert" { (alert) } }
        (Field {
            id: None,
            name: "username", label: "Username or email address", kind: "text",
            autocomplete: "username", value: typed, error, autofocus: true,
            hint: Some("The link goes to the account's confirmed email address."), optional: false,
        }.render())
        button type="submit" { "Send me a link" }
    };
    html! {
        section.card id="forgot" {
            h1 { "Forgot your password?" }
            p.lead { "We can mail you a link to choose a new one." }
            (hx_form("/forgot", csrf, fields))
            p.switch { "Remembered it? " a href="/" { "Log in" } }
        }
    }
}

/// `GET /reset/<token>`: if the link is good, its token moves into a cookie and the
/// browser to `/reset`; else the one page for unusable links.
#[handler]
pub async fn open_reset_link(
    state: Data<&Arc<AppState>>,
    hx: Hx,
    Path(token): Path<String>,
) -> Result<Response> {
    open_link(&state, hx, &token, Purpose::ResetPassword, "/reset").await
}

pub(super) async fn open_link(
    state: &AppState,
    hx: Hx,
    token: &str,
    purpose: Purpose,
    to: &str,
) -> Result<Response> {
    match Token::parse(token) {
        Some(token) if pending(state, &token, purpose).await?.is_some() => {
            let mut resp = Hx(false).redirect(to);
            resp.headers_mut()
                .append(SET_COOKIE, state.link_cookie.set(&token));
            Ok(resp)
        }
        _ => Ok(unusable(hx, "/forgot", "Ask for a new link")),
    }
}

/// The account `token` opens for `purpose`, if the token is still good.
pub(super) async fn pending(
    state: &AppState,
    token: &Token,
    purpose: Purpose,
) -> Result<Option<User>, StoreError> {
    Ok(state
        .accounts
        .peek_good(token, purpose)
        .await?
        .map(|(_, user)| user))
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    password: String,
    confirm: String,
    /// With two-step login on, a code (or a recovery code): asked before anything
    /// changes, since the link proves the mailbox and nothing more.
    code: String,
}

/// `GET /reset`: the new-password form, for the token in the link cookie.
#[handler]
pub async fn reset_page(
    state: Data<&Arc<AppState>>,
    req: &Request,
    csrf: Csrf,
    hx: Hx,
) -> Result<Response> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(Hx(false).redirect("/forgot"));
    };
    match pending(&state, &token, Purpose::ResetPassword).await? {
        Some(user) => Ok(hx
            .page(
                "Choose a new password",
                reset_view(&csrf, &user, &FormErrors::default()),
            )
            .into_response()),
        None => Ok(unusable(hx, "/forgot", "Ask for a new link")),
    }
}

#[derive(Default)]
struct FormErrors<'a> {
    password: Option<&'a str>,
    confirm: Option<&'a str>,
    code: Option<&'a str>,
    alert: Option<&'a str>,
}

/// `POST /reset`: sets the new password, ends every session of the account, logs this
/// browser in, and tells the account's address.
#[handler]
pub async fn reset_submit(
    state: Data<&Arc<AppState>>,
    req: &Request,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<ResetForm>,
) -> Result<Response> {
    let Some(token) = state.link_cookie.of(req) else {
        return Ok(unusable(hx, "/forgot", "Ask for a new link"));
    };
    let Some(user) = pending(&state, &token, Purpose::ResetPassword).await? else {
        return Ok(unusable(hx, "/forgot", "Ask for a new link"));
    };
    let new = auth::new_password(form.password.clone(), &user.name).await;
    let mismatch = form.password != form.confirm;
    let refuse = |errors: &FormErrors, status: StatusCode| {
        hx.page("Choose a new password", reset_view(&csrf, &user, errors))
            .with_status(status)
            .into_response()
    };
    let new = match (new, mismatch) {
        (Ok(new), false) => new,
        (new, mismatch) => {
            let error = new.err().map(|err| err.to_string());
            let errors = FormErrors {
                password: error.as_deref(),
                confirm: mismatch.then_some(MISMATCH),
                ..FormErrors::default()
            };
            return Ok(refuse(&errors, StatusCode::UNPROCESSABLE_ENTITY));
        }
    };
    // The mailbox alone changes nothing on a two-step account: the code comes first
    // (counted like a login), and only then the password, the sessions, the tokens.
    if user.totp.is_some() {
        match state
            .accounts
            .check_code(&user, &form.code, &client)
            .await?
        {
            Checked::Right(_) => {}
            Checked::Wrong => {
                let errors = FormErrors {
                    code: Some(WRONG_CODE),
                    ..FormErrors::default()
                };
                return Ok(refuse(&errors, StatusCode::UNPROCESSABLE_ENTITY));
            }
            Checked::Throttled(wait) => {
                let alert = wait_message(wait);
                let errors = FormErrors {
                    alert: Some(&alert),
                    ..FormErrors::default()
                };
                let resp = refuse(&errors, StatusCode::UNPROCESSABLE_ENTITY);
                return Ok(super::throttled(resp, Some(wait)));
            }
        }
    }
    // Taking the token is what makes it single use; the account is read again with it,
    // and the password is set only over the one the link was issued under.
    let taken = state
        .accounts
        .take_good(&token, Purpose::ResetPassword)
        .await?;
    let Some((_, user)) = taken else {
        return Ok(unusable(hx, "/forgot", "Ask for a new link"));
    };
    let how = PasswordSet::Reset(&client);
    let Some((updated, _)) = state.accounts.set_password(&user, new, None, how).await? else {
        return Ok(unusable(hx, "/forgot", "Ask for a new link"));
    };
    // The mailbox and (with two-step login on) the code were both shown: log in.
    let login = Login {
        user: &updated,
        client: &client,
        remember: false,
        record: true,
        // With two-step login on, the reset form asked for a code.
        second_factor: updated.totp.is_some(),
        amr: if updated.totp.is_some() {
            auth::PASSWORD_AND_CODE
        } else {
            auth::PASSWORD
        },
        method: "a new password by mailed link",
    };
    let mut resp = auth::log_in(&state, current.0.as_ref(), &csrf, hx, login, CABINET).await?;
    resp.headers_mut()
        .append(SET_COOKIE, state.link_cookie.clear());
    Ok(resp)
}

fn reset_view(csrf: &Csrf, user: &User, errors: &FormErrors) -> Markup {
    let first_bad = if errors.password.is_some() {
        Some("password")
    } else if errors.confirm.is_some() {
        Some("confirm")
    } else {
        errors.code.map(|_| "code")
    };
    let two_step = user.totp.is_some();
    let fields = html! {
        @if let Some(alert) = errors.alert { p.alert role="alert" { (alert) } }
        // For password managers: which account the new password is for.
        input type="hidden" name="username" autocomplete="username" value=(user.name);
        (Field {
            id: None,
            name: "password", label: "New password", kind: "password",
            autocomplete: "new-password", value: "", error: errors.password,
            autofocus: first_bad.is_none() || first_bad == Some("password"),
            hint: Some("At least 8 characters."), optional: false,
        }.render())
        (Field {
            id: None,
            name: "confirm", label: "New password again", kind: "password",
            autocomplete: "new-password", value: "", error: errors.confirm,
            autofocus: first_bad == Some("confirm"), hint: None, optional: false,
        }.render())
        @if two_step { (super::layout::code_field("reset_code", errors.code)) }
        button type="submit" { "Set the new password" }
    };
    html! {
        section.card id="reset" {
            h1 { "Choose a new password" }
            p.lead {
                "For " strong { (user.name) } ". Every session of the account ends; this browser is then logged in."
                @if two_step { " Two-step login is on, so a code is needed as well." }
            }
            (hx_form("/reset", csrf, fields))
        }
    }
}
