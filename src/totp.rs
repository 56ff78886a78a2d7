//! Authenticator-app codes: TOTP (RFC 6238) over HOTP (RFC 4226) with HMAC-SHA1,
//! 30-second steps and 6 digits, the parameters every authenticator app assumes.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::secret::random_bytes;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps either side of now that are accepted (clock skew).
pub const SKEW: u64 = 1;

/// An account's TOTP key: 160 random bits, as RFC 4226 recommends.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpKey(Vec<u8>);

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey(<redacted>)")
    }
}

impl TotpKey {
    /// A new key from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(random_bytes::<20>().to_vec())
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key's bytes (to seal for storage).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A key given in base32 (an export's, or another system's), at least 80 bits.
    pub fn from_base32(text: &str) -> Option<Self> {
        unbase32(text)
            .filter(|bytes| bytes.len() >= 10)
            .map(Self::from_bytes)
    }

    /// The key as people type it into an app: base32 (RFC 4648), no padding.
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The `otpauth://` URI a QR code carries (Google Authenticator's key-URI format).
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", escape(issuer), escape(account));
        format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            self.base32(),
            escape(issuer)
        )
    }

    /// The code for `step` (Unix time / 30).
    pub fn code_at(&self, step: u64) -> u32 {
        hotp(&self.0, step, DIGITS)
    }

    /// The step whose code `typed` is (spaces ignored), if it is within [`SKEW`] steps
    /// of the step of `unix_time` and later than `last_used`: a code works once.
    pub fn check(&self, typed: &str, unix_time: u64, last_used: Option<u64>) -> Option<u64> {
        let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let typed: u32 = digits.parse().ok()?;
        let now = unix_time / STEP;
        (now.saturating_sub(SKEW)..=now + SKEW)
            .filter(|&step| last_used.is_none_or(|used| step > used))
            .find(|&step| self.code_at(step) == typed)
    }
}

/// HOTP (RFC 4226): HMAC-SHA1 of the counter, dynamically truncated to `digits`.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// RFC 4648 base32 read back (either case, padding and spaces ignored); `None` for
/// any other character.
fn unbase32(text: &str) -> Option<Vec<u8>> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.chars().filter(|c| !matches!(c, '=' | ' ')) {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// RFC 4648 base32, upper case, without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotp_and_totp_match_the_rfc_test_vectors() {
        // RFC 4226 appendix D.
        let key = b"12345678901234567890";
        let hotp_codes = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in hotp_codes.into_iter().enumerate() {
            assert_eq!(hotp(key, counter as u64, 6), code);
        }
        // RFC 6238 appendix B, SHA-1, 8 digits.
        for (time, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(key, time / STEP, 8), code, "T = {time}");
        }
    }

    #[test]
    fn a_code_works_within_one_step_of_now_and_only_once() {
        let key = TotpKey::from_bytes(b"12345678901234567890".to_vec());
        let now = 1_234_567_890;
        let step = now / STEP;
        let code = |s: u64| format!("{:06}", key.code_at(s));
        assert_eq!(key.check(&code(step), now, None), Some(step));
        assert_eq!(key.check(&code(step - 1), now, None), Some(step - 1));
        assert_eq!(key.check(&code(step + 1), now, None), Some(step + 1));
        assert_eq!(key.check(&code(step - 2), now, None), None);
        assert_eq!(key.check(&code(step + 2), now, None), None);
        // Used: the same code (and older ones) are refused.
        assert_eq!(key.check(&code(step), now, Some(step)), None);
        assert_eq!(key.check(&code(step - 1), now, Some(step)), None);
        assert_eq!(key.check(&code(step + 1), now, Some(step)), Some(step + 1));
        // Spaces are ignored; anything else is not a code.
        let spaced = format!("{} {}", &code(step)[..3], &code(step)[3..]);
        assert_eq!(key.check(&spaced, now, None), Some(step));
        for bad in ["", "12345", "1234567", "12345a", "-12345"] {
            assert_eq!(key.check(bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn only_six_plain_digits_are_a_code() {
        let key = TotpKey::from_bytes(b"12345678901234567890".to_vec());
        // A step whose code starts with 0: "+" and five digits would parse as it.
        let step = (0..).find(|&s| key.code_at(s) < 100_000).unwrap();
        let code = format!("{:06}", key.code_at(step));
        let now = step * STEP;
        assert_eq!(key.check(&code, now, None), Some(step));
        assert_eq!(key.check(&format!("+{}", &code[1..]), now, None), None);
    }

    #[test]
    fn a_key_keeps_its_bytes_and_never_shows_them() {
        let key = TotpKey::generate();
        let bytes = key.as_bytes().to_vec();
        assert_eq!(bytes.len(), 20);
        assert_eq!(TotpKey::from_bytes(bytes.clone()), key);
        assert_eq!(format!("{key:?}"), "TotpKey(<redacted>)");
    }

    #[test]
    fn keys_are_shown_as_base32_and_otpauth_uris() {
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        let key = TotpKey::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(
            key.uri("Wicket", "ann b"),
            "otpauth://totp/Wicket:ann%20b?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Wicket&algorithm=SHA1&digits=6&period=30"
        );
        assert_ne!(TotpKey::generate(), TotpKey::generate());
        assert_eq!(TotpKey::generate().base32().len(), 32);
    }
}
