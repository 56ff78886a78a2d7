//! Rate-limit counters behind the storage seam: in memory beside the file store, in
//! Redis (one script per hit) when several instances must enforce one limit.
//!
//! A counter counts events for a key in a fixed window that starts with its first
//! event. The rules that make a limit hold under attack live here, in every backend:
//! - a refused event stores nothing (no new key, no longer window);
//! - a counter taken back to zero is forgotten;
//! - the in-memory counters are bounded, yet never forget a live count: a flood may
//!   make them over-count, never under-count.
//!
//! How the memory counters stay bounded without forgetting: keys are kept apart by
//! kind (the text before the first `:`, e.g. `account`, `address`, `forgot-address`),
//! so a flood of one kind never touches another's counts — a `/forgot` flood cannot
//! reach login windows, and nothing but a genuine device cookie creates `device` keys.
//! Each kind keeps an exact table of at most `capacity` keys and never evicts a live
//! window from it; a newcomer that finds the table full of live windows is counted in
//! the kind's count-min sketch instead: [`SKETCH_DEPTH`] rows of [`SKETCH_WIDTH`]
//! cells, each cell a count and the end of its window. A key's estimate is the least
//! of its cells, and every cell holds at least the key's own events (others' only
//! add), so the estimate over-counts and never under-counts. A cell's window is
//! stretched to a full window past each event it counts, so it cannot reset while any
//! key in it is still within its window. A key that later finds room in the table
//! carries its estimate over. Memory, per kind: the table (33 bytes a key, whatever
//! the key's length) plus, once it overflowed, the sketch (512 KiB); see
//! [`MEMORY_CAPACITY`].

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
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

    /// How many counters are held (for metrics). Wrappers forward it.
    fn held(&self) -> StoreFuture<'_, usize> {
        Box::pin(async { Ok(0) })
    }
}

/// Counters in this process's memory: for one instance (the file store). Bounded per
/// kind of key, never forgetting a live count (see the module's notes).
pub struct MemoryCounters {
    capacity: usize,
    epoch: Instant,
    hasher: RandomState,
    kinds: Mutex<HashMap<String, Kind>>,
}

impl fmt::Debug for MemoryCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCounters")
            .field("capacity", &self.capacity)
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

/// The counters of one kind of key.
#[derive(Default)]
struct Kind {
    /// Keyed by a keyed 64-bit hash of the key, so an entry's size does not depend on
    /// what a client typed (two keys sharing a hash would only over-count).
    exact: HashMap<u64, Window>,
    /// Made when the table first overflows.
    sketch: Option<Sketch>,
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

/// Rows of a kind's count-min sketch.
pub const SKETCH_DEPTH: usize = 4;
/// Cells in each row.
pub const SKETCH_WIDTH: usize = 16_384;

/// Keys of one kind kept exactly, at most, by default. An entry is a 64-bit hash and
/// its window (32 bytes, 33 with the table's control byte); the table of 20,000 sits in
/// 32,768 buckets (about 1.1 MB), the sketch takes 512 KiB: at most about 1.6 MB a
/// kind, about 16 MB for the ten kinds Wicket counts.
pub const MEMORY_CAPACITY: usize = 20_000;

/// One cell: a count and the end of its window, in whole seconds from the counters'
/// epoch (rounded up, so a window never ends early).
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    count: u32,
    ends: u32,
}

/// A count-min sketch whose cells expire.
struct Sketch {
    cells: Vec<Cell>,
}

impl Sketch {
    fn new() -> Self {
        Self {
            cells: vec![Cell::default(); SKETCH_DEPTH * SKETCH_WIDTH],
        }
    }

    /// The live cells' least count (0 if any has ended) and when the cells holding it
    /// end at the earliest.
    fn estimate(&self, cells: &[usize; SKETCH_DEPTH], now: u32) -> (u32, u32) {
        let mut least = (u32::MAX, u32::MAX);
        for &at in cells {
            let cell = self.cells[at];
            let count = if now < cell.ends { cell.count } else { 0 };
            if count < least.0 || (count == least.0 && cell.ends < least.1) {
                least = (count, cell.ends);
            }
        }
        least
    }

    /// Counts one event in every cell, each stretched to `ends` at least.
    fn count(&mut self, cells: &[usize; SKETCH_DEPTH], now: u32, ends: u32) {
        for &at in cells {
            let cell = &mut self.cells[at];
            if now >= cell.ends {
                *cell = Cell::default();
            }
            cell.count = cell.count.saturating_add(1);
            cell.ends = cell.ends.max(ends);
        }
    }
}

