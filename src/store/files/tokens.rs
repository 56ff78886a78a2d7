//! Tokens as `<data dir>/tokens/<SHA-256 of the token>.json`, and the indexes as
//! `<data dir>/emails/<SHA-256 of the address>.json` and
//! `<data dir>/passkeys/<SHA-256 of the credential id>.json` and
//! `<data dir>/invite-uses/<SHA-256 of the invitation and slot>.json`
//! (`{"user": "<name>"}`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{blocking, ignore_missing, read_json, to_json};
use crate::fsutil;
use crate::store::tokens::{ClaimKey, Index, Purpose, TokenKey, TokenRecord, TokenStore};
use crate::store::{StoreError, StoreFuture};

/// Tokens and the address index, one small file each, written atomically.
#[derive(Clone, Debug)]
pub struct FileTokenStore {
    tokens: Arc<PathBuf>,
    emails: Arc<PathBuf>,
    passkeys: Arc<PathBuf>,
    invite_uses: Arc<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Owner {
    user: String,
}

impl FileTokenStore {
    /// Opens `<data dir>/tokens`, `emails`, `passkeys` and `invite-uses`, created
    /// owner-only if missing.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let [tokens, emails, passkeys, invite_uses] =
            ["tokens", "emails", "passkeys", "invite-uses"].map(|d| data_dir.join(d));
        for dir in [&tokens, &emails, &passkeys, &invite_uses] {
            fsutil::private_dir(dir).map_err(|err| {
                StoreError::Config(format!("data directory {}: {err}", dir.display()))
            })?;
        }
        Ok(Self {
            tokens: Arc::new(tokens),
            emails: Arc::new(emails),
            passkeys: Arc::new(passkeys),
            invite_uses: Arc::new(invite_uses),
        })
    }

    fn token_path(&self, key: &TokenKey) -> PathBuf {
        // 64 hex characters: never a separator or a dot.
        self.tokens.join(format!("{}.json", key.as_str()))
    }

    fn claim_path(&self, key: &ClaimKey) -> PathBuf {
        let dir = match key.index() {
            Index::Email => &self.emails,
            Index::Passkey => &self.passkeys,
            Index::InviteUse => &self.invite_uses,
        };
        dir.join(format!("{}.json", key.as_str()))
    }
}

fn owner_is(owner: &Owner, user: &str) -> bool {
    owner.user.eq_ignore_ascii_case(user)
}

impl TokenStore for FileTokenStore {
    fn put_token<'a>(&'a self, key: &'a TokenKey, record: &'a TokenRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (path, bytes) = (self.token_path(key), to_json(record)?);
            Ok(blocking(move || fsutil::create_atomic(&path, &bytes)).await?)
        })
    }

    fn peek_token<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<TokenRecord>> {
        Box::pin(async move { read_json(&self.token_path(key)) })
    }

    fn take_token<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<TokenRecord>> {
        Box::pin(async move {
            let path = self.token_path(key);
            let Some(record) = read_json(&path)? else {
                return Ok(None);
            };
            // Whoever removes the file took the token; a concurrent taker finds it gone.
            let removed = blocking(move || match std::fs::remove_file(&path) {
                Ok(()) => fsutil::sync_dir_of(&path).map(|()| true),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err),
            });
            Ok(removed.await?.then_some(record))
        })
    }

    fn claim<'a>(&'a self, key: &'a ClaimKey, user: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let path = self.claim_path(key);
            let bytes = to_json(&Owner {
                user: user.to_owned(),
            })?;
            let target = path.clone();
            match blocking(move || fsutil::create_atomic(&target, &bytes)).await {
                Ok(()) => Ok(true),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    Ok(read_json::<Owner>(&path)?.is_some_and(|owner| owner_is(&owner, user)))
                }
                Err(err) => Err(err.into()),
            }
        })
    }

    fn owner<'a>(&'a self, key: &'a ClaimKey) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move { Ok(read_json::<Owner>(&self.claim_path(key))?.map(|o| o.user)) })
    }

    fn release<'a>(&'a self, key: &'a ClaimKey, user: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let path = self.claim_path(key);
            if !read_json::<Owner>(&path)?.is_some_and(|owner| owner_is(&owner, user)) {
                return Ok(());
            }
            Ok(blocking(move || {
                ignore_missing(std::fs::remove_file(&path))?;
                fsutil::sync_dir_of(&path)
            })
            .await?)
        })
    }

    fn invites(&self) -> StoreFuture<'_, Vec<(TokenKey, TokenRecord)>> {
        Box::pin(async move {
            let dir = self.tokens.clone();
            Ok(blocking(move || invites_in(&dir)).await?)
        })
    }

    fn sweep_tokens(&self, now: OffsetDateTime) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let dir = self.tokens.clone();
            Ok(blocking(move || sweep(&dir, now)).await?)
        })
    }
}

