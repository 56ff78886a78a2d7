//! The account service: the sequences security depends on, each written once, between
//! the handlers (and the command line) above and the stores below.
//!
//! - `check`: a password or a second-factor code, checked the one way (throttle,
//!   device, scrypt; one result type, [`Checked`]);
//! - [`devices`]: which browsers an account has used (device cookies);
//! - [`second_factor`]: two-step login on and off, new recovery codes, and the keys
//!   that seal authenticator-app keys and hash recovery codes;
//! - [`links`]: tokens for mailed links and pending steps, and when one still holds;
//! - `notices`: when a member is mailed, and with which link;
//! - `password` and `delete`: setting a password, deleting an account;
//! - `address`: changing the email address, confirming it;
//! - [`passkeys`]: the ceremonies that add a passkey and log in with one;
//! - `operator`: what `wicket user …` does to an account (disable, unlock, reset).
//!
//! A handler parses its form, calls one method here, and renders what it returns; it
//! never repeats a step of a sequence. The service knows nothing of pages or cookies
//! but the device cookie's value, which it is handed as part of the [`Caller`].

mod address;
mod check;
mod delete;
pub mod devices;
mod groups;
pub mod invites;
pub mod links;
mod notices;
mod operator;
pub mod passkeys;
mod password;
pub mod second_factor;
pub mod trust;

use std::net::IpAddr;
use std::sync::Arc;

pub use self::address::Confirmed;
pub use self::check::{Checked, Refusal, Used};
pub use self::devices::DeviceCookies;
pub use self::operator::{SecondFactorsRemoved, Unlocked};
pub use self::passkeys::{Begun, PasskeyRefusal, Passkeys};
pub use self::password::PasswordSet;
pub use self::second_factor::{RecoveryCodes, SecondFactorKeys};
use crate::error::AppError;
use crate::mail::Mailer;
use crate::password::Hasher;
use crate::session::Sessions;
use crate::store::journal::{Entry, Event};
use crate::store::{JournalStore, TokenStore, User, UserChange, UserStore};
use crate::throttle::LoginThrottle;

/// Who asks for a change or a check: where from, and the device cookie it holds.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client's IP address, as shown and logged.
    pub address: String,
    /// The same, parsed (absent only for peers without an IP address).
    pub ip: Option<IpAddr>,
    /// The browser and system, e.g. "Firefox on Linux".
    pub browser: String,
    /// The raw device cookie ([`devices`]), checked where it is used.
    pub device_cookie: Option<String>,
}

impl Caller {
    /// The key this caller's address is throttled under (IPv6 by network).
    pub fn throttle_key(&self, ipv6_prefix: u8) -> String {
        match self.ip {
            Some(ip) => crate::throttle::address_key(ip, ipv6_prefix),
            None => self.address.clone(),
        }
    }
}

/// The account service: the stores and the keys every account sequence needs.
#[derive(Clone)]
pub struct Accounts {
    /// The user store.
    pub users: Arc<dyn UserStore>,
    /// Session lifecycle.
    pub sessions: Sessions,
    /// Mailed and pending tokens, and the indexes of what belongs to one account.
    pub tokens: Arc<dyn TokenStore>,
    /// scrypt.
    pub hasher: Hasher,
    /// Wrong passwords and codes, counted.
    pub guesses: Arc<LoginThrottle>,
    /// Device cookies: which browsers an account has logged in from.
    pub devices: DeviceCookies,
    /// Two-step login's keys.
    pub second_factor: SecondFactorKeys,
    /// IPv6 clients are throttled per network of this many bits.
    pub ipv6_prefix: u8,
    /// Where mail goes, if anywhere (`--smtp-url`, `--mail-dir`).
    pub mail: Option<Mailer>,
    /// Each account's journal.
    pub journal: Arc<dyn JournalStore>,
}

impl Accounts {
    /// Writes `event` in `user`'s journal: by `caller` (a browser; `None`: the
    /// operator), about `detail` (a passkey's name, a login's method). A failure is
    /// logged, never a reason to refuse what happened.
    pub async fn note(
        &self,
        user: &User,
        event: Event,
        caller: Option<&Caller>,
        detail: Option<&str>,
    ) {
        let entry = Entry {
            at: time::OffsetDateTime::now_utc(),
            event,
            browser: caller.map(|c| c.browser.clone()),
            address: caller.map(|c| c.address.clone()),
            detail: detail.map(str::to_owned),
        };
        if let Err(err) = self.journal.record(&user.id, &entry).await {
            tracing::warn!(user = %user.name, ?event, error = %crate::error::chain(&err), "could not write the journal");
        }
    }

    /// Changes `user`'s record with `change` (atomically, see [`UserStore::update`]);
    /// the account as stored after it. An account deleted meanwhile is an error: the
    /// caller held it a moment ago.
    pub async fn update(&self, user: &User, change: &UserChange) -> Result<User, AppError> {
        self.users
            .update(&user.name, change)
            .await?
            .ok_or_else(|| AppError::internal("the account is gone"))
    }
}
