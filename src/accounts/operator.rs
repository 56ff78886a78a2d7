//! What the operator does to an account from the command line (`wicket user …`):
//! disable and enable it, unlock it, reset its second factors, ask for a new password.
//! Each is one update of the account record, then the sessions it ends; the login,
//! the session check and forward-auth read the record, so every instance obeys at once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use super::Accounts;
use crate::error::AppError;
use crate::mail::Kind;
use crate::mail::texts::{self, Change};
use crate::store::journal::Event;
use crate::store::tokens::ClaimKey;
use crate::store::{EndReason, User};

/// What `wicket user unlock` cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlocked {
    /// Failed logins counted on the account since its last login.
    pub failed_logins: u32,
}

/// What `wicket user reset-two-step` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactorsRemoved {
    /// The authenticator app (and its recovery codes) was on.
    pub app: bool,
    /// The names of the passkeys removed.
    pub passkeys: Vec<String>,
    /// Sessions ended.
    pub ended: usize,
    /// A notice went to the member's confirmed address.
    pub mailed: bool,
}

impl Accounts {
    /// Disables `user`'s account (`true`) or enables it again (`false`). Disabling
    /// ends every session at once (and with them the app tokens issued under them);
    /// a session a moment too late to be ended is refused when next resumed, as the
    /// record says disabled. Returns the account as stored and how many sessions ended.
    pub async fn set_disabled(
        &self,
        user: &User,
        disabled: bool,
    ) -> Result<(User, usize), AppError> {
        let now = OffsetDateTime::now_utc();
        let change = move |u: &mut User| match (disabled, u.disabled) {
            (true, None) => u.disabled = Some(now),
            (false, Some(_)) => u.disabled = None,
            _ => {}
        };
        let updated = self.update(user, &change).await?;
        let ended = if disabled {
            self.sessions
                .end_all(&updated.name, None, EndReason::AccountDisabled)
                .await?
        } else {
            0
        };
        if disabled && user.disabled.is_none() {
            self.notify_change(&updated, Change::Disabled, None, None)
                .await;
        }
        let event = if disabled {
            Event::Disabled
        } else {
            Event::Enabled
        };
        self.note(&updated, event, None, None).await;
        tracing::info!(user = %updated.name, disabled, ended, "account disabled or enabled by the operator");
        Ok((updated, ended))
    }

    /// Clears the guesses counted against `user`'s account: the failed logins it
    /// shows, and its throttle counts for passwords and codes, from unknown browsers
    /// and its own (the next unlock number is part of their keys). Counts per client
    /// address stay: a guesser's address is still held back.
    pub async fn unlock(&self, user: &User) -> Result<Unlocked, AppError> {
        // What was cleared is read in the update itself: a login may count meanwhile.
        let cleared = Arc::new(AtomicU32::new(0));
        let seen = cleared.clone();
        let change = move |u: &mut User| {
            seen.store(u.failed_logins, Ordering::Relaxed);
            u.failed_logins = 0;
            u.unlocks = u.unlocks.saturating_add(1);
        };
        self.update(user, &change).await?;
        self.note(user, Event::Unlocked, None, None).await;
        let failed_logins = cleared.load(Ordering::Relaxed);
        tracing::info!(user = %user.name, failed_logins, "account unlocked by the operator");
        Ok(Unlocked { failed_logins })
    }

    /// Removes `user`'s second factors: the authenticator app's key, the recovery
    /// codes and every passkey (their credential ids freed); ends every session and
    /// mails the member. The password stays, so the member logs in with it alone.
    pub async fn reset_second_factors(
        &self,
        user: &User,
    ) -> Result<SecondFactorsRemoved, AppError> {
        // What was removed is taken in the update itself: a passkey added since the
        // account was read goes (and its credential id is freed) too.
        let removed = Arc::new(Mutex::new((false, Vec::new())));
        let taken = removed.clone();
        let change = move |u: &mut User| {
            let mut taken = taken.lock().unwrap_or_else(|p| p.into_inner());
            *taken = (u.totp.take().is_some(), std::mem::take(&mut u.passkeys));
            super::trust::forget_all(u);
        };
        let updated = self.update(user, &change).await?;
        let (app, gone) = std::mem::take(&mut *removed.lock().unwrap_or_else(|p| p.into_inner()));
        for passkey in &gone {
            let claim = ClaimKey::passkey(passkey.key.cred_id());
            self.tokens.release(&claim, &user.name).await?;
        }
        let ended = self
            .sessions
            .end_all(&updated.name, None, EndReason::SecondFactorReset)
            .await?;
        let passkeys: Vec<String> = gone.iter().map(|p| p.name.clone()).collect();
        let mailed = match (&self.mail, updated.verified_email()) {
            (Some(mailer), Some(address)) => {
                let letter = texts::second_factor_reset(
                    &updated.name,
                    passkeys.len(),
                    &mailer.link("/account"),
                );
                mailer.send(Kind::SecondFactorReset, address, letter, None);
                true
            }
            _ => false,
        };
        tracing::info!(user = %updated.name, ended, "second factors reset by the operator");
        self.note(&updated, Event::SecondFactorsReset, None, None)
            .await;
        Ok(SecondFactorsRemoved {
            app,
            passkeys,
            ended,
            mailed,
        })
    }

    /// Asks `user` for a new password: every session ends, and the next login leads
    /// to the change-password form before any other page (forward-auth and the
    /// OpenID Connect provider refuse the session until then). Setting a password
    /// clears it. Returns how many sessions ended.
    pub async fn require_password_change(&self, user: &User) -> Result<usize, AppError> {
        let updated = self
            .update(user, &|u: &mut User| u.must_change_password = true)
            .await?;
        let ended = self
            .sessions
            .end_all(&updated.name, None, EndReason::PasswordChangeRequired)
            .await?;
        tracing::info!(user = %updated.name, ended, "new password required by the operator");
        self.note(&updated, Event::PasswordChangeRequired, None, None)
            .await;
        Ok(ended)
    }
}
