//! Rate limits for logins and registrations, counted in the store's counters (in
//! memory beside the file store, in Redis for several instances): see
//! [`crate::store::counters`] for what makes them hold under attack.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::store::{Allowance, CounterStore, StoreError};

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

/// Counts events per key against one limit, in the store's counters (in memory with
/// the file store, in Redis when several instances share it).
#[derive(Debug)]
pub struct Throttle {
    kind: &'static str,
    limit: Option<Limit>,
    counters: Arc<dyn CounterStore>,
}

impl Throttle {
    /// A throttle of `kind` (the counters' key prefix) enforcing `limit` (`None`:
    /// never throttles, stores nothing).
    pub fn new(kind: &'static str, limit: Option<Limit>, counters: Arc<dyn CounterStore>) -> Self {
        Self {
            kind,
            limit,
            counters,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.kind)
    }

    /// Counts one event for `key`; `Err(wait)` (counting nothing) if it is at its limit.
    pub async fn hit(&self, key: &str) -> Result<Result<(), Duration>, StoreError> {
        let Some(limit) = self.limit else {
            return Ok(Ok(()));
        };
        let allowance = Allowance {
            max: limit.max,
            window: limit.window,
        };
        let hit = self.counters.hit(&self.key(key), allowance).await?;
        if hit.is_err() {
            crate::metrics::metrics().throttled(self.kind);
        }
        Ok(hit)
    }

    /// Takes back one event for `key` (e.g. a login that turned out to be right).
    pub async fn forgive(&self, key: &str) -> Result<(), StoreError> {
        match self.limit {
            Some(_) => self.counters.forgive(&self.key(key)).await,
            None => Ok(()),
        }
    }

    /// Forgets `key`.
    pub async fn reset(&self, key: &str) -> Result<(), StoreError> {
        match self.limit {
            Some(_) => self.counters.reset(&self.key(key)).await,
            None => Ok(()),
        }
    }
}

/// The key of a client address: an IPv4 address as it is, an IPv6 address by its
/// network (`/64` by default), since one IPv6 host is usually handed a whole /64.
pub fn address_key(ip: IpAddr, ipv6_prefix: u8) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let network = Ipv6Addr::from(u128::from(v6) & mask);
            format!("{network}/{bits}")
        }
    }
}

/// Who is trying a password.
#[derive(Debug, Clone, Copy)]
pub enum Attempt<'a> {
    /// A browser without a device cookie for the account: counted against the
    /// account's limit for unknown clients and against its address.
    Untrusted {
        /// The account typed (lower case, at most 64 characters).
        account: &'a str,
        /// The client's address key ([`address_key`]).
        address: &'a str,
    },
    /// A browser with a genuine device cookie for the account (it logged in here
    /// before): counted against that device alone, so an attack on the account from
    /// elsewhere does not lock it out.
    Device {
        /// The device's id, from its cookie.
        id: &'a str,
    },
}

impl<'a> Attempt<'a> {
    /// A known device's attempt if the browser has a device id for the account, else
    /// an unknown client's on `account` from `address`.
    pub fn of(device: Option<&'a str>, account: &'a str, address: &'a str) -> Self {
        match device {
            Some(id) => Self::Device { id },
            None => Self::Untrusted { account, address },
        }
    }
}

/// What a failed attempt guessed at. Each has its own counts per account and per
/// device, so a right password never clears the count of wrong codes (whoever knows
/// the password must not earn fresh code guesses by logging in again); both count
/// against the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guess {
    /// A password.
    Password,
    /// A second-factor code (an app's code or a recovery code).
    Code,
}

/// Failed-login limits (OWASP's device-cookie scheme): per account for unknown
/// clients, per device for browsers the account has used, and (several times looser)
/// per client address; passwords and codes counted apart.
#[derive(Debug)]
pub struct LoginThrottle {
    accounts: Throttle,
    devices: Throttle,
    code_accounts: Throttle,
    code_devices: Throttle,
    addresses: Throttle,
}

