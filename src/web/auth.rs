//! Passwords and second-factor codes checked like a login, and logging in and out:
//! the one way a handler checks a secret, starts or ends a browser's session.

use std::sync::Arc;
use std::time::Duration;

use poem::Response;
use poem::http::header::SET_COOKIE;
use time::OffsetDateTime;

use super::client::Client;
use super::csrf::Csrf;
use super::{AppState, Hx};
use crate::domain::{Password, PasswordError, Username, loggable};
use crate::error::{AppError, chain};
use crate::session::{Origin, Session, SessionChange};
use crate::store::{EndReason, LoginRecord, StoreError, User};
use crate::throttle::{Attempt, Guess};

/// What checking a password found.
#[derive(Debug)]
pub enum Checked {
    /// The right password for this user.
    Right(Box<User>),
    /// No such user, or the wrong password (indistinguishable, on purpose).
    Wrong,
    /// Too many failures lately: wait this long.
    Throttled(Duration),
}

/// Checks `password` for the account `typed` names, the way every form that asks for a
/// password does: throttled per account and per address before any scrypt work, an
/// unknown name costing what a wrong password costs, failures counted on the account
/// (shown on `/account`), and a hash made at another cost replaced once it matched.
pub async fn check_password(
    state: &AppState,
    typed: &str,
    password: &str,
    client: &Client,
) -> Result<Checked, AppError> {
    // The account key is what was typed, so a malformed name is throttled like any other.
    let account: String = typed.trim().to_lowercase().chars().take(64).collect();
    let address = client.throttle_key(state.ipv6_prefix);
    // A malformed name cannot exist, but it still costs a (dummy) scrypt run.
    let name = Username::parse(typed).ok();
    let user = match &name {
        Some(name) => state.users.get(name).await?,
        None => None,
    };
    let device = user.as_ref().and_then(|u| device_of(state, client, u));
    let attempt = Attempt::of(device.as_deref(), &account, &address);
    if let Err(wait) = state
        .login_throttle
        .attempt(Guess::Password, attempt)
        .await?
    {
        tracing::warn!(username = %loggable(typed), address = %client.address, known_device = device.is_some(), "password check throttled");
        return Ok(Checked::Throttled(wait));
    }
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let right = state.hasher.verify(password.to_owned(), stored).await?;
    let (Some(name), Some(user)) = (name, user) else {
        tracing::warn!(username = %loggable(typed), address = %client.address, "password check failed");
        return Ok(Checked::Wrong);
    };
    if !right {
        tracing::warn!(username = %name, address = %client.address, "password check failed");
        let counted = state.users.update(&name, &|u| u.failed_logins += 1).await;
        if let Err(err) = counted {
            tracing::warn!(error = %chain(&err), "could not count a failed login");
        }
        return Ok(Checked::Wrong);
    }
    if let Err(err) = state
        .login_throttle
        .succeeded(Guess::Password, attempt)
        .await
    {
        tracing::warn!(error = %chain(&err), "could not clear the failed-login count");
    }
    if state.hasher.needs_rehash(&user.password_hash) {
        rehash(state, &name, &user.password_hash, password).await;
    }
    Ok(Checked::Right(Box::new(user)))
}

/// The device id `client` holds for `user`'s account (by its id: a browser of an
/// account deleted and registered again under the same name is not known to the new one).
fn device_of(state: &AppState, client: &Client, user: &User) -> Option<String> {
    state
        .devices
        .device_for(client.device_cookie.as_deref(), &user.id)
}

/// Whether `client` has logged in to `user`'s account before (it holds a genuine
/// device entry for it): a login from anywhere else is mailed to the owner.
pub fn known_browser(state: &AppState, client: &Client, user: &User) -> bool {
    device_of(state, client, user).is_some()
}

/// What every form asking for a second-factor code says when it is wrong.
pub const WRONG_CODE: &str =
    "That code is not right. Codes change every 30 seconds; each works once.";

/// What checking a second-factor code found.
#[derive(Debug, Clone, Copy)]
pub enum CodeChecked {
    /// A right code, now used up.
    Right(Used),
    /// Not a code of this account (or two-step login is off).
    Wrong,
    /// Too many wrong codes lately: wait this long.
    Throttled(Duration),
}

/// Checks a second-factor code `typed` for `user` from `client`, the way every form
/// that asks for one does: counted like a password guess, per account (or per known
/// device) and per address, before it is checked, in counts of its own that a right
/// password does not clear. A right code is used up (single use) and clears them.
pub async fn check_code(
    state: &AppState,
    user: &User,
    typed: &str,
    client: &Client,
) -> Result<CodeChecked, AppError> {
    let account = user.key();
    let address = client.throttle_key(state.ipv6_prefix);
    let device = device_of(state, client, user);
    let attempt = Attempt::of(device.as_deref(), &account, &address);
    if let Err(wait) = state.login_throttle.attempt(Guess::Code, attempt).await? {
        tracing::warn!(user = %user.name, address = %client.address, "second factor throttled");
        return Ok(CodeChecked::Throttled(wait));
    }
    let Some(used) = use_second_factor(state, user, typed).await? else {
        tracing::warn!(user = %user.name, address = %client.address, "second factor wrong");
        return Ok(CodeChecked::Wrong);
    };
    if let Err(err) = state.login_throttle.succeeded(Guess::Code, attempt).await {
        tracing::warn!(error = %chain(&err), "could not clear the wrong-code count");
    }
    Ok(CodeChecked::Right(used))
}

