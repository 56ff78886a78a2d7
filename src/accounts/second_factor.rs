//! The secrets of two-step login: authenticator-app keys sealed for storage, and
//! recovery codes stored as keyed hashes.
//!
//! A key is sealed (`secret::Sealer`: an AEAD under a key derived from the server
//! secret) and bound to what it is for: the account's stored setting, or one
//! account's setup page. So a copy of the store opens nothing, and a key sealed for a
//! setup page cannot be posted as another account's. Recovery codes are 80 random
//! bits, kept only as HMAC-SHA256 under their own derived key.

use hmac::Mac;
use time::OffsetDateTime;

use super::{Accounts, Caller};
use crate::error::AppError;
use crate::mail::texts::Change;
use crate::secret::{Sealer, SubKey, hex, random_bytes};
use crate::store::journal::Event;
use crate::store::{TotpSetting, User};
use crate::totp::TotpKey;

/// Recovery codes made at a time.
const RECOVERY_CODES: usize = 10;

/// The keys two-step login's secrets are sealed and hashed with.
#[derive(Debug, Clone)]
pub struct SecondFactorKeys {
    sealer: Sealer,
    recovery: SubKey,
}

/// Ten new recovery codes, to show once, and what is stored of them.
#[derive(Debug, Clone)]
pub struct RecoveryCodes {
    /// The codes as shown (`xxxx-xxxx-xxxx-xxxx`).
    pub shown: Vec<String>,
    /// Their keyed hashes, as stored.
    pub hashes: Vec<String>,
}

impl SecondFactorKeys {
    /// Keys derived from the server secret.
    pub fn new(sealer: Sealer, recovery: SubKey) -> Self {
        Self { sealer, recovery }
    }

    /// The account's key, if it has two-step login on (and its key opens).
    pub fn key_of(&self, user: &User) -> Option<TotpKey> {
        let setting = user.totp.as_ref()?;
        let bytes = self.sealer.open(&setting.key, user.key().as_bytes())?;
        Some(TotpKey::from_bytes(bytes))
    }

    /// `key` sealed as `user`'s stored setting.
    pub fn seal_for_account(&self, key: &TotpKey, user: &User) -> String {
        self.sealer.seal(key.as_bytes(), user.key().as_bytes())
    }

    /// `key` sealed for `user`'s setup page (the form carries it back).
    pub fn seal_for_setup(&self, key: &TotpKey, user: &User) -> String {
        self.sealer
            .seal(key.as_bytes(), setup_context(user).as_bytes())
    }

    /// The key a setup page of `user`'s carried, if it is one.
    pub fn open_setup(&self, sealed: &str, user: &User) -> Option<TotpKey> {
        self.sealer
            .open(sealed, setup_context(user).as_bytes())
            .map(TotpKey::from_bytes)
    }

    /// The keyed hash a recovery code is stored as (typed in any case, with or
    /// without dashes and spaces).
    pub fn recovery_hash(&self, code: &str) -> String {
        let normal: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let mut mac = self.recovery.mac();
        mac.update(normal.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Ten new recovery codes (80 bits each) and their hashes.
    pub fn new_recovery_codes(&self) -> RecoveryCodes {
        const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let shown: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let chars: Vec<char> = random_bytes::<16>()
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                    .collect();
                chars
                    .chunks(4)
                    .map(|chunk| chunk.iter().collect::<String>())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect();
        let hashes = shown.iter().map(|c| self.recovery_hash(c)).collect();
        RecoveryCodes { shown, hashes }
    }
}

impl Accounts {
    /// Turns two-step login on for `user` with `key`, whose code of `step` the member
    /// just typed (that step is used up): stores the key sealed and ten new recovery
    /// codes, unless it was turned on meanwhile. Returns the account as stored and the
    /// codes to show once.
    pub async fn turn_on_two_step(
        &self,
        user: &User,
        key: &TotpKey,
        step: u64,
        caller: &Caller,
    ) -> Result<(User, RecoveryCodes), AppError> {
        let codes = self.second_factor.new_recovery_codes();
        let setting = TotpSetting {
            key: self.second_factor.seal_for_account(key, user),
            last_step: step,
            recovery: codes.hashes.clone(),
            since: OffsetDateTime::now_utc(),
        };
        let turn_on = move |u: &mut User| {
            if u.totp.is_none() {
                u.totp = Some(setting.clone());
                super::trust::forget_all(u);
            }
        };
        let updated = self.update(user, &turn_on).await?;
        tracing::info!(user = %user.name, "two-step login turned on");
        self.notify_change(&updated, Change::TwoStepOn, Some(caller), None)
            .await;
        self.note(&updated, Event::TwoStepOn, Some(caller), None)
            .await;
        Ok((updated, codes))
    }

    /// Turns two-step login off for `user` (its key and recovery codes go).
    pub async fn turn_off_two_step(&self, user: &User, caller: &Caller) -> Result<User, AppError> {
        let turn_off = |u: &mut User| {
            u.totp = None;
            super::trust::forget_all(u);
        };
        let updated = self.update(user, &turn_off).await?;
        tracing::info!(user = %user.name, "two-step login turned off");
        self.notify_change(&updated, Change::TwoStepOff, Some(caller), None)
            .await;
        self.note(&updated, Event::TwoStepOff, Some(caller), None)
            .await;
        Ok(updated)
    }

    /// Ten new recovery codes for `user`, replacing every old one (used or not).
    pub async fn renew_recovery_codes(
        &self,
        user: &User,
        caller: &Caller,
    ) -> Result<(User, RecoveryCodes), AppError> {
        let codes = self.second_factor.new_recovery_codes();
        let hashes = codes.hashes.clone();
        let replace = move |u: &mut User| {
            if let Some(setting) = u.totp.as_mut() {
                setting.recovery.clone_from(&hashes);
            }
            super::trust::forget_all(u);
        };
        let updated = self.update(user, &replace).await?;
        tracing::info!(user = %user.name, "recovery codes replaced");
        self.notify_change(&updated, Change::RecoveryCodesRenewed, Some(caller), None)
            .await;
        let event = Event::RecoveryCodesRenewed;
        self.note(&updated, event, Some(caller), None).await;
        Ok((updated, codes))
    }
}

/// What a setup key is sealed for: this account, and setting up only.
fn setup_context(user: &User) -> String {
    format!("setup:{}", user.key())
}
