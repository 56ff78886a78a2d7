use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{SessionId, SessionRecord};
use crate::fsutil;

/// Lock stripes: touches and removals of one id never interleave.
const STRIPES: usize = 64;
/// Records kept in memory at most (a few MiB).
const RECENT_CAPACITY: usize = 10_000;
/// No genuine session file comes near this size.
const MAX_SESSION_BYTES: u64 = 64 * 1024;
/// A temp file this old is debris, not a write in flight.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// Sessions as `<dir>/<id>.json`, one file each, written atomically.
///
/// Recently read records are kept in memory, each with the identity of the file it
/// came from (inode, size, mtime). A read stats the file and reuses the record only if
/// the file is unchanged, so the file stays the truth: edited, replaced or deleted by
/// anyone, it is read afresh. A stat costs about a quarter of open + read + close.
#[derive(Clone)]
pub struct FileSessionStore {
    dir: Arc<PathBuf>,
    stripes: Arc<[Mutex<()>; STRIPES]>,
    recent: Arc<Mutex<HashMap<String, (FileStamp, SessionRecord)>>>,
}

/// Which version of a file a cached record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl std::fmt::Debug for FileSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSessionStore")
            .field("dir", &self.dir)
            .finish()
    }
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

impl FileSessionStore {
    /// Opens (creating, owner-only) the sessions directory.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fsutil::create_private_dir(dir)?;
        Ok(Self {
            dir: Arc::new(dir.to_path_buf()),
            stripes: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
            recent: Arc::default(),
        })
    }

    fn path(&self, id: &SessionId) -> PathBuf {
        // SessionId only ever holds [0-9a-f]{64}: no separators, no dots.
        self.dir.join(format!("{}.json", id.as_str()))
    }

    /// The record for `id`; `None` if there is none or it cannot be read (logged).
    ///
    /// This is every member request's hot path, so the file system is asked right here
    /// rather than on the blocking pool: a stat (and, when the file changed, a read of a
    /// few hundred bytes) from the page cache takes microseconds, less than the hand-off
    /// to another thread and back (measured with `bench/run.sh`). Writes, which fsync,
    /// do go to the blocking pool.
    pub async fn load(&self, id: &SessionId) -> Option<SessionRecord> {
        let path = self.path(id);
        let stamp = match std::fs::metadata(&path) {
            Ok(meta) => FileStamp::of(&meta),
            Err(err) => {
                self.forget(id);
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(?id, %err, "unreadable session file");
                }
                return None;
            }
        };
        if let Some((seen, record)) = self.recent().get(id.as_str())
            && *seen == stamp
        {
            return Some(record.clone());
        }
        let parsed = read_small(&path).and_then(|bytes| {
            serde_json::from_slice::<SessionRecord>(&bytes)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
        });
        match parsed {
            Ok(record) => {
                let mut recent = self.recent();
                if recent.len() >= RECENT_CAPACITY {
                    recent.clear(); // crude but bounded; it refills from the hot sessions
                }
                recent.insert(id.as_str().to_owned(), (stamp, record.clone()));
                Some(record)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => {
                tracing::warn!(?id, %err, "corrupt or unreadable session file");
                None
            }
        }
    }

    /// The ids of every session file (for `wicket migrate`). Blocking.
    pub fn ids_blocking(&self) -> io::Result<Vec<SessionId>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&*self.dir)? {
            let name = entry?.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(SessionId::parse)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, HashMap<String, (FileStamp, SessionRecord)>> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget(&self, id: &SessionId) {
        self.recent().remove(id.as_str());
    }

    /// Writes a new session; fails rather than replace an existing one.
    pub async fn create(&self, id: &SessionId, record: &SessionRecord) -> io::Result<()> {
        let path = self.path(id);
        let bytes = to_json(record)?;
        blocking(move || fsutil::create_atomic(&path, &bytes)).await
    }

    /// Rewrites an existing session's record; does nothing if it was removed meanwhile,
    /// so a request racing a logout cannot bring the session back.
    pub async fn touch(&self, id: &SessionId, record: &SessionRecord) -> io::Result<()> {
        let path = self.path(id);
        let bytes = to_json(record)?;
        self.forget(id);
        let this = self.clone();
        let id = id.clone();
        blocking(move || {
            let _guard = this.lock(&id);
            if !path.exists() {
                return Ok(());
            }
            fsutil::write_atomic(&path, &bytes)
        })
        .await
    }

    /// Deletes a session; deleting one that is already gone is not an error.
    pub async fn remove(&self, id: &SessionId) -> io::Result<()> {
        let path = self.path(id);
        self.forget(id);
        let this = self.clone();
        let id = id.clone();
        blocking(move || {
            let _guard = this.lock(&id);
            match std::fs::remove_file(&path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            }
        })
        .await
    }

    /// Deletes session files idle for `idle` or longer, and stray temp files.
    /// Blocking: run it on the blocking pool. Returns how many sessions went.
    ///
    /// It reads no file, only directory entries and mtimes, so it stays cheap at a
    /// million sessions. A session file is written at login and whenever activity is
    /// recorded, with `last_seen` set to that moment: its mtime *is* its last activity.
    /// A session past its absolute lifetime is refused (and deleted) when presented,
    /// and since it can no longer be touched it goes idle and is swept too.
    pub fn sweep_blocking(&self, idle: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(&*self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue; // removed meanwhile
            };
            let age = now.duration_since(modified).unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                if age > STALE_TEMP {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            let Some(id) = name.strip_suffix(".json").and_then(SessionId::parse) else {
                continue; // not ours: leave it alone
            };
            if age < idle {
                continue;
            }
            let _guard = self.lock(&id);
            self.forget(&id);
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(removed)
    }

    fn lock(&self, id: &SessionId) -> std::sync::MutexGuard<'_, ()> {
        let stripe = usize::from(id.as_str().as_bytes()[0]) % STRIPES;
        // A panic while holding a stripe poisons nothing we rely on: the guard has no data.
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads a file of at most `MAX_SESSION_BYTES` (more is an error: no session file
/// is that big), with no `stat` call first.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(512);
    std::fs::File::open(path)?
        .take(MAX_SESSION_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "session file too large",
        ));
    }
    Ok(bytes)
}

