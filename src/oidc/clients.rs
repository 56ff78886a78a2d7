//! The apps that may log people in through Wicket: `--oidc-clients FILE`, one
//! `[[client]]` table each.
//!
//! ```toml
//! [[client]]
//! id = "gitea"
//! name = "Gitea"
//! redirect_uris = ["https://git.example.com/user/oauth2/wicket/callback"]
//! post_logout_redirect_uris = ["https://git.example.com/"]
//! secret_hash = "sha256:…"   # from `wicket oidc client-secret`; or `public = true`
//! trusted = true             # skip the consent page
//! groups = ["developers"]    # only members of these groups (any of them)
//! two_step = true            # only after a second factor
//! id_token_signed_response_alg = "EdDSA"   # RS256 by default
//! ```
//!
//! A client secret is 256 random bits, so a fast hash (SHA-256) keeps it as safe as
//! scrypt would, and checking one costs the token endpoint nothing.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::keys::Alg;
use crate::domain::Group;
use crate::guard::{RulesError, line_at, parse_toml};
use crate::secret::{hex, random_bytes};

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its `client_id`.
    pub id: String,
    /// What members are told it is called.
    pub name: String,
    /// Where codes may be sent: compared exactly.
    pub redirect_uris: Vec<String>,
    /// Where `/oidc/logout` may send the browser afterwards: compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// `sha256:<hex>` of its secret; `None` for a public client (PKCE required).
    pub secret_hash: Option<String>,
    /// Skips the consent page.
    pub trusted: bool,
    /// Only members of one of these may use it (empty: every member).
    pub groups: Vec<Group>,
    /// Only sessions that used a second factor.
    pub two_step: bool,
    /// How its ID tokens are signed.
    pub alg: Alg,
}

impl Client {
    /// Whether `secret` is this client's (always false for a public client).
    pub fn secret_matches(&self, secret: &str) -> bool {
        let Some(stored) = &self.secret_hash else {
            return false;
        };
        // Hashes of 256-bit secrets compared: timing tells nothing of the secret.
        *stored == secret_hash(secret)
    }

    /// Whether a member of `groups` may use it.
    pub fn admits(&self, groups: &[Group]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g))
    }

    /// The origins it sends browsers to (for the pages' `form-action`).
    pub fn origins(&self) -> impl Iterator<Item = String> + '_ {
        self.redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
            .filter_map(|uri| url::Url::parse(uri).ok())
            .map(|url| url.origin().ascii_serialization())
    }
}

/// The hash a client file keeps of `secret`.
pub fn secret_hash(secret: &str) -> String {
    format!("sha256:{}", hex(&Sha256::digest(secret.as_bytes())))
}

/// A new client secret (256 random bits, base64url) and its hash.
pub fn new_secret() -> (String, String) {
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = secret_hash(&secret);
    (secret, hash)
}

/// The registered clients.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    clients: Vec<Client>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    client: Vec<toml::Spanned<RawClient>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: String,
    name: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    public: bool,
    secret_hash: Option<String>,
    #[serde(default)]
    trusted: bool,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    two_step: bool,
    id_token_signed_response_alg: Option<String>,
}

impl Clients {
    /// Reads and checks the clients in `path`.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let (text, file) = RulesError::read(path)?;
        Self::parse(&text, &file)
    }

    /// Checks the clients in `text`, read from `file`.
    pub fn parse(text: &str, file: &str) -> Result<Self, RulesError> {
        let parsed: File = parse_toml(text, file)?;
        let mut clients: Vec<Client> = Vec::new();
        for spanned in parsed.client {
            let line = line_at(text, spanned.span().start);
            let client = check(spanned.into_inner())
                .map_err(|message| RulesError::at(file, line, message))?;
            if clients.iter().any(|c| c.id == client.id) {
                return Err(RulesError::at(
                    file,
                    line,
                    format!("a second client with id {:?}", client.id),
                ));
            }
            clients.push(client);
        }
        Ok(Self { clients })
    }

    /// The client whose id is `id`.
    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// Every client.
    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.clients.iter()
    }
}

