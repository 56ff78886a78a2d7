//! Grants in Redis: `<prefix>:oidc:<shelf>:<name>` (`SET PX`, added with `SET NX PX`,
//! taken with `GETDEL`); an account's shelf is also listed in the set
//! `<prefix>:oidc-shelf:<shelf>`, whose members are dropped once their keys expire.

use deadpool_redis::redis::{self, AsyncCommands, SetExpiry, SetOptions};
use time::OffsetDateTime;

use super::RedisStore;
use crate::store::grants::{Grant, GrantStore, Shelf};
use crate::store::{StoreError, StoreFuture};

/// How long an account's listing outlives its last write: longer than any grant.
const LISTING_SECS: i64 = 400 * 24 * 3600;

impl RedisStore {
    fn grant_key(&self, shelf: &Shelf, name: &str) -> String {
        format!("{}:oidc:{}:{name}", self.prefix, shelf.name())
    }

    fn listing_key(&self, shelf: &Shelf) -> Option<String> {
        matches!(shelf, Shelf::Account(_))
            .then(|| format!("{}:oidc-shelf:{}", self.prefix, shelf.name()))
    }

    /// Sets the grant (only if absent with `nx`) and lists it; whether it was set.
    async fn set_grant(
        &self,
        shelf: &Shelf,
        name: &str,
        grant: &Grant,
        nx: bool,
    ) -> Result<bool, StoreError> {
        let key = self.grant_key(shelf, name);
        let json = serde_json::to_string(grant).map_err(|err| StoreError::Io(err.into()))?;
        let left = grant.expires - OffsetDateTime::now_utc();
        let millis = u64::try_from(left.whole_milliseconds()).unwrap_or(0).max(1);
        let mut options = SetOptions::default().with_expiration(SetExpiry::PX(millis));
        if nx {
            options = options.conditional_set(redis::ExistenceCheck::NX);
        }
        let set: Option<String> = self
            .run(async |conn| conn.set_options(&key, json, options).await)
            .await?;
        if set.is_none() {
            return Ok(false);
        }
        if let Some(listing) = self.listing_key(shelf) {
            self.run(async |conn| {
                redis::pipe()
                    .sadd(&listing, name)
                    .expire(&listing, LISTING_SECS)
                    .query_async::<()>(conn)
                    .await
            })
            .await?;
        }
        Ok(true)
    }
}

fn parse(json: Option<String>) -> Result<Option<Grant>, StoreError> {
    json.map(|json| serde_json::from_str(&json).map_err(StoreError::corrupt))
        .transpose()
}

impl GrantStore for RedisStore {
    fn put_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.set_grant(shelf, name, grant, false).await.map(drop) })
    }

    fn add_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.set_grant(shelf, name, grant, true))
    }

    fn get_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>> {
        Box::pin(async move {
            let key = self.grant_key(shelf, name);
            parse(self.run(async |conn| conn.get(&key).await).await?)
        })
    }

    /// `GETDEL`: one command, so exactly one of two concurrent takes gets it.
    fn take_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>> {
        Box::pin(async move {
            let key = self.grant_key(shelf, name);
            parse(self.run(async |conn| conn.get_del(&key).await).await?)
        })
    }

    fn grants_on<'a>(&'a self, shelf: &'a Shelf) -> StoreFuture<'a, Vec<(String, Grant)>> {
        Box::pin(async move {
            let Some(listing) = self.listing_key(shelf) else {
                return Ok(Vec::new());
            };
            let names: Vec<String> = self.run(async |conn| conn.smembers(&listing).await).await?;
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = names.iter().map(|n| self.grant_key(shelf, n)).collect();
            let docs: Vec<Option<String>> = self.run(async |conn| conn.mget(&keys).await).await?;
            let mut found = Vec::new();
            let mut gone = Vec::new();
            for (name, json) in names.into_iter().zip(docs) {
                match parse(json)? {
                    Some(grant) => found.push((name, grant)),
                    None => gone.push(name),
                }
            }
            if !gone.is_empty() {
                self.run(async |conn| conn.srem::<_, _, ()>(&listing, &gone).await)
                    .await?;
            }
            Ok(found)
        })
    }

    fn sweep_grants(&self, _now: OffsetDateTime) -> StoreFuture<'_, usize> {
        Box::pin(async { Ok(0) })
    }
}
