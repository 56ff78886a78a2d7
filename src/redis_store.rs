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

use crate::session::{SessionId, SessionRecord};
use crate::store::StoreError;
use crate::users::{NameTaken, User};

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

    /// The session `id`, if Redis has it (a corrupt document is no session, and logged).
    pub async fn load_session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.session_key(id);
        let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
        Ok(json.and_then(|json| match serde_json::from_str(&json) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(?id, %err, "corrupt session in redis");
                None
            }
        }))
    }

    /// Writes a session that lives `ttl`: a new one (`only_new`), or an update that
    /// never recreates one deleted meanwhile (so a logout cannot be undone by a race).
    pub async fn put_session(
        &self,
        id: &SessionId,
        record: &SessionRecord,
        ttl: Duration,
        only_new: bool,
    ) -> Result<bool, StoreError> {
        let key = self.session_key(id);
        let json = serde_json::to_string(record).map_err(|err| StoreError::Io(err.into()))?;
        let exists = if only_new {
            redis::ExistenceCheck::NX
        } else {
            redis::ExistenceCheck::XX
        };
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let options = SetOptions::default()
            .conditional_set(exists)
            .with_expiration(SetExpiry::PX(millis));
        let written: Option<String> = self
            .run(async |conn| conn.set_options(&key, json, options).await)
            .await?;
        Ok(written.is_some())
    }

    /// Deletes a session (a missing one is not an error).
    pub async fn remove_session(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = self.session_key(id);
        self.run(async |conn| conn.del::<_, ()>(&key).await).await
    }

    /// The user stored under `key` (a lower-case name).
    pub async fn get_user(&self, key: &str) -> Result<Option<User>, StoreError> {
        let key = self.user_key(key);
        let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|err| {
                StoreError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, err))
            })
        })
        .transpose()
    }

    /// Stores a new user under `key` unless the name is taken (`SET NX`: atomic).
    pub async fn create_user(
        &self,
        key: &str,
        user: &User,
    ) -> Result<Result<(), NameTaken>, StoreError> {
        let key = self.user_key(key);
        let json = serde_json::to_string(user).map_err(|err| StoreError::Io(err.into()))?;
        let created: bool = self.run(async |conn| conn.set_nx(&key, json).await).await?;
        Ok(if created { Ok(()) } else { Err(NameTaken) })
    }
}
