//! The file backend: `<sessions dir>/<id>.json`, `<data dir>/users/<name>.json` and
//! the mailed tokens and address index (`tokens.rs`), one small JSON document per file, every write atomic (temp file, fsync, rename).
//! The sweep renames a session that has ended by time to `<id>.ended`: it opens
//! nothing any more, but tells its browser why until it is deleted in turn.
//!
//! Each user's sessions are indexed as empty files `<sessions dir>/users/<name>/<id>`,
//! written at login and refreshed (mtime) whenever activity is recorded, so listing a
//! user's sessions costs that user's sessions, and the sweep drops stale entries by
//! mtime exactly as it ends sessions. An entry whose session is gone is dropped when
//! the list is read.

mod grants;
mod journal;
mod sessions;
mod tokens;
mod users;

use std::io;
use std::path::Path;

pub use self::grants::FileGrantStore;
pub use self::journal::FileJournalStore;
pub use self::sessions::{FileSessionStore, FileStamp};
pub use self::tokens::FileTokenStore;
pub use self::users::FileUserStore;
use super::StoreError;

/// A removal of something already gone is not an error.
pub(super) fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A file that is not there is no session; any other failure to look (permissions,
/// I/O errors, a sessions "directory" that is a file) is an outage, not a logout.
pub(super) fn missing_or_unavailable<T>(err: io::Error) -> Result<Option<T>, StoreError> {
    if err.kind() == io::ErrorKind::NotFound {
        Ok(None)
    } else {
        Err(StoreError::unavailable(err))
    }
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// Readiness of the file backend: the directory is there and writable by us. (A disk
/// remounted read-only after errors is the usual way this store stops working.)
pub(super) async fn directory_answers(
    dir: std::sync::Arc<std::path::PathBuf>,
) -> Result<(), StoreError> {
    blocking(move || {
        rustix::fs::access(dir.as_path(), rustix::fs::Access::WRITE_OK).map_err(io::Error::from)
    })
    .await
    .map_err(StoreError::unavailable)
}

/// Reads a JSON file; `None` if it is not there. A corrupt file is an error.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(StoreError::corrupt),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StoreError::unavailable(err)),
    }
}
