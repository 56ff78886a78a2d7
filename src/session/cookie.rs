use std::fmt;
use std::time::Duration;

use cookie::{Cookie, SameSite};
use hmac::Mac;
use poem::http::HeaderValue;

use crate::secret::{SubKey, hex, random_bytes, unhex};

/// Bytes of randomness in a session id.
const ID_BYTES: usize = 32;
/// Bytes of an HMAC-SHA256 tag.
const MAC_BYTES: usize = 32;

/// A session id: 64 lower-case hex characters, so always a safe file name.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A new id from the OS CSPRNG (256 bits).
    pub fn generate() -> Self {
        Self(hex(&random_bytes::<ID_BYTES>()))
    }

    /// Accepts exactly 64 lower-case hex characters and nothing else.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == ID_BYTES * 2
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ids are bearer credentials: logs get a short prefix only.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..8])
    }
}

/// Signs session ids into cookie values and checks them on the way back.
#[derive(Clone, Debug)]
pub struct CookieCodec {
    name: &'static str,
    key: SubKey,
    secure: bool,
}

impl CookieCodec {
    /// The name of the session cookie.
    pub const NAME: &'static str = "wicket_session";

    /// A codec signing with `key`; `secure` marks cookies `Secure` (for TLS deployments).
    pub fn new(key: SubKey, secure: bool) -> Self {
        Self {
            name: Self::NAME,
            key,
            secure,
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &'static str {
        self.name
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

    /// Picks this codec's cookie out of a `Cookie` request header.
    pub fn find<'a>(&self, header: &'a str) -> Option<&'a str> {
        Cookie::split_parse(header)
            .filter_map(Result::ok)
            .find(|c| c.name() == self.name)
            .map(|c| c.value_raw().unwrap_or_default())
    }

    /// `Set-Cookie` for a new session lasting `max_age`.
    pub fn set_cookie(&self, id: &SessionId, max_age: Duration) -> HeaderValue {
        let max_age =
            cookie::time::Duration::seconds(max_age.as_secs().try_into().unwrap_or(i64::MAX));
        self.header(self.sign(id), max_age)
    }

    /// `Set-Cookie` that makes the browser forget the session cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        self.header(String::new(), cookie::time::Duration::ZERO)
    }

    fn header(&self, value: String, max_age: cookie::time::Duration) -> HeaderValue {
        let cookie = Cookie::build((self.name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(max_age)
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("cookie is built from safe characters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn codec(seed: u8) -> CookieCodec {
        CookieCodec::new(
            SecretKey::new(vec![seed; 32]).unwrap().derive("session"),
            false,
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
    fn ids_are_64_lower_hex_and_unique() {
        let a = SessionId::generate();
        assert!(SessionId::parse(a.as_str()).is_some());
        assert_ne!(a, SessionId::generate());
        assert!(SessionId::parse(&a.as_str().to_uppercase()).is_none());
        assert!(SessionId::parse(&a.as_str()[1..]).is_none());
    }

    #[test]
    fn cookies_are_http_only_lax_and_scoped_to_the_site() {
        let header = codec(1).set_cookie(&SessionId::generate(), Duration::from_secs(60));
        let text = header.to_str().unwrap();
        assert!(text.starts_with("wicket_session="));
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(text.contains(attribute), "{text} lacks {attribute}");
        }
        assert!(!text.contains("Secure"));
        let cleared = codec(1).clear_cookie();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let header = "a=1; wicket_session=abc.def; b=2";
        assert_eq!(codec(1).find(header), Some("abc.def"));
        assert_eq!(codec(1).find("a=1"), None);
    }
}
