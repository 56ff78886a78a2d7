//! Where users live: the interface every backend offers, and what a user record holds.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreFuture;
use crate::domain::{AccountId, Username};

/// Where users live. Names are case-insensitive: `Alice` and `alice` are one user.
pub trait UserStore: fmt::Debug + Send + Sync {
    /// The user called `name` (in any case), if there is one. A corrupt record is an
    /// error, not a missing user.
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>>;

    /// The same, shared: a backend that keeps records in memory hands out its own
    /// copy instead of cloning one (each request's session check reads its account).
    fn get_shared<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<Arc<User>>> {
        Box::pin(async move { Ok(self.get(name).await?.map(Arc::new)) })
    }

    /// Stores a new user; `Ok(Err(NameTaken))` if the name exists in any case. Of two
    /// concurrent creations of one name exactly one wins, even across processes.
    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>>;

    /// Whether a user called `name` (in any case) exists: cheaper than `get`.
    fn exists<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool>;

    /// Changes the user called `name` with `change`, atomically with respect to other
    /// updates and deletions (read, change, write); returns the new record, or `None`
    /// if there is no such user. Never recreates a user deleted meanwhile.
    fn update<'a>(
        &'a self,
        name: &'a Username,
        change: &'a UserChange,
    ) -> StoreFuture<'a, Option<User>>;

    /// Deletes the user called `name`; `Ok(false)` if there was none.
    fn delete<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool>;

    /// Every user's name, as registered (for `wicket user list`).
    fn names(&self) -> StoreFuture<'_, Vec<String>>;

    /// Whether the store answers now (for `/readyz`): cheap, changes nothing.
    fn ready(&self) -> StoreFuture<'_, ()>;
}

/// A change to a user record, as [`UserStore::update`] applies it. It may run more
/// than once (Redis retries when another write came first).
pub type UserChange = dyn Fn(&mut User) + Send + Sync;

/// A stored user.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The account's id, given at creation and never changed (records written before
    /// ids existed get one when first read: see [`AssignIds`]).
    #[serde(default, skip_serializing_if = "AccountId::is_unset")]
    pub id: AccountId,
    /// The name as registered (case kept).
    pub name: Username,
    /// scrypt PHC string, e.g. `$scrypt$ln=17,r=8,p=1$<salt>$<hash>`. Files written
    /// before this field was named for what it holds call it `password`.
    #[serde(alias = "password")]
    pub password_hash: String,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<LoginRecord>,
    /// Failed logins since the last successful one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_logins: u32,
    /// The member's email address, if they gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// Two-step login with an authenticator app, when turned on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpSetting>,
    /// The account's passkeys (public keys: nothing here opens the account).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passkeys: Vec<PasskeySetting>,
    /// The random id passkeys carry for this account (WebAuthn's user handle), made
    /// with the first one: never the name, which the authenticator would show around.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_handle: Option<webauthn_rs::prelude::Uuid>,
    /// The groups the account is in (given by the operator or an invite), sorted:
    /// access rules name them, and protected apps get them as `Remote-Groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<crate::domain::Group>,
    /// When the operator disabled the account (`wicket user disable`): it cannot log
    /// in, and its sessions end.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub disabled: Option<OffsetDateTime>,
    /// The operator asked for a new password (`wicket user require-password-change`):
    /// the next login leads to the change-password form before any other page.
    #[serde(default, skip_serializing_if = "is_false")]
    pub must_change_password: bool,
    /// How many times the operator unlocked the account (`wicket user unlock`): part
    /// of the keys its guesses are counted under, so each unlock starts them afresh.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlocks: u32,
    /// Browsers trusted to skip the second step ("Trust this browser"), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<TrustedBrowser>,
}

/// A browser trusted to log in without a code (see `accounts::trust`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedBrowser {
    /// The SHA-256 of the secret its cookie holds, in hex.
    pub digest: String,
    /// A public handle, for "Forget".
    pub handle: String,
    /// The browser and system, in a few words.
    pub browser: String,
    /// The client address it was trusted from.
    pub address: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Until when.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// One of an account's passkeys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasskeySetting {
    /// What the member called it.
    pub name: String,
    /// The credential: its id, public key, signature counter and flags.
    pub key: webauthn_rs::prelude::Passkey,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub added: OffsetDateTime,
    /// The last login with it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
}

/// An account's authenticator-app setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetting {
    /// The TOTP key, sealed (`secret::Sealer`, bound to the account's name): the
    /// store alone does not reveal it.
    pub key: String,
    /// The step of the last code used: that code, and any older one, is refused.
    pub last_step: u64,
    /// Keyed hashes of the recovery codes not yet used.
    pub recovery: Vec<String>,
    /// When it was turned on.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// A member's email address, as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// The address (compared case-insensitively).
    pub address: String,
    /// Whether a link mailed to it was opened. Only a verified address receives
    /// password resets and is held against other accounts.
    pub verified: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// When, from which browser and address, a login happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The browser and system, in a few words.
    pub browser: String,
    /// The client address.
    pub address: String,
}

impl User {
    /// A user created now.
    pub fn new(name: &Username, password_hash: String) -> Self {
        Self {
            id: AccountId::generate(),
            name: name.clone(),
            password_hash,
            created: OffsetDateTime::now_utc(),
            last_login: None,
            failed_logins: 0,
            email: None,
            totp: None,
            passkeys: Vec::new(),
            passkey_handle: None,
            groups: Vec::new(),
            disabled: None,
            must_change_password: false,
            unlocks: 0,
            trusted: Vec::new(),
        }
    }

    /// The case-insensitive key the user is stored under.
    pub fn key(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// The address resets may go to: the member's, once verified.
    pub fn verified_email(&self) -> Option<&str> {
        self.email
            .as_ref()
            .filter(|email| email.verified)
            .map(|email| email.address.as_str())
    }
}

/// The hash is not a secret the way a password is, but it is what an offline guesser
/// wants: keep it out of logs.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("created", &self.created)
            .finish()
    }
}

/// A user could not be created: the name exists (in any case).
#[derive(Debug, PartialEq, Eq)]
pub struct NameTaken;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_records_read_the_old_field_name_and_hide_the_hash_from_debug() {
        let old = r#"{"name":"Alice","password":"$scrypt$x","created":"2026-01-01T00:00:00Z"}"#;
        let user: User = serde_json::from_str(old).unwrap();
        assert_eq!(user.password_hash, "$scrypt$x");
        let written = serde_json::to_string(&user).unwrap();
        assert!(
            written.contains(r#""password_hash":"$scrypt$x""#),
            "{written}"
        );
        assert!(!format!("{user:?}").contains("$scrypt$x"));
    }
}
