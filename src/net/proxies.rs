//! Who the client really is behind a reverse proxy.
//!
//! Behind nginx every TCP peer is nginx, so per-address limits would lump every
//! visitor together. The proxy says who its client was in `X-Forwarded-For` (or
//! `Forwarded`), but anyone can send those headers too. So they are believed only
//! when the TCP peer is a proxy the operator named (`--trusted-proxies`), and then
//! read from the right: each trusted proxy *appends* the address it saw, so the
//! rightmost address that is not itself a trusted proxy is the first one that no
//! trusted party vouches past — the client. Everything to its left was written by the
//! client and is ignored.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use poem::http::HeaderMap;

/// A network: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            _ => false,
        }
    }
}

/// Whether the first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `fd00::/8`, or a single address (`127.0.0.1`, `::1`).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let network = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("'{text}' is not an IP address or network like 10.0.0.0/8"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { network, bits })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

/// Which header a trusted proxy writes the client's address into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` when present, else `Forwarded`. Right for nginx, which appends
    /// to `X-Forwarded-For` and passes `Forwarded` through untouched (so a client's
    /// own `Forwarded` is never read while nginx's header is there).
    #[default]
    Auto,
    /// Only `X-Forwarded-For`.
    XForwardedFor,
    /// Only `Forwarded` (RFC 7239), for proxies that write that one; a client's own
    /// `X-Forwarded-For` is then ignored.
    Forwarded,
}

/// The proxies whose forwarding headers are believed (`--trusted-proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses and networks; empty means none.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl TrustedProxies {
    /// Whether any proxy is trusted at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of these proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address for a request from TCP peer `peer` with `headers`.
    ///
    /// An untrusted peer is the client, whatever it sends. From a trusted peer, the
    /// hops are walked from the right past every trusted proxy; the first other
    /// address is the client. A hop that does not parse (`unknown`, garbage) stops
    /// the walk at the proxy that handed it over, so a malformed header can never
    /// pick an address of the client's choosing.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap, which: ForwardedHeader) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let use_xff = match which {
            ForwardedHeader::XForwardedFor => true,
            ForwardedHeader::Forwarded => false,
            ForwardedHeader::Auto => headers.contains_key("x-forwarded-for"),
        };
        let (name, hop_of): (&str, fn(&str) -> Option<IpAddr>) = if use_xff {
            ("x-forwarded-for", parse_node)
        } else {
            ("forwarded", forwarded_for)
        };
        // Header lines are appended in order too: the last line is the rightmost.
        let hops = headers
            .get_all(name)
            .iter()
            .rev()
            .flat_map(|line| line.to_str().unwrap_or("\u{0}").rsplit(','));
        for hop in hops {
            match hop_of(hop) {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }
}

/// The `for=` node of one `Forwarded` element, e.g. `for="[2001:db8::1]:4711";proto=https`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        if !port_ok {
            return None;
        }
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (host, port) = text.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn client(trusted: &str, peer: &str, pairs: &[(&'static str, &str)]) -> IpAddr {
        let proxies: TrustedProxies = trusted.parse().unwrap();
        proxies.client_of(ip(peer), &headers(pairs), ForwardedHeader::Auto)
    }

    #[test]
    fn networks_parse_and_match_on_their_prefix() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped counts as IPv4"
        );
        let high: Cidr = "10.0.128.0/17".parse().unwrap();
        assert!(high.contains(ip("10.0.200.1")) && !high.contains(ip("10.0.127.1")));
        let odd: Cidr = "192.168.0.0/23".parse().unwrap();
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.2.1")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.1.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let list: TrustedProxies = " 127.0.0.1 , 10.0.0.0/8,".parse().unwrap();
        assert_eq!(list.to_string(), "127.0.0.1/32,10.0.0.0/8");
        assert!(!list.is_empty());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let said = [
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=198.51.100.1"),
        ];
        assert_eq!(client("", "192.0.2.1", &said), ip("192.0.2.1"));
        assert_eq!(client("10.0.0.0/8", "192.0.2.1", &said), ip("192.0.2.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = "127.0.0.1,10.0.0.0/8";
        // The client claimed 1.1.1.1; nginx appended the address it really saw.
        let xff = [("x-forwarded-for", "1.1.1.1, 203.0.113.7")];
        assert_eq!(client(trusted, "127.0.0.1", &xff), ip("203.0.113.7"));
        // Two proxies: the inner one's address is skipped.
        let chain = [("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.5")];
        assert_eq!(client(trusted, "127.0.0.1", &chain), ip("203.0.113.7"));
        // Several header lines read as one list, in order.
        let lines = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7:5555"),
        ];
        assert_eq!(client(trusted, "127.0.0.1", &lines), ip("203.0.113.7"));
        // No header: the proxy itself (e.g. its own health checks).
        assert_eq!(client(trusted, "127.0.0.1", &[]), ip("127.0.0.1"));
        // Only trusted hops: the leftmost of them.
        let inner = [("x-forwarded-for", "10.0.0.9, 10.0.0.5")];
        assert_eq!(client(trusted, "127.0.0.1", &inner), ip("10.0.0.9"));
    }

    #[test]
    fn a_malformed_hop_stops_at_the_proxy_that_passed_it_on() {
        let trusted = "127.0.0.1,10.0.0.0/8";
        for garbage in [
            "1.1.1.1, unknown",
            "1.1.1.1, , ",
            "1.1.1.1, 300.1.1.1",
            "1.1.1.1, 203.0.113.7:port",
            "1.1.1.1, [2001:db8::1]:port",
            "1.1.1.1, [2001:db8::1]x",
        ] {
            let said = [("x-forwarded-for", garbage)];
            assert_eq!(
                client(trusted, "127.0.0.1", &said),
                ip("127.0.0.1"),
                "{garbage}"
            );
        }
        let said = [("x-forwarded-for", "1.1.1.1, unknown, 10.0.0.5")];
        assert_eq!(client(trusted, "127.0.0.1", &said), ip("10.0.0.5"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = "127.0.0.1";
        let said = [(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https;by=127.0.0.1"#,
        )];
        assert_eq!(client(trusted, "127.0.0.1", &said), ip("2001:db8:cafe::17"));
        let upper = [("forwarded", "For=198.51.100.4:80")];
        assert_eq!(client(trusted, "127.0.0.1", &upper), ip("198.51.100.4"));
        // nginx appends to X-Forwarded-For and passes a client's Forwarded untouched.
        let both = [
            ("forwarded", "for=1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ];
        assert_eq!(client(trusted, "127.0.0.1", &both), ip("203.0.113.7"));
        let proxies: TrustedProxies = trusted.parse().unwrap();
        let only = proxies.client_of(ip("127.0.0.1"), &headers(&both), ForwardedHeader::Forwarded);
        assert_eq!(only, ip("1.1.1.1"));
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let said = [("x-forwarded-for", "203.0.113.7")];
        assert_eq!(
            client("127.0.0.1", "::ffff:127.0.0.1", &said),
            ip("203.0.113.7")
        );
        assert_eq!(client("", "::ffff:192.0.2.1", &said), ip("192.0.2.1"));
    }
}
