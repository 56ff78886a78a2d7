//! `wicket backup DIR` and `wicket restore DIR`.
//!
//! A backup is a directory: `keys/` (the secret key, the OpenID Connect signing keys),
//! the store (for files, `data/` and with `--sessions` `sessions/`, each file copied
//! as read once; for Redis, `redis.jsonl`, one key per line, read through the store),
//! and `manifest.json` last: the Wicket version, when, which store, counts, and every
//! file's size and SHA-256. A directory without a manifest is an unfinished backup.
//!
//! It runs beside a serving Wicket. Every record is written whole (a file renamed into
//! place, a Redis `SET`), so each one copied is a version that was stored; everything
//! acknowledged before the backup began is in it. A restore checks every checksum
//! before it writes anything, refuses a store that is not empty (unless `--force`,
//! which first clears it), and writes each file atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::Config;
use crate::fsutil;
use crate::store::redis::backup::{Entry, backed_up, is_session};
use crate::store::{RedisStore, StoreKind};

/// The manifest's name in a backup.
pub const MANIFEST: &str = "manifest.json";
/// The Redis keys' file in a backup.
const REDIS_FILE: &str = "redis.jsonl";
/// What a manifest counts: accounts, sessions, and the rest (tokens, indexes, the
/// provider's grants).
const USERS: &str = "users";
const SESSIONS: &str = "sessions";
const OTHERS: &str = "tokens, indexes and grants";
/// Said by `wicket backup` and written into the manifest.
pub const WARNING: &str = "This backup holds the server's secret key and every password hash: \
                           anyone who reads it can sign in as any member. Keep it as safe as \
                           the server (encrypted, offline, mode 0700).";

/// What a backup holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The format of this manifest.
    pub format: u32,
    /// The Wicket that made it.
    pub wicket_version: String,
    /// When it began.
    #[serde(with = "time::serde::rfc3339")]
    pub taken: OffsetDateTime,
    /// `files` or `redis`.
    pub store: String,
    /// Whether sessions were copied.
    pub sessions: bool,
    /// How many of each kind of record (`users`, `tokens`, …).
    pub counts: BTreeMap<String, usize>,
    /// Every file of the backup but this one.
    pub files: Vec<FileSum>,
    /// [`WARNING`].
    pub warning: String,
}

/// One file of a backup.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileSum {
    /// Its path inside the backup, with `/`.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// Makes a backup of `config`'s store and keys in `dir` (new, or empty).
