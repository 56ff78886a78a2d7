//! The provider's signing keys: `<data dir>/oidc-keys.json` (mode 0600), created at
//! the first start with clients, an `RS256` key (what every client verifies) and an
//! `EdDSA` (Ed25519) one for clients that ask for it.
//!
//! `wicket oidc rotate-key` adds a new pair and retires the old one: ID tokens are
//! signed with the newest key of their algorithm, and a retired key stays in the JWKS
//! until every token it signed has expired. Reading tokens back is `jsonwebtoken`'s;
//! making keys and signing is AWS-LC's (`aws-lc-rs`), each key parsed once at load,
//! the JWS compact form around a signature being its base64url parts.

use std::io;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::fsutil;
use crate::secret::hex;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "oidc-keys.json";

/// How long a retired key is still published: longer than any ID token lives.
pub const RETIRED_KEPT: time::Duration = time::Duration::hours(2);

/// The signature algorithms ID tokens may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys).
    RS256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    fn jose(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// One key as the file keeps it.
#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    alg: Alg,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    retired: Option<OffsetDateTime>,
    /// PKCS#8 DER, base64.
    der: String,
}

#[derive(Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

/// A key ready to sign and verify.
struct Key {
    kid: String,
    alg: Alg,
    retired: Option<OffsetDateTime>,
    signing: Signer,
    verifying: DecodingKey,
    public: Jwk,
}

/// A private key, parsed once.
enum Signer {
    Rsa(signature::RsaKeyPair),
    Ed(signature::Ed25519KeyPair),
}

impl Signer {
    /// The signature of `message`: RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519.
    fn sign(&self, message: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| io::Error::other("RSA signing failed"))?;
                Ok(signature)
            }
            Self::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The keys in use.
