//! Users in Redis: `<prefix>:user:<lower-case name>`, created with `SET NX` so Redis
//! decides which of two concurrent registrations wins.

use deadpool_redis::redis::{self, AsyncCommands};

use super::RedisStore;
use crate::domain::Username;
use crate::store::{NameTaken, StoreError, StoreFuture, User, UserChange, UserStore};

impl UserStore for RedisStore {
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let key = self.user_key(&name.key());
            let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
            json.map(|json| serde_json::from_str(&json).map_err(StoreError::corrupt))
                .transpose()
        })
    }

    /// `SET NX`: Redis decides which of two concurrent registrations wins.
    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>> {
        Box::pin(async move {
            let key = self.user_key(&user.key());
            let json = serde_json::to_string(user).map_err(|err| StoreError::Io(err.into()))?;
            let created: bool = self.run(async |conn| conn.set_nx(&key, json).await).await?;
            Ok(if created { Ok(()) } else { Err(NameTaken) })
        })
    }

    fn exists<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.user_key(&name.key());
            self.run(async |conn| conn.exists(&key).await).await
        })
    }

    /// An optimistic transaction: WATCH, read, change, MULTI/SET/EXEC, again if
    /// another write came in between.
    fn update<'a>(
        &'a self,
        name: &'a Username,
        change: &'a UserChange,
    ) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let key = self.user_key(&name.key());
            let outcome = self
                .run(async |conn| {
                    loop {
                        redis::cmd("WATCH")
                            .arg(&key)
                            .query_async::<()>(&mut *conn)
                            .await?;
                        let Some(json) = conn.get::<_, Option<String>>(&key).await? else {
                            redis::cmd("UNWATCH").query_async::<()>(&mut *conn).await?;
                            return Ok(None);
                        };
                        let Ok(mut user) = serde_json::from_str::<User>(&json) else {
                            redis::cmd("UNWATCH").query_async::<()>(&mut *conn).await?;
                            return Ok(Some(Err(json)));
                        };
                        change(&mut user);
                        let json = serde_json::to_string(&user).expect("a user serialises");
                        let done: Option<(String,)> = redis::pipe()
                            .atomic()
                            .set(&key, json)
                            .query_async(&mut *conn)
                            .await?;
                        if done.is_some() {
                            return Ok(Some(Ok(user)));
                        }
                    }
                })
                .await?;
            match outcome {
                None => Ok(None),
                Some(Ok(user)) => Ok(Some(user)),
                Some(Err(_corrupt)) => Err(StoreError::corrupt("corrupt user record in redis")),
            }
        })
    }

    fn delete<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.user_key(&name.key());
            let deleted: u64 = self.run(async |conn| conn.del(&key).await).await?;
            Ok(deleted > 0)
        })
    }

    fn names(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut names = Vec::new();
            for (_, json) in self.scan_values(&self.user_key("*")).await? {
                let user: User = serde_json::from_str(&json).map_err(StoreError::corrupt)?;
                names.push(user.name.to_string());
            }
            names.sort_by_key(|n| n.to_ascii_lowercase());
            Ok(names)
        })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.ping())
    }
}
