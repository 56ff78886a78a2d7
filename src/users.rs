use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::Username;
use crate::fsutil;
use crate::redis_store::RedisStore;
use crate::store::StoreError;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The name as registered (case kept).
    pub name: String,
    /// scrypt PHC string, e.g. `$scrypt$ln=17,r=8,p=1$<salt>$<hash>`.
    pub password: String,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// A registration lost to an existing user of the same name (in any case).
#[derive(Debug, PartialEq, Eq)]
pub struct NameTaken;

/// Where users live: files by default, or Redis shared by several instances.
#[derive(Clone, Debug)]
pub enum UserStore {
    /// `<data dir>/users/*.json`.
    Files(FileUserStore),
    /// `<prefix>:user:*` keys.
    Redis(RedisStore),
}

impl UserStore {
    /// The user called `name` (in any case), if there is one.
    pub async fn get(&self, name: &Username) -> Result<Option<User>, StoreError> {
        match self {
            Self::Files(files) => Ok(files.get(name).await?),
            Self::Redis(redis) => redis.get_user(&name.key()).await,
        }
    }

    /// Stores a new user; `Ok(Err(NameTaken))` if the name exists in any case.
    pub async fn create(
        &self,
        name: &Username,
        password_hash: String,
    ) -> Result<Result<User, NameTaken>, StoreError> {
        let user = User::new(name, password_hash);
        let created = match self {
            Self::Files(files) => files.create(name, &user).await?,
            Self::Redis(redis) => redis.create_user(&name.key(), &user).await?,
        };
        Ok(created.map(|()| user))
    }
}

impl User {
    /// A user created now.
    pub fn new(name: &Username, password_hash: String) -> Self {
        Self {
            name: name.to_string(),
            password: password_hash,
            created: OffsetDateTime::now_utc(),
        }
    }
}

/// Users as `<data dir>/users/<lower-case name>.json`, one file each.
///
/// One file per user makes registration O(1) whatever the number of users, and
/// creating the file with a hard link makes uniqueness atomic: of two concurrent
/// registrations of one name (even from two processes) exactly one wins.
#[derive(Clone, Debug)]
pub struct FileUserStore {
    dir: Arc<PathBuf>,
}

impl FileUserStore {
    /// Opens (creating, owner-only) `<data dir>/users`.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join("users");
        fsutil::create_private_dir(&dir)?;
        Ok(Self { dir: Arc::new(dir) })
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

    fn path(&self, name: &Username) -> PathBuf {
        // The key is [a-z0-9_.-]{3,32}: never a separator, never "." or "..".
        self.dir.join(format!("{}.json", name.key()))
    }

    /// The user called `name` (in any case), if there is one.
    pub async fn get(&self, name: &Username) -> io::Result<Option<User>> {
        match tokio::fs::read(self.path(name)).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Stores `user` as `name`; `Ok(Err(NameTaken))` if the name exists in any case.
    pub async fn create(&self, name: &Username, user: &User) -> io::Result<Result<(), NameTaken>> {
        let mut bytes = serde_json::to_vec_pretty(user).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let path = self.path(name);
        let created = tokio::task::spawn_blocking(move || fsutil::create_atomic(&path, &bytes))
            .await
            .map_err(io::Error::other)?;
        match created {
            Ok(()) => Ok(Ok(())),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Err(NameTaken)),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Username {
        Username::parse(text).unwrap()
    }

    #[tokio::test]
    async fn a_user_is_found_in_any_case_and_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::Files(FileUserStore::open(dir.path()).unwrap());
        store
            .create(&name("Alice"), "$scrypt$x".into())
            .await
            .unwrap()
            .unwrap();
        let found = store.get(&name("aLiCe")).await.unwrap().unwrap();
        assert_eq!(found.name, "Alice");
        assert_eq!(found.password, "$scrypt$x");
        assert_eq!(store.get(&name("bob")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_name_taken_in_another_case_is_refused_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::Files(FileUserStore::open(dir.path()).unwrap());
        store
            .create(&name("alice"), "first".into())
            .await
            .unwrap()
            .unwrap();
        let again = store.create(&name("ALICE"), "second".into()).await.unwrap();
        assert_eq!(again, Err(NameTaken));
        assert_eq!(
            store.get(&name("alice")).await.unwrap().unwrap().password,
            "first"
        );
    }

    #[tokio::test]
    async fn a_corrupt_user_file_is_an_error_not_a_missing_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::Files(FileUserStore::open(dir.path()).unwrap());
        std::fs::write(dir.path().join("users/carol.json"), "{").unwrap();
        assert!(store.get(&name("carol")).await.is_err());
    }
}
