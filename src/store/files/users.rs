//! Users as `<data dir>/users/<lower-case name>.json`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{blocking, missing_or_unavailable, to_json};
use crate::domain::Username;
use crate::fsutil;
use crate::store::watch::Watched;
use crate::store::{NameTaken, StoreError, StoreFuture, User, UserChange, UserStore};

/// Users as `<data dir>/users/<lower-case name>.json`, one file each.
///
/// One file per user makes registration O(1) whatever the number of users, and
/// creating the file with a hard link makes uniqueness atomic: of two concurrent
/// registrations of one name (even from two processes) exactly one wins.
#[derive(Clone, Debug)]
pub struct FileUserStore {
    dir: Arc<PathBuf>,
    /// Orders replacements with each other and with removals (rare writes: one lock).
    writing: Arc<tokio::sync::Mutex<()>>,
    /// Users known to exist, while the directory's change notifications say so.
    known: Arc<Watched<String, ()>>,
    /// Recently read records, trusted while the notifications say the file is
    /// unchanged: every member request reads its account (to check its id).
    records: Arc<Watched<String, Arc<User>>>,
}

/// Users remembered as existing (every member request asks; a few hundred KiB).
const KNOWN_CAPACITY: usize = 10_000;

/// User records kept in memory (about a kilobyte each, more with passkeys).
const RECORDS_CAPACITY: usize = 4_096;

/// The user key a file name in the users directory is for.
fn user_file(name: &str) -> Option<String> {
    name.strip_suffix(".json").map(str::to_owned)
}

impl FileUserStore {
    /// Opens `<data dir>/users`: created owner-only if missing, tightened if looser.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.join("users");
        for dir in [data_dir, &dir] {
            fsutil::private_dir(dir).map_err(|err| {
                StoreError::Config(format!("data directory {}: {err}", dir.display()))
            })?;
        }
        Ok(Self {
            known: Arc::new(Watched::new(&dir, user_file, KNOWN_CAPACITY)),
            records: Arc::new(Watched::new(&dir, user_file, RECORDS_CAPACITY)),
            dir: Arc::new(dir),
            writing: Arc::default(),
        })
    }

    /// The directory the files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every stored user (for `wicket migrate`). Blocking.
    pub fn all_blocking(&self) -> io::Result<Vec<User>> {
        let mut users = Vec::new();
        for entry in std::fs::read_dir(&*self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                let bytes = std::fs::read(&path)?;
                let user = serde_json::from_slice(&bytes).map_err(|err| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {err}", path.display()),
                    )
                })?;
                users.push(user);
            }
        }
        Ok(users)
    }

    fn path(&self, key: &str) -> PathBuf {
        // Keys come from Username: [a-z0-9_.-]{3,32}, never a separator, "." or "..".
        self.dir.join(format!("{key}.json"))
    }
}

impl UserStore for FileUserStore {
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>> {
        // A record cached since the watch last saw its file change is the file's;
        // unwatched, the file is read every time.
        Box::pin(async move {
            let key = name.key();
            let lookup = self.records.get(&key);
            if let Some(user) = lookup.value.as_ref().filter(|_| lookup.ticket.watched()) {
                return Ok(Some(User::clone(user)));
            }
            match tokio::fs::read(self.path(&key)).await {
                Ok(bytes) => {
                    let user: User = serde_json::from_slice(&bytes).map_err(StoreError::corrupt)?;
                    self.records
                        .insert(lookup.ticket, key, Arc::new(user.clone()));
                    Ok(Some(user))
                }
                Err(err) => missing_or_unavailable(err),
            }
        })
    }

    fn get_shared<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<Arc<User>>> {
        Box::pin(async move {
            let lookup = self.records.get(&name.key());
            if let Some(user) = lookup.value.filter(|_| lookup.ticket.watched()) {
                return Ok(Some(user));
            }
            Ok(self.get(name).await?.map(Arc::new))
        })
    }

    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>> {
        Box::pin(async move {
            let (path, bytes) = (self.path(&user.key()), to_json(user)?);
            match blocking(move || fsutil::create_atomic(&path, &bytes)).await {
                Ok(()) => Ok(Ok(())),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Err(NameTaken)),
                Err(err) => Err(err.into()),
            }
        })
    }

    fn exists<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        // Every member request asks. Known while the watch says the file is still there;
        // else a stat, asked right here (see FileSessionStore::stamp).
        Box::pin(async move {
            let key = name.key();
            let lookup = self.known.get(&key);
            if lookup.value.is_some() && lookup.ticket.watched() {
                return Ok(true);
            }
            match std::fs::metadata(self.path(&key)) {
                Ok(_) => {
                    self.known.insert(lookup.ticket, key, ());
                    Ok(true)
                }
                Err(err) => missing_or_unavailable::<()>(err).map(|_| false),
            }
        })
    }

    fn update<'a>(
        &'a self,
        name: &'a Username,
        change: &'a UserChange,
    ) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let path = self.path(&name.key());
            // Read, change and write under the store's lock: a concurrent update or
            // deletion comes wholly before or after. The read (a few hundred bytes) and
            // the change run here; the write, which fsyncs, on the blocking pool.
            let _guard = self.writing.lock().await;
            let mut user: User = match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(StoreError::corrupt)?,
                Err(err) => return missing_or_unavailable(err),
            };
            change(&mut user);
            let bytes = to_json(&user)?;
            blocking(move || fsutil::write_atomic(&path, &bytes)).await?;
            Ok(Some(user))
        })
    }

    fn delete<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let path = self.path(&name.key());
            let _guard = self.writing.lock().await;
            let deleted = blocking(move || match std::fs::remove_file(&path) {
                Ok(()) => fsutil::sync_dir_of(&path).map(|()| true),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err),
            });
            Ok(deleted.await?)
        })
    }

    fn names(&self) -> StoreFuture<'_, Vec<String>> {
        let this = self.clone();
        Box::pin(async move {
            let users = blocking(move || this.all_blocking()).await?;
            let mut names: Vec<String> = users.into_iter().map(|u| u.name.to_string()).collect();
            names.sort_by_key(|n| n.to_ascii_lowercase());
            Ok(names)
        })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(super::directory_answers(self.dir.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn users_are_found_in_any_case_and_corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileUserStore::open(dir.path()).unwrap();
        let alice = User::new(&Username::parse("Alice").unwrap(), "$scrypt$x".into());
        store.create(&alice).await.unwrap().unwrap();
        let found = store.get(&Username::parse("aLiCe").unwrap()).await;
        assert_eq!(found.unwrap().unwrap(), alice);
        std::fs::write(dir.path().join("users/carol.json"), "{").unwrap();
        let carol = store.get(&Username::parse("carol").unwrap()).await;
        assert!(matches!(carol, Err(StoreError::Io(_))), "{carol:?}");
    }
}
