//! Checking a secret: a password or a second-factor code, the one way every form and
//! the login check them.
//!
//! Each check is counted before it is made (OWASP's device-cookie scheme, see
//! [`crate::throttle`]): per account for browsers the account has never been used on,
//! per device for its own, and per client address; passwords and codes in counts of
//! their own. A refused attempt does no scrypt work, an unknown name costs what a
//! wrong password costs, and a right answer clears only the count of its own kind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Accounts, Caller};
use crate::domain::{Password, Username, loggable};
use crate::error::{AppError, chain};
use crate::metrics::Outcome;
use crate::store::journal::Event;
use crate::store::{StoreError, User};
use crate::throttle::{Attempt, Guess};

/// What checking a secret found.
#[derive(Debug)]
pub enum Checked<T> {
    /// Right: what it opened.
    Right(T),
    /// Wrong (for a password: or no such account, indistinguishably).
    Wrong,
    /// Too many wrong guesses lately: nothing was checked; wait this long.
    Throttled(Duration),
}

/// Why a secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not the right one.
    Wrong,
    /// Too many wrong guesses lately: wait this long.
    Throttled(Duration),
}

impl<T> Checked<T> {
    /// What a right secret opened, or why it was refused.
    pub fn right(self) -> Result<T, Refusal> {
        match self {
            Self::Right(opened) => Ok(opened),
            Self::Wrong => Err(Refusal::Wrong),
            Self::Throttled(wait) => Err(Refusal::Throttled(wait)),
        }
    }
}

/// What a right second-factor code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// An app's code (its step is now used up).
    AppCode,
    /// A recovery code (now used up); this many are left.
    RecoveryCode(usize),
}

impl Accounts {
    /// Checks `password` for the account `typed` names, as `caller`: throttled per
    /// account (or device) and address before any scrypt work, an unknown name
    /// costing what a wrong password costs, a failure counted on the account (shown on
    /// `/account`), and a hash made at another cost replaced once it matched.
    pub async fn check_password(
        &self,
        typed: &str,
        password: &str,
        caller: &Caller,
    ) -> Result<Checked<User>, AppError> {
        // The account key is what was typed, so a malformed name is throttled too.
        let account: String = typed.trim().to_lowercase().chars().take(64).collect();
        // A malformed name cannot exist, but it still costs a (dummy) scrypt run.
        let user = match Username::parse(typed) {
            Ok(name) => self.users.get(&name).await?,
            Err(_) => None,
        };
        self.check_against(&account, typed, user, password, caller)
            .await
    }

    /// Checks a member's own `password` exactly like a login, against the account
    /// already read for this request (no second read).
    pub async fn check_password_of(
        &self,
        user: &User,
        password: &str,
        caller: &Caller,
    ) -> Result<Checked<User>, AppError> {
        let account = user.key();
        self.check_against(&account, &user.name, Some(user.clone()), password, caller)
            .await
    }

    /// The password check proper, for the account `account` (the key it is throttled
    /// under) that `typed` named, `user` if there is one.
    async fn check_against(
        &self,
        account: &str,
        typed: &str,
        user: Option<User>,
        password: &str,
        caller: &Caller,
    ) -> Result<Checked<User>, AppError> {
        let address = caller.throttle_key(self.ipv6_prefix);
        let device = user.as_ref().and_then(|u| self.device_of(caller, u));
        let (device, account) = counted_as(user.as_ref(), device, account);
        let attempt = Attempt::of(device.as_deref(), &account, &address);
        if let Err(wait) = self.guesses.attempt(Guess::Password, attempt).await? {
            tracing::warn!(username = %loggable(typed), address = %caller.address, known_device = device.is_some(), "password check throttled");
            return Ok(Checked::Throttled(wait));
        }
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let right = self.hasher.verify(password.to_owned(), stored).await?;
        let Some(user) = user else {
            tracing::warn!(username = %loggable(typed), address = %caller.address, "password check failed");
            return Ok(Checked::Wrong);
        };
        let name = user.name.clone();
        if !right {
            tracing::warn!(username = %name, address = %caller.address, "password check failed");
            self.note(&user, Event::WrongPassword, Some(caller), None)
                .await;
            let counted = self.users.update(&name, &|u| u.failed_logins += 1).await;
            if let Err(err) = counted {
                tracing::warn!(error = %chain(&err), "could not count a failed login");
            }
            return Ok(Checked::Wrong);
        }
        if let Err(err) = self.guesses.succeeded(Guess::Password, attempt).await {
            tracing::warn!(error = %chain(&err), "could not clear the failed-login count");
        }
        if self.hasher.needs_rehash(&user.password_hash) {
            self.rehash(&name, &user.password_hash, password).await;
        }
        Ok(Checked::Right(user))
    }

