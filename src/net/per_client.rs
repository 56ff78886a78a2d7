//! A cap on the connections one client may hold open.
//!
//! The overall cap (`--max-connections`) protects descriptors, not fairness: one
//! client that sends a request on each kept-alive connection before the idle timeout
//! holds every slot for as long as it likes, and everyone else waits in the kernel's
//! queue. So each client address (an IPv6 client's network, since one host is usually
//! handed a whole /64) may hold at most `--max-connections-per-client`; a connection
//! over that is closed as soon as it is accepted, so it neither waits in the queue nor
//! takes a slot. The address is the TCP peer's: forwarding headers are not read yet,
//! and a trusted proxy, which carries many clients, is not capped at all.
//!
//! The table holds one entry per address with a connection open, so its size is
//! bounded by the overall cap.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use super::TrustedProxies;

/// How many connections each client address has open, and how many it may.
pub struct PerClient {
    max: usize,
    exempt: TrustedProxies,
    ipv6_prefix: u8,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    /// At most `max` connections per address, IPv6 addresses grouped by their first
    /// `ipv6_prefix` bits, the `exempt` proxies uncapped.
    pub fn new(max: usize, exempt: TrustedProxies, ipv6_prefix: u8) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            exempt,
            ipv6_prefix,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The most connections one address may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for a new connection from `peer`, held until it is dropped; `None` if
    /// that client already holds its cap.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<ClientSlot> {
        let peer = peer.to_canonical();
        if self.exempt.trusts(peer) {
            return Some(ClientSlot { of: None });
        }
        let client = network_of(peer, self.ipv6_prefix);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            of: Some((self.clone(), client)),
        })
    }

    fn release(&self, client: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                // Only addresses with connections open are kept: the table stays small.
                open.remove(&client);
            }
        }
    }
}

/// One connection's place under its client's cap, given back when it is dropped.
pub struct ClientSlot {
    /// `None` for a trusted proxy, which is not counted.
    of: Option<(Arc<PerClient>, IpAddr)>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some((caps, client)) = &self.of {
            caps.release(*client);
        }
    }
}

/// The client an address counts as: an IPv4 address itself, an IPv6 address its
/// network of `ipv6_prefix` bits (one host is usually handed a whole /64).
fn network_of(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_cap_and_its_places_back_when_they_close() {
        let caps = PerClient::new(2, TrustedProxies::default(), 64);
        let first = caps.admit(ip("192.0.2.1")).unwrap();
        let _second = caps.admit(ip("192.0.2.1")).unwrap();
        assert!(caps.admit(ip("192.0.2.1")).is_none());
        assert!(caps.admit(ip("192.0.2.2")).is_some(), "others are not held");
        drop(first);
        assert!(caps.admit(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client_and_mapped_ipv4_as_ipv4() {
        let caps = PerClient::new(1, TrustedProxies::default(), 64);
        let _held = caps.admit(ip("2001:db8::1")).unwrap();
        assert!(caps.admit(ip("2001:db8::ffff:2")).is_none());
        assert!(caps.admit(ip("2001:db8:0:1::1")).is_some());
        let _v4 = caps.admit(ip("192.0.2.1")).unwrap();
        assert!(caps.admit(ip("::ffff:192.0.2.1")).is_none());
    }

    #[test]
    fn trusted_proxies_are_not_capped_and_the_table_empties() {
        let caps = PerClient::new(1, "10.0.0.0/8".parse().unwrap(), 64);
        let proxied: Vec<_> = (0..5).map(|_| caps.admit(ip("10.1.2.3"))).collect();
        assert!(proxied.iter().all(Option::is_some));
        let held = caps.admit(ip("192.0.2.1"));
        drop(held);
        drop(proxied);
        assert!(caps.open.lock().unwrap().is_empty());
    }
}