/// The live invitations among the token files in `dir`.
fn invites_in(dir: &Path) -> io::Result<Vec<(TokenKey, TokenRecord)>> {
    let now = OffsetDateTime::now_utc();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(key) = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(TokenKey::from_hex)
        else {
            continue;
        };
        match read_json::<TokenRecord>(&path) {
            Ok(Some(record)) if record.is_live(Purpose::Invite, now) => found.push((key, record)),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "unreadable token file")
            }
        }
    }
    Ok(found)
}

/// Deletes the token files in `dir` that expired before `now`.
fn sweep(dir: &Path, now: OffsetDateTime) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let expired = match read_json::<TokenRecord>(&path) {
            Ok(Some(record)) => record.expires <= now,
            Ok(None) => false, // taken meanwhile
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "unreadable token file");
                false
            }
        };
        if expired {
            ignore_missing(std::fs::remove_file(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tokens::Token;

    fn ann() -> crate::store::User {
        let name = crate::domain::Username::parse("Ann").unwrap();
        crate::store::User::new(&name, "hash".into())
    }

    fn record(expires: OffsetDateTime) -> TokenRecord {
        TokenRecord {
            email: "ann@example.com".into(),
            ..TokenRecord::new(Purpose::ResetPassword, Some(&ann()), expires)
        }
    }

    #[tokio::test]
    async fn a_token_is_taken_once_and_stored_only_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::open(dir.path()).unwrap();
        let token = Token::generate();
        let record = record(OffsetDateTime::now_utc() + time::Duration::minutes(30));
        store.put_token(&token.key(), &record).await.unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{}.json", token.key().as_str())]);
        let on_disk = std::fs::read_to_string(dir.path().join("tokens").join(&names[0])).unwrap();
        assert!(!on_disk.contains(token.as_str()));

        assert_eq!(
            store.peek_token(&token.key()).await.unwrap(),
            Some(record.clone())
        );
        let key = token.key();
        let (a, b) = tokio::join!(store.take_token(&key), store.take_token(&key));
        let taken: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(taken, [record]);
        assert_eq!(store.peek_token(&token.key()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_sweep_removes_expired_tokens_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::open(dir.path()).unwrap();
        let now = OffsetDateTime::now_utc();
        let (old, new) = (Token::generate(), Token::generate());
        store
            .put_token(&old.key(), &record(now - time::Duration::seconds(1)))
            .await
            .unwrap();
        store
            .put_token(&new.key(), &record(now + time::Duration::minutes(5)))
            .await
            .unwrap();
        assert_eq!(store.sweep_tokens(now).await.unwrap(), 1);
        assert_eq!(store.peek_token(&old.key()).await.unwrap(), None);
        assert!(store.peek_token(&new.key()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_address_belongs_to_one_account_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::open(dir.path()).unwrap();
        let key = ClaimKey::email("Ann@Example.com");
        assert!(store.claim(&key, "Ann").await.unwrap());
        assert!(store.claim(&key, "ann").await.unwrap(), "the holder again");
        assert!(!store.claim(&key, "bob").await.unwrap());
        assert_eq!(store.owner(&key).await.unwrap().as_deref(), Some("Ann"));
        store.release(&key, "bob").await.unwrap();
        assert_eq!(store.owner(&key).await.unwrap().as_deref(), Some("Ann"));
        store.release(&key, "ann").await.unwrap();
        assert_eq!(store.owner(&key).await.unwrap(), None);
        assert!(store.claim(&key, "bob").await.unwrap());
    }
}