impl MemoryCounters {
    /// Counters keeping at most `capacity` keys of each kind exactly.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            epoch: Instant::now(),
            hasher: RandomState::new(),
            kinds: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kind>> {
        self.kinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Seconds from the epoch to `at`, rounded up.
    fn secs(&self, at: Instant) -> u32 {
        let since = at.saturating_duration_since(self.epoch);
        let whole = since.as_secs() + u64::from(since.subsec_nanos() > 0);
        u32::try_from(whole).unwrap_or(u32::MAX)
    }

    /// The cells `key` maps to, one per row (keyed hashes: an attacker cannot aim
    /// collisions at a victim's cells).
    fn cells(&self, key: &str) -> [usize; SKETCH_DEPTH] {
        std::array::from_fn(|row| {
            let hash = self.hasher.hash_one((row, key));
            row * SKETCH_WIDTH + (hash % SKETCH_WIDTH as u64) as usize
        })
    }

    fn hit_at(&self, key: &str, allowance: Allowance, now: Instant) -> Result<(), Duration> {
        let mut kinds = self.lock();
        let kind_name = key.split_once(':').map_or("", |(kind, _)| kind);
        if !kinds.contains_key(kind_name) {
            kinds.insert(kind_name.to_owned(), Kind::default());
        }
        let kind = kinds.get_mut(kind_name).expect("just inserted");
        let slot = self.hasher.hash_one(key);
        if let Some(window) = kind.exact.get_mut(&slot) {
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
        // A newcomer to the table: what the sketch counted of it so far comes along.
        let cells = self.cells(key);
        let now_secs = self.secs(now);
        let (counted, counted_until) = kind
            .sketch
            .as_ref()
            .map_or((0, 0), |sketch| sketch.estimate(&cells, now_secs));
        if counted >= allowance.max {
            let ends = self.epoch + Duration::from_secs(counted_until.into());
            return Err(ends
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)));
        }
        if kind.exact.len() >= self.capacity {
            kind.exact.retain(|_, w| now < w.ends);
        }
        if kind.exact.len() < self.capacity {
            let ends = match counted {
                0 => now + allowance.window,
                _ => (self.epoch + Duration::from_secs(counted_until.into()))
                    .max(now + Duration::from_secs(1)),
            };
            let window = Window {
                ends,
                count: counted + 1,
                max: allowance.max,
            };
            kind.exact.insert(slot, window);
            return Ok(());
        }
        // Full of live windows: none is forgotten; the newcomer is counted roughly.
        let sketch = kind.sketch.get_or_insert_with(|| {
            tracing::warn!(
                kind = kind_name,
                capacity = self.capacity,
                "throttle table full of live limits; counting newcomers approximately"
            );
            Sketch::new()
        });
        let ends = self.secs(now + allowance.window);
        sketch.count(&cells, now_secs, ends);
        Ok(())
    }

    /// How many keys are kept exactly now, of every kind.
    pub fn len(&self) -> usize {
        self.lock().values().map(|kind| kind.exact.len()).sum()
    }

    /// Whether no key is tracked (exactly or in a sketch).
    pub fn is_empty(&self) -> bool {
        self.lock()
            .values()
            .all(|kind| kind.exact.is_empty() && kind.sketch.is_none())
    }
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

