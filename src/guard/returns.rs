//! Where a login may send the browser back to (`rd`): another app's page, but only
//! one Wicket guards. Open redirects are the classic hole of forward-auth, so the
//! address is parsed exactly as the browser will parse it (WHATWG URL) and what is
//! sent back is that parse's own serialization, never the text as given.

use url::{Host, Url};

/// Where `rd` may lead: hosts the access rules name, or names under the cookie domain.
#[derive(Debug, Clone, Copy)]
pub struct ReturnPolicy<'a> {
    /// The rules in force (their hosts).
    pub rules: &'a super::Rules,
    /// `--cookie-domain`, if set.
    pub cookie_domain: Option<&'a str>,
}

impl ReturnPolicy<'_> {
    /// `rd` as the one address to send the browser to, if it is a page Wicket guards:
    /// `https` (or `http` to a loopback or `.test`/`.localhost` name), no user info,
    /// a host named by a rule or under the cookie domain, printable ASCII only.
    pub fn check(&self, rd: &str) -> Option<String> {
        let printable = rd.len() <= 2048 && rd.bytes().all(|b| (0x21..0x7f).contains(&b));
        // The scheme exactly as written: `https:/x`, `HTTPS://` and `https:\\` are
        // things a browser repairs, and repairs are where parsers disagree.
        let plain = rd.starts_with("https://") || rd.starts_with("http://");
        if !printable || !plain || rd.contains('\\') {
            return None;
        }
        let url = Url::parse(rd).ok()?;
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host()?;
        let name = match &host {
            Host::Domain(name) => *name,
            Host::Ipv4(ip) if ip.is_loopback() => "",
            Host::Ipv6(ip) if ip.is_loopback() => "",
            _ => return None,
        };
        let test_name = name.is_empty()
            || name == "localhost"
            || name.ends_with(".localhost")
            || name.ends_with(".test");
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && test_name);
        let host_ok = !name.is_empty()
            && !name.ends_with('.')
            && (self.rules.names_host(name) || self.under_cookie_domain(name));
        (scheme_ok && host_ok).then(|| url.into())
    }

    fn under_cookie_domain(&self, name: &str) -> bool {
        self.cookie_domain.is_some_and(|domain| {
            name == domain
                || (name.len() > domain.len()
                    && name.ends_with(domain)
                    && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Rules;

    fn rules() -> Rules {
        Rules::parse(
            "[[rule]]\nhost = \"app.guarded.test\"\npolicy = \"members\"\n\
             [[rule]]\nhost = \"*.apps.example.com\"\npolicy = \"members\"\n\
             [[rule]]\nhost = \"wiki.example.org\"\npolicy = \"members\"\n",
            "r.toml",
        )
        .unwrap()
    }

    #[test]
    fn pages_of_guarded_hosts_are_returned_to_as_parsed() {
        let rules = rules();
        let policy = ReturnPolicy {
            rules: &rules,
            cookie_domain: Some("example.net"),
        };
        for (rd, sent) in [
            (
                "https://wiki.example.org/page?x=1#top",
                "https://wiki.example.org/page?x=1#top",
            ),
            (
                "https://WIKI.example.org/a/../b",
                "https://wiki.example.org/b",
            ),
            (
                "http://app.guarded.test:8080/x",
                "http://app.guarded.test:8080/x",
            ),
            ("https://a.apps.example.com/", "https://a.apps.example.com/"),
            ("https://example.net/", "https://example.net/"),
            ("https://files.example.net/x", "https://files.example.net/x"),
        ] {
            assert_eq!(policy.check(rd).as_deref(), Some(sent), "{rd}");
        }
    }

    #[test]
    fn every_open_redirect_trick_is_refused() {
        let rules = rules();
        let policy = ReturnPolicy {
            rules: &rules,
            cookie_domain: Some("example.net"),
        };
        for rd in [
            "//evil.test/",
            "///evil.test/",
            "/\\evil.test",
            "https:\\\\wiki.example.org\\",
            "https://wiki.example.org\\@evil.test/",
            "https://evil.test\\@wiki.example.org/",
            "https://wiki.example.org@evil.test/",
            "https://user:pass@wiki.example.org/",
            "https://evil.test/?wiki.example.org",
            "https://evil.test#@wiki.example.org",
            "https://wiki.example.org.evil.test/",
            "https://wiki.example.org./",
            "https://wikі.example.org/",
            "https://xn--wik-npd.example.org/",
            "https://evilexample.net/",
            "https://evilapps.example.com/",
            "https://example.net.evil.test/",
            "http://wiki.example.org/",
            "HTTPS://wiki.example.org/",
            "https:/wiki.example.org/",
            "https:wiki.example.org",
            "javascript://wiki.example.org/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://wiki.example.org/",
            "https://wiki.example.org/\r\nSet-Cookie:x=1",
            "https://wiki.example.org/ x",
            "https://[::1]/",
            "https://203.0.113.9/",
            "https://apps.example.com/",
            "",
        ] {
            assert_eq!(policy.check(rd), None, "{rd:?} was accepted");
        }
    }
}
