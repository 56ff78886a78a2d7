//! Sessions as `<dir>/<id>.json`, with the per-user index beside them.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{blocking, ignore_missing, missing_or_unavailable, to_json};
use crate::domain::Username;
use crate::fsutil;
use crate::store::{SessionId, SessionRecord, SessionStore, StoreError, StoreFuture};

/// Lock stripes: a touch and a removal of one id never interleave.
const STRIPES: usize = 64;
/// No genuine session file comes near this size.
const MAX_SESSION_BYTES: u64 = 64 * 1024;
/// A temp file this old is debris, not a write in flight.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// Which version of a file a record came from: inode, size and mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    /// The stamp of the file `meta` describes.
    pub(in crate::store) fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// Sessions as `<dir>/<id>.json`, one file each.
///
/// The file is the truth: nothing about a session is kept anywhere else (the
/// [`super::CachingSessionStore`] in front of it notices every change to the file).
#[derive(Clone)]
pub struct FileSessionStore {
    dir: Arc<PathBuf>,
    stripes: Arc<[Mutex<()>; STRIPES]>,
}

impl std::fmt::Debug for FileSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSessionStore")
            .field("dir", &self.dir)
            .finish()
    }
}

impl FileSessionStore {
    /// Opens the sessions directory: created owner-only if missing, tightened to
    /// owner-only if it exists with a looser mode.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fsutil::private_dir(dir).map_err(|err| {
            StoreError::Config(format!("sessions directory {}: {err}", dir.display()))
        })?;
        Ok(Self {
            dir: Arc::new(dir.to_path_buf()),
            stripes: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        })
    }

    /// The directory the files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &SessionId) -> PathBuf {
        // SessionId only ever holds [0-9a-f]{64}: no separators, no dots.
        self.dir.join(format!("{}.json", id.as_str()))
    }

    fn ended_path(&self, id: &SessionId) -> PathBuf {
        self.dir.join(format!("{}.ended", id.as_str()))
    }

    /// The index directory of `user`, if the name is one a user can have.
    fn index_dir(&self, user: &str) -> Option<PathBuf> {
        // Only names a Username accepts: [a-z0-9_.-]{3,32}, never "." or "..".
        let key = Username::parse(user).ok()?.key();
        Some(self.dir.join("users").join(key))
    }

    /// Creates `id`'s entry in `user`'s index, or refreshes its mtime.
    ///
    /// Not fsynced: an entry lost in a crash costs nothing but a moment's listing, as
    /// the next recorded activity of its session writes it again (this is also how
    /// sessions from before the index join it). The session file itself is durable.
    fn index(&self, user: &str, id: &SessionId) -> io::Result<()> {
        let Some(dir) = self.index_dir(user) else {
            return Ok(());
        };
        let entry = dir.join(id.as_str());
        match std::fs::File::options().append(true).open(&entry) {
            Ok(file) => file.set_modified(SystemTime::now()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fsutil::private_dir(&dir)?;
                let created = std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&entry);
                match created {
                    Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(err),
                    _ => Ok(()),
                }
            }
            Err(err) => Err(err),
        }
    }

    fn unindex(&self, user: &str, id: &SessionId) -> io::Result<()> {
        match self.index_dir(user) {
            Some(dir) => ignore_missing(std::fs::remove_file(dir.join(id.as_str()))),
            None => Ok(()),
        }
    }

    /// `user`'s sessions as the index lists them (blocking); stale entries are dropped.
    fn sessions_of_blocking(&self, user: &str) -> io::Result<Vec<(SessionId, SessionRecord)>> {
        let Some(dir) = self.index_dir(user) else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().and_then(SessionId::parse) else {
                continue;
            };
            let record = self.read(&id).map_err(io::Error::other)?;
            match record {
                Some((_, record)) if record.user.eq_ignore_ascii_case(user) => {
                    found.push((id, record));
                }
                _ => ignore_missing(std::fs::remove_file(entry.path()))?,
            }
        }
        Ok(found)
    }

    /// Drops index entries nothing has refreshed for `unused_for` (blocking).
    fn sweep_index(&self, unused_for: Duration, now: SystemTime) -> io::Result<()> {
        let users = match std::fs::read_dir(self.dir.join("users")) {
            Ok(users) => users,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        for user in users {
            let Ok(entries) = std::fs::read_dir(user?.path()) else {
                continue; // removed meanwhile, or not a directory
            };
            for entry in entries {
                let entry = entry?;
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age >= unused_for);
                if old {
                    ignore_missing(std::fs::remove_file(entry.path()))?;
                }
            }
        }
        Ok(())
    }

    /// Which version of `id`'s file is on disk: `None` if there is none.
    ///
    /// A stat, asked right here rather than on the blocking pool: from the page cache
    /// it takes microseconds, less than the hand-off to another thread and back
    /// (measured with `bench/run.sh`). Writes, which fsync, go to the blocking pool.
    pub(in crate::store) fn stamp(&self, id: &SessionId) -> Result<Option<FileStamp>, StoreError> {
        match std::fs::metadata(self.path(id)) {
            Ok(meta) => Ok(Some(FileStamp::of(&meta))),
            Err(err) => missing_or_unavailable(err),
        }
    }

    /// Reads `id`'s file and the stamp of the version read. A missing file is
    /// `None`; a corrupt one is `None` too (logged): the member is simply not logged in.
    pub(in crate::store) fn read(
        &self,
        id: &SessionId,
    ) -> Result<Option<(FileStamp, SessionRecord)>, StoreError> {
        self.read_at(id, &self.path(id))
    }

    /// Reads what the sweep left of `id` once it ended by time, if anything.
    pub(in crate::store) fn read_ended(
        &self,
        id: &SessionId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .read_at(id, &self.ended_path(id))?
            .map(|(_, record)| record))
    }

    fn read_at(
        &self,
        id: &SessionId,
        path: &Path,
    ) -> Result<Option<(FileStamp, SessionRecord)>, StoreError> {
        let (stamp, bytes) = match read_small(path) {
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(?id, %err, "corrupt session file");
                return Ok(None);
            }
            Err(err) => return missing_or_unavailable(err),
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some((stamp, record))),
            Err(err) => {
                tracing::warn!(?id, %err, "corrupt session file");
                Ok(None)
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

    /// Ends session files whose mtime is `unused_for` old or older (renamed to
    /// `<id>.ended`, mtime kept), deletes `.ended` files `keep_for` older still, and
    /// stray temp files. Blocking. Returns how many sessions ended.
    ///
    /// It reads no file, only directory entries and mtimes, so it stays cheap at a
    /// million sessions. A session file is written at login and whenever activity is
    /// recorded: its mtime is its last recorded activity (or its login).
    pub fn sweep_blocking(&self, unused_for: Duration, keep_for: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(&*self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = entry.metadata() else {
                continue; // removed meanwhile
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                if age > STALE_TEMP {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            if let Some(id) = name.strip_suffix(".ended").and_then(SessionId::parse) {
                if age >= unused_for + keep_for {
                    let _guard = self.lock(&id);
                    ignore_missing(std::fs::remove_file(entry.path()))?;
                }
                continue;
            }
            let Some(id) = name.strip_suffix(".json").and_then(SessionId::parse) else {
                continue; // not ours: leave it alone
            };
            if age < unused_for {
                fsutil::private_file(&entry.path(), &meta)?;
                continue;
            }
            let _guard = self.lock(&id);
            match std::fs::rename(entry.path(), self.ended_path(&id)) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        self.sweep_index(unused_for, now)?;
        Ok(removed)
    }

    /// The stripe guarding `id`. Every character of the id picks it, so all stripes
    /// are used.
    fn lock(&self, id: &SessionId) -> MutexGuard<'_, ()> {
        let stripe = stripe_of(id);
        // A panic while holding a stripe poisons nothing we rely on: the guard has no data.
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

fn stripe_of(id: &SessionId) -> usize {
    let hash = id.as_str().bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    hash % STRIPES
}

/// Reads a file of at most `MAX_SESSION_BYTES` with the stamp of the version read
/// (from the open file, so the two always match). More is `InvalidData`.
fn read_small(path: &Path) -> io::Result<(FileStamp, Vec<u8>)> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let stamp = FileStamp::of(&file.metadata()?);
    let mut bytes = Vec::with_capacity(512);
    file.take(MAX_SESSION_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "session file too large",
        ));
    }
    Ok((stamp, bytes))
}

impl SessionStore for FileSessionStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            match self.read(id)? {
                Some((_, record)) => Ok(Some(record)),
                None => self.read_ended(id),
            }
        })
    }

    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        _ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (path, bytes) = (self.path(id), to_json(record)?);
            let (this, id, user) = (self.clone(), id.clone(), record.user.clone());
            let created = blocking(move || {
                match fsutil::create_atomic(&path, &bytes) {
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                    other => other?,
                }
                // Listed, or not there at all: a session nobody can see or end is worse
                // than a failed login.
                if let Err(err) = this.index(&user, &id) {
                    let _ = std::fs::remove_file(&path);
                    return Err(err);
                }
                Ok(true)
            });
            Ok(created.await?)
        })
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        _ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (path, bytes) = (self.path(id), to_json(record)?);
            let (this, id, user) = (self.clone(), id.clone(), record.user.clone());
            blocking(move || {
                // Under the id's lock, a removal cannot slip in between the check and
                // the rename: a touch either sees the file gone or finishes first.
                let _guard = this.lock(&id);
                if !path.exists() {
                    return Ok(());
                }
                fsutil::write_atomic(&path, &bytes)?;
                this.index(&user, &id)
            })
            .await
            .map_err(StoreError::from)
        })
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path(id);
            let (this, id) = (self.clone(), id.clone());
            let ended = self.ended_path(&id);
            blocking(move || {
                let _guard = this.lock(&id);
                // Whose it was, to drop the index entry too (a file gone or corrupt
                // leaves the entry to be dropped when the list is read).
                let owner = match this.read(&id) {
                    Ok(Some((_, record))) => Some(record.user),
                    _ => this.read_ended(&id).ok().flatten().map(|r| r.user),
                };
                ignore_missing(std::fs::remove_file(&path))?;
                ignore_missing(std::fs::remove_file(&ended))?;
                match owner {
                    Some(user) => this.unindex(&user, &id),
                    None => Ok(()),
                }
            })
            .await
            .map_err(StoreError::from)
        })
    }

    fn sweep(&self, unused_for: Duration, keep_for: Duration) -> StoreFuture<'_, usize> {
        let this = self.clone();
        Box::pin(
            async move { Ok(blocking(move || this.sweep_blocking(unused_for, keep_for)).await?) },
        )
    }

    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
    ) -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>> {
        let (this, user) = (self.clone(), user.to_owned());
        Box::pin(async move { Ok(blocking(move || this.sessions_of_blocking(&user)).await?) })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(super::directory_answers(self.dir.clone()))
    }

    fn all(&self) -> StoreFuture<'_, Vec<SessionRecord>> {
        let this = self.clone();
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || {
                let mut records = Vec::new();
                for id in this.ids_blocking()? {
                    if let Some((_, record)) = this.read(&id)? {
                        records.push(record);
                    }
                }
                Ok(records)
            });
            read.await
                .map_err(|err| StoreError::Io(io::Error::other(err)))?
        })
    }
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
        SessionRecord::new(&crate::domain::Username::parse("alice").unwrap(), now, now)
    }

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_created_session_loads_back_and_is_readable_json() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        assert!(store.create(&id, &record(), TTL).await.unwrap());
        assert!(!store.create(&id, &record(), TTL).await.unwrap());
        assert_eq!(store.load(&id).await.unwrap(), Some(record()));
        let text = std::fs::read_to_string(file_of(&dir, &id)).unwrap();
        assert!(text.contains("\"user\": \"alice\""), "{text}");
    }

    #[tokio::test]
    async fn corrupt_or_empty_files_load_as_no_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        let path = file_of(&dir, &id);
        let huge = vec![b' '; MAX_SESSION_BYTES as usize + 1];
        for junk in [&b""[..], b"{\"user\":", b"\xff\xfe", b"[]", &huge] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(store.load(&id).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn a_sessions_directory_that_cannot_be_read_is_an_outage_not_a_logout() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("sessions");
        let store = FileSessionStore::open(&sessions).unwrap();
        std::fs::remove_dir(&sessions).unwrap();
        std::fs::write(&sessions, "a file where the directory was").unwrap();
        let result = store.load(&SessionId::generate()).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }

    /// Every file under `dir`, as text.
    fn walk(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path.display().to_string());
            }
        }
        found
    }

    fn age(path: &Path, by: Duration) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[tokio::test]
    async fn the_sweep_removes_unused_sessions_and_debris_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let (live, idle) = (SessionId::generate(), SessionId::generate());
        store.create(&live, &record(), TTL).await.unwrap();
        store.create(&idle, &record(), TTL).await.unwrap();
        age(&file_of(&dir, &idle), Duration::from_secs(1801));
        let debris = dir.path().join(".x.json.0123.tmp");
        std::fs::write(&debris, "half").unwrap();
        age(&debris, Duration::from_secs(3600));
        let foreign = dir.path().join("notes.txt");
        std::fs::write(&foreign, "not a session").unwrap();
        age(&foreign, Duration::from_secs(3600));

        let (unused, keep) = (Duration::from_secs(1800), Duration::from_secs(7200));
        assert_eq!(store.sweep_blocking(unused, keep).unwrap(), 1);
        assert!(store.load(&live).await.unwrap().is_some());
        assert!(!file_of(&dir, &idle).exists(), "the session is over");
        let ended = dir.path().join(format!("{}.ended", idle.as_str()));
        assert!(ended.exists(), "what tells its browser why is kept");
        assert!(store.load(&idle).await.unwrap().is_some());
        assert!(!debris.exists());
        assert!(foreign.exists(), "foreign files are left alone");

        // A touch cannot bring a swept session back.
        store.touch(&idle, &record(), TTL).await.unwrap();
        assert!(!file_of(&dir, &idle).exists());
        // Kept for `keep` past the end, then deleted.
        age(&ended, unused + keep - Duration::from_secs(60));
        assert_eq!(store.sweep_blocking(unused, keep).unwrap(), 0);
        assert!(ended.exists());
        age(&ended, unused + keep);
        store.sweep_blocking(unused, keep).unwrap();
        assert!(!ended.exists());
        assert_eq!(store.load(&idle).await.unwrap(), None);
    }

    #[tokio::test]
    async fn removing_a_session_removes_what_the_sweep_left_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store.create(&id, &record(), TTL).await.unwrap();
        age(&file_of(&dir, &id), Duration::from_secs(3600));
        store
            .sweep_blocking(Duration::from_secs(60), Duration::from_secs(60))
            .unwrap();
        store.remove(&id).await.unwrap();
        let left: Vec<_> = walk(dir.path());
        assert!(left.iter().all(|p| !p.contains(id.as_str())), "{left:?}");
    }

    #[tokio::test]
    async fn the_sweep_goes_by_mtime_not_by_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        // Content says "active now", but nothing has written it for an hour: over.
        let quiet = SessionId::generate();
        store.create(&quiet, &record(), TTL).await.unwrap();
        age(&file_of(&dir, &quiet), Duration::from_secs(3600));
        // Content is garbage but freshly written: not the sweep's business yet
        // (a request presenting it is simply anonymous).
        let fresh = SessionId::generate();
        let fresh_path = file_of(&dir, &fresh);
        std::fs::write(&fresh_path, "{ garbage").unwrap();

        let keep = Duration::from_secs(60);
        assert_eq!(
            store
                .sweep_blocking(Duration::from_secs(1800), keep)
                .unwrap(),
            1
        );
        assert!(!file_of(&dir, &quiet).exists());
        assert!(fresh_path.exists());
    }

    fn index_entry(dir: &tempfile::TempDir, user: &str, id: &SessionId) -> PathBuf {
        dir.path().join("users").join(user).join(id.as_str())
    }

    #[tokio::test]
    async fn the_sweep_keeps_the_index_clean() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let (quiet, busy) = (SessionId::generate(), SessionId::generate());
        store.create(&quiet, &record(), TTL).await.unwrap();
        store.create(&busy, &record(), TTL).await.unwrap();
        for path in [file_of(&dir, &quiet), index_entry(&dir, "alice", &quiet)] {
            age(&path, Duration::from_secs(3600));
        }
        // The busy one's entry is old too, but activity refreshes it.
        age(
            &index_entry(&dir, "alice", &busy),
            Duration::from_secs(3600),
        );
        store.touch(&busy, &record(), TTL).await.unwrap();
        let unused = Duration::from_secs(1800);
        store.sweep_blocking(unused, unused).unwrap();
        assert!(!index_entry(&dir, "alice", &quiet).exists());
        assert!(index_entry(&dir, "alice", &busy).exists());
        let listed = store.sessions_of("alice").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, busy);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_index_stays_true_while_the_sweep_races_logins_and_logouts() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let unused = Duration::from_secs(1800);
        let sweeper = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                for _ in 0..50 {
                    store.sweep_blocking(unused, unused).unwrap();
                }
            })
        };
        let racers: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = SessionId::generate();
                    store.create(&id, &record(), TTL).await.unwrap();
                    if i % 2 == 0 {
                        store.remove(&id).await.unwrap();
                        None
                    } else {
                        store.touch(&id, &record(), TTL).await.unwrap();
                        Some(id)
                    }
                })
            })
            .collect();
        let mut kept = Vec::new();
        for racer in racers {
            kept.extend(racer.await.unwrap());
        }
        sweeper.await.unwrap();
        let mut listed: Vec<SessionId> = store
            .sessions_of("alice")
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        listed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        kept.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(listed, kept);
        let entries = std::fs::read_dir(dir.path().join("users/alice"))
            .unwrap()
            .count();
        assert_eq!(entries, kept.len(), "no entry outlives its session");
    }

    #[test]
    fn every_lock_stripe_is_used() {
        let stripes: std::collections::HashSet<usize> = (0..2000)
            .map(|_| stripe_of(&SessionId::generate()))
            .collect();
        assert_eq!(stripes.len(), STRIPES);
    }

    /// The per-id lock: while it is held, a touch of that id waits; a removal made
    /// meanwhile is then seen by the touch, which writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_touch_waits_for_the_ids_lock_and_then_sees_the_removal() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessionStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store.create(&id, &record(), TTL).await.unwrap();
        let guard = store.lock(&id);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let toucher = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                store.touch(&id, &record(), TTL).await.unwrap();
                done_tx.send(()).unwrap();
            })
        };
        assert!(
            done_rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the touch went ahead while the id was locked"
        );
        std::fs::remove_file(file_of(&dir, &id)).unwrap(); // a removal, inside the lock
        drop(guard);
        toucher.await.unwrap();
        assert!(!file_of(&dir, &id).exists(), "the touch brought it back");
    }
}
