//! Single-use secrets sent by mail (verify an address, reset a password, "this wasn't
//! me"), and which account each verified address belongs to.
//!
//! A store never holds a token itself, only its SHA-256 ([`TokenKey`]): a copy of the
//! store (a backup, a leaked Redis dump) opens nothing. Addresses are indexed by the
//! SHA-256 of their lower-case form, which also makes them safe file names.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::StoreFuture;
use super::User;
use crate::domain::AccountId;
use crate::secret::{hex, random_bytes};

/// What a mailed token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Confirm that the address in the record is the user's.
    VerifyEmail,
    /// Choose a new password.
    ResetPassword,
    /// Report a login as not one's own: end every session, then reset.
    NotMe,
    /// A login whose password was right, waiting for the second factor.
    PendingLogin,
    /// A passkey being added: the challenge the browser's authenticator signs.
    PasskeyRegistration,
    /// A login with a passkey: the challenge, before anyone is known.
    PasskeyLogin,
    /// An invitation to register (`wicket invite create`): its groups and how many
    /// accounts it may create; each use claims one [`ClaimKey::invite_use`] slot.
    Invite,
    /// "This wasn't me" from the notice to an address given up: put it back (the
    /// record's `email`), end every session, then reset.
    RestoreAddress,
}

/// What a token stands for, stored under its [`TokenKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// What it is for.
    pub purpose: Purpose,
    /// The account's name, as registered (to find it).
    pub user: String,
    /// The account's id: a token belongs to the account, not to its name. Tokens
    /// from before ids existed have none, and stand for nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// The address it was mailed to (for [`Purpose::VerifyEmail`], the one confirmed).
    pub email: String,
    /// [`password_mark`] of the account's password when the token was made: a
    /// password changed since voids the token.
    pub password: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// For a pending login: "Keep me logged in" was ticked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remember: bool,
    /// For a pending login: where to go once logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// For a passkey ceremony: its server-side state (JSON), which holds the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceremony: Option<String>,
    /// For an invitation: the groups the accounts it creates join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<crate::domain::Group>,
    /// For an invitation: how many accounts it may create.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uses: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TokenRecord {
    /// A record for `purpose` about `user`'s account (`None`: nobody yet), tied to
    /// its id and its password, good until `expires`; nothing else set.
    pub fn new(purpose: Purpose, user: Option<&User>, expires: OffsetDateTime) -> Self {
        Self {
            purpose,
            user: user.map(|u| u.name.to_string()).unwrap_or_default(),
            account: user.map(|u| u.id.clone()),
            email: String::new(),
            password: password_mark(user.map_or("", |u| u.password_hash.as_str())),
            expires,
            remember: false,
            next: None,
            ceremony: None,
            groups: Vec::new(),
            uses: 0,
        }
    }

    /// Whether it still works at `now` for `purpose`.
    pub fn is_live(&self, purpose: Purpose, now: OffsetDateTime) -> bool {
        self.purpose == purpose && now < self.expires
    }

    /// Whether it was made for `user`'s account as it is now: the same account (not
    /// merely the same name) under the same password. A password changed since, or an
    /// account deleted (and its name perhaps registered again), voids it.
    pub fn belongs_to(&self, user: &User) -> bool {
        self.account.as_ref() == Some(&user.id)
            && self.password == password_mark(&user.password_hash)
    }
}

/// A short, non-reversible mark of a password hash: equal marks, same password hash.
pub fn password_mark(password_hash: &str) -> String {
    hex(&Sha256::digest(password_hash.as_bytes())[..16])
}

/// A token as mailed: 256 random bits as 64 hex characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A new token from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(hex(&random_bytes::<32>()))
    }

    /// Accepts exactly 64 lower-case hex characters.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed =
            text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| Self(text.to_owned()))
    }

    /// The token as text (for the link).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps instead of the token.
    pub fn key(&self) -> TokenKey {
        TokenKey(hex(&Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The SHA-256 of a token, in hex: how stores name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey(String);

impl TokenKey {
    /// A key as a store names it (64 lower-case hex characters), read back from a
    /// listing.
    pub fn from_hex(text: &str) -> Option<Self> {
        Token::parse(text).map(|token| Self(token.0))
    }
}

impl TokenKey {
    /// The key as text (64 hex characters).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a [`ClaimKey`] indexes: things that belong to one account at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    /// Confirmed email addresses.
    Email,
    /// Passkeys' credential ids.
    Passkey,
    /// The uses of invitations: slot `n` of an invitation, claimed by the account it
    /// created.
    InviteUse,
}

impl Index {
    /// The index's name in store paths and keys (`emails/`, `<prefix>:email:`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Passkey => "passkey",
            Self::InviteUse => "invite-use",
        }
    }
}

/// An entry of an [`Index`]: the SHA-256 of what it indexes, in hex, which also
/// makes it a safe file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey {
    index: Index,
    hash: String,
}