pub async fn backup(config: &Config, dir: &Path, sessions: bool) -> io::Result<Manifest> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        return Err(invalid(format!("{} is not empty", dir.display())));
    }
    fsutil::private_dir(dir)?;
    let taken = OffsetDateTime::now_utc();
    let mut out = Writer {
        root: dir.to_owned(),
        files: Vec::new(),
    };
    let mut counts = BTreeMap::new();
    for (name, path) in key_files(config) {
        if let Some(bytes) = read_if_there(&path)? {
            out.put(&format!("keys/{name}"), &bytes)?;
        }
    }
    let store = match &config.store {
        StoreKind::Files => {
            let skip = [config.secret_key_path(), oidc_keys(config)];
            out.copy_tree(&config.data_dir, "data", &skip, &mut counts)?;
            if sessions {
                out.copy_tree(&config.sessions_dir, "sessions", &[], &mut counts)?;
            }
            "files"
        }
        StoreKind::Redis(url) => {
            let redis = RedisStore::open(url, &config.store_prefix)?;
            let entries = redis.dump(sessions).await?;
            let mut lines = Vec::new();
            for entry in &entries {
                let kind = match entry.key.split(':').next().unwrap_or_default() {
                    "user" => Some(USERS),
                    "session" => Some(SESSIONS),
                    "user-sessions" => None, // the sessions' index
                    _ => Some(OTHERS),
                };
                if let Some(kind) = kind {
                    *counts.entry(kind.to_owned()).or_insert(0) += 1;
                }
                serde_json::to_writer(&mut lines, entry).map_err(io::Error::other)?;
                lines.push(b'\n');
            }
            out.put(REDIS_FILE, &lines)?;
            "redis"
        }
    };
    let manifest = Manifest {
        format: 1,
        wicket_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken,
        store: store.to_owned(),
        sessions,
        counts,
        files: out.files,
        warning: WARNING.to_owned(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    fsutil::create_atomic(&dir.join(MANIFEST), &json)?;
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Records (files or Redis keys) written.
    pub written: usize,
    /// Redis keys whose time ran out since the backup (not written).
    pub expired: usize,
}

/// Restores the backup in `dir` into `config`'s store and key files.
pub async fn restore(config: &Config, dir: &Path, force: bool) -> io::Result<Restored> {
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(dir.join(MANIFEST)).map_err(|err| {
            invalid(format!(
                "{}: no {MANIFEST} ({err}): not a finished backup",
                dir.display()
            ))
        })?)
        .map_err(|err| invalid(format!("{MANIFEST}: {err}")))?;
    if manifest.format != 1 {
        return Err(invalid(format!(
            "{MANIFEST}: format {} is not one this Wicket reads",
            manifest.format
        )));
    }
    // Every file is checked before anything is written.
    let mut contents = BTreeMap::new();
    for file in &manifest.files {
        let path = inside(dir, &file.path)?;
        let bytes = fs::read(&path)?;
        if bytes.len() as u64 != file.bytes || hex_sha256(&bytes) != file.sha256 {
            return Err(invalid(format!(
                "{}: does not match the manifest (changed or damaged): nothing was restored",
                file.path
            )));
        }
        contents.insert(file.path.clone(), bytes);
    }
    let (mut written, mut expired) = (0, 0);
    match (&config.store, manifest.store.as_str()) {
        (StoreKind::Files, "files") => {
            let held = store_files(
                &config.data_dir,
                &[config.secret_key_path(), oidc_keys(config)],
            )? + store_files(&config.sessions_dir, &[])?;
            if held > 0 && !force {
                return Err(invalid(format!(
                    "the store is not empty ({held} file(s) in {} and {}): restore into an \
                     empty one, or add --force to replace what it holds",
                    config.data_dir.display(),
                    config.sessions_dir.display()
                )));
            }
            if held > 0 {
                clear_dir(
                    &config.data_dir,
                    &[config.secret_key_path(), oidc_keys(config)],
                )?;
                clear_dir(&config.sessions_dir, &[])?;
            }
            for (path, bytes) in &contents {
                let target = match path.split_once('/') {
                    Some(("data", rest)) => config.data_dir.join(rest),
                    Some(("sessions", rest)) => config.sessions_dir.join(rest),
                    _ => continue,
                };
                write_file(&target, bytes)?;
                written += 1;
            }
        }
        (StoreKind::Redis(url), "redis") => {
            let redis = RedisStore::open(url, &config.store_prefix)?;
            let held = redis.stored_keys().await?;
            if held > 0 && !force {
                return Err(invalid(format!(
                    "the store is not empty ({held} key(s) under {}:): restore into an empty \
                     one, or add --force to replace what it holds",
                    config.store_prefix
                )));
            }
            let lines = contents
                .get(REDIS_FILE)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut entries = Vec::new();
            for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
                if line.is_empty() {
                    continue;
                }
                let entry: Entry = serde_json::from_slice(line)
                    .map_err(|err| invalid(format!("{REDIS_FILE}:{}: {err}", i + 1)))?;
                if !backed_up(&entry.key) {
                    return Err(invalid(format!(
                        "{REDIS_FILE}:{}: not a kind of key a backup holds: nothing was restored",
                        i + 1
                    )));
                }
                entries.push(entry);
            }
            if held > 0 {
                redis.clear().await?;
            }
            let elapsed = (OffsetDateTime::now_utc() - manifest.taken).whole_milliseconds();
            let elapsed = u64::try_from(elapsed).unwrap_or(0);
            for entry in &entries {
                if !manifest.sessions && is_session(&entry.key) {
                    continue;
                }
                if redis.put_entry(entry, elapsed).await? {
                    written += 1;
                } else {
                    expired += 1;
                }
            }
        }
        (_, made) => {
            return Err(invalid(format!(
                "this backup is of a {made} store, and --store names another kind: restore it \
                 into a {made} store (then `wicket migrate` if you are moving)"
            )));
        }
    }
    // The keys last: a store restored under the old key would be unreadable.
    for (name, path) in key_files(config) {
        if let Some(bytes) = contents.get(&format!("keys/{name}")) {
            // A key file's directory (perhaps /etc/wicket) is made only if missing.
            if let Some(parent) = path.parent().filter(|p| !p.exists()) {
                fsutil::private_dir(parent)?;
            }
            fsutil::write_atomic(&path, bytes)?;
            written += 1;
        }
    }
    Ok(Restored {
        manifest,
        written,
        expired,
    })
}

