//! Journals in Redis: `<prefix>:journal:<account id>`, a list, newest first; an
//! append is `LPUSH` and `LTRIM` in one transaction.

use deadpool_redis::redis::{self, AsyncCommands};

use super::RedisStore;
use crate::domain::AccountId;
use crate::store::journal::{Entry, JournalStore, KEPT};
use crate::store::{StoreError, StoreFuture};

impl RedisStore {
    fn journal_key(&self, account: &AccountId) -> String {
        format!("{}:journal:{}", self.prefix, account.as_str())
    }
}

impl JournalStore for RedisStore {
    fn record<'a>(&'a self, account: &'a AccountId, entry: &'a Entry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.journal_key(account);
            let json = serde_json::to_string(entry).map_err(StoreError::corrupt)?;
            let last = isize::try_from(KEPT).unwrap_or(isize::MAX) - 1;
            self.run(async |conn| {
                redis::pipe()
                    .atomic()
                    .lpush(&key, &json)
                    .ltrim(&key, 0, last)
                    .query_async::<()>(conn)
                    .await
            })
            .await
        })
    }

    fn entries<'a>(
        &'a self,
        account: &'a AccountId,
        skip: usize,
        take: usize,
    ) -> StoreFuture<'a, (Vec<Entry>, usize)> {
        Box::pin(async move {
            let key = self.journal_key(account);
            let (from, to) = (skip, skip + take.max(1) - 1);
            let (docs, total): (Vec<String>, usize) = self
                .run(async |conn| {
                    redis::pipe()
                        .lrange(&key, from as isize, to as isize)
                        .llen(&key)
                        .query_async(conn)
                        .await
                })
                .await?;
            let entries = docs
                .iter()
                .map(|json| serde_json::from_str(json).map_err(StoreError::corrupt))
                .collect::<Result<Vec<Entry>, _>>()?;
            let entries = if take == 0 { Vec::new() } else { entries };
            Ok((entries, total))
        })
    }

    fn forget<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.journal_key(account);
            self.run(async |conn| conn.del::<_, ()>(&key).await).await
        })
    }
}
