//! Logging in and out: the one way a handler starts or ends a browser's session.

use poem::Response;
use poem::http::header::SET_COOKIE;
use time::OffsetDateTime;

use super::client::Client;
use super::csrf::Csrf;
use super::{AppState, Hx};
use crate::domain::{Password, PasswordError};
use crate::error::{AppError, chain};
use crate::session::{Origin, Session, SessionChange};
use crate::store::{EndReason, LoginRecord, StoreError, User};

/// Checks a new password like [`Password::parse`], on the blocking pool: the strength
/// estimate takes milliseconds of CPU, too long to hold an async worker.
pub async fn new_password(text: String, username: &str) -> Result<Password, PasswordError> {
    let username = username.to_owned();
    tokio::task::spawn_blocking(move || Password::parse(text, &username))
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

/// Who logs in, from where, and whether to be remembered.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// The account logging in.
    pub user: &'a User,
    /// The browser logging in.
    pub client: &'a Client,
    /// "Keep me logged in" was ticked.
    pub remember: bool,
    /// Record the login on the account (a new account was created with it already).
    pub record: bool,
    /// A second factor (a code or a passkey) was used.
    pub second_factor: bool,
    /// How, as OpenID Connect's `amr` says it: [`PASSWORD`], [`PASSWORD_AND_CODE`],
    /// [`PASSKEY`].
    pub amr: &'a [&'static str],
    /// How, as the account's journal says it ("password", "password and recovery
    /// code", …).
    pub method: &'static str,
}

/// A password alone.
pub const PASSWORD: &[&str] = &["pwd"];
/// A password and a code (from the app or a recovery code).
pub const PASSWORD_AND_CODE: &[&str] = &["pwd", "otp", "mfa"];
/// A passkey: a key the browser's authenticator holds, unlocked by the member.
pub const PASSKEY: &[&str] = &["hwk", "user"];

/// A session's stored `amr`, carried to the session that replaces it (a password
/// change keeps how the member logged in); unknown words are dropped.
pub fn kept_amr(stored: &[String]) -> Vec<&'static str> {
    const KNOWN: [&str; 5] = ["pwd", "otp", "mfa", "hwk", "user"];
    KNOWN
        .into_iter()
        .filter(|m| stored.iter().any(|s| s == m))
        .collect()
}

/// Logs `user` in from `client` and sends the browser to `to`: a brand-new session
/// (the browser's `current` one, if any, is deleted), its cookie (set by the session
/// layer; kept past the browser's closing only if `remember`) and a fresh CSRF cookie,
/// so no token from before the login works after it. The login is recorded on the
/// account (shown on `/account`).
pub async fn log_in(
    state: &AppState,
    current: Option<&Session>,
    csrf: &Csrf,
    hx: Hx,
    login: Login<'_>,
    to: &str,
) -> Result<Response, StoreError> {
    let Login {
        user,
        client,
        remember,
        record,
        second_factor,
        amr,
        method,
    } = login;
    let origin = Origin {
        browser: client.browser.clone(),
        address: client.address.clone(),
        remember,
        second_factor,
        amr: amr.to_vec(),
    };
    let session = state.sessions.start(user, current, origin).await?;
    if record {
        let login = login_record(client);
        let change = move |u: &mut User| {
            u.last_login = Some(login.clone());
            u.failed_logins = 0;
        };
        if let Err(err) = state.users.update(&user.name, &change).await {
            tracing::warn!(error = %chain(&err), "could not record the login");
        }
        let event = crate::store::journal::Event::LoggedIn;
        state
            .accounts
            .note(user, event, Some(client), Some(method))
            .await;
    }
    tracing::info!(user = %user.name, "logged in");
    let mut resp = hx.redirect(to);
    resp.extensions_mut().insert(SessionChange::Started {
        id: session.id,
        remember,
    });
    resp.headers_mut().append(SET_COOKIE, csrf.rotate());
    // This browser is now one the account has used: its failed logins count apart.
    let device = state
        .accounts
        .devices
        .remember(client.device_cookie.as_deref(), &user.id);
    resp.headers_mut().append(SET_COOKIE, device);
    Ok(resp)
}

/// A login happening now from `client`.
pub fn login_record(client: &Client) -> LoginRecord {
    LoginRecord {
        at: OffsetDateTime::now_utc(),
        browser: client.browser.clone(),
        address: client.address.clone(),
    }
}

/// Ends the browser's session for `reason` and sends it to `to` (home, or the app that
/// asked for the logout): the session is deleted,
/// the session layer clears its cookie (and carries the reason to the login form), and
/// the CSRF cookie is replaced. If the store cannot delete the session it is still
/// valid, so the browser keeps its cookie and is told so.
pub async fn log_out(
    state: &AppState,
    session: &Session,
    csrf: &Csrf,
    hx: Hx,
    reason: EndReason,
    to: &str,
) -> Result<Response, AppError> {
    state
        .sessions
        .end(session)
        .await
        .map_err(AppError::LogoutFailed)?;
    tracing::info!(user = %session.record.user, ?reason, "logged out");
    if let (EndReason::LoggedOut, Some(user)) = (reason, session.account.as_deref()) {
        let caller = crate::accounts::Caller {
            address: session.record.address.clone().unwrap_or_default(),
            ip: None,
            browser: session.record.browser.clone().unwrap_or_default(),
            device_cookie: None,
        };
        let event = crate::store::journal::Event::LoggedOut;
        state.accounts.note(user, event, Some(&caller), None).await;
    }
    let mut resp = hx.redirect(to);
    resp.extensions_mut().insert(SessionChange::Ended(reason));
    // What the browser kept of the member's pages goes too; not "cookies": the site's
    // other cookies are not the session's to drop.
    resp.headers_mut().insert(
        "clear-site-data",
        poem::http::HeaderValue::from_static(r#""cache", "storage""#),
    );
    resp.headers_mut().append(SET_COOKIE, csrf.rotate());
    Ok(resp)
}
