//! Recently read session records, kept in memory in front of the file store.

use std::sync::Arc;
use std::time::Duration;

use super::files::FileStamp;
use super::watch::Watched;
use super::{FileSessionStore, SessionId, SessionRecord, SessionStore, StoreFuture};

/// Records kept in memory at most (a few MiB).
const CAPACITY: usize = 10_000;

/// The file store with recently read records kept in memory, the way tower-sessions'
/// `CachingSessionStore` wraps a store.
///
/// The file stays the truth: edited, replaced or deleted by anyone, it is read afresh
/// on the next request. The sessions directory's change notifications say when (see
/// [`Watched`]); without them, a read stats the file and reuses the record only if the
/// file is unchanged (same inode, size and mtime). The notifications cost a quarter of
/// the `stat` (which costs a quarter of open + read + close): see the README's bench.
#[derive(Debug, Clone)]
pub struct CachingSessionStore {
    files: FileSessionStore,
    recent: Arc<Watched<SessionId, (FileStamp, SessionRecord)>>,
}

impl CachingSessionStore {
    /// Caches records read from `files`.
    pub fn new(files: FileSessionStore) -> Self {
        let recent = Watched::new(files.dir(), session_file, CAPACITY);
        Self {
            files,
            recent: Arc::new(recent),
        }
    }
}

/// The session a file name in the sessions directory is for: `<id>.json` only.
fn session_file(name: &str) -> Option<SessionId> {
    name.strip_suffix(".json").and_then(SessionId::parse)
}

impl SessionStore for CachingSessionStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let lookup = self.recent.get(id);
            match lookup.value {
                Some((_, record)) if lookup.ticket.watched() => return Ok(Some(record)),
                Some((seen, record)) => match self.files.stamp(id)? {
                    Some(stamp) if stamp == seen => return Ok(Some(record)),
                    _ => self.recent.remove(id),
                },
                None => {}
            }
            let Some((stamp, record)) = self.files.read(id)? else {
                // Swept: ended by time. Rare, so not cached.
                return self.files.read_ended(id);
            };
            self.recent
                .insert(lookup.ticket, id.clone(), (stamp, record.clone()));
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
        self.recent.remove(id);
        self.files.touch(id, record, ttl)
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        self.recent.remove(id);
        self.files.remove(id)
    }

    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
    ) -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>> {
        self.files.sessions_of(user)
    }

    fn sweep(&self, unused_for: Duration, keep_for: Duration) -> StoreFuture<'_, usize> {
        // Swept ids are dropped by their rename's notification (or the next stat).
        self.files.sweep(unused_for, keep_for)
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        self.files.ready()
    }

    fn all(&self) -> StoreFuture<'_, Vec<SessionRecord>> {
        self.files.all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil;
    use time::OffsetDateTime;

    /// Checks that edits, replacements and deletions from outside are read afresh.
    async fn changes_behind_the_stores_back_are_read_afresh(store: CachingSessionStore) {
        let dir = store.files.dir().to_owned();
        let id = SessionId::generate();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let record =
            SessionRecord::new(&crate::domain::Username::parse("alice").unwrap(), now, now);
        store
            .create(&id, &record, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().user.as_str(),
            "alice"
        );
        assert_eq!(store.recent.len(), 1, "the record is cached");
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().user.as_str(),
            "alice"
        );
        let path = dir.join(format!("{}.json", id.as_str()));
        let mut other = record.clone();
        other.user = crate::domain::Username::parse("mallory-was-here").unwrap();
        fsutil::write_atomic(&path, &serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().user.as_str(),
            "mallory-was-here"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(store.load(&id).await.unwrap(), None);
        assert!(store.recent.is_empty());
    }

    #[tokio::test]
    async fn watched_a_file_changed_or_deleted_behind_the_stores_back_is_read_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = CachingSessionStore::new(FileSessionStore::open(dir.path()).unwrap());
        assert!(store.recent.is_watching());
        changes_behind_the_stores_back_are_read_afresh(store).await;
    }

    #[tokio::test]
    async fn unwatched_a_file_changed_or_deleted_behind_the_stores_back_is_read_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileSessionStore::open(dir.path()).unwrap();
        let store = CachingSessionStore {
            files,
            recent: Arc::new(Watched::unwatched(session_file, CAPACITY)),
        };
        changes_behind_the_stores_back_are_read_afresh(store).await;
    }
}
