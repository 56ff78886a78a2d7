//! Durable, private file writes: temp file, fsync, rename; owner-only modes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` a directory only its owner can enter: created (with its parents) mode
/// 0700 if missing; tightened to 0700 if it exists with a looser mode (logged).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    tighten(dir, &fs::metadata(dir)?, 0o700)
}

/// Tightens the file `meta` describes to 0600 if others may read or write it (logged).
pub fn private_file(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    tighten(path, meta, 0o600)
}

fn tighten(path: &Path, meta: &fs::Metadata, mode: u32) -> io::Result<()> {
    let old = meta.permissions().mode() & 0o777;
    if old & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    tracing::info!(path = %path.display(), old = format_args!("{old:o}"), new = format_args!("{mode:o}"), "tightened permissions");
    Ok(())
}

/// Tightens every plain file directly in `dir` to 0600 (see [`private_file`]);
/// returns how many were looser. Blocking.
pub fn private_files(dir: &Path) -> io::Result<usize> {
    let mut tightened = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else {
            continue; // removed meanwhile
        };
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            private_file(&entry.path(), &meta)?;
            tightened += 1;
        }
    }
    Ok(tightened)
}

/// Writes `bytes` to a new owner-only temp file beside `path` and fsyncs it.
///
/// Returns the temp file's path; the caller moves it into place.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<std::path::PathBuf> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", u64::from_ne_bytes(nonce)));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    Ok(tmp)
}

/// Flushes a directory entry change (create, rename, unlink) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Flushes the removal (or creation) of `path`'s directory entry to disk.
pub fn sync_dir_of(path: &Path) -> io::Result<()> {
    sync_dir(parent(path))
}

/// Atomically replaces `path` with `bytes`: readers see the old or the new file, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    if let Err(err) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    sync_dir(parent(path))
}

/// Creates `path` with `bytes` unless it exists (`AlreadyExists`), atomically but not
/// durably: a crash may lose it, or leave it empty. For marks whose only job is to let
/// one of several racing writers win.
pub fn create_marker(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", u64::from_ne_bytes(nonce)));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(bytes));
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    linked
}

/// Atomically creates `path` with `bytes`, failing with `AlreadyExists` if it exists.
///
/// A hard link never replaces its target, so of two racing writers exactly one wins,
/// and the winner's file is complete before its name appears.
pub fn create_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked?;
    sync_dir(parent(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_atomic_refuses_to_replace_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        create_atomic(&path, b"first").unwrap();
        let err = create_atomic(&path, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn loose_directories_and_files_are_tightened_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("sessions");
        fs::create_dir(&sessions).unwrap();
        fs::set_permissions(&sessions, fs::Permissions::from_mode(0o755)).unwrap();
        let file = sessions.join("a.json");
        fs::write(&file, "{}").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&sessions).unwrap();
        assert_eq!(private_files(&sessions).unwrap(), 1);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&sessions), mode(&file)), (0o700, 0o600));
        assert_eq!(private_files(&sessions).unwrap(), 0, "nothing left to do");
    }

    #[test]
    fn write_atomic_replaces_with_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
