//! Rate-limit counters in Redis: `<prefix>:count:<key>`, expiring with its window; one
//! script checks, increments and sets the expiry atomically, so every instance counts
//! towards one limit.

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};

use super::RedisStore;
use crate::store::StoreFuture;
use crate::store::counters::{Allowance, CounterStore};

/// Counts one event unless the counter is at its limit: returns -1 when counted, else
/// the milliseconds until the window ends (and changes nothing). The window starts
/// with the first event.
const HIT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    left = tonumber(ARGV[2])
  end
  return left
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1
";

/// Takes one event back; a counter at zero goes.
const FORGIVE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
";

impl CounterStore for RedisStore {
    fn held(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let keys = self
                .keys_matching(&format!("{}:count:*", self.prefix))
                .await?;
            Ok(keys.len())
        })
    }

    fn hit<'a>(
        &'a self,
        key: &'a str,
        allowance: Allowance,
    ) -> StoreFuture<'a, Result<(), Duration>> {
        Box::pin(async move {
            let key = self.count_key(key);
            let window = u64::try_from(allowance.window.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let left: i64 = self
                .run(async |conn| {
                    redis::cmd("EVAL")
                        .arg(HIT)
                        .arg(1)
                        .arg(&key)
                        .arg(allowance.max)
                        .arg(window)
                        .query_async(conn)
                        .await
                })
                .await?;
            Ok(match u64::try_from(left) {
                Ok(millis) => Err(Duration::from_millis(millis)),
                Err(_) => Ok(()),
            })
        })
    }

    fn forgive<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.count_key(key);
            self.run(async |conn| {
                redis::cmd("EVAL")
                    .arg(FORGIVE)
                    .arg(1)
                    .arg(&key)
                    .query_async::<i64>(conn)
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn reset<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.count_key(key);
            self.run(async |conn| conn.del::<_, ()>(&key).await).await
        })
    }
}
