//! Recently read session records, kept in memory in front of the file store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::files::FileStamp;
use super::{FileSessionStore, SessionId, SessionRecord, SessionStore, StoreFuture};

/// Records kept in memory at most (a few MiB).
const CAPACITY: usize = 10_000;

/// The file store with recently read records kept in memory, the way tower-sessions'
/// `CachingSessionStore` wraps a store.
///
/// A read stats the file and reuses the record only if the file is unchanged (same
/// inode, size and mtime), so the file stays the truth: edited, replaced or deleted by
/// anyone, it is read afresh. A stat costs about a quarter of open + read + close.
#[derive(Debug, Clone)]
pub struct CachingSessionStore {
    files: FileSessionStore,
    recent: Arc<Mutex<HashMap<SessionId, (FileStamp, SessionRecord)>>>,
}

impl CachingSessionStore {
    /// Caches records read from `files`.
    pub fn new(files: FileSessionStore) -> Self {
        Self {
            files,
            recent: Arc::default(),
        }
    }

    fn recent(&self) -> MutexGuard<'_, HashMap<SessionId, (FileStamp, SessionRecord)>> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget(&self, id: &SessionId) {
        self.recent().remove(id);
    }
}

impl SessionStore for CachingSessionStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let Some(stamp) = self.files.stamp(id)? else {
                self.forget(id);
                // Swept: ended by time. Rare, so not cached.
                return self.files.read_ended(id);
            };
            if let Some((seen, record)) = self.recent().get(id)
                && *seen == stamp
            {
                return Ok(Some(record.clone()));
            }
            let Some((stamp, record)) = self.files.read(id)? else {
                self.forget(id);
                return Ok(None);
            };
            let mut recent = self.recent();
            if recent.len() >= CAPACITY {
                recent.clear(); // crude but bounded; it refills from the hot sessions
            }
            recent.insert(id.clone(), (stamp, record.clone()));
            Ok(Some(record))
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.files.create(id, record, ttl)
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        self.forget(id);
        self.files.touch(id, record, ttl)
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        self.forget(id);
        self.files.remove(id)
    }

    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
    ) -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>> {
        self.files.sessions_of(user)
    }

    fn sweep(&self, unused_for: Duration, keep_for: Duration) -> StoreFuture<'_, usize> {
        // Swept ids may linger here; the stat on the next read finds them gone.
        self.files.sweep(unused_for, keep_for)
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        self.files.ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil;
    use time::OffsetDateTime;

    #[tokio::test]
    async fn a_file_changed_or_deleted_behind_the_stores_back_is_read_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = CachingSessionStore::new(FileSessionStore::open(dir.path()).unwrap());
        let id = SessionId::generate();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let record = SessionRecord::new("alice", now, now);
        store
            .create(&id, &record, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.load(&id).await.unwrap().unwrap().user, "alice");
        assert_eq!(store.recent().len(), 1, "the record is cached");
        let path = dir.path().join(format!("{}.json", id.as_str()));
        let mut other = record.clone();
        other.user = "mallory-was-here".into();
        fsutil::write_atomic(&path, &serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().user,
            "mallory-was-here"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(store.load(&id).await.unwrap(), None);
        assert!(store.recent().is_empty());
    }
}