    /// Checks a second-factor code `typed` for `user`, as `caller`: counted like a
    /// password guess, per account (or known device) and per address, before it is
    /// checked, in counts of its own that a right password does not clear. A right
    /// code is used up (single use) and clears them.
    pub async fn check_code(
        &self,
        user: &User,
        typed: &str,
        caller: &Caller,
    ) -> Result<Checked<Used>, AppError> {
        let address = caller.throttle_key(self.ipv6_prefix);
        let device = self.device_of(caller, user);
        let (device, account) = counted_as(Some(user), device, &user.key());
        let attempt = Attempt::of(device.as_deref(), &account, &address);
        let metrics = crate::metrics::metrics();
        if let Err(wait) = self.guesses.attempt(Guess::Code, attempt).await? {
            tracing::warn!(user = %user.name, address = %caller.address, "second factor throttled");
            metrics.second_factor(Outcome::throttled);
            return Ok(Checked::Throttled(wait));
        }
        let Some(used) = self.use_second_factor(user, typed).await? else {
            tracing::warn!(user = %user.name, address = %caller.address, "second factor wrong");
            self.note(user, Event::WrongCode, Some(caller), None).await;
            metrics.second_factor(Outcome::wrong);
            return Ok(Checked::Wrong);
        };
        metrics.second_factor(Outcome::ok);
        if let Err(err) = self.guesses.succeeded(Guess::Code, attempt).await {
            tracing::warn!(error = %chain(&err), "could not clear the wrong-code count");
        }
        Ok(Checked::Right(used))
    }

    /// The device id `caller` holds for `user`'s account (by its id: a browser of an
    /// account deleted and registered again under the same name is not known to the
    /// new one).
    fn device_of(&self, caller: &Caller, user: &User) -> Option<String> {
        self.devices
            .device_for(caller.device_cookie.as_deref(), &user.id)
    }

    /// Whether `caller` has logged in to `user`'s account before (it holds a genuine
    /// device entry for it): a login from anywhere else is mailed to the owner.
    pub fn known_browser(&self, caller: &Caller, user: &User) -> bool {
        self.device_of(caller, user).is_some()
    }

    /// Checks `typed` (an app's code or a recovery code) for `user` and uses it up,
    /// in one update of the account: of two concurrent uses of one code, one wins.
    async fn use_second_factor(
        &self,
        user: &User,
        typed: &str,
    ) -> Result<Option<Used>, StoreError> {
        let Some(key) = self.second_factor.key_of(user) else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc()
            .unix_timestamp()
            .max(0)
            .unsigned_abs();
        let hash = self.second_factor.recovery_hash(typed);
        let typed = typed.to_owned();
        let outcome = Arc::new(Mutex::new(None));
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
        self.users.update(&user.name, &change).await?;
        let found = *outcome.lock().unwrap_or_else(|p| p.into_inner());
        Ok(found)
    }

    /// Replaces a verified hash made at another cost (`--scrypt-log-n` changed since)
    /// by one at this server's cost, unless it changed meanwhile. A failure is logged,
    /// never a reason to refuse the login.
    async fn rehash(&self, name: &Username, old: &str, password: &str) {
        // A password accepted long ago that today's rules refuse keeps its old hash;
        // an imported (bcrypt, argon2id) one is replaced whatever it is.
        let imported = !old.starts_with("$scrypt$");
        let password = match Password::parse(password.to_owned(), name.as_str()) {
            Ok(password) => password,
            Err(_) if imported => Password::already_held(password.to_owned()),
            Err(_) => return,
        };
        let old = old.to_owned();
        let replaced = match self.hasher.hash(password).await {
            Ok(new) => {
                let change = move |u: &mut User| {
                    if u.password_hash == old {
                        u.password_hash.clone_from(&new);
                    }
                };
                self.users
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
}

/// The keys guesses at `user`'s account are counted under, from the `device` id and
/// the `account` key: as they are until the operator first unlocks the account
/// (`wicket user unlock`), then prefixed with ` <unlocks> `, so each unlock starts
/// them afresh on every instance and backend. A name typed at the login form is
/// trimmed first, so no typed name makes a key that starts with a space.
fn counted_as(
    user: Option<&User>,
    device: Option<String>,
    account: &str,
) -> (Option<String>, String) {
    match user.map(|u| u.unlocks).filter(|&n| n > 0) {
        None => (device, account.to_owned()),
        Some(n) => (
            device.map(|d| format!(" {n} {d}")),
            format!(" {n} {account}"),
        ),
    }
}