fn check(raw: RawClient) -> Result<Client, String> {
    let id_ok = (1..=64).contains(&raw.id.len())
        && raw
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !id_ok {
        return Err(
            "expected an id of 1 to 64 letters, digits, dots, dashes or underscores".into(),
        );
    }
    if raw.name.trim().is_empty() || raw.name.len() > 100 {
        return Err("expected a name of 1 to 100 characters".into());
    }
    if raw.redirect_uris.is_empty() {
        return Err("expected at least one redirect URI in redirect_uris".into());
    }
    for uri in raw
        .redirect_uris
        .iter()
        .chain(&raw.post_logout_redirect_uris)
    {
        check_uri(uri)?;
    }
    let secret_hash = match (raw.public, raw.secret_hash) {
        (true, None) => None,
        (false, Some(hash)) => {
            let well_formed = hash.strip_prefix("sha256:").is_some_and(|h| {
                h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
            if !well_formed {
                return Err("expected secret_hash = \"sha256:<64 hex digits>\" (from `wicket oidc client-secret`)".into());
            }
            Some(hash)
        }
        (true, Some(_)) => return Err("a public client has no secret_hash".into()),
        (false, None) => return Err("expected secret_hash, or public = true".into()),
    };
    let groups = raw
        .groups
        .iter()
        .map(|g| Group::parse(g).map_err(|why| format!("group {g:?}: {why}")))
        .collect::<Result<_, _>>()?;
    let alg = match raw.id_token_signed_response_alg.as_deref() {
        None | Some("RS256") => Alg::RS256,
        Some("EdDSA") => Alg::EdDSA,
        Some(other) => {
            return Err(format!(
                "id_token_signed_response_alg {other:?}: expected RS256 or EdDSA"
            ));
        }
    };
    Ok(Client {
        id: raw.id,
        name: raw.name.trim().to_owned(),
        redirect_uris: raw.redirect_uris,
        post_logout_redirect_uris: raw.post_logout_redirect_uris,
        secret_hash,
        trusted: raw.trusted,
        groups,
        two_step: raw.two_step,
        alg,
    })
}

/// A redirect URI must be absolute, without a fragment, and `https` unless its host
/// is this machine or a `.test` name.
fn check_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|err| format!("redirect URI {uri:?}: {err}"))?;
    if url.as_str() != uri && format!("{uri}/") != url.as_str() {
        return Err(format!(
            "redirect URI {uri:?}: write it as {:?}",
            url.as_str()
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let local =
        host == "localhost" || host == "127.0.0.1" || host == "[::1]" || host.ends_with(".test");
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => {
            return Err(format!(
                "redirect URI {uri:?}: expected https:// (http:// only for this machine)"
            ));
        }
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI {uri:?}: no fragment or user info"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_client_file_names_its_line_and_what_was_expected() {
        let good = "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\npublic = true\n";
        assert_eq!(Clients::parse(good, "c.toml").unwrap().iter().count(), 1);
        let cases = [
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = []\npublic = true\n",
                1,
                "redirect URI",
            ),
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"http://a.example/cb\"]\npublic = true\n",
                1,
                "https",
            ),
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\n",
                1,
                "secret_hash",
            ),
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb#x\"]\npublic = true\n",
                1,
                "fragment",
            ),
            (
                "\n[[client]]\nid = \"a b\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\npublic = true\n",
                2,
                "id",
            ),
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\nsecret_hash = \"hunter2\"\n",
                1,
                "sha256",
            ),
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\npublic = true\nid_token_signed_response_alg = \"HS256\"\n",
                1,
                "RS256 or EdDSA",
            ),
            (
                "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\npublic = true\nsecret = \"x\"\n",
                6,
                "unknown field",
            ),
            (&format!("{good}{good}"), 6, "a second client"),
        ];
        for (text, line, says) in cases {
            let err = Clients::parse(text, "c.toml").unwrap_err();
            assert_eq!(err.line, Some(line), "{text:?}: {err}");
            assert!(err.to_string().contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_client_secret_is_checked_against_its_hash_only() {
        let (secret, hash) = new_secret();
        let text = format!(
            "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\nsecret_hash = \"{hash}\"\n"
        );
        let clients = Clients::parse(&text, "c.toml").unwrap();
        let client = clients.get("a").unwrap();
        assert!(client.secret_matches(&secret));
        assert!(!client.secret_matches(&hash));
        assert!(!client.secret_matches(""));
        assert!(!text.contains(&secret));
    }
}
