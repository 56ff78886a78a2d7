//! Sessions and users in Redis, for several Wicket instances behind one load balancer.
//!
//! Keys (under a prefix, `wicket` by default):
//! - `<prefix>:session:<id>`: the session's JSON document (the same as a session file),
//!   with a TTL at the session's end, so Redis itself drops ended sessions.
//! - `<prefix>:user:<lower-case name>`: the user's JSON document; created with `SET NX`,
//!   so Redis decides which of two concurrent registrations wins.
//! - `<prefix>:count:<key>`: a rate-limit counter, expiring with its window; one script
//!   checks, increments and sets the expiry atomically, so every instance counts
//!   towards one limit.
//!
//! Every call has a deadline: when Redis is unreachable or stalls, callers get
//! [`StoreError::Unavailable`] (a 503) quickly, and the pool reconnects by itself once
//! Redis is back.
//!
//! One file per interface, as in `files/`: `sessions.rs`, `users.rs`, `counters.rs`,
//! `tokens.rs`; this one holds the connection pool, the key names and the deadline.

pub mod backup;
mod counters;
mod grants;
mod journal;
mod sessions;
mod tokens;
mod users;

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};
use deadpool_redis::{Config as PoolConfig, Pool, Runtime, Timeouts};

use super::tokens::{ClaimKey, TokenKey};
use super::{SessionId, StoreError};

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
        // Key patterns (`SCAN MATCH`) are built from the prefix: no glob in it.
        let plain = |c: char| c.is_ascii_graphic() && !matches!(c, '*' | '?' | '[' | ']' | '\\');
        if prefix.is_empty() || !prefix.chars().all(plain) {
            return Err(StoreError::Config(
                "--store-prefix: letters, digits and punctuation other than * ? [ ] \\".into(),
            ));
        }
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

    fn count_key(&self, key: &str) -> String {
        format!("{}:count:{key}", self.prefix)
    }

    fn token_key(&self, key: &TokenKey) -> String {
        format!("{}{}", self.token_key_prefix(), key.as_str())
    }

    /// Every key matching `pattern` (`SCAN`) with its value (`MGET`, 500 at a time),
    /// skipping keys gone meanwhile: for the operator's listings, not for requests.
    async fn scan_values(&self, pattern: &str) -> Result<Vec<(String, String)>, StoreError> {
        let keys = self.keys_matching(pattern).await?;
        let mut found = Vec::new();
        for chunk in keys.chunks(500) {
            let docs: Vec<Option<String>> = self.run(async |conn| conn.mget(chunk).await).await?;
            let values = chunk.iter().zip(docs);
            found.extend(values.filter_map(|(key, json)| Some((key.clone(), json?))));
        }
        Ok(found)
    }

    /// Every key matching `pattern` (`SCAN`): for the operator's listings and backups.
    async fn keys_matching(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.run(async |conn| {
            let mut keys = Vec::new();
            let mut iter = conn.scan_match::<_, String>(pattern).await?;
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            Ok(keys)
        })
        .await
    }

    fn token_key_prefix(&self) -> String {
        format!("{}:token:", self.prefix)
    }

    fn claim_key(&self, key: &ClaimKey) -> String {
        format!("{}:{}:{}", self.prefix, key.index().name(), key.as_str())
    }

    fn user_key(&self, key: &str) -> String {
        format!("{}:user:{key}", self.prefix)
    }

    /// The set of a user's session ids (the per-user index).
    fn index_key(&self, user: &str) -> String {
        format!(
            "{}:user-sessions:{}",
            self.prefix,
            user.to_ascii_lowercase()
        )
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_holds_no_scan_pattern() {
        for prefix in ["wicket", "site:other", "prod-1"] {
            assert!(
                RedisStore::open("redis://127.0.0.1:1/0", prefix).is_ok(),
                "{prefix}"
            );
        }
        for prefix in ["", "a*", "a?", "[ab]", "a\\b", "with space"] {
            let refused = RedisStore::open("redis://127.0.0.1:1/0", prefix).unwrap_err();
            assert!(
                refused.to_string().contains("--store-prefix"),
                "{prefix}: {refused}"
            );
        }
    }
}