    /// Only a key kept exactly is taken back: one counted in a sketch stays counted
    /// (over-counting is safe; taking from cells others share is not).
    fn forgive<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let mut kinds = self.lock();
        let kind_name = key.split_once(':').map_or("", |(kind, _)| kind);
        let slot = self.hasher.hash_one(key);
        if let Some(kind) = kinds.get_mut(kind_name)
            && let Some(window) = kind.exact.get_mut(&slot)
        {
            window.count = window.count.saturating_sub(1);
            if window.count == 0 {
                kind.exact.remove(&slot);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn reset<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let mut kinds = self.lock();
        let kind_name = key.split_once(':').map_or("", |(kind, _)| kind);
        let slot = self.hasher.hash_one(key);
        if let Some(kind) = kinds.get_mut(kind_name) {
            kind.exact.remove(&slot);
        }
        Box::pin(async { Ok(()) })
    }

    fn held(&self) -> StoreFuture<'_, usize> {
        let held = self.len();
        Box::pin(async move { Ok(held) })
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

    /// How many of twenty hits on `key` are let through at `at`.
    fn let_through(counters: &MemoryCounters, key: &str, limit: Allowance, at: Instant) -> usize {
        (0..20)
            .filter(|_| counters.hit_at(key, limit, at).is_ok())
            .count()
    }

    #[test]
    fn a_flood_of_newcomers_never_resets_a_window_below_its_limit() {
        // The attack: a few guesses, a flood of other keys, then more guesses.
        let counters = MemoryCounters::new(100);
        let now = Instant::now();
        let limit = allow(5, 900);
        for _ in 0..4 {
            counters.hit_at("account:alice", limit, now).unwrap();
        }
        for i in 0..5_000 {
            let _ = counters.hit_at(&format!("account:n{i}"), limit, now);
        }
        assert_eq!(let_through(&counters, "account:alice", limit, now), 1);
        assert!(counters.len() <= 100, "bounded: {}", counters.len());
    }

    #[test]
    fn newcomers_to_a_full_table_are_still_limited() {
        let counters = MemoryCounters::new(50);
        let now = Instant::now();
        let limit = allow(5, 900);
        for i in 0..50 {
            counters
                .hit_at(&format!("address:{i}"), limit, now)
                .unwrap();
        }
        // Each of these lives in the sketch only, and still gets exactly its five.
        for i in 0..200 {
            let key = format!("address:new{i}");
            assert_eq!(let_through(&counters, &key, limit, now), 5, "{key}");
        }
        assert_eq!(counters.len(), 50);
        // Once the table's windows end, a sketched key moving in keeps its count.
        let later = now + Duration::from_secs(600);
        assert_eq!(let_through(&counters, "address:new7", limit, later), 0);
        let after = now + Duration::from_secs(901);
        assert_eq!(let_through(&counters, "address:new7", limit, after), 5);
    }

    #[test]
    fn one_kind_flooded_leaves_the_others_exact() {
        let counters = MemoryCounters::new(20);
        let now = Instant::now();
        let limit = allow(3, 900);
        counters.hit_at("device:d1", limit, now).unwrap();
        for i in 0..1_000 {
            let _ = counters.hit_at(&format!("forgot-address:{i}"), limit, now);
        }
        let kinds = counters.lock();
        assert!(kinds["device"].sketch.is_none());
        let d1 = counters.hasher.hash_one("device:d1");
        assert_eq!(kinds["device"].exact[&d1].count, 1);
        assert!(kinds["forgot-address"].sketch.is_some());
        assert_eq!(kinds["forgot-address"].exact.len(), 20);
    }

    #[test]
    fn the_memory_bound_stated_in_security_md_holds() {
        // An entry of the exact table and a sketch cell, as the bound counts them.
        assert_eq!(std::mem::size_of::<(u64, Window)>(), 32);
        assert_eq!(std::mem::size_of::<Cell>(), 8);
        assert_eq!(SKETCH_DEPTH * SKETCH_WIDTH * 8, 512 * 1024);
        // However many keys are tried, the table holds at most its capacity.
        let counters = MemoryCounters::new(64);
        let now = Instant::now();
        for i in 0..10_000 {
            let _ = counters.hit_at(&format!("k:{}{i}", "x".repeat(200)), allow(5, 60), now);
        }
        assert_eq!(counters.len(), 64);
    }

    #[test]
    fn a_key_moving_from_the_sketch_into_the_table_keeps_its_count() {
        let counters = MemoryCounters::new(10);
        let now = Instant::now();
        // A full table of windows that end after a minute.
        for i in 0..10 {
            counters
                .hit_at(&format!("k:{i}"), allow(5, 60), now)
                .unwrap();
        }
        // A newcomer counted three times in the sketch, under a longer window.
        let limit = allow(5, 900);
        for _ in 0..3 {
            counters.hit_at("k:new", limit, now).unwrap();
        }
        // The table's windows end; the newcomer moves in with its three counted.
        let later = now + Duration::from_secs(61);
        assert_eq!(let_through(&counters, "k:new", limit, later), 2);
    }

    #[tokio::test]
    async fn a_known_device_is_counted_exactly_while_other_kinds_overflow() {
        // One kind's flood sends no device key to a sketch, where a success could
        // not clear it: the owner's browser keeps its own, exact count.
        let counters = MemoryCounters::new(10);
        let now = Instant::now();
        for i in 0..1_000 {
            let _ = counters.hit_at(&format!("account:{i}"), allow(5, 900), now);
        }
        let device = allow(5, 900);
        for _ in 0..4 {
            counters.hit_at("device:owner", device, now).unwrap();
        }
        counters.reset("device:owner").await.unwrap(); // the owner logged in
        assert_eq!(let_through(&counters, "device:owner", device, now), 5);
    }

    #[test]
    fn ended_windows_make_room_before_the_sketch_is_used() {
        let counters = MemoryCounters::new(10);
        let now = Instant::now();
        for i in 0..10 {
            counters
                .hit_at(&format!("k:{i}"), allow(5, 60), now)
                .unwrap();
        }
        let later = now + Duration::from_secs(61);
        counters.hit_at("k:new", allow(5, 60), later).unwrap();
        let kinds = counters.lock();
        assert_eq!(kinds["k"].exact.len(), 1);
        assert!(kinds["k"].sketch.is_none());
    }
}
