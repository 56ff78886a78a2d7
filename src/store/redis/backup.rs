//! Everything under the prefix, read and written back for `wicket backup` and
//! `wicket restore`: strings (JSON documents) and sets (indexes), each with the time
//! it had left to live. Rate-limit counters are never copied.

use deadpool_redis::redis::{self, AsyncCommands};
use serde::{Deserialize, Serialize};

use super::RedisStore;
use crate::store::StoreError;

/// One key, as a backup holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key without the prefix and its colon, e.g. `user:alice`.
    pub key: String,
    /// A string's value (JSON documents, marks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A set's members (per-user indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// A list's items, in order (journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// Milliseconds it had left to live when copied (`None`: no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// Whether a key (without the prefix) holds sessions: copied only with `--sessions`.
pub fn is_session(key: &str) -> bool {
    key.starts_with("session:") || key.starts_with("user-sessions:")
}

/// The kinds of key Wicket writes under its prefix, but the rate-limit counters
/// (state of the moment, never backed up): what a backup copies and a restore writes.
/// A key of another kind under the prefix is not Wicket's (another site whose prefix
/// begins with this one and a colon) and is left alone.
const KINDS: [&str; 10] = [
    "user",
    "session",
    "user-sessions",
    "token",
    "email",
    "passkey",
    "invite-use",
    "oidc",
    "oidc-shelf",
    "journal",
];

/// Whether `key` (without the prefix) is of a kind a backup holds.
pub fn backed_up(key: &str) -> bool {
    key.split_once(':')
        .is_some_and(|(kind, _)| KINDS.contains(&kind))
}

/// Rate-limit counters.
fn is_counter(key: &str) -> bool {
    key.starts_with("count:")
}

impl RedisStore {
    /// Every key under the prefix but counters (and sessions unless `sessions`), one
    /// at a time: each value is as it was when read, the way a file copy reads each
    /// file once. Keys gone between the listing and the read are skipped.
    pub async fn dump(&self, sessions: bool) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        let keys = self.keys_matching(&format!("{}:*", self.prefix)).await?;
        let cut = self.prefix.len() + 1;
        for full in keys {
            let key = full[cut..].to_owned();
            if !backed_up(&key) || (!sessions && is_session(&key)) {
                continue;
            }
            let (kind, ttl): (String, i64) = self
                .run(async |conn| {
                    redis::pipe()
                        .cmd("TYPE")
                        .arg(&full)
                        .cmd("PTTL")
                        .arg(&full)
                        .query_async(conn)
                        .await
                })
                .await?;
            let ttl_ms = u64::try_from(ttl).ok();
            let entry = match kind.as_str() {
                "string" => {
                    let value: Option<String> =
                        self.run(async |conn| conn.get(&full).await).await?;
                    value.map(|value| Entry {
                        key,
                        value: Some(value),
                        members: None,
                        items: None,
                        ttl_ms,
                    })
                }
                "set" => {
                    let members: Vec<String> =
                        self.run(async |conn| conn.smembers(&full).await).await?;
                    (!members.is_empty()).then_some(Entry {
                        key,
                        value: None,
                        members: Some(members),
                        items: None,
                        ttl_ms,
                    })
                }
                "list" => {
                    let items: Vec<String> = self
                        .run(async |conn| conn.lrange(&full, 0, -1).await)
                        .await?;
                    (!items.is_empty()).then_some(Entry {
                        key,
                        value: None,
                        members: None,
                        items: Some(items),
                        ttl_ms,
                    })
                }
                "none" => None, // gone meanwhile
                other => {
                    return Err(StoreError::corrupt(format!(
                        "{full}: a {other}, which Wicket never writes"
                    )));
                }
            };
            entries.extend(entry);
        }
        Ok(entries)
    }

    /// How many keys a backup would hold are stored: zero for an empty store.
    pub async fn stored_keys(&self) -> Result<usize, StoreError> {
        Ok(self.ours(backed_up).await?.len())
    }

    /// Every key under the prefix that `kind` accepts (given without the prefix).
    async fn ours(&self, kind: fn(&str) -> bool) -> Result<Vec<String>, StoreError> {
        let cut = self.prefix.len() + 1;
        let keys = self.keys_matching(&format!("{}:*", self.prefix)).await?;
        Ok(keys.into_iter().filter(|k| kind(&k[cut..])).collect())
    }

    /// Deletes every key of Wicket's under the prefix (counters too): `wicket restore
    /// --force`. Another site's keys under a longer prefix stay.
    pub async fn clear(&self) -> Result<usize, StoreError> {
        let keys = self.ours(|k| backed_up(k) || is_counter(k)).await?;
        for chunk in keys.chunks(500) {
            let _: () = self.run(async |conn| conn.del(chunk).await).await?;
        }
        Ok(keys.len())
    }

    /// Writes `entry` under this store's prefix, living `elapsed_ms` less than it had
    /// left when copied; one whose time ran out is skipped (`false`).
    pub async fn put_entry(&self, entry: &Entry, elapsed_ms: u64) -> Result<bool, StoreError> {
        let ttl = match entry.ttl_ms {
            Some(ms) if ms <= elapsed_ms => return Ok(false),
            Some(ms) => Some(ms - elapsed_ms),
            None => None,
        };
        if !backed_up(&entry.key) {
            return Err(StoreError::corrupt(format!(
                "{}: not a kind of key a backup holds",
                entry.key
            )));
        }
        let key = format!("{}:{}", self.prefix, entry.key);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key);
        match (&entry.value, &entry.members, &entry.items) {
            (Some(value), None, None) => pipe.set(&key, value),
            (None, Some(members), None) if !members.is_empty() => pipe.sadd(&key, members),
            (None, None, Some(items)) if !items.is_empty() => pipe.rpush(&key, items),
            _ => {
                return Err(StoreError::corrupt(format!(
                    "{}: not one of a value, members or items",
                    entry.key
                )));
            }
        };
        if let Some(ms) = ttl {
            pipe.pexpire(&key, i64::try_from(ms).unwrap_or(i64::MAX));
        }
        let _: () = self.run(async |conn| pipe.query_async(conn).await).await?;
        Ok(true)
    }
}