/// What a second factor typed turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// An app's code (its step is now used up).
    AppCode,
    /// A recovery code (now used up); this many are left.
    RecoveryCode(usize),
}

/// Checks `typed` (an app's code or a recovery code) for `user` and uses it up, in one
/// update of the account: of two concurrent uses of one code, one wins.
async fn use_second_factor(
    state: &AppState,
    user: &User,
    typed: &str,
) -> Result<Option<Used>, StoreError> {
    let Some(key) = state.two_step.key_of(user) else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc()
        .unix_timestamp()
        .max(0)
        .unsigned_abs();
    let hash = state.two_step.recovery_hash(typed);
    let typed = typed.to_owned();
    let outcome = Arc::new(std::sync::Mutex::new(None));
    let seen = outcome.clone();
    let change = move |u: &mut User| {
        let mut found = None;
        if let Some(setting) = u.totp.as_mut() {
            if let Some(step) = key.check(&typed, now, Some(setting.last_step)) {
                setting.last_step = step;
                found = Some(Used::AppCode);
            } else if let Some(at) = setting.recovery.iter().position(|h| *h == hash) {
                setting.recovery.remove(at);
                found = Some(Used::RecoveryCode(setting.recovery.len()));
            }
        }
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = found;
    };
    let name = Username::parse(&user.name)
        .map_err(|_| StoreError::Unavailable("impossible name".into()))?;
    state.users.update(&name, &change).await?;
    let found = *outcome.lock().unwrap_or_else(|p| p.into_inner());
    Ok(found)
}

/// What a form asking for the current password says when it is wrong.
pub const WRONG_PASSWORD: &str = "That is not your current password.";

/// Why a member's current password was refused.
#[derive(Debug, Clone, Copy)]
pub enum PasswordRefused {
    /// Not their password.
    Wrong,
    /// Too many failures lately: wait this long.
    Throttled(Duration),
}

/// Checks a logged-in member's current password (named `name`) like a login, for the
/// forms that ask for it; `Some` says why it was refused.
pub async fn check_current_password(
    state: &AppState,
    name: &str,
    typed: &str,
    client: &Client,
) -> Result<Option<PasswordRefused>, AppError> {
    Ok(match check_password(state, name, typed, client).await? {
        Checked::Right(_) => None,
        Checked::Wrong => Some(PasswordRefused::Wrong),
        Checked::Throttled(wait) => Some(PasswordRefused::Throttled(wait)),
    })
}

/// Checks a new password like [`Password::parse`], on the blocking pool: the strength
/// estimate takes milliseconds of CPU, too long to hold an async worker.
pub async fn new_password(text: String, username: &str) -> Result<Password, PasswordError> {
    let username = username.to_owned();
    tokio::task::spawn_blocking(move || Password::parse(text, &username))
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

/// Replaces a verified hash made at another cost (`--scrypt-log-n` changed since) by
/// one at this server's cost, unless it changed meanwhile. A failure is logged, never
/// a reason to refuse the login.
async fn rehash(state: &AppState, name: &Username, old: &str, password: &str) {
    // A password accepted long ago that today's rules refuse keeps its old hash.
    let Ok(password) = Password::parse(password.to_owned(), name.as_str()) else {
        return;
    };
    let old = old.to_owned();
    let replaced = match state.hasher.hash(password).await {
        Ok(new) => {
            let change = move |u: &mut User| {
                if u.password_hash == old {
                    u.password_hash.clone_from(&new);
                }
            };
            state
                .users
                .update(name, &change)
                .await
                .map_err(AppError::from)
        }
        Err(err) => Err(AppError::from(err)),
    };
    match replaced {
        Ok(_) => tracing::info!(user = %name, "password rehashed at the configured cost"),
        Err(err) => tracing::warn!(user = %name, error = %chain(&err), "could not rehash"),
    }
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
    } = login;
    let origin = Origin {
        browser: client.browser.clone(),
        address: client.address.clone(),
        remember,
    };
    let session = state.sessions.start(user, current, origin).await?;
    if let (true, Ok(name)) = (record, Username::parse(&user.name)) {
        let login = login_record(client);
        let change = move |u: &mut User| {
            u.last_login = Some(login.clone());
            u.failed_logins = 0;
        };
        if let Err(err) = state.users.update(&name, &change).await {
            tracing::warn!(error = %chain(&err), "could not record the login");
        }
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

/// Ends the browser's session for `reason` and sends it home: the session is deleted,
/// the session layer clears its cookie (and carries the reason to the login form), and
/// the CSRF cookie is replaced. If the store cannot delete the session it is still
/// valid, so the browser keeps its cookie and is told so.
pub async fn log_out(
    state: &AppState,
    session: &Session,
    csrf: &Csrf,
    hx: Hx,
    reason: EndReason,
) -> Result<Response, AppError> {
    state
        .sessions
        .end(session)
        .await
        .map_err(AppError::LogoutFailed)?;
    tracing::info!(user = %session.record.user, ?reason, "logged out");
    let mut resp = hx.redirect("/");
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
