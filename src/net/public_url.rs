//! The site's public address (`--public-url`): the one `Host` it answers to, the one
//! origin its forms may come from, and the base of links that leave the site.
//!
//! Without it Wicket answers any `Host` and compares `Origin` with whatever `Host`
//! says — fine on localhost, but a DNS-rebinding page (its own name resolving to the
//! server) would then be "same-origin". Pinning both to one configured origin closes
//! that.

use std::fmt;
use std::str::FromStr;

use poem::http::Uri;

/// `https://login.example.com` or `http://127.0.0.1:5000`, parsed and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    https: bool,
    /// Lower case; an IPv6 address keeps its brackets.
    host: String,
    port: u16,
    /// `scheme://host[:port]`, the default port left out: what browsers send as `Origin`.
    origin: String,
}

impl PublicUrl {
    /// The origin, e.g. `https://login.example.com` (no trailing slash).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The host, lower case (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the site is served over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether a `Host` header names this site: the same host, and the same port
    /// (the scheme's default when none is given).
    pub fn is_host(&self, value: &str) -> bool {
        let default = if self.https { 443 } else { 80 };
        split_authority(value).is_some_and(|(host, port)| {
            host.eq_ignore_ascii_case(&self.host) && port.unwrap_or(default) == self.port
        })
    }

    /// Whether an `Origin` header is this site's origin.
    pub fn is_origin(&self, value: &str) -> bool {
        let (https, authority) = match value.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => return false,
        };
        https == self.https && self.is_host(authority)
    }

    /// An absolute URL for a path on this site, e.g. `url("/reset/x")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` into the host and the port, if well formed.
fn split_authority(value: &str) -> Option<(&str, Option<u16>)> {
    let host_end = if value.starts_with('[') {
        value.find(']')? + 1
    } else {
        value.find(':').unwrap_or(value.len())
    };
    let (host, rest) = value.split_at(host_end);
    let port = if rest.is_empty() {
        None
    } else {
        Some(rest.strip_prefix(':')?.parse::<u16>().ok()?)
    };
    (!host.is_empty()).then_some((host, port))
}

impl FromStr for PublicUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("'{text}' is not a site address like https://login.example.com: {why}")
        };
        let uri: Uri = text.trim().parse().map_err(|_| bad("it does not parse"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be https or http")),
        };
        let authority = uri.authority().ok_or_else(|| bad("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("it must not carry a user name"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("Wicket serves from the root, so no path or query"));
        }
        let host = authority.host().to_ascii_lowercase();
        let default = if https { 443 } else { 80 };
        let port = authority.port_u16().unwrap_or(default);
        let scheme = if https { "https" } else { "http" };
        let origin = if port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{port}")
        };
        Ok(Self {
            https,
            host,
            port,
            origin,
        })
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> PublicUrl {
        text.parse().unwrap()
    }

    #[test]
    fn the_origin_is_normalised() {
        assert_eq!(
            url("https://Login.Example.com/").origin(),
            "https://login.example.com"
        );
        assert_eq!(
            url("https://login.example.com:443").origin(),
            "https://login.example.com"
        );
        assert_eq!(
            url("http://127.0.0.1:5000").origin(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(url("https://[::1]:8443").origin(), "https://[::1]:8443");
        assert_eq!(
            url("https://a.example").url("/reset/x"),
            "https://a.example/reset/x"
        );
        for bad in [
            "login.example.com",
            "ftp://login.example.com",
            "https://login.example.com/app",
            "https://login.example.com/?a=1",
            "https://user@login.example.com",
            "https://",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_this_host_and_port_are_this_site() {
        let site = url("https://login.example.com");
        assert!(site.is_host("login.example.com"));
        assert!(site.is_host("LOGIN.example.com:443"));
        for other in [
            "evil.example",
            "login.example.com:8443",
            "login.example.com.evil.example",
            "login.example.com:",
            "login.example.com:x",
            "",
        ] {
            assert!(!site.is_host(other), "{other}");
        }
        let local = url("https://127.0.0.1:8443");
        assert!(local.is_host("127.0.0.1:8443"));
        assert!(!local.is_host("127.0.0.1"));
        let v6 = url("http://[::1]:5000");
        assert!(v6.is_host("[::1]:5000") && !v6.is_host("[::1]"));
    }

    #[test]
    fn only_this_scheme_host_and_port_are_this_origin() {
        let site = url("https://login.example.com");
        assert!(site.is_origin("https://login.example.com"));
        assert!(site.is_origin("https://login.example.com:443"));
        for other in [
            "http://login.example.com",
            "https://evil.example",
            "https://login.example.com:8443",
            "null",
            "login.example.com",
        ] {
            assert!(!site.is_origin(other), "{other}");
        }
    }
}
