//! Server-side sessions.
//!
//! The cookie holds `<id>.<mac>`: a 256-bit random id and its HMAC-SHA256 under a key
//! derived from the server secret, both hex. The MAC is checked in constant time and the
//! id's characters are checked before the id ever becomes a file name; the session's data
//! lives only in `<sessions dir>/<id>.json`.

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
use crate::error::AppError;

/// How stale `last_seen` may get before a request records activity. Writing at most
/// once a minute keeps reads cheap; the idle timeout is accurate to this much.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// What a session file holds.
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
    store: FileSessionStore,
    idle: Duration,
    lifetime: Duration,
}

/// The current time, to the second (session files need no more).
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

impl Sessions {
    /// Sessions signed by `codec`, stored in `store`, ending after `idle` without
    /// requests or `lifetime` after login.
    pub fn new(
        codec: CookieCodec,
        store: FileSessionStore,
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

    /// The session a `Cookie` header value names, if it is genuine, known and unexpired.
    pub async fn resume(&self, cookie_value: &str) -> Option<Session> {
        let id = self.codec.verify(cookie_value)?;
        let record = self.store.load(&id).await?;
        let now = now();
        let ends = self.ends(&record);
        if now >= ends {
            tracing::info!(user = %record.user, "session expired");
            if let Err(err) = self.store.remove(&id).await {
                tracing::warn!(%err, "could not delete an expired session file");
            }
            return None;
        }
        let mut session = Session { id, record, ends };
        if now - session.record.last_seen >= TOUCH_EVERY {
            session.record.last_seen = now;
            session.ends = self.ends(&session.record);
            if let Err(err) = self.store.touch(&session.id, &session.record).await {
                tracing::warn!(%err, "could not record session activity");
            }
        }
        Some(session)
    }

    /// Logs `user` in: a brand-new session (the `replacing` one, if any, is deleted).
    /// Returns the `Set-Cookie` value that carries it.
    pub async fn start(
        &self,
        user: &str,
        replacing: Option<&Session>,
    ) -> Result<(Session, HeaderValue), AppError> {
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
        self.store.create(&id, &record).await?;
        let cookie = self.codec.set_cookie(&id, self.lifetime);
        let ends = self.ends(&record);
        Ok((Session { id, record, ends }, cookie))
    }

    /// Logs out: deletes the session file. Returns the `Set-Cookie` value that clears it.
    pub async fn end(&self, session: &Session) -> Result<HeaderValue, AppError> {
        self.store.remove(&session.id).await?;
        Ok(self.codec.clear_cookie())
    }

    /// Deletes the files of idle sessions (see [`FileSessionStore::sweep_blocking`]).
    /// Runs on the blocking pool, so requests on the async threads are never held up.
    pub async fn sweep(&self) -> std::io::Result<usize> {
        let (store, idle) = (self.store.clone(), self.idle);
        tokio::task::spawn_blocking(move || store.sweep_blocking(idle))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The cookie codec (for the middleware).
    pub fn codec(&self) -> &CookieCodec {
        &self.codec
    }

    fn ends(&self, record: &SessionRecord) -> OffsetDateTime {
        record.expires.min(record.last_seen + self.idle)
    }
}
