//! What the OpenID Connect provider keeps: authorization requests waiting for a login,
//! codes, refresh-token families (with their current access token) and consents.
//!
//! Every record lies on a [`Shelf`] under a name of 1 to 64 lower-case hex characters
//! (a safe file name and key). Secrets are never names: a code or a token is stored
//! under its SHA-256 ([`secret_name`]), so a copy of the store opens nothing. The
//! records of one account share its shelf, which is what `/account` lists.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::StoreFuture;
use crate::domain::AccountId;
use crate::secret::hex;

/// Where a grant lies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Shelf {
    /// Authorization requests waiting for a login or a consent.
    Requests,
    /// Authorization codes, until exchanged or expired.
    Codes,
    /// Codes and refresh tokens already used, each naming the family it started or
    /// rotated: a second use revokes that family. A mark here only decides races
    /// (the code's deletion and the family's current token are what last), so a backend
    /// may keep it without making it durable.
    Spent,
    /// One account's consents and refresh-token families.
    Account(AccountId),
}

impl Shelf {
    /// The shelf's name in paths and keys (`requests`, `account-<id>`).
    pub fn name(&self) -> String {
        match self {
            Self::Requests => "requests".into(),
            Self::Codes => "codes".into(),
            Self::Spent => "spent".into(),
            Self::Account(id) => format!("account-{id}"),
        }
    }
}

/// Whether `name` may name a grant: 1 to 64 lower-case hex characters.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The name a secret (a code, a token's secret part) is stored under: its SHA-256.
pub fn secret_name(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A stored grant and when it stops mattering (a store may delete it from then on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// What it is.
    #[serde(flatten)]
    pub kind: GrantKind,
}

/// The kinds of grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GrantKind {
    /// An authorization request, checked, waiting for the browser's login or consent.
    Request(AuthRequest),
    /// An authorization code.
    Code(CodeGrant),
    /// A code or refresh token that has been used, and the family it belongs to.
    Spent {
        /// The family (on the account's shelf).
        family: String,
        /// The account whose shelf holds it.
        account: AccountId,
    },
    /// A refresh-token family: one login's tokens for one client.
    Family(Family),
    /// A family that was revoked (kept until the family itself would have expired).
    Revoked,
    /// A member's consent to a client.
    Consent(Consent),
}

/// An authorization request as checked at `/oidc/authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client's id.
    pub client: String,
    /// The registered redirect URI it asked for.
    pub redirect_uri: String,
    /// The scopes granted if the member agrees (those the provider knows).
    pub scopes: Vec<String>,
    /// The client's `state`, returned as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The client's `nonce`, put into the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The PKCE `S256` challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// A login no older than this is needed (`prompt=login`, `max_age`).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub login_after: Option<OffsetDateTime>,
    /// `prompt=consent`: ask even if the member agreed before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ask_consent: bool,
    /// `prompt=none`: never show a page; answer with an error instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
    /// The `EdDSA` signature was asked for the ID token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eddsa: bool,
}

/// Who logged in, how and when: what the ID token says about the login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// The account.
    pub account: AccountId,
    /// Its name (to find it).
    pub user: String,
    /// The Wicket session the login made; its end ends the family.
    pub session: String,
    /// When the member logged in.
    #[serde(with = "time::serde::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// How (`pwd`, `otp`, `hwk`, `swk`).
    pub amr: Vec<String>,
    /// The password when the login happened (`password_mark`): a change voids it.
    pub password: String,
}

/// An authorization code's binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The request it answers.
    pub request: AuthRequest,
    /// The login.
    pub login: Authentication,
}

/// A refresh-token family: the tokens one code started, for one client and one login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    /// The client's id.
    pub client: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Sign ID tokens with `EdDSA` rather than `RS256`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eddsa: bool,
    /// The login.
    pub login: Authentication,
    /// When the code was exchanged.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When a token of it was last issued.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used: OffsetDateTime,
    /// [`secret_name`] of the current refresh token's secret.
    pub refresh: String,
    /// Those of the refresh tokens it replaced (the latest few): one coming back is
    /// a reuse.
    #[serde(default)]
    pub previous: Vec<String>,
    /// [`secret_name`] of the current access token's secret (empty: revoked).
    pub access: String,
    /// When the current access token stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub access_expires: OffsetDateTime,
}

/// A member's consent to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The client's id.
    pub client: String,
    /// The scopes agreed to.
    pub scopes: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub given: OffsetDateTime,
}

/// Where grants live. Every method has the same meaning on every backend; `name` is
/// always [valid](valid_name) (callers check what comes from outside).
pub trait GrantStore: fmt::Debug + Send + Sync {
    /// Stores `grant` as `name` on `shelf`, replacing what was there.
    fn put_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, ()>;

    /// Stores `grant` only if `name` is free on `shelf`: `Ok(false)` if it is taken.
    /// Of two concurrent adds exactly one wins.
    fn add_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, bool>;

    /// The grant `name` on `shelf`, if any (it may have expired: check).
    fn get_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>>;

    /// Removes the grant and returns it: of two concurrent takes exactly one gets it.
    fn take_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>>;

    /// Every grant on `shelf` with its name (an account's: a few).
    fn grants_on<'a>(&'a self, shelf: &'a Shelf) -> StoreFuture<'a, Vec<(String, Grant)>>;

    /// Deletes expired grants; returns how many. Backends that expire keys themselves
    /// return 0.
    fn sweep_grants(&self, now: OffsetDateTime) -> StoreFuture<'_, usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_names_a_grant() {
        assert!(valid_name(&secret_name("a code")));
        for bad in ["", "../x", "ABC", "a.b", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert_ne!(secret_name("a"), secret_name("b"));
    }
}
