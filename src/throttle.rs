//! In-memory, bounded rate limits for logins and registrations.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::duration::parse_duration;

/// At most `max` events per `window`, e.g. `5/15m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed in one window.
    pub max: u32,
    /// The window's length.
    pub window: Duration,
}

/// A limit, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSetting(pub Option<Limit>);

impl FromStr for LimitSetting {
    type Err = String;

    /// Parses `5/15m`, `10/1h` or `off`.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "off" {
            return Ok(Self(None));
        }
        let (max, window) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not a limit like 5/15m (or off)"))?;
        let max = max
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&m| m > 0)
            .ok_or_else(|| format!("'{max}' is not a positive whole number"))?;
        Ok(Self(Some(Limit {
            max,
            window: parse_duration(window)?,
        })))
    }
}

impl fmt::Display for LimitSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(limit) => write!(f, "{}/{}s", limit.max, limit.window.as_secs()),
        }
    }
}

/// Keys tracked at most; beyond that the entries whose windows started first go.
const CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// Counts events per key (an account, a client address) in fixed windows.
///
/// Memory is bounded: expired windows are dropped when the map fills, and if it is
/// still full the oldest windows go. Nothing is permanent: a key is free again when
/// its window ends.
#[derive(Debug)]
pub struct Throttle {
    limit: Option<Limit>,
    windows: Mutex<HashMap<String, Window>>,
}

impl Throttle {
    /// A throttle enforcing `limit` (`None`: never throttles).
    pub fn new(limit: Option<Limit>) -> Self {
        Self {
            limit,
            windows: Mutex::default(),
        }
    }

    /// Counts one event for `key`; `Err(wait)` (counting nothing) if the key is at its limit.
    pub fn hit(&self, key: &str) -> Result<(), Duration> {
        self.hit_at(key, Instant::now())
    }

    /// Takes back one event for `key` (e.g. a login that turned out to be right).
    pub fn forgive(&self, key: &str) {
        if let Some(window) = self.lock().get_mut(key) {
            window.count = window.count.saturating_sub(1);
        }
    }

    /// Forgets `key` entirely.
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    fn hit_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let mut windows = self.lock();
        if windows.len() >= CAPACITY && !windows.contains_key(key) {
            make_room(&mut windows, limit.window, now);
        }
        let window = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            count: 0,
        });
        let ends = window.started + limit.window;
        if now >= ends {
            *window = Window {
                started: now,
                count: 0,
            };
        } else if window.count >= limit.max {
            return Err(ends - now);
        }
        window.count += 1;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

fn make_room(windows: &mut HashMap<String, Window>, length: Duration, now: Instant) {
    windows.retain(|_, w| now < w.started + length);
    if windows.len() >= CAPACITY {
        let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
        let cut = CAPACITY / 10;
        starts.select_nth_unstable(cut);
        let threshold = starts[cut];
        windows.retain(|_, w| w.started > threshold);
    }
}

/// Failed-login limits: per account, and (several times looser) per client address.
#[derive(Debug)]
pub struct LoginThrottle {
    accounts: Throttle,
    addresses: Throttle,
}

/// How many accounts' worth of failures one address may make.
const ADDRESS_FACTOR: u32 = 4;

impl LoginThrottle {
    /// Per-account `limit`; per-address four times its count.
    pub fn new(limit: Option<Limit>) -> Self {
        let per_address = limit.map(|l| Limit {
            max: l.max.saturating_mul(ADDRESS_FACTOR),
            ..l
        });
        Self {
            accounts: Throttle::new(limit),
            addresses: Throttle::new(per_address),
        }
    }

    /// Counts an attempt before the password is checked; `Err(wait)` if either the
    /// account or the address is at its limit (then nothing is counted).
    pub fn attempt(&self, account: &str, address: &str) -> Result<(), Duration> {
        self.accounts.hit(account)?;
        if let Err(wait) = self.addresses.hit(address) {
            self.accounts.forgive(account);
            return Err(wait);
        }
        Ok(())
    }

    /// A successful login clears the account's failures and does not count against
    /// the address.
    pub fn succeeded(&self, account: &str, address: &str) {
        self.accounts.reset(account);
        self.addresses.forgive(address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u32, secs: u64) -> Option<Limit> {
        Some(Limit {
            max,
            window: Duration::from_secs(secs),
        })
    }

    #[test]
    fn settings_parse_limits_and_off() {
        assert_eq!("5/15m".parse(), Ok(LimitSetting(limit(5, 900))));
        assert_eq!("10/1h".parse(), Ok(LimitSetting(limit(10, 3600))));
        assert_eq!("off".parse(), Ok(LimitSetting(None)));
        for bad in ["5", "0/1m", "x/1m", "5/", "5/10"] {
            assert!(bad.parse::<LimitSetting>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_is_stopped_at_its_limit_until_the_window_ends() {
        let throttle = Throttle::new(limit(3, 60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(throttle.hit_at("a", start).is_ok());
        }
        let wait = throttle
            .hit_at("a", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            throttle.hit_at("b", start).is_ok(),
            "other keys are unaffected"
        );
        assert!(
            throttle
                .hit_at("a", start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn off_never_throttles() {
        let throttle = Throttle::new(None);
        for _ in 0..1000 {
            assert!(throttle.hit("a").is_ok());
        }
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let throttle = Throttle::new(limit(1, 3600));
        let now = Instant::now();
        for i in 0..(CAPACITY + 5_000) {
            let _ = throttle.hit_at(&format!("key{i}"), now + Duration::from_millis(i as u64));
        }
        assert!(throttle.tracked() <= CAPACITY);
        // The newest key is still limited.
        let last = format!("key{}", CAPACITY + 4_999);
        assert!(
            throttle
                .hit_at(&last, now + Duration::from_secs(200))
                .is_err()
        );
    }

    #[test]
    fn logins_are_limited_per_account_and_more_loosely_per_address() {
        let throttle = LoginThrottle::new(limit(2, 60));
        assert!(throttle.attempt("alice", "ip").is_ok());
        assert!(throttle.attempt("alice", "ip").is_ok());
        assert!(throttle.attempt("alice", "ip").is_err());
        for account in ["b", "b", "c", "c", "d", "d"] {
            assert!(throttle.attempt(account, "ip").is_ok());
        }
        assert!(
            throttle.attempt("e", "ip").is_err(),
            "address limit is 4 x 2"
        );
        assert!(throttle.attempt("e", "other-ip").is_ok());
    }

    #[test]
    fn success_clears_the_account_and_spares_the_address() {
        let throttle = LoginThrottle::new(limit(2, 60));
        throttle.attempt("alice", "ip").unwrap();
        throttle.attempt("alice", "ip").unwrap();
        throttle.succeeded("alice", "ip");
        assert!(throttle.attempt("alice", "ip").is_ok());
    }
}
