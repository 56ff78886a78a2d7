//! Journals as `<data dir>/journal/<account id>.json`: the entries, newest first,
//! rewritten atomically under an exclusive lock on `<account id>.lock`, which the
//! server and `wicket user …` both take.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{blocking, ignore_missing, read_json, to_json};
use crate::domain::AccountId;
use crate::fsutil;
use crate::store::journal::{Entry, JournalStore, KEPT};
use crate::store::{StoreError, StoreFuture};

/// Journals in files under `<data dir>/journal`.
#[derive(Clone, Debug)]
pub struct FileJournalStore {
    dir: Arc<PathBuf>,
}

impl FileJournalStore {
    /// Opens `<data dir>/journal`, created owner-only if missing.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.join("journal");
        fsutil::private_dir(&dir).map_err(|err| {
            StoreError::Config(format!("data directory {}: {err}", dir.display()))
        })?;
        Ok(Self { dir: Arc::new(dir) })
    }

    /// The journal's file and its lock's, for an id that is 32 hex characters.
    fn paths(&self, account: &AccountId) -> Result<(PathBuf, PathBuf), StoreError> {
        let id = account.as_str();
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::corrupt(format!("not an account id: {id:?}")));
        }
        Ok((
            self.dir.join(format!("{id}.json")),
            self.dir.join(format!("{id}.lock")),
        ))
    }
}

impl JournalStore for FileJournalStore {
    fn record<'a>(&'a self, account: &'a AccountId, entry: &'a Entry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (path, lock) = self.paths(account)?;
            let entry = entry.clone();
            blocking(move || {
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .open(lock)?;
                rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
                let mut entries: Vec<Entry> = read_json(&path)
                    .map_err(std::io::Error::from)?
                    .unwrap_or_default();
                entries.insert(0, entry);
                entries.truncate(KEPT);
                fsutil::write_atomic(&path, &to_json(&entries)?)
                // The lock goes with the file handle.
            })
            .await?;
            Ok(())
        })
    }

    fn entries<'a>(
        &'a self,
        account: &'a AccountId,
        skip: usize,
        take: usize,
    ) -> StoreFuture<'a, (Vec<Entry>, usize)> {
        Box::pin(async move {
            let (path, _) = self.paths(account)?;
            let entries: Vec<Entry> = read_json(&path)?.unwrap_or_default();
            let total = entries.len();
            Ok((entries.into_iter().skip(skip).take(take).collect(), total))
        })
    }

    fn forget<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (path, lock) = self.paths(account)?;
            ignore_missing(std::fs::remove_file(path))?;
            ignore_missing(std::fs::remove_file(lock))?;
            Ok(())
        })
    }
}
