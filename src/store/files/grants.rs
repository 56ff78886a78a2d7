//! Grants as `<data dir>/oidc/<shelf>/<name>.json`, one small file each, written
//! atomically; an add is a hard link, which never replaces.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use super::{blocking, ignore_missing, read_json, to_json};
use crate::fsutil;
use crate::store::grants::{Grant, GrantStore, Shelf, valid_name};
use crate::store::{StoreError, StoreFuture};

/// Grants in files under `<data dir>/oidc`.
#[derive(Clone, Debug)]
pub struct FileGrantStore {
    root: Arc<PathBuf>,
}

impl FileGrantStore {
    /// Opens `<data dir>/oidc`, created owner-only if missing.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let root = data_dir.join("oidc");
        fsutil::private_dir(&root).map_err(|err| {
            StoreError::Config(format!("data directory {}: {err}", root.display()))
        })?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    fn shelf_dir(&self, shelf: &Shelf) -> PathBuf {
        // `requests`, `account-<hex>`: never a separator or a dot.
        self.root.join(shelf.name())
    }

    fn path(&self, shelf: &Shelf, name: &str) -> Result<PathBuf, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::corrupt(format!("not a grant name: {name:?}")));
        }
        Ok(self.shelf_dir(shelf).join(format!("{name}.json")))
    }

    /// Writes `grant` to its file, creating the shelf if needed, with `write`.
    async fn write(
        &self,
        shelf: &Shelf,
        name: &str,
        grant: &Grant,
        write: fn(&Path, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let (path, bytes) = (self.path(shelf, name)?, to_json(grant)?);
        blocking(move || {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path.parent().unwrap_or(Path::new(".")))?;
            write(&path, &bytes)
        })
        .await
    }
}

impl GrantStore for FileGrantStore {
    fn put_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { Ok(self.write(shelf, name, grant, fsutil::write_atomic).await?) })
    }

    fn add_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // A spent mark decides a race and need not survive a crash: no fsync, so
            // no trip to the blocking pool either.
            let created = if *shelf == Shelf::Spent {
                let (path, bytes) = (self.path(shelf, name)?, to_json(grant)?);
                fsutil::create_marker(&path, &bytes).or_else(|err| match err.kind() {
                    io::ErrorKind::NotFound => {
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(self.shelf_dir(shelf))?;
                        fsutil::create_marker(&path, &bytes)
                    }
                    _ => Err(err),
                })
            } else {
                self.write(shelf, name, grant, fsutil::create_atomic).await
            };
            match created {
                Ok(()) => Ok(true),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(err) => Err(err.into()),
            }
        })
    }

    fn get_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>> {
        Box::pin(async move {
            match read_json(&self.path(shelf, name)?) {
                // A spent mark left empty by a crash names no family (and its name
                // stays spent: adding it again fails).
                Err(StoreError::Io(err))
                    if *shelf == Shelf::Spent && err.kind() == io::ErrorKind::InvalidData =>
                {
                    Ok(None)
                }
                other => other,
            }
        })
    }

    fn take_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>> {
        Box::pin(async move {
            let path = self.path(shelf, name)?;
            let Some(grant) = read_json(&path)? else {
                return Ok(None);
            };
            // Whoever removes the file took the grant; a concurrent taker finds it gone.
            let removed = blocking(move || match std::fs::remove_file(&path) {
                Ok(()) => fsutil::sync_dir_of(&path).map(|()| true),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err),
            });
            Ok(removed.await?.then_some(grant))
        })
    }

    fn grants_on<'a>(&'a self, shelf: &'a Shelf) -> StoreFuture<'a, Vec<(String, Grant)>> {
        Box::pin(async move {
            let dir = self.shelf_dir(shelf);
            Ok(blocking(move || grants_in(&dir)).await?)
        })
    }

    fn sweep_grants(&self, now: OffsetDateTime) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let root = self.root.clone();
            Ok(blocking(move || {
                let mut removed = 0;
                for shelf in std::fs::read_dir(root.as_path())? {
                    let dir = shelf?.path();
                    for (name, grant) in grants_in(&dir)? {
                        if grant.expires <= now {
                            ignore_missing(std::fs::remove_file(dir.join(format!("{name}.json"))))?;
                            removed += 1;
                        }
                    }
                }
                Ok(removed)
            })
            .await?)
        })
    }
}

/// The grants in the shelf directory `dir` (none if it does not exist); unreadable
/// files are logged and skipped.
fn grants_in(dir: &Path) -> io::Result<Vec<(String, Grant)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".json"))
            .filter(|name| valid_name(name))
        else {
            continue;
        };
        match read_json::<Grant>(&path) {
            Ok(Some(grant)) => found.push((name.to_owned(), grant)),
            Ok(None) => {} // taken meanwhile
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "unreadable grant file")
            }
        }
    }
    Ok(found)
}
