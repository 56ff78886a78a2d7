//! The storage seam: the map of what is stored and where, how the stores are opened,
//! and how a store fails.
//!
//! One file per interface, each with its records: [`sessions`] ([`SessionStore`]),
//! [`users`] ([`UserStore`]), [`counters`] ([`CounterStore`]), [`tokens`]
//! ([`TokenStore`]), [`grants`] ([`GrantStore`]). Each backend sits
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
pub mod grants;
pub mod journal;
pub mod redis;
pub mod sessions;
pub mod tokens;
pub mod users;
mod watch;

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

pub use self::assign::AssignIds;
pub use self::cache::CachingSessionStore;
pub use self::counters::{Allowance, CounterStore, MemoryCounters};
pub use self::files::{
    FileGrantStore, FileJournalStore, FileSessionStore, FileTokenStore, FileUserStore,
};
pub use self::grants::GrantStore;
pub use self::journal::JournalStore;
pub use self::redis::RedisStore;
pub use self::sessions::{EndReason, Ending, SessionId, SessionRecord, SessionStore};
pub use self::tokens::TokenStore;
pub use self::users::{
    Email, LoginRecord, NameTaken, PasskeySetting, TotpSetting, User, UserChange, UserStore,
};

/// What a store call returns: a boxed future, so stores can be used as trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

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
    /// The OpenID Connect provider's codes, tokens and consents.
    pub grants: Arc<dyn GrantStore>,
    /// Each account's journal of what happened to it.
    pub journal: Arc<dyn JournalStore>,
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
            grants: Arc::new(FileGrantStore::open(data_dir)?),
            journal: Arc::new(FileJournalStore::open(data_dir)?),
        },
        StoreKind::Redis(url) => {
            let redis = Arc::new(RedisStore::open(url, prefix)?);
            Stores {
                sessions: redis.clone(),
                users: Arc::new(AssignIds(redis.clone())),
                counters: redis.clone(),
                tokens: redis.clone(),
                grants: redis.clone(),
                journal: redis,
            }
        }
    })
}

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
}
