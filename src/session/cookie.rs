//! The session cookie: `<id>.<hex HMAC-SHA256(id)>`, signed and checked here.

use std::time::Duration;

use hmac::Mac;
use poem::http::HeaderValue;

use crate::cookies::CookiePolicy;
use crate::secret::{SubKey, hex, unhex};
use crate::store::SessionId;

/// Bytes of an HMAC-SHA256 tag.
const MAC_BYTES: usize = 32;

/// Signs session ids into cookie values and checks them on the way back.
#[derive(Clone, Debug)]
pub struct CookieCodec {
    name: String,
    key: SubKey,
    policy: CookiePolicy,
    domain: Option<String>,
}

impl CookieCodec {
    /// A codec signing with `key`, naming and flagging cookies by `policy`; with a
    /// `domain` (`--cookie-domain`), the cookie is `__Secure-wicket_session`, sent to
    /// every name under it, so apps there share the login.
    pub fn new(key: SubKey, policy: CookiePolicy, domain: Option<String>) -> Self {
        let name = match domain {
            Some(_) => "__Secure-wicket_session".to_owned(),
            None => policy.name("wicket_session"),
        };
        Self {
            name,
            key,
            policy,
            domain,
        }
    }

    /// The cookie's name (`wicket_session`, `__Host-wicket_session` behind TLS, or
    /// `__Secure-wicket_session` shared with a `--cookie-domain`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<id>.<hex HMAC-SHA256(id)>`.
    pub fn sign(&self, id: &SessionId) -> String {
        let mut mac = self.key.mac();
        mac.update(id.as_str().as_bytes());
        format!("{}.{}", id.as_str(), hex(&mac.finalize().into_bytes()))
    }

    /// The id inside a cookie value, if its MAC is genuine.
    ///
    /// The MAC is compared in constant time, and nothing from the value is used
    /// before both its shape and its MAC are checked.
    pub fn verify(&self, value: &str) -> Option<SessionId> {
        let (id, tag) = value.split_once('.')?;
        let id = SessionId::parse(id)?;
        let tag = unhex(tag).filter(|tag| tag.len() == MAC_BYTES)?;
        let mut mac = self.key.mac();
        mac.update(id.as_str().as_bytes());
        mac.verify_slice(&tag).ok()?;
        Some(id)
    }

    /// `Set-Cookie` for a new session lasting `max_age` (`None`: until the browser closes).
    pub fn set_cookie(&self, id: &SessionId, max_age: Option<Duration>) -> HeaderValue {
        let domain = self.domain.as_deref();
        self.policy
            .set_for(domain, &self.name, &self.sign(id), max_age)
    }

    /// `Set-Cookie` that makes the browser forget the session cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        let domain = self.domain.as_deref();
        self.policy
            .set_for(domain, &self.name, "", Some(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn codec(seed: u8) -> CookieCodec {
        CookieCodec::new(
            SecretKey::new(vec![seed; 32]).unwrap().derive("session"),
            CookiePolicy::new(false),
            None,
        )
    }

    #[test]
    fn a_signed_id_verifies_back_to_itself() {
        let id = SessionId::generate();
        let value = codec(1).sign(&id);
        assert_eq!(codec(1).verify(&value), Some(id));
    }

    #[test]
    fn another_key_or_any_flipped_character_fails() {
        let value = codec(1).sign(&SessionId::generate());
        assert_eq!(codec(2).verify(&value), None);
        for i in 0..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert_eq!(codec(1).verify(&tampered), None, "flip at {i} accepted");
        }
    }

    #[test]
    fn hostile_values_are_refused_without_panicking() {
        let long = "a".repeat(10_000);
        for bad in [
            "",
            ".",
            "../x",
            "%2e%2e%2f",
            "a\0b",
            long.as_str(),
            "é.é",
            "ABC.def",
        ] {
            assert_eq!(codec(1).verify(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_cookie_domain_shares_a_secure_prefixed_cookie_and_clears_it_there() {
        let key = SecretKey::new(vec![1; 32]).unwrap().derive("session");
        let codec = CookieCodec::new(key, CookiePolicy::new(true), Some("example.com".into()));
        assert_eq!(codec.name(), "__Secure-wicket_session");
        let id = SessionId::generate();
        for header in [codec.set_cookie(&id, None), codec.clear_cookie()] {
            let text = header.to_str().unwrap();
            assert!(text.starts_with("__Secure-wicket_session="), "{text}");
            for attribute in ["Domain=example.com", "Secure", "HttpOnly", "Path=/"] {
                assert!(text.contains(attribute), "{text} lacks {attribute}");
            }
        }
    }

    #[test]
    fn the_cookie_carries_the_signed_id() {
        let id = SessionId::generate();
        let header = codec(1).set_cookie(&id, Some(Duration::from_secs(60)));
        let text = header.to_str().unwrap();
        assert!(text.starts_with(&format!("wicket_session={}", codec(1).sign(&id))));
    }
}
