//! Tokens and index claims in Redis: `<prefix>:token:<hash>` (`SET NX PX`, taken with
//! `GETDEL`) and `<prefix>:<index>:<hash>`.

use deadpool_redis::redis::{self, AsyncCommands, SetExpiry, SetOptions};

use super::RedisStore;
use crate::store::tokens::{ClaimKey, Purpose, TokenKey, TokenRecord, TokenStore};
use crate::store::{StoreError, StoreFuture};

/// Frees an index entry (an address, a passkey) only if the given user holds it
/// (compared in lower case).
const RELEASE_CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and string.lower(owner) == string.lower(ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl TokenStore for RedisStore {
    /// `SET NX PX`: Redis deletes it when it expires.
    fn put_token<'a>(&'a self, key: &'a TokenKey, record: &'a TokenRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.token_key(key);
            let json = serde_json::to_string(record).map_err(|err| StoreError::Io(err.into()))?;
            let left = record.expires - time::OffsetDateTime::now_utc();
            let millis = u64::try_from(left.whole_milliseconds()).unwrap_or(0).max(1);
            let options = SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(SetExpiry::PX(millis));
            self.run(async |conn| {
                conn.set_options::<_, _, Option<String>>(&key, json, options)
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn peek_token<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<TokenRecord>> {
        Box::pin(async move {
            let key = self.token_key(key);
            let json: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
            json.map(|json| serde_json::from_str(&json).map_err(StoreError::corrupt))
                .transpose()
        })
    }

    /// `GETDEL`: one command, so exactly one of two concurrent takes gets it.
    fn take_token<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<TokenRecord>> {
        Box::pin(async move {
            let key = self.token_key(key);
            let json: Option<String> = self.run(async |conn| conn.get_del(&key).await).await?;
            json.map(|json| serde_json::from_str(&json).map_err(StoreError::corrupt))
                .transpose()
        })
    }

    fn claim<'a>(&'a self, key: &'a ClaimKey, user: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.claim_key(key);
            let claimed: bool = self.run(async |conn| conn.set_nx(&key, user).await).await?;
            if claimed {
                return Ok(true);
            }
            let owner: Option<String> = self.run(async |conn| conn.get(&key).await).await?;
            Ok(owner.is_some_and(|owner| owner.eq_ignore_ascii_case(user)))
        })
    }

    fn owner<'a>(&'a self, key: &'a ClaimKey) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let key = self.claim_key(key);
            self.run(async |conn| conn.get(&key).await).await
        })
    }

    fn release<'a>(&'a self, key: &'a ClaimKey, user: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.claim_key(key);
            self.run(async |conn| {
                redis::cmd("EVAL")
                    .arg(RELEASE_CLAIM)
                    .arg(1)
                    .arg(&key)
                    .arg(user)
                    .query_async::<i64>(conn)
                    .await
            })
            .await
            .map(drop)
        })
    }

    /// `SCAN` over every token (for the operator's command line, not for requests).
    fn invites(&self) -> StoreFuture<'_, Vec<(TokenKey, TokenRecord)>> {
        Box::pin(async move {
            let prefix = self.token_key_prefix();
            let now = time::OffsetDateTime::now_utc();
            let mut found = Vec::new();
            for (key, json) in self.scan_values(&format!("{prefix}*")).await? {
                let record: TokenRecord =
                    serde_json::from_str(&json).map_err(StoreError::corrupt)?;
                let hash = key.strip_prefix(&prefix).and_then(TokenKey::from_hex);
                if let Some(hash) = hash
                    && record.is_live(Purpose::Invite, now)
                {
                    found.push((hash, record));
                }
            }
            Ok(found)
        })
    }

    fn sweep_tokens(&self, _now: time::OffsetDateTime) -> StoreFuture<'_, usize> {
        Box::pin(async { Ok(0) })
    }
}
