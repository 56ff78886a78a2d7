//! Server-side sessions.
//!
//! The cookie holds `<id>.<mac>`: a 256-bit random id and its HMAC-SHA256 under a key
//! derived from the server secret, both hex. The MAC is checked in constant time and the
//! id's characters are checked before the id ever becomes a file name or a key; the
//! session's data lives only in the store: `<sessions dir>/<id>.json` by default, or a
//! Redis key holding the same JSON.

mod cookie;
mod middleware;
mod store;

use std::time::Duration;

use poem::http::HeaderValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use self::cookie::{CookieCodec, SessionId};
pub use self::middleware::{CurrentSession, SessionLayer};
pub use self::store::FileSessionStore;
use crate::redis_store::RedisStore;
use crate::store::StoreError;

/// How stale `last_seen` may get before a request records activity. Writing at most
/// once a minute keeps reads cheap; the idle timeout is accurate to this much.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// What a session file (or Redis key) holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The logged-in user's name, as registered.
    pub user: String,
    /// When the user logged in.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The last request seen (to within a minute).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// The absolute end of the session, however active it is.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

impl SessionRecord {
    /// When this session ends: `idle` after the last request, or at `expires`.
    pub fn ends(&self, idle: Duration) -> OffsetDateTime {
        self.expires.min(self.last_seen + idle)
    }
}

/// A live session of a logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id (the file name).
    pub id: SessionId,
    /// Its stored data.
    pub record: SessionRecord,
    /// When it ends if no further request comes.
    pub ends: OffsetDateTime,
}

/// Starts, resumes and ends sessions: the cookie codec, the store and the timeouts.
#[derive(Clone)]
pub struct Sessions {
    codec: CookieCodec,
    store: SessionStore,
    idle: Duration,
    lifetime: Duration,
}

/// Where sessions live: the narrow interface both backends offer.
#[derive(Clone, Debug)]
pub enum SessionStore {
    /// One JSON file per session.
    Files(FileSessionStore),
    /// One Redis key per session, expiring with it.
    Redis(RedisStore),
}

impl SessionStore {
    /// The record for `id`, if the store has it.
    pub async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        match self {
            Self::Files(files) => Ok(files.load(id).await),
            Self::Redis(redis) => redis.load_session(id).await,
        }
    }

    /// Writes a new session that ends in `ttl`; never replaces one.
    pub async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Self::Files(files) => Ok(files.create(id, record).await?),
            Self::Redis(redis) => match redis.put_session(id, record, ttl, true).await? {
                true => Ok(()),
                false => Err(StoreError::Io(std::io::ErrorKind::AlreadyExists.into())),
            },
        }
    }

    /// Rewrites an existing session; never recreates one removed meanwhile.
    pub async fn touch(
        &self,
        id: &SessionId,
        record: &SessionRecord,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Self::Files(files) => Ok(files.touch(id, record).await?),
            Self::Redis(redis) => redis.put_session(id, record, ttl, false).await.map(drop),
        }
    }

    /// Deletes a session (a missing one is not an error).
    pub async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        match self {
            Self::Files(files) => Ok(files.remove(id).await?),
            Self::Redis(redis) => redis.remove_session(id).await,
        }
    }
}

/// The time left until `ends` (at least a second): a store's TTL for the session.
pub fn ttl_until(ends: OffsetDateTime) -> Duration {
    Duration::try_from(ends - now())
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

/// The current time, to the second (session files need no more).
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

impl Sessions {
    /// Sessions signed by `codec`, kept in `store`, ending after `idle` without
    /// requests or `lifetime` after login.
    pub fn new(
        codec: CookieCodec,
        store: SessionStore,
        idle: Duration,
        lifetime: Duration,
    ) -> Self {
        Self {
            codec,
            store,
            idle,
            lifetime,
        }
    }

    /// The session a cookie value names, if it is genuine, known and unexpired.
    /// An error means the store could not be asked (not "no session").
    pub async fn resume(&self, cookie_value: &str) -> Result<Option<Session>, StoreError> {
        let Some(id) = self.codec.verify(cookie_value) else {
            return Ok(None);
        };
        let Some(record) = self.store.load(&id).await? else {
            return Ok(None);
        };
        let now = now();
        let ends = self.ends(&record);
        if now >= ends {
            tracing::info!(user = %record.user, "session expired");
            if let Err(err) = self.store.remove(&id).await {
                tracing::warn!(%err, "could not delete an expired session");
            }
            return Ok(None);
        }
        let mut session = Session { id, record, ends };
        if now - session.record.last_seen >= TOUCH_EVERY {
            session.record.last_seen = now;
            session.ends = self.ends(&session.record);
            let ttl = self.ttl(session.ends);
            if let Err(err) = self.store.touch(&session.id, &session.record, ttl).await {
                tracing::warn!(%err, "could not record session activity");
            }
        }
        Ok(Some(session))
    }

    /// Logs `user` in: a brand-new session (the `replacing` one, if any, is deleted).
    /// Returns the `Set-Cookie` value that carries it.
    pub async fn start(
        &self,
        user: &str,
        replacing: Option<&Session>,
    ) -> Result<(Session, HeaderValue), StoreError> {
        if let Some(old) = replacing {
            self.store.remove(&old.id).await?;
        }
        let now = now();
        let record = SessionRecord {
            user: user.to_owned(),
            created: now,
            last_seen: now,
            expires: now + self.lifetime,
        };
        let id = SessionId::generate();
        let ends = self.ends(&record);
        self.store.create(&id, &record, self.ttl(ends)).await?;
        let cookie = self.codec.set_cookie(&id, self.lifetime);
        Ok((Session { id, record, ends }, cookie))
    }

    /// Logs out: deletes the session. Returns the `Set-Cookie` value that clears it.
    pub async fn end(&self, session: &Session) -> Result<HeaderValue, StoreError> {
        self.store.remove(&session.id).await?;
        Ok(self.codec.clear_cookie())
    }

    /// Deletes the files of idle sessions (see [`FileSessionStore::sweep_blocking`]) on
    /// the blocking pool, so requests are never held up. Redis expires keys itself.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let SessionStore::Files(files) = &self.store else {
            return Ok(0);
        };
        let (files, idle) = (files.clone(), self.idle);
        tokio::task::spawn_blocking(move || files.sweep_blocking(idle))
            .await
            .map_err(std::io::Error::other)?
            .map_err(StoreError::Io)
    }

    /// How long a session may stay in the store: until it ends.
    fn ttl(&self, ends: OffsetDateTime) -> Duration {
        ttl_until(ends)
    }

    /// The cookie codec (for the middleware).
    pub fn codec(&self) -> &CookieCodec {
        &self.codec
    }

    fn ends(&self, record: &SessionRecord) -> OffsetDateTime {
        record.ends(self.idle)
    }
}
