//! Account ids for records written before accounts had them: a wrapper around any
//! user store, so every backend reads the same.
//!
//! An old record is given an id the first time it is read, through the store's own
//! atomic update, and the update keeps an id already there: of two instances reading
//! one old record at once, both end up with the id that was stored first. Nothing
//! that reads users through the seam ever sees a record without one.

use std::sync::Arc;

use super::{NameTaken, StoreFuture, User, UserChange, UserStore};
use crate::domain::{AccountId, Username};

/// A user store whose every record has an account id.
#[derive(Debug)]
pub struct AssignIds(pub Arc<dyn UserStore>);

impl AssignIds {
    /// Gives `user` an id if it has none, storing it (keeping one stored meanwhile).
    async fn with_id(
        &self,
        name: &Username,
        user: Option<User>,
    ) -> Result<Option<User>, super::StoreError> {
        match user {
            Some(user) if user.id.is_unset() => {
                let id = AccountId::generate();
                let give = move |u: &mut User| {
                    if u.id.is_unset() {
                        u.id = id.clone();
                    }
                };
                self.0.update(name, &give).await
            }
            other => Ok(other),
        }
    }
}

impl UserStore for AssignIds {
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let user = self.0.get(name).await?;
            self.with_id(name, user).await
        })
    }

    fn get_shared<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<Arc<User>>> {
        Box::pin(async move {
            match self.0.get_shared(name).await? {
                Some(user) if user.id.is_unset() => Ok(self
                    .with_id(name, Some(User::clone(&user)))
                    .await?
                    .map(Arc::new)),
                other => Ok(other),
            }
        })
    }

    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>> {
        self.0.create(user)
    }

    fn exists<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        self.0.exists(name)
    }

    fn update<'a>(
        &'a self,
        name: &'a Username,
        change: &'a UserChange,
    ) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let user = self.0.update(name, change).await?;
            self.with_id(name, user).await
        })
    }

    fn delete<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        self.0.delete(name)
    }

    fn names(&self) -> StoreFuture<'_, Vec<String>> {
        self.0.names()
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        self.0.ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileUserStore;

    #[tokio::test]
    async fn an_old_record_gets_one_id_however_many_read_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let name = Username::parse("olga").unwrap();
        let files = Arc::new(FileUserStore::open(dir.path()).unwrap());
        let old = User {
            id: AccountId::default(),
            ..User::new(&name, "$scrypt$x".into())
        };
        assert!(files.create(&old).await.unwrap().is_ok());
        // Two instances over one store, reading the old record at the same time.
        let (one, two) = (AssignIds(files.clone()), AssignIds(files.clone()));
        let (a, b) = tokio::join!(one.get(&name), two.get(&name));
        let (a, b) = (a.unwrap().unwrap().id, b.unwrap().unwrap().id);
        assert!(!a.is_unset());
        assert_eq!(a, b, "both agree");
        let stored = files.get(&name).await.unwrap().unwrap().id;
        assert_eq!(stored, a, "stored once");
    }
}
