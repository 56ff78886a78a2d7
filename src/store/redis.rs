//! Sessions and users in Redis, for several Wicket instances behind one load balancer.
//!
//! Keys (under a prefix, `wicket` by default):
//! - `<prefix>:session:<id>`: the session's JSON document (the same as a session file),
//!   with a TTL at the session's end, so Redis itself drops ended sessions.
//! - `<prefix>:user:<lower-case name>`: the user's JSON document; created with `SET NX`,
//!   so Redis decides which of two concurrent registrations wins.
//!
//! Every call has a deadline: when Redis is unreachable or stalls, callers get
//! [`StoreError::Unavailable`] (a 503) quickly, and the pool reconnects by itself once
//! Redis is back.

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands, SetExpiry, SetOptions};
use deadpool_redis::{Config as PoolConfig, Pool, Runtime, Timeouts};

use super::{NameTaken, SessionId, SessionRecord, SessionStore, StoreError, StoreFuture};
use super::{User, UserStore};
use crate::domain::Username;

/// The longest any one Redis call may take before the request gets a 503.
const DEADLINE: Duration = Duration::from_secs(2);

/// A pool of Redis connections and the key prefix.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisStore {
    /// A pool for `url` (`redis://HOST:PORT/DB`). Connects lazily: Wicket starts even
    /// while Redis is down.
    pub fn open(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let mut config = PoolConfig::from_url(url);
        let mut pool = config.get_pool_config();
        pool.max_size = 16;
        pool.timeouts = Timeouts {
            wait: Some(DEADLINE),
            create: Some(DEADLINE),
            recycle: Some(DEADLINE),
        };
        config.pool = Some(pool);
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            // Not the URL: it may carry a password.
            .map_err(|err| StoreError::Config(format!("redis store: {err}")))?;
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
        })
    }

    fn session_key(&self, id: &SessionId) -> String {
        format!("{}:session:{}", self.prefix, id.as_str())
    }

    fn user_key(&self, key: &str) -> String {
        format!("{}:user:{key}", self.prefix)
    }

    /// Runs `command` on a pooled connection within the deadline.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut deadpool_redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let work = async {
            let mut conn = self.pool.get().await.map_err(StoreError::unavailable)?;
            command(&mut conn).await.map_err(StoreError::unavailable)
        };
        tokio::time::timeout(DEADLINE, work)
            .await
            .map_err(|_| StoreError::Unavailable("redis did not answer in time".into()))?
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(async |conn| redis::cmd("PING").query_async::<String>(conn).await)
            .await
            .map(drop)
    }

    /// `SET` with an expiry: only if new (`NX`), or only if present (`XX`).
    async fn set_session(
        &self,
        id: &SessionId,
        record: &SessionRecord,
        ttl: Duration,
        exists: redis::ExistenceCheck,
    ) -> Result<bool, StoreError> {
        let key = self.session_key(id);
        let json = serde_json::to_string(record).map_err(|err| StoreError::Io(err.into()))?;
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let options = SetOptions::default()
            .conditional_set(exists)
            .with_expiration(SetExpiry::PX(millis));
        let written: Option<String> = self
            .run(async |conn| conn.set_options(&key, json, options).await)
            .await?;
        Ok(written.is_some())
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let key = self.session_key(id);
            let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
            Ok(json.and_then(|json| match serde_json::from_str(&json) {
                Ok(record) => Some(record),
                Err(err) => {
                    tracing::warn!(?id, %err, "corrupt session in redis");
                    None
                }
            }))
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.set_session(id, record, ttl, redis::ExistenceCheck::NX))
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        // XX: a key deleted meanwhile (a logout) stays deleted.
        Box::pin(async move {
            self.set_session(id, record, ttl, redis::ExistenceCheck::XX)
                .await
                .map(drop)
        })
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.session_key(id);
            self.run(async |conn| conn.del::<_, ()>(&key).await).await
        })
    }

    fn sweep(&self, _unused_for: Duration, _keep_for: Duration) -> StoreFuture<'_, usize> {
        // Every key carries a TTL at its session's end: Redis drops them itself.
        Box::pin(async { Ok(0) })
    }
}

impl UserStore for RedisStore {
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let key = self.user_key(&name.key());
            let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
            json.map(|json| serde_json::from_str(&json).map_err(StoreError::corrupt))
                .transpose()
        })
    }

    /// `SET NX`: Redis decides which of two concurrent registrations wins.
    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>> {
        Box::pin(async move {
            let key = self.user_key(&user.key());
            let json = serde_json::to_string(user).map_err(|err| StoreError::Io(err.into()))?;
            let created: bool = self.run(async |conn| conn.set_nx(&key, json).await).await?;
            Ok(if created { Ok(()) } else { Err(NameTaken) })
        })
    }

    fn replace<'a>(&'a self, user: &'a User) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.user_key(&user.key());
            let json = serde_json::to_string(user).map_err(|err| StoreError::Io(err.into()))?;
            let options = SetOptions::default().conditional_set(redis::ExistenceCheck::XX);
            let written: Option<String> = self
                .run(async |conn| conn.set_options(&key, json, options).await)
                .await?;
            Ok(written.is_some())
        })
    }
}