/// The key files, by their name in a backup.
fn key_files(config: &Config) -> [(&'static str, PathBuf); 2] {
    [
        ("secret.key", config.secret_key_path()),
        (crate::oidc::keys::KEY_FILE, oidc_keys(config)),
    ]
}

fn oidc_keys(config: &Config) -> PathBuf {
    config.data_dir.join(crate::oidc::keys::KEY_FILE)
}

/// Writes a backup's files, keeping their sums for the manifest.
struct Writer {
    root: PathBuf,
    files: Vec<FileSum>,
}

impl Writer {
    /// Writes `bytes` at `path` inside the backup (owner-only, synced).
    fn put(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            fsutil::private_dir(parent)?;
        }
        fsutil::create_atomic(&target, bytes)?;
        self.files.push(FileSum {
            path: path.to_owned(),
            bytes: bytes.len() as u64,
            sha256: hex_sha256(bytes),
        });
        Ok(())
    }

    /// Copies every record file under `from` to `to/…`, each read once, counting
    /// them by their top directory; temporary files and `skip` are left out.
    fn copy_tree(
        &mut self,
        from: &Path,
        to: &str,
        skip: &[PathBuf],
        counts: &mut BTreeMap<String, usize>,
    ) -> io::Result<()> {
        for path in record_files(from, skip)? {
            // Deleted since the listing: it is simply not in the backup.
            let Some(bytes) = read_if_there(&path)? else {
                continue;
            };
            let relative = path.strip_prefix(from).map_err(io::Error::other)?;
            let relative = relative.to_string_lossy().replace('\\', "/");
            let kind = match (to, relative.split('/').next()) {
                ("sessions", Some("users")) => None, // the sessions' index
                ("sessions", _) => Some(SESSIONS),
                (_, Some("users")) => Some(USERS),
                _ => Some(OTHERS),
            };
            if let Some(kind) = kind {
                *counts.entry(kind.to_owned()).or_insert(0) += 1;
            }
            self.put(&format!("{to}/{relative}"), &bytes)?;
        }
        Ok(())
    }
}

/// The record files under `dir` (recursively): not temporary files (`.…tmp`), not
/// `skip`, sorted.
fn record_files(dir: &Path, skip: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            let name = entry.file_name();
            let temporary = name.to_string_lossy().starts_with('.');
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && !temporary && !skip.contains(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// How many record files a store directory holds (0: empty).
fn store_files(dir: &Path, skip: &[PathBuf]) -> io::Result<usize> {
    Ok(record_files(dir, skip)?.len())
}

/// Removes every record file under `dir` but `skip` (`restore --force`).
fn clear_dir(dir: &Path, skip: &[PathBuf]) -> io::Result<()> {
    for path in record_files(dir, skip)? {
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// Writes a restored file: its directories owner-only, the file atomically.
fn write_file(target: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fsutil::private_dir(parent)?;
    }
    fsutil::write_atomic(target, bytes)
}

fn read_if_there(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// `path` (from a manifest) inside `dir`, or an error: a manifest names no file
/// outside its backup.
fn inside(dir: &Path, path: &str) -> io::Result<PathBuf> {
    let plain = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !plain {
        return Err(invalid(format!(
            "{MANIFEST}: {path:?} is not a path inside the backup"
        )));
    }
    Ok(dir.join(path))
}

fn hex_sha256(bytes: &[u8]) -> String {
    crate::secret::hex(&Sha256::digest(bytes))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Prints `manifest`'s counts, one line per kind, to `out`.
pub fn print_counts(out: &mut impl Write, manifest: &Manifest) -> io::Result<()> {
    for (kind, count) in &manifest.counts {
        writeln!(out, "  {kind}: {count}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_no_file_outside_its_backup() {
        let dir = Path::new("/backups/monday");
        assert_eq!(
            inside(dir, "data/users/ann.json").unwrap(),
            dir.join("data/users/ann.json")
        );
        for bad in [
            "../secret",
            "data/../../etc/passwd",
            "/etc/passwd",
            "data//x",
            "",
            "./x",
        ] {
            assert!(inside(dir, bad).is_err(), "{bad}");
        }
    }
}