/// How many accounts' worth of failures one address may make.
const ADDRESS_FACTOR: u32 = 4;

impl LoginThrottle {
    /// Per-account and per-device `limit` (for passwords and for codes alike);
    /// per-address four times its count.
    pub fn new(limit: Option<Limit>, counters: Arc<dyn CounterStore>) -> Self {
        let per_address = limit.map(|l| Limit {
            max: l.max.saturating_mul(ADDRESS_FACTOR),
            ..l
        });
        Self {
            accounts: Throttle::new("account", limit, counters.clone()),
            devices: Throttle::new("device", limit, counters.clone()),
            code_accounts: Throttle::new("code-account", limit, counters.clone()),
            code_devices: Throttle::new("code-device", limit, counters.clone()),
            addresses: Throttle::new("address", per_address, counters),
        }
    }

    /// The per-account and per-device counts of `guess`.
    fn of(&self, guess: Guess) -> (&Throttle, &Throttle) {
        match guess {
            Guess::Password => (&self.accounts, &self.devices),
            Guess::Code => (&self.code_accounts, &self.code_devices),
        }
    }

    /// Counts an attempt before the guess is checked; `Err(wait)` if a limit is
    /// reached (then nothing is counted). The address is checked first: a client over
    /// its limit cannot create account keys, however many names it tries.
    pub async fn attempt(
        &self,
        guess: Guess,
        who: Attempt<'_>,
    ) -> Result<Result<(), Duration>, StoreError> {
        let (accounts, devices) = self.of(guess);
        match who {
            Attempt::Device { id } => devices.hit(id).await,
            Attempt::Untrusted { account, address } => {
                if let Err(wait) = self.addresses.hit(address).await? {
                    return Ok(Err(wait));
                }
                if let Err(wait) = accounts.hit(account).await? {
                    self.addresses.forgive(address).await?;
                    return Ok(Err(wait));
                }
                Ok(Ok(()))
            }
        }
    }

