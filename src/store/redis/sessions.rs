//! Sessions in Redis: `<prefix>:session:<id>` with a TTL at the session's end, and a
//! per-user set of ids as the index.

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands, SetExpiry, SetOptions};

use super::RedisStore;
use crate::store::{SessionId, SessionRecord, SessionStore, StoreError, StoreFuture};

impl RedisStore {
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
        if written.is_some() {
            // The index lives as long as the user's longest session: NX gives a new set
            // an expiry, GT only ever extends it.
            let index = self.index_key(&record.user);
            let secs = ttl.as_secs().max(1);
            self.run(async |conn| {
                redis::pipe()
                    .sadd(&index, id.as_str())
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&index)
                    .arg(secs)
                    .arg("NX")
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&index)
                    .arg(secs)
                    .arg("GT")
                    .ignore()
                    .query_async::<()>(conn)
                    .await
            })
            .await?;
        }
        Ok(written.is_some())
    }

    fn parse_session(id: &SessionId, json: &str) -> Option<SessionRecord> {
        match serde_json::from_str(json) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(?id, %err, "corrupt session in redis");
                None
            }
        }
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let key = self.session_key(id);
            let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
            Ok(json.and_then(|json| Self::parse_session(id, &json)))
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
            let Some(record) = self.load(id).await? else {
                let key = self.session_key(id);
                return self.run(async |conn| conn.del::<_, ()>(&key).await).await;
            };
            let (key, index) = (self.session_key(id), self.index_key(&record.user));
            self.run(async |conn| {
                redis::pipe()
                    .del(&key)
                    .ignore()
                    .srem(&index, id.as_str())
                    .ignore()
                    .query_async::<()>(conn)
                    .await
            })
            .await
        })
    }

    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
    ) -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>> {
        Box::pin(async move {
            let index = self.index_key(user);
            let members: Vec<String> = self.run(async |conn| conn.smembers(&index).await).await?;
            let ids: Vec<SessionId> = members.iter().filter_map(|m| SessionId::parse(m)).collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = ids.iter().map(|id| self.session_key(id)).collect();
            let docs: Vec<Option<String>> = self.run(async |conn| conn.mget(&keys).await).await?;
            let mut found = Vec::new();
            let mut gone = Vec::new();
            for (id, doc) in ids.into_iter().zip(docs) {
                match doc.and_then(|json| Self::parse_session(&id, &json)) {
                    Some(record) if record.user.eq_ignore_ascii_case(user) => {
                        found.push((id, record))
                    }
                    _ => gone.push(id.as_str().to_owned()),
                }
            }
            if !gone.is_empty() {
                self.run(async |conn| conn.srem::<_, _, ()>(&index, &gone).await)
                    .await?;
            }
            Ok(found)
        })
    }

    fn sweep(&self, _unused_for: Duration, _keep_for: Duration) -> StoreFuture<'_, usize> {
        // Every key carries a TTL at its session's end: Redis drops them itself.
        Box::pin(async { Ok(0) })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.ping())
    }

    fn all(&self) -> StoreFuture<'_, Vec<SessionRecord>> {
        Box::pin(async move {
            let pattern = format!("{}:session:*", self.prefix);
            let docs = self.scan_values(&pattern).await?;
            // One unreadable document is skipped here (loading it says why).
            Ok(docs
                .iter()
                .filter_map(|(_, json)| serde_json::from_str(json).ok())
                .collect())
        })
    }
}
