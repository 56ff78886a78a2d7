//! Rate-limit counters behind the storage seam: in memory beside the file store, in
//! Redis (one script per hit) when several instances must enforce one limit.
//!
//! A counter counts events for a key in a fixed window that starts with its first
//! event. The rules that make a limit hold under attack live here, in every backend:
//! - a refused event stores nothing (no new key, no longer window);
//! - a counter taken back to zero is forgotten;
//! - the in-memory table is bounded, but never forgets a counter that is at its limit:
//!   when it is full of live lockouts it refuses new keys instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreFuture;

/// What a counter allows: at most `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Events allowed in one window.
    pub max: u32,
    /// The window's length, from the first event.
    pub window: Duration,
}

/// Counters shared by everything that uses one store.
pub trait CounterStore: fmt::Debug + Send + Sync {
    /// Counts one event for `key` unless it is at `allowance.max` already: `Ok(())`
    /// when counted, `Err(wait)` when refused (then nothing is stored).
    fn hit<'a>(
        &'a self,
        key: &'a str,
        allowance: Allowance,
    ) -> StoreFuture<'a, Result<(), Duration>>;

    /// Takes one event back from `key` (a counter at zero is forgotten).
    fn forgive<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Forgets `key`.
    fn reset<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// Counters in this process's memory: for one instance (the file store).
#[derive(Debug)]
pub struct MemoryCounters {
    capacity: usize,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    ends: Instant,
    count: u32,
    max: u32,
}

impl Window {
    fn at_limit(&self) -> bool {
        self.count >= self.max
    }
}

/// Keys kept at most by default: about 10 MB at the worst.
pub const MEMORY_CAPACITY: usize = 100_000;

impl MemoryCounters {
    /// A table of at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            windows: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn hit_at(&self, key: &str, allowance: Allowance, now: Instant) -> Result<(), Duration> {
        let mut windows = self.lock();
        if let Some(window) = windows.get_mut(key) {
            if now >= window.ends {
                *window = Window {
                    ends: now + allowance.window,
                    count: 0,
                    max: allowance.max,
                };
            }
            window.max = allowance.max;
            if window.at_limit() {
                return Err(window.ends - now);
            }
            window.count += 1;
            return Ok(());
        }
        if windows.len() >= self.capacity && !make_room(&mut windows, self.capacity, now) {
            // Full of live lockouts: forgetting one would hand its attacker a fresh
            // allowance, so the newcomer waits instead.
            tracing::warn!(
                capacity = self.capacity,
                "throttle table full of live limits; refusing new keys"
            );
            return Err(allowance.window);
        }
        windows.insert(
            key.to_owned(),
            Window {
                ends: now + allowance.window,
                count: 1,
                max: allowance.max,
            },
        );
        Ok(())
    }

    /// How many keys are tracked now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Frees room for one key: first windows that have ended, then — oldest first, a
/// tenth of the table at a time — windows below their limit. Never one at its limit.
/// Whether there is room now.
fn make_room(windows: &mut HashMap<String, Window>, capacity: usize, now: Instant) -> bool {
    windows.retain(|_, w| now < w.ends);
    if windows.len() < capacity {
        return true;
    }
    let mut below: Vec<(Instant, String)> = windows
        .iter()
        .filter(|(_, w)| !w.at_limit())
        .map(|(key, w)| (w.ends, key.clone()))
        .collect();
    let cut = (capacity / 10).max(1).min(below.len());
    if cut == 0 {
        return false;
    }
    below.select_nth_unstable(cut - 1);
    for (_, key) in &below[..cut] {
        windows.remove(key);
    }
    true
}