    /// A right guess clears the count of its kind that its attempt was counted on
    /// (the account's for unknown clients, or the device's) and does not count
    /// against the address. The other kind's count stays.
    pub async fn succeeded(&self, guess: Guess, who: Attempt<'_>) -> Result<(), StoreError> {
        let (accounts, devices) = self.of(guess);
        match who {
            Attempt::Device { id } => devices.reset(id).await,
            Attempt::Untrusted { account, address } => {
                accounts.reset(account).await?;
                self.addresses.forgive(address).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryCounters;

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

    fn throttle(max: u32) -> LoginThrottle {
        LoginThrottle::new(limit(max, 60), Arc::new(MemoryCounters::new(1000)))
    }

    fn untrusted<'a>(account: &'a str, address: &'a str) -> Attempt<'a> {
        Attempt::Untrusted { account, address }
    }

    /// Whether the attempt is let through (and so counted).
    async fn allowed(throttle: &LoginThrottle, who: Attempt<'_>) -> bool {
        throttle
            .attempt(Guess::Password, who)
            .await
            .unwrap()
            .is_ok()
    }

    #[tokio::test]
    async fn off_never_throttles_nor_stores() {
        let counters = Arc::new(MemoryCounters::new(10));
        let throttle = Throttle::new("x", None, counters.clone());
        for i in 0..100 {
            assert!(throttle.hit(&format!("k{i}")).await.unwrap().is_ok());
        }
        assert!(counters.is_empty());
    }

    #[tokio::test]
    async fn logins_are_limited_per_account_and_more_loosely_per_address() {
        let throttle = throttle(2);
        assert!(allowed(&throttle, untrusted("alice", "ip")).await);
        assert!(allowed(&throttle, untrusted("alice", "ip")).await);
        assert!(!allowed(&throttle, untrusted("alice", "ip")).await);
        for account in ["b", "b", "c", "c", "d", "d"] {
            assert!(allowed(&throttle, untrusted(account, "ip")).await);
        }
        let over = throttle
            .attempt(Guess::Password, untrusted("e", "ip"))
            .await
            .unwrap();
        assert!(over.is_err(), "address limit is 4 x 2");
        assert!(allowed(&throttle, untrusted("e", "other-ip")).await);
    }

    #[tokio::test]
    async fn an_address_over_its_limit_creates_no_account_keys() {
        let counters = Arc::new(MemoryCounters::new(30));
        let throttle = LoginThrottle::new(limit(1, 60), counters.clone());
        for i in 0..4 {
            let name = format!("n{i}");
            assert!(allowed(&throttle, untrusted(&name, "ip")).await);
        }
        // 4 account keys and the address: now thousands of new names change nothing.
        for i in 0..5000 {
            let name = format!("m{i}");
            assert!(!allowed(&throttle, untrusted(&name, "ip")).await);
        }
        assert_eq!(counters.len(), 5);
    }

    #[tokio::test]
    async fn a_known_device_logs_in_while_the_account_is_locked_for_others() {
        let throttle = throttle(2);
        for _ in 0..2 {
            assert!(allowed(&throttle, untrusted("alice", "attacker")).await);
        }
        assert!(!allowed(&throttle, untrusted("alice", "owner-ip")).await);
        let owner = Attempt::Device { id: "d1" };
        assert!(allowed(&throttle, owner).await);
        throttle.succeeded(Guess::Password, owner).await.unwrap();
        // The device has a limit of its own.
        for _ in 0..2 {
            assert!(allowed(&throttle, owner).await);
        }
        assert!(!allowed(&throttle, owner).await);
        assert!(allowed(&throttle, Attempt::Device { id: "d2" }).await);
    }

    #[tokio::test]
    async fn success_clears_the_account_and_spares_the_address() {
        let throttle = throttle(2);
        assert!(allowed(&throttle, untrusted("alice", "ip")).await);
        assert!(allowed(&throttle, untrusted("alice", "ip")).await);
        throttle
            .succeeded(Guess::Password, untrusted("alice", "ip"))
            .await
            .unwrap();
        assert!(allowed(&throttle, untrusted("alice", "ip")).await);
    }

    #[test]
    fn ipv6_addresses_are_grouped_by_network_and_ipv4_kept_whole() {
        let key = |ip: &str, bits| address_key(ip.parse().unwrap(), bits);
        assert_eq!(key("203.0.113.9", 64), "203.0.113.9");
        assert_eq!(key("::ffff:203.0.113.9", 64), "203.0.113.9");
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9", 64), key("2001:db8:1:2::1", 64));
        assert_ne!(key("2001:db8:1:3::1", 64), key("2001:db8:1:2::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(key("2001:db8::1", 128), "2001:db8::1/128");
    }
}

#[cfg(test)]
mod guess_tests {
    use super::*;
    use crate::store::MemoryCounters;

    #[tokio::test]
    async fn a_right_password_leaves_the_count_of_wrong_codes() {
        let limit = Some(Limit {
            max: 2,
            window: Duration::from_secs(60),
        });
        let throttle = LoginThrottle::new(limit, Arc::new(MemoryCounters::new(100)));
        let who = Attempt::Untrusted {
            account: "alice",
            address: "ip",
        };
        for _ in 0..2 {
            throttle.attempt(Guess::Code, who).await.unwrap().unwrap();
        }
        throttle
            .attempt(Guess::Password, who)
            .await
            .unwrap()
            .unwrap();
        throttle.succeeded(Guess::Password, who).await.unwrap();
        let refused = throttle.attempt(Guess::Code, who).await.unwrap();
        assert!(refused.is_err(), "codes are still at their limit");
        throttle
            .attempt(Guess::Password, who)
            .await
            .unwrap()
            .unwrap();
    }
}
