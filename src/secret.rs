//! The server's secret key (one file, created on first run) and the sub-keys derived
//! from it; random bytes and hex.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, Payload};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::fsutil;

/// Bytes of randomness in a newly created key file.
const NEW_KEY_BYTES: usize = 64;
/// The least key material accepted from an existing key file.
const MIN_KEY_BYTES: usize = 32;

/// Fills a new array from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    bytes
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Decodes lower- or upper-case hexadecimal; `None` on any other character or odd length.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4 | digit(pair[1])?) as u8))
        .collect()
}

/// A 256-bit key used for one purpose only. Its `Debug` never shows the bytes.
///
/// It keeps the HMAC state already keyed, so each use clones it instead of hashing
/// the key again.
#[derive(Clone)]
pub struct SubKey(Hmac<Sha256>);

impl SubKey {
    fn new(key: &[u8]) -> Self {
        Self(<Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any size"))
    }

    /// A fresh HMAC-SHA256 computation under this key.
    pub fn mac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(<redacted>)")
    }
}

/// Encrypts small secrets for storage (ChaCha20-Poly1305 under a key derived from the
/// server's secret): a copy of the store alone does not reveal them, and a sealed value
/// opens only with the context it was sealed for (e.g. the account's name), so it
/// cannot be moved to another account.
#[derive(Clone)]
pub struct Sealer(ChaCha20Poly1305);

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// `plaintext` sealed for `context`: hex of a random 96-bit nonce and the ciphertext.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let nonce = random_bytes::<12>();
        let payload = Payload {
            msg: plaintext,
            aad: context,
        };
        let sealed = self
            .0
            .encrypt(&nonce.into(), payload)
            .expect("encrypting a small buffer cannot fail");
        let mut out = hex(&nonce);
        out.push_str(&hex(&sealed));
        out
    }

    /// What [`Sealer::seal`] sealed for `context`; `None` if it was altered, sealed for
    /// another context or under another key.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Option<Vec<u8>> {
        let bytes = unhex(sealed)?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let payload = Payload {
            msg: ciphertext,
            aad: context,
        };
        self.0.decrypt(&nonce.into(), payload).ok()
    }
}

/// The server's master secret. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Wraps key material (at least 32 bytes).
    pub fn new(bytes: Vec<u8>) -> io::Result<Self> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the secret key must hold at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        Ok(Self(bytes))
    }

    /// Derives an independent key for one purpose, so a leak of one use reveals no other.
    pub fn derive(&self, purpose: &str) -> SubKey {
        SubKey::new(&self.derive_bytes(purpose))
    }

    /// 256 bits for `purpose`: HMAC-SHA256 of `wicket/<purpose>` under the master key.
    fn derive_bytes(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any size");
        mac.update(b"wicket/");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A [`Sealer`] for `purpose`, keyed from this key.
    pub fn sealer(&self, purpose: &str) -> Sealer {
        let key = self.derive_bytes(purpose);
        Sealer(ChaCha20Poly1305::new(&key.into()))
    }

    /// Reads the key file, or creates it (mode 0600, 64 random bytes as hex) if missing.
    /// Every failure names the file and what was expected.
    pub fn load_or_create(path: &Path) -> io::Result<Self> {
        let named = |err: io::Error| {
            io::Error::new(
                err.kind(),
                format!("secret key file {}: {err}", path.display()),
            )
        };
        match fs::read(path) {
            Ok(bytes) => {
                if let Err(err) = fs::metadata(path).and_then(|m| fsutil::private_file(path, &m)) {
                    tracing::warn!(path = %path.display(), %err, "secret key file is readable by others and cannot be tightened; chmod 600 it");
                }
                let key = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| unhex(text.trim()))
                    .filter(|key| key.len() >= MIN_KEY_BYTES)
                    .ok_or_else(|| {
                        named(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("expected hex, at least {} characters", MIN_KEY_BYTES * 2),
                        ))
                    })?;
                Ok(Self(key))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Self::create(path).map_err(named),
            Err(err) => Err(named(err)),
        }
    }

    fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsutil::private_dir(dir)?;
        }
        let bytes = random_bytes::<NEW_KEY_BYTES>().to_vec();
        // create_new: if another process made the file first, fail rather than overwrite.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(hex(&bytes).as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "created a new secret key");
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let bytes = [0x00, 0x7f, 0xff, 0x10];
        assert_eq!(hex(&bytes), "007fff10");
        assert_eq!(unhex("007FFF10").unwrap(), bytes);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn a_new_key_file_is_owner_only_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret.key");
        let first = SecretKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, again.0);
        assert_eq!(first.0.len(), NEW_KEY_BYTES);
    }

    #[test]
    fn short_or_garbled_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        fs::write(&path, hex(&[1u8; 16])).unwrap();
        assert!(SecretKey::load_or_create(&path).is_err());
        let err = SecretKey::load_or_create(&path).unwrap_err().to_string();
        let expected = format!(
            "secret key file {}: expected hex, at least 64 characters",
            path.display()
        );
        assert_eq!(err, expected);
        for junk in [&b"not hex at all"[..], b"\xff\xfe\x00binary"] {
            fs::write(&path, junk).unwrap();
            let err = SecretKey::load_or_create(&path).unwrap_err().to_string();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn debug_output_never_shows_key_material() {
        let key = SecretKey::new(vec![0xab; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
        assert_eq!(format!("{:?}", key.derive("x")), "SubKey(<redacted>)");
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let key = SecretKey::new(vec![3; 32]).unwrap();
        let sealer = key.sealer("totp");
        let sealed = sealer.seal(b"the secret", b"ann");
        assert!(!sealed.contains(&hex(b"the secret")));
        assert_ne!(
            sealed,
            sealer.seal(b"the secret", b"ann"),
            "a fresh nonce each time"
        );
        assert_eq!(
            sealer.open(&sealed, b"ann").as_deref(),
            Some(&b"the secret"[..])
        );
        assert_eq!(sealer.open(&sealed, b"bob"), None, "another account");
        assert_eq!(
            key.sealer("other").open(&sealed, b"ann"),
            None,
            "another purpose"
        );
        let other_key = SecretKey::new(vec![4; 32]).unwrap().sealer("totp");
        assert_eq!(other_key.open(&sealed, b"ann"), None, "another server key");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            sealer.open(&String::from_utf8(altered).unwrap(), b"ann"),
            None
        );
        assert_eq!(sealer.open("zz", b"ann"), None);
    }
}