fn to_json(record: &SessionRecord) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

async fn blocking(work: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn file_of(dir: &tempfile::TempDir, id: &SessionId) -> PathBuf {
        dir.path().join(format!("{}.json", id.as_str()))
    }

    fn record() -> SessionRecord {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        SessionRecord {
            user: "alice".into(),
            created: now,
            last_seen: now,
            expires: now,
        }
    }

    #[tokio::test]
    async fn a_created_session_loads_back_and_is_readable_json() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store.create(&id, &record()).await.unwrap();
        assert_eq!(store.load(&id).await, Some(record()));
        let text = std::fs::read_to_string(file_of(&dir, &id)).unwrap();
        assert!(text.contains("\"user\": \"alice\""), "{text}");
    }

    #[tokio::test]
    async fn touching_a_removed_session_does_not_resurrect_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store.create(&id, &record()).await.unwrap();
        store.remove(&id).await.unwrap();
        store.touch(&id, &record()).await.unwrap();
        assert_eq!(store.load(&id).await, None);
        store.remove(&id).await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_or_empty_files_load_as_no_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        let path = file_of(&dir, &id);
        for junk in [&b""[..], b"{\"user\":", b"\xff\xfe", b"[]"] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(store.load(&id).await, None);
        }
    }

    fn age(path: &Path, by: Duration) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[tokio::test]
    async fn the_sweep_removes_idle_sessions_and_debris_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let (live, idle) = (SessionId::generate(), SessionId::generate());
        store.create(&live, &record()).await.unwrap();
        store.create(&idle, &record()).await.unwrap();
        age(&file_of(&dir, &idle), Duration::from_secs(1801));
        let debris = dir.path().join(".x.json.0123.tmp");
        std::fs::write(&debris, "half").unwrap();
        age(&debris, Duration::from_secs(3600));
        let foreign = dir.path().join("notes.txt");
        std::fs::write(&foreign, "not a session").unwrap();
        age(&foreign, Duration::from_secs(3600));

        assert_eq!(store.sweep_blocking(Duration::from_secs(1800)).unwrap(), 1);
        assert!(store.load(&live).await.is_some());
        assert!(store.load(&idle).await.is_none());
        assert!(!debris.exists());
        assert!(foreign.exists(), "foreign files are left alone");
    }

    #[tokio::test]
    async fn the_sweep_goes_by_mtime_not_by_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        // Content says "active now", but nothing has written it for an hour: idle.
        let quiet = SessionId::generate();
        store.create(&quiet, &record()).await.unwrap();
        age(&file_of(&dir, &quiet), Duration::from_secs(3600));
        // Content is garbage but freshly written: not the sweep's business yet
        // (a request presenting it is simply anonymous).
        let fresh = SessionId::generate();
        let fresh_path = file_of(&dir, &fresh);
        std::fs::write(&fresh_path, "{ garbage").unwrap();

        assert_eq!(store.sweep_blocking(Duration::from_secs(1800)).unwrap(), 1);
        assert!(store.load(&quiet).await.is_none());
        assert!(fresh_path.exists());
    }

    #[tokio::test]
    async fn a_file_changed_or_deleted_behind_the_stores_back_is_read_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store.create(&id, &record()).await.unwrap();
        assert_eq!(store.load(&id).await.unwrap().user, "alice");
        let path = file_of(&dir, &id);
        let mut other = record();
        other.user = "mallory-was-here".into();
        fsutil::write_atomic(&path, &serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(store.load(&id).await.unwrap().user, "mallory-was-here");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(store.load(&id).await, None);
    }
}