impl CounterStore for MemoryCounters {
    fn hit<'a>(
        &'a self,
        key: &'a str,
        allowance: Allowance,
    ) -> StoreFuture<'a, Result<(), Duration>> {
        let result = self.hit_at(key, allowance, Instant::now());
        Box::pin(async move { Ok(result) })
    }

    fn forgive<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let mut windows = self.lock();
        if let Some(window) = windows.get_mut(key) {
            window.count = window.count.saturating_sub(1);
            if window.count == 0 {
                windows.remove(key);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn reset<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.lock().remove(key);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(max: u32, secs: u64) -> Allowance {
        Allowance {
            max,
            window: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_key_is_stopped_at_its_limit_until_its_window_ends() {
        let counters = MemoryCounters::new(10);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(counters.hit_at("a", allow(3, 60), start).is_ok());
        }
        let wait = counters
            .hit_at("a", allow(3, 60), start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(counters.hit_at("b", allow(3, 60), start).is_ok());
        // A new window, as long as the first.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(counters.hit_at("a", allow(3, 60), later).is_ok());
        }
        let wait = counters.hit_at("a", allow(3, 60), later + Duration::from_secs(1));
        assert_eq!(wait, Err(Duration::from_secs(59)));
    }

    #[tokio::test]
    async fn a_counter_taken_back_to_zero_is_forgotten() {
        let counters = MemoryCounters::new(10);
        counters.hit("a", allow(3, 60)).await.unwrap().unwrap();
        counters.hit("a", allow(3, 60)).await.unwrap().unwrap();
        assert!(!counters.is_empty());
        counters.forgive("a").await.unwrap();
        assert_eq!(counters.len(), 1);
        counters.forgive("a").await.unwrap();
        assert_eq!(counters.len(), 0);
        counters.hit("b", allow(3, 60)).await.unwrap().unwrap();
        counters.reset("b").await.unwrap();
        assert_eq!(counters.len(), 0);
    }

    #[test]
    fn a_full_table_drops_keys_below_their_limit_oldest_first() {
        let counters = MemoryCounters::new(100);
        let now = Instant::now();
        let locked = allow(1, 3600);
        counters.hit_at("locked", locked, now).unwrap();
        for i in 0..500 {
            let at = now + Duration::from_millis(i);
            let _ = counters.hit_at(&format!("k{i}"), allow(5, 3600), at);
        }
        assert!(counters.len() <= 100);
        assert!(
            counters.hit_at("locked", locked, now).is_err(),
            "the lockout survived the flood"
        );
        assert!(
            counters.hit_at("k499", allow(1, 3600), now).is_err(),
            "the newest stay"
        );
    }

    #[test]
    fn room_is_made_a_tenth_of_the_table_at_a_time_oldest_first() {
        let counters = MemoryCounters::new(100);
        let now = Instant::now();
        for i in 0..100 {
            let at = now + Duration::from_millis(i);
            counters
                .hit_at(&format!("k{i}"), allow(5, 3600), at)
                .unwrap();
        }
        assert_eq!(counters.len(), 100);
        let later = now + Duration::from_secs(1);
        counters.hit_at("one-more", allow(5, 3600), later).unwrap();
        assert_eq!(counters.len(), 91, "ten dropped, one added");
        let kept = counters.lock();
        for i in 0..100 {
            let oldest = i < 10;
            assert_eq!(kept.contains_key(&format!("k{i}")), !oldest, "k{i}");
        }
    }

    #[test]
    fn a_table_full_of_lockouts_refuses_new_keys_rather_than_forget_one() {
        let counters = MemoryCounters::new(50);
        let now = Instant::now();
        for i in 0..50 {
            counters
                .hit_at(&format!("k{i}"), allow(1, 3600), now)
                .unwrap();
        }
        let refused = counters.hit_at("newcomer", allow(1, 3600), now);
        assert_eq!(refused, Err(Duration::from_secs(3600)));
        for i in 0..50 {
            let key = format!("k{i}");
            assert!(counters.hit_at(&key, allow(1, 3600), now).is_err(), "{key}");
        }
        // Once their windows end there is room again.
        let later = now + Duration::from_secs(3600);
        assert!(counters.hit_at("newcomer", allow(1, 3600), later).is_ok());
    }
}