pub struct KeySet {
    keys: Vec<Key>,
    jwks: String,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn read_file(path: &Path) -> io::Result<Option<KeyFile>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

impl KeySet {
    /// The keys in `data_dir`, made (and written 0600) if there are none yet.
    pub fn load_or_create(data_dir: &Path) -> io::Result<Self> {
        let path = path_in(data_dir);
        let file = match read_file(&path)? {
            Some(file) => {
                let meta = std::fs::metadata(&path)?;
                fsutil::private_file(&path, &meta)?;
                file
            }
            None => {
                let file = KeyFile {
                    keys: new_pair(OffsetDateTime::now_utc())?,
                };
                match fsutil::create_atomic(&path, &serde_json::to_vec_pretty(&file)?) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "created the OpenID Connect signing keys")
                    }
                    // Another instance or process made them first: use theirs.
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                        return Self::load_or_create(data_dir);
                    }
                    Err(err) => return Err(err),
                }
                file
            }
        };
        Self::from_file(file, OffsetDateTime::now_utc())
    }

    /// Adds a new pair of keys to `data_dir`'s file and retires the current ones;
    /// drops keys retired long enough ago. Returns the new keys' ids.
    pub fn rotate(data_dir: &Path) -> io::Result<Vec<String>> {
        let path = path_in(data_dir);
        let now = OffsetDateTime::now_utc();
        let mut file = read_file(&path)?.unwrap_or_default();
        file.keys
            .retain(|key| key.retired.is_none_or(|at| now - at < RETIRED_KEPT));
        for key in &mut file.keys {
            key.retired.get_or_insert(now);
        }
        let fresh = new_pair(now)?;
        let kids = fresh.iter().map(|k| k.kid.clone()).collect();
        file.keys.extend(fresh);
        fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&file)?)?;
        Ok(kids)
    }

    fn from_file(file: KeyFile, now: OffsetDateTime) -> io::Result<Self> {
        let keys = file
            .keys
            .into_iter()
            .filter(|key| key.retired.is_none_or(|at| now - at < RETIRED_KEPT))
            .map(Key::open)
            .collect::<io::Result<Vec<Key>>>()?;
        for alg in [Alg::RS256, Alg::EdDSA] {
            if !keys.iter().any(|k| k.alg == alg && k.retired.is_none()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{KEY_FILE} has no current {alg:?} key"),
                ));
            }
        }
        let set = JwkSet {
            keys: keys.iter().map(|k| k.public.clone()).collect(),
        };
        let jwks = serde_json::to_string(&set)?;
        Ok(Self { keys, jwks })
    }

    /// The JWKS document (every key still published).
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// `claims` signed with the current key of `alg`.
    pub fn sign(&self, alg: Alg, claims: &impl Serialize) -> io::Result<String> {
        let key = self
            .keys
            .iter()
            .rev()
            .find(|k| k.alg == alg && k.retired.is_none())
            .expect("a current key of each algorithm (checked at load)");
        let mut header = Header::new(alg.jose());
        header.kid = Some(key.kid.clone());
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let signature = key.signing.sign(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }

    /// The claims of a token one of these keys signed, with the algorithm of that key
    /// (never the one the token's header names), expired or not; `None` for anything
    /// else. Issuer and audience are the caller's to check.
    pub fn read<T: serde::de::DeserializeOwned>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self
            .keys
            .iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref())?;
        let mut validation = Validation::new(key.alg.jose());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode(token, &key.verifying, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// A new RS256 key and a new Ed25519 key, made now.
fn new_pair(now: OffsetDateTime) -> io::Result<Vec<StoredKey>> {
    let failed = |what: &str| io::Error::other(format!("could not make an {what} key"));
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .and_then(|key| key.as_der())
        .map_err(|_| failed("RSA"))?;
    let ed = signature::Ed25519KeyPair::generate()
        .and_then(|key| key.to_pkcs8())
        .map_err(|_| failed("Ed25519"))?;
    [(Alg::RS256, rsa.as_ref()), (Alg::EdDSA, ed.as_ref())]
        .into_iter()
        .map(|(alg, der)| {
            let stored = StoredKey {
                kid: String::new(),
                alg,
                created: now,
                retired: None,
                der: STANDARD.encode(der),
            };
            let kid = Key::open(stored.clone())?.kid;
            Ok(StoredKey { kid, ..stored })
        })
        .collect()
}

impl Key {
    /// Parses a stored key; its id is derived from its public half when not yet set.
    fn open(stored: StoredKey) -> io::Result<Self> {
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{KEY_FILE}: {what}"));
        let der = STANDARD
            .decode(&stored.der)
            .map_err(|_| bad("a key is not base64"))?;
        let (params, public_bytes, verifying, signing) = match stored.alg {
            Alg::RS256 => {
                let pair =
                    signature::RsaKeyPair::from_pkcs8(&der).map_err(|_| bad("a bad RSA key"))?;
                let public = pair.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                let params = AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: URL_SAFE_NO_PAD.encode(&n),
                    e: URL_SAFE_NO_PAD.encode(&e),
                });
                let verifying = DecodingKey::from_rsa_raw_components(&n, &e);
                (params, n, verifying, Signer::Rsa(pair))
            }
            Alg::EdDSA => {
                let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map_err(|_| bad("a bad Ed25519 key"))?;
                let x = pair.public_key().as_ref().to_vec();
                let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(&x),
                });
                let verifying = DecodingKey::from_ed_der(&x);
                (params, x, verifying, Signer::Ed(pair))
            }
        };
        let kid = if stored.kid.is_empty() {
            hex(&Sha256::digest(&public_bytes)[..12])
        } else {
            stored.kid
        };
        let public = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(match stored.alg {
                    Alg::RS256 => KeyAlgorithm::RS256,
                    Alg::EdDSA => KeyAlgorithm::EdDSA,
                }),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: params,
        };
        Ok(Self {
            kid,
            alg: stored.alg,
            retired: stored.retired,
            signing,
            verifying,
            public,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_back_only_with_the_signing_keys_own_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_create(dir.path()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let claims = serde_json::json!({"sub": "x"});
        for alg in [Alg::RS256, Alg::EdDSA] {
            let token = keys.sign(alg, &claims).unwrap();
            assert_eq!(keys.read::<serde_json::Value>(&token), Some(claims.clone()));
        }
        // `alg: none` and HS256 keyed with the public key: refused.
        let rs = keys.sign(Alg::RS256, &claims).unwrap();
        let body = rs.split('.').nth(1).unwrap();
        let kid = jsonwebtoken::decode_header(&rs).unwrap().kid.unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
        assert_eq!(
            keys.read::<serde_json::Value>(&format!("{none_header}.{body}.")),
            None
        );
        let jwks: serde_json::Value = serde_json::from_str(keys.jwks()).unwrap();
        let n = jwks["keys"][0]["n"].as_str().unwrap();
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(kid);
        let forged = jsonwebtoken::encode(
            &hs,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
        )
        .unwrap();
        assert_eq!(keys.read::<serde_json::Value>(&forged), None);
        // Loaded again: the same keys.
        let again = KeySet::load_or_create(dir.path()).unwrap();
        assert_eq!(again.read::<serde_json::Value>(&rs), Some(claims.clone()));
    }

    #[test]
    fn a_key_file_others_may_read_is_tightened_at_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        KeySet::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        KeySet::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_rotated_key_stays_published_until_its_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let old = KeySet::load_or_create(dir.path()).unwrap();
        let token = old.sign(Alg::RS256, &serde_json::json!({"a": 1})).unwrap();
        let new_kids = KeySet::rotate(dir.path()).unwrap();
        let rotated = KeySet::load_or_create(dir.path()).unwrap();
        assert_eq!(rotated.keys.len(), 4);
        assert!(rotated.read::<serde_json::Value>(&token).is_some());
        let fresh = rotated
            .sign(Alg::RS256, &serde_json::json!({"a": 1}))
            .unwrap();
        let kid = jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap();
        assert!(new_kids.contains(&kid));
        // Past the keeping time, the old keys are gone from the set.
        let file = read_file(&path_in(dir.path())).unwrap().unwrap();
        let later = KeySet::from_file(file, OffsetDateTime::now_utc() + RETIRED_KEPT).unwrap();
        assert_eq!(later.keys.len(), 2);
        assert!(later.read::<serde_json::Value>(&token).is_none());
    }
}
