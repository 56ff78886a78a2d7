//! The storage seam: what is stored, the two interfaces every backend offers, and how
//! a store fails.
//!
//! Sessions and users live behind [`SessionStore`] and [`UserStore`]. Each backend sits
//! in its own module with the same methods and signatures: [`files`] (one JSON file
//! per session and per user, the default) and [`redis`] (several instances sharing one
//! Redis). Behaviour that is not storage is added by wrapping: [`CachingSessionStore`]
//! keeps recent records in memory in front of the file store, trusted while the
//! directory's change notifications say the file is unchanged (`watch`). Expiry policy belongs to
//! [`crate::session::Sessions`]; a store only keeps records and deletes them.

mod assign;
mod cache;
pub mod counters;
pub mod files;
pub mod redis;
pub mod tokens;
mod watch;

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use self::assign::AssignIds;
pub use self::cache::CachingSessionStore;
pub use self::counters::{Allowance, CounterStore, MemoryCounters};
pub use self::files::{FileSessionStore, FileTokenStore, FileUserStore};
pub use self::redis::RedisStore;
pub use self::tokens::TokenStore;
use crate::domain::{AccountId, Username};
use crate::secret::{hex, random_bytes};

/// What a store call returns: a boxed future, so stores can be used as trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

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
}

/// Where users live. Names are case-insensitive: `Alice` and `alice` are one user.
pub trait UserStore: fmt::Debug + Send + Sync {
    /// The user called `name` (in any case), if there is one. A corrupt record is an
    /// error, not a missing user.
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>>;

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

/// The stores a running Wicket uses.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// Rate-limit counters.
    pub counters: Arc<dyn CounterStore>,
    /// Mailed tokens and the verified-address index.
    pub tokens: Arc<dyn TokenStore>,
}

/// Where sessions and users live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// JSON files in the sessions and data directories (the default).
    Files,
    /// A Redis server shared by several instances: `redis://HOST:PORT/DB`.
    Redis(String),
}

impl std::str::FromStr for StoreKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "files" => Ok(Self::Files),
            url if url.starts_with("redis://") => Ok(Self::Redis(url.to_owned())),
            // Not the text itself: it may be a URL with a password.
            _ => Err("expected 'files' or a redis:// URL".into()),
        }
    }
}

/// Opens the stores of `kind`: for files, `sessions_dir` and `<data_dir>/users`
/// (created owner-only if missing); for Redis, a pool (connected lazily) whose keys
/// start with `prefix`.
pub fn open(
    kind: &StoreKind,
    sessions_dir: &Path,
    data_dir: &Path,
    prefix: &str,
) -> Result<Stores, StoreError> {
    Ok(match kind {
        StoreKind::Files => Stores {
            sessions: Arc::new(CachingSessionStore::new(FileSessionStore::open(
                sessions_dir,
            )?)),
            users: Arc::new(AssignIds(Arc::new(FileUserStore::open(data_dir)?))),
            counters: Arc::new(MemoryCounters::new(counters::MEMORY_CAPACITY)),
            tokens: Arc::new(FileTokenStore::open(data_dir)?),
        },
        StoreKind::Redis(url) => {
            let redis = Arc::new(RedisStore::open(url, prefix)?);
            Stores {
                sessions: redis.clone(),
                users: Arc::new(AssignIds(redis.clone())),
                counters: redis.clone(),
                tokens: redis,
            }
        }
    })
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
    pub user: String,
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
    /// No request for the idle timeout.
    Idle,
    /// The absolute lifetime was reached.
    Lifetime,
}

impl SessionRecord {
    /// A new session of `user`, logged in `at`, ending at `expires` at the latest.
    pub fn new(user: &str, at: OffsetDateTime, expires: OffsetDateTime) -> Self {
        Self {
            user: user.to_owned(),
            account: None,
            created: at,
            last_seen: at,
            expires,
            browser: None,
            address: None,
            remember: false,
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

/// A stored user.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The account's id, given at creation and never changed (records written before
    /// ids existed get one when first read: see [`AssignIds`]).
    #[serde(default, skip_serializing_if = "AccountId::is_unset")]
    pub id: AccountId,
    /// The name as registered (case kept).
    pub name: String,
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
            name: name.to_string(),
            password_hash,
            created: OffsetDateTime::now_utc(),
            last_login: None,
            failed_logins: 0,
            email: None,
            totp: None,
            passkeys: Vec::new(),
            passkey_handle: None,
        }
    }

    /// The name as a [`Username`]: every record was made from one, so a name that no
    /// longer parses is a corrupt record.
    pub fn username(&self) -> Result<Username, StoreError> {
        Username::parse(&self.name)
            .map_err(|_| StoreError::corrupt("a user record with an impossible name"))
    }

    /// The case-insensitive key the user is stored under.
    pub fn key(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// What this account holds in the token store's indexes (its confirmed address,
    /// its passkeys): freed when it is deleted.
    pub fn claims(&self) -> Vec<tokens::ClaimKey> {
        let email = self.verified_email().map(tokens::ClaimKey::email);
        let passkeys = self
            .passkeys
            .iter()
            .map(|p| tokens::ClaimKey::passkey(p.key.cred_id()));
        email.into_iter().chain(passkeys).collect()
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

/// A store operation that failed.
#[derive(Debug)]
pub enum StoreError {
    /// The backend cannot be asked right now: Redis is unreachable, or the file system
    /// refused (permissions, I/O errors). A 503; it may come back.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// A write failed, or stored data is unusable (a 500).
    Io(std::io::Error),
    /// The store is misconfigured (at start-up).
    Config(String),
}

impl StoreError {
    /// Wraps the cause of an outage.
    pub fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(err.into())
    }

    /// Corrupt stored data.
    pub fn corrupt(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, err))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(_) => f.write_str("backend unreachable"),
            Self::Io(_) => f.write_str("read or write failed"),
            Self::Config(why) => write!(f, "store configuration: {why}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(cause) => Some(cause.as_ref()),
            Self::Io(cause) => Some(cause),
            Self::Config(_) => None,
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}

/// For the command line and start-up, where every failure is an `io::Error`.
impl From<StoreError> for std::io::Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Io(err) => err,
            StoreError::Config(why) => std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
            other => std::io::Error::other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_settings_parse_without_echoing_what_was_typed() {
        assert_eq!("files".parse(), Ok(StoreKind::Files));
        assert_eq!(
            "redis://127.0.0.1:6379/0".parse(),
            Ok(StoreKind::Redis("redis://127.0.0.1:6379/0".into()))
        );
        let refused = "postgres://me:hunter2@x".parse::<StoreKind>().unwrap_err();
        assert!(!refused.contains("hunter2"), "{refused}");
        assert!(
            "rediss://x".parse::<StoreKind>().is_err(),
            "built without TLS"
        );
    }

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
