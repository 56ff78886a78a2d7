use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{SessionId, SessionRecord};
use crate::fsutil;

/// Lock stripes: touches and removals of one id never interleave.
const STRIPES: usize = 64;
/// A temp file (or an unparsable session file) this old is debris, not a write in flight.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// Sessions as `<dir>/<id>.json`, one file each, written atomically.
#[derive(Clone)]
pub struct FileSessionStore {
    dir: Arc<PathBuf>,
    stripes: Arc<[Mutex<()>; STRIPES]>,
}

impl FileSessionStore {
    /// Opens (creating, owner-only) the sessions directory.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fsutil::create_private_dir(dir)?;
        Ok(Self {
            dir: Arc::new(dir.to_path_buf()),
            stripes: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        })
    }

    fn path(&self, id: &SessionId) -> PathBuf {
        // SessionId only ever holds [0-9a-f]{64}: no separators, no dots.
        self.dir.join(format!("{}.json", id.as_str()))
    }

    /// The record for `id`; `None` if there is none or it cannot be read (logged).
    pub async fn load(&self, id: &SessionId) -> Option<SessionRecord> {
        let bytes = match tokio::fs::read(self.path(id)).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(?id, %err, "unreadable session file");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(?id, %err, "corrupt session file");
                None
            }
        }
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

    /// Deletes every session `is_over` says has ended, plus corrupt files and stray
    /// temp files. Blocking: run it on the blocking pool. Returns how many went.
    ///
    /// A file's mtime is when it was last written, which is never earlier than the
    /// `last_seen` inside it: if even the mtime is past the idle timeout, the file is
    /// over without being read. Only the rest are read.
    pub fn sweep_blocking(
        &self,
        idle: Duration,
        is_over: impl Fn(&SessionRecord) -> bool,
    ) -> io::Result<usize> {
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
            let over = age >= idle
                || match std::fs::read(entry.path()) {
                    Ok(bytes) => {
                        serde_json::from_slice(&bytes).map_or(age > STALE_TEMP, |r| is_over(&r))
                    }
                    Err(_) => false,
                };
            if over {
                let _guard = self.lock(&id);
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
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
        let text =
            std::fs::read_to_string(dir.path().join(format!("{}.json", id.as_str()))).unwrap();
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
        let path = dir.path().join(format!("{}.json", id.as_str()));
        for junk in [&b""[..], b"{\"user\":", b"\xff\xfe", b"[]"] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(store.load(&id).await, None);
        }
    }
}