impl ClaimKey {
    /// The key of `address` (compared case-insensitively).
    pub fn email(address: &str) -> Self {
        Self {
            index: Index::Email,
            hash: hex(&Sha256::digest(address.to_lowercase().as_bytes())),
        }
    }

    /// The key of a passkey's credential id.
    pub fn passkey(credential_id: &[u8]) -> Self {
        Self {
            index: Index::Passkey,
            hash: hex(&Sha256::digest(credential_id)),
        }
    }

    /// Use number `slot` of the invitation stored under `invite`.
    pub fn invite_use(invite: &TokenKey, slot: u32) -> Self {
        Self {
            index: Index::InviteUse,
            hash: hex(&Sha256::digest(
                format!("{}:{slot}", invite.as_str()).as_bytes(),
            )),
        }
    }

    /// What `user`'s account holds in the indexes (its confirmed address, its
    /// passkeys): freed when it is deleted.
    pub fn held_by(user: &User) -> Vec<Self> {
        let email = user.verified_email().map(Self::email);
        let passkeys = user.passkeys.iter().map(|p| Self::passkey(p.key.cred_id()));
        email.into_iter().chain(passkeys).collect()
    }

    /// Which index it belongs to.
    pub fn index(&self) -> Index {
        self.index
    }

    /// The hash as text (64 hex characters).
    pub fn as_str(&self) -> &str {
        &self.hash
    }
}

/// Where tokens and the address index live. Every method has the same meaning on
/// every backend.
pub trait TokenStore: fmt::Debug + Send + Sync {
    /// Stores `record` under `key` until `record.expires`.
    fn put_token<'a>(&'a self, key: &'a TokenKey, record: &'a TokenRecord) -> StoreFuture<'a, ()>;

    /// The record under `key`, if any, left in place (it may have expired: check).
    fn peek_token<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<TokenRecord>>;

    /// Removes the record under `key` and returns it: of two concurrent takes of one
    /// token exactly one gets it.
    fn take_token<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<TokenRecord>>;

    /// Records that `key` (an address, a passkey) belongs to `user`; `Ok(false)` if it
    /// belongs to another account (names compared case-insensitively). Of two
    /// concurrent claims exactly one wins.
    fn claim<'a>(&'a self, key: &'a ClaimKey, user: &'a str) -> StoreFuture<'a, bool>;

    /// The account `key` belongs to, if any.
    fn owner<'a>(&'a self, key: &'a ClaimKey) -> StoreFuture<'a, Option<String>>;

    /// Frees `key` if `user` holds it.
    fn release<'a>(&'a self, key: &'a ClaimKey, user: &'a str) -> StoreFuture<'a, ()>;

    /// Every live invitation, with its key (for `wicket invite list` and `revoke`).
    fn invites(&self) -> StoreFuture<'_, Vec<(TokenKey, TokenRecord)>>;

    /// Deletes expired tokens; returns how many. Backends that expire keys themselves
    /// return 0.
    fn sweep_tokens(&self, now: OffsetDateTime) -> StoreFuture<'_, usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_only_as_hashes() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a.key().as_str(), a.as_str());
        assert_eq!(a.key(), Token::parse(a.as_str()).unwrap().key());
        for bad in [
            "",
            "../etc/passwd",
            &a.as_str().to_uppercase(),
            &a.as_str()[1..],
        ] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn a_token_belongs_to_its_account_and_password_not_to_a_name() {
        let name = crate::domain::Username::parse("alice").unwrap();
        let alice = User::new(&name, "hash-1".into());
        let record = TokenRecord::new(Purpose::NotMe, Some(&alice), OffsetDateTime::now_utc());
        assert!(record.belongs_to(&alice));
        // The same name and even the same hash, but another account.
        let next_owner = User::new(&name, "hash-1".into());
        assert!(!record.belongs_to(&next_owner));
        let changed = User {
            password_hash: "hash-2".into(),
            ..alice.clone()
        };
        assert!(!record.belongs_to(&changed));
        let legacy = TokenRecord {
            account: None,
            ..record
        };
        assert!(
            !legacy.belongs_to(&alice),
            "from before ids: stands for nothing"
        );
    }

    #[test]
    fn addresses_are_indexed_case_insensitively() {
        assert_eq!(
            ClaimKey::email("Ann@Example.COM"),
            ClaimKey::email("ann@example.com")
        );
        assert_ne!(
            ClaimKey::email("ann@example.com"),
            ClaimKey::email("bob@example.com")
        );
        // Same bytes, different index: never the same entry.
        assert_ne!(ClaimKey::email("ab"), ClaimKey::passkey(b"ab"));
    }
}
