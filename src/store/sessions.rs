//! Where sessions live: the interface every backend offers, and what a session record
//! holds. Expiry policy belongs to [`crate::session::Sessions`]; a store only keeps
//! records and deletes them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreFuture;
use crate::domain::{AccountId, Username};
use crate::secret::{hex, random_bytes};

/// Where sessions live. Every method has the same meaning on every backend.
pub trait SessionStore: fmt::Debug + Send + Sync {
    /// The record for `id`; `None` if there is none, or if what is stored is corrupt
    /// (logged). An error means the store could not be asked: not "no session".
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>>;

    /// Stores a new session that ends in `ttl`. Never replaces one: `Ok(false)` if
    /// the id is taken.
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Rewrites an existing session, now ending in `ttl`. Never recreates one removed
    /// meanwhile, so a request racing a logout cannot bring the session back.
    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Deletes a session; deleting one that is already gone is not an error.
    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()>;

    /// Every stored session of `user` (any case), live or ended, from a per-user
    /// index: the cost is this user's sessions, never all sessions. Index entries
    /// whose session is gone are dropped on the way.
    fn sessions_of<'a>(&'a self, user: &'a str)
    -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>>;

    /// Ends sessions nothing has written for `unused_for` (they have certainly ended),
    /// keeping what tells their browsers why for `keep_for` more, then deleting it;
    /// returns how many ended. Backends that expire keys themselves return 0.
    fn sweep(&self, unused_for: Duration, keep_for: Duration) -> StoreFuture<'_, usize>;

    /// Whether the store answers now (for `/readyz`): cheap, changes nothing.
    fn ready(&self) -> StoreFuture<'_, ()>;

    /// Every stored record, live or ended: for counting live sessions when metrics
    /// are scraped (every file or key is read). Wrappers forward it; a store that
    /// cannot list says none.
    fn all(&self) -> StoreFuture<'_, Vec<SessionRecord>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A session id: 64 lower-case hex characters (256 random bits), so always a safe file
/// name and key. It is a bearer credential: `Debug` shows a short prefix only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// Bytes of randomness in an id.
    const BYTES: usize = 32;

    /// A new id from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(hex(&random_bytes::<{ Self::BYTES }>()))
    }

    /// Accepts exactly 64 lower-case hex characters and nothing else.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == Self::BYTES * 2
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..8])
    }
}

/// What a session file (or Redis key) holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The logged-in user's name, as registered.
    pub user: Username,
    /// The account's id: a session belongs to the account, not to its name. Sessions
    /// written before ids existed have none (see `Sessions::resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// When the user logged in.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The last request recorded (see `Sessions` for how often it is written).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// The absolute end of the session, however active it is.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// The browser and system at login, in a few words (e.g. "Firefox on Linux").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// The client address at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// "Keep me logged in" was ticked: the cookie outlives the browser.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remember: bool,
    /// The login used a second factor (a code or a passkey): access rules with
    /// `policy = "two-step"` let it through.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub second_factor: bool,
    /// How the member logged in, as OpenID Connect's `amr` says it (`pwd`, `otp`,
    /// `hwk`): what the ID tokens issued under the session tell apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Set when the session was ended by an event (a tombstone): the next request of
    /// its browser is told why, once. Files without it are live sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ending>,
}

/// Why and when a session was ended by an event rather than by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    /// Why.
    pub reason: EndReason,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why a session ended, as its browser is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The member logged out.
    LoggedOut,
    /// The password was changed (every other session ends).
    PasswordChanged,
    /// The password was reset through a mailed link (every session ends).
    PasswordReset,
    /// Someone followed "This wasn't me" in a new-login notice (every session ends).
    ReportedNotMe,
    /// Ended from another device (the sessions list on `/account`).
    EndedElsewhere,
    /// The account was deleted.
    AccountDeleted,
    /// The operator disabled the account.
    AccountDisabled,
    /// The operator removed the account's second factors (`wicket user reset-two-step`).
    SecondFactorReset,
    /// The operator asked for a new password at the next login.
    PasswordChangeRequired,
    /// No request for the idle timeout.
    Idle,
    /// The absolute lifetime was reached.
    Lifetime,
}

impl SessionRecord {
    /// A new session of `user`, logged in `at`, ending at `expires` at the latest.
    pub fn new(user: &Username, at: OffsetDateTime, expires: OffsetDateTime) -> Self {
        Self {
            user: user.clone(),
            account: None,
            created: at,
            last_seen: at,
            expires,
            browser: None,
            address: None,
            remember: false,
            second_factor: false,
            amr: Vec::new(),
            ended: None,
        }
    }

    /// Why this session is over at `now` (with `idle` as the idle timeout), if it is:
    /// a recorded event, else whichever limit came first.
    pub fn ended_by(&self, idle: Duration, now: OffsetDateTime) -> Option<EndReason> {
        if let Some(ending) = self.ended {
            return Some(ending.reason);
        }
        let idle_end = self.last_seen + idle;
        if now < self.expires.min(idle_end) {
            None
        } else if self.expires <= idle_end {
            Some(EndReason::Lifetime)
        } else {
            Some(EndReason::Idle)
        }
    }

    /// When this session ends: `idle` after the last request, or at `expires`.
    pub fn ends(&self, idle: Duration) -> OffsetDateTime {
        self.expires.min(self.last_seen + idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_lower_hex_and_unique() {
        let a = SessionId::generate();
        assert!(SessionId::parse(a.as_str()).is_some());
        assert_ne!(a, SessionId::generate());
        assert!(SessionId::parse(&a.as_str().to_uppercase()).is_none());
        assert!(SessionId::parse(&a.as_str()[1..]).is_none());
        assert_eq!(
            format!("{a:?}"),
            format!("SessionId({}…)", &a.as_str()[..8])
        );
    }
}
