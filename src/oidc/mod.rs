//! The OpenID Connect provider: other apps (Gitea, Grafana, Apache's
//! `mod_auth_openidc`) log their users in through Wicket.
//!
//! The authorization code flow only, with PKCE (`S256`; required of public clients).
//! This module is the one place that issues, rotates and revokes what apps hold:
//!
//! - An **authorization request** is checked once at `/oidc/authorize` and waits on the
//!   `requests` shelf while the browser logs in, steps up or consents; the code it
//!   ends with is single use, lives 60 s and is bound to the client, the redirect URI
//!   and the PKCE challenge.
//! - A code's exchange starts a **family**: one login's refresh and access tokens for
//!   one client, kept on the account's shelf. A refresh token works once: using it
//!   rotates both tokens, and a used one coming back (or a code used twice) revokes
//!   the whole family. A family lives only as long as the Wicket session it was
//!   issued under and the password it was issued with.
//! - Tokens are `<account>.<family>.<secret>`; only the secret's SHA-256 is stored.

pub mod clients;
pub mod keys;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

pub use self::clients::{Client, Clients};
pub use self::keys::{Alg, KeySet};
use crate::domain::AccountId;
use crate::guard::RulesError;
use crate::secret::{hex, random_bytes};
use crate::session::{Resumed, Session, Sessions};
use crate::store::grants::{
    AuthRequest, Authentication, CodeGrant, Consent, Family, Grant, GrantKind, GrantStore, Shelf,
    secret_name, valid_name,
};
use crate::store::tokens::password_mark;
use crate::store::{SessionId, StoreError, User};

/// How long a code works.
pub const CODE_TTL: Duration = Duration::seconds(60);
/// How long an authorization request waits for a login.
pub const REQUEST_TTL: Duration = Duration::minutes(30);
/// How long an access token works.
pub const ACCESS_TTL: Duration = Duration::minutes(10);
/// How long an ID token is valid (well under [`keys::RETIRED_KEPT`]).
pub const ID_TOKEN_TTL: Duration = Duration::hours(1);
/// How long a family lasts at most, however its session goes on.
pub const FAMILY_TTL: Duration = Duration::days(30);
/// How long a spent code or refresh token is remembered as spent: the race it decides
/// is over by then (a family's own record tells its older tokens apart).
const SPENT_KEPT: Duration = Duration::minutes(10);
/// How many replaced refresh tokens a family remembers, to tell a reuse.
const PREVIOUS_KEPT: usize = 20;

/// The longest `state` an app may send (it comes back in a URL).
pub const MAX_STATE: usize = 2048;

/// The scopes Wicket knows; others are ignored.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "groups"];

/// The `acr` of a login that used a second factor.
pub const ACR_MFA: &str = "https://refeds.org/profile/mfa";

/// The provider: its address, clients, keys and where grants live.
pub struct Provider {
    issuer: std::sync::OnceLock<String>,
    clients: RwLock<Arc<Clients>>,
    clients_file: PathBuf,
    keys: RwLock<Arc<KeySet>>,
    data_dir: PathBuf,
    grants: Arc<dyn GrantStore>,
    sessions: Sessions,
    guard: crate::guard::Guard,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer())
            .finish()
    }
}

/// What `/oidc/authorize` was asked (query or form).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthorizeParams {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub response_mode: Option<String>,
}

/// Why an authorization request goes no further.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Shown to the member: the client or its redirect URI cannot be trusted with an
    /// answer, or the member may not use the app.
    Page(&'static str),
    /// Sent back to the app (a registered redirect URI) as `error=…`.
    Redirect(String),
}

/// What the browser does next in an authorization.
#[derive(Debug)]
pub enum Next {
    /// Log in (ending the current session first, when a fresher login is needed).
    LogIn { end_session: bool },
    /// Give a second factor.
    StepUp,
    /// Agree (or not) to what the app will learn.
    Consent,
    /// Back to the app.
    Redirect(String),
    /// Refused, with a page.
    Refused(&'static str),
}

/// An error of the token, userinfo or revocation endpoints (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// `invalid_grant`, `invalid_client`, …
    pub error: &'static str,
    /// For the app's developer.
    pub description: &'static str,
}

impl TokenError {
    fn new(error: &'static str, description: &'static str) -> Self {
        Self { error, description }
    }
}

/// What the token endpoint hands out.
#[derive(Debug, Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

/// How a client presented itself at the token endpoint.
#[derive(Debug, Default)]
pub struct ClientAuth {
    /// From `Authorization: Basic` (id, secret), already decoded.
    pub basic: Option<(String, String)>,
    /// `client_id` from the form.
    pub client_id: Option<String>,
    /// `client_secret` from the form.
    pub client_secret: Option<String>,
}

/// An app a member has let in, for `/account`.
#[derive(Debug, Clone)]
pub struct App {
    /// The client's id.
    pub client: String,
    /// Its name.
    pub name: String,
    /// What it may learn.
    pub scopes: Vec<String>,
    /// When a token was last issued to it.
    pub last_used: Option<OffsetDateTime>,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'static str>,
    sid: &'a str,
    #[serde(flatten)]
    profile: serde_json::Map<String, serde_json::Value>,
}

/// What is read back from an `id_token_hint`: who issued it, and to which client.
#[derive(Debug, Deserialize)]
struct HintClaims {
    iss: String,
    aud: String,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn random_hex<const N: usize>() -> String {
    hex(&random_bytes::<N>())
}

/// A token's parts: `<account>.<family>.<secret>`, each lower-case hex.
fn parse_token(token: &str) -> Option<(AccountId, &str, &str)> {
    let mut parts = token.split('.');
    let (account, family, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && account.len() == 32
        && family.len() == 32
        && secret.len() == 64
        && [account, family, secret].iter().all(|p| valid_name(p));
    ok.then(|| (AccountId::from_hex(account), family, secret))
}

fn revoked_name(family: &str) -> String {
    secret_name(&format!("revoked:{family}"))
}

fn consent_name(client: &str) -> String {
    secret_name(&format!("consent:{client}"))
}

/// The mark "Remove access" leaves for a client's codes issued before it.
fn removed_name(client: &str) -> String {
    secret_name(&format!("removed:{client}"))
}

/// Whether `verifier` (RFC 7636: 43–128 unreserved characters) answers the `S256`
/// `challenge`.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    // The challenge was public (in the browser's address bar): no timing to hide.
    well_formed && computed == challenge
}

impl Provider {
    /// A provider for the clients in `clients_file`, with the keys in `data_dir` (made
    /// there if missing); its address is [set](Self::set_issuer) once known.
    pub fn open(
        clients_file: PathBuf,
        data_dir: PathBuf,
        grants: Arc<dyn GrantStore>,
        sessions: Sessions,
        guard: crate::guard::Guard,
    ) -> Result<Self, String> {
        let clients = Clients::load(&clients_file).map_err(|err| err.to_string())?;
        let keys = KeySet::load_or_create(&data_dir)
            .map_err(|err| format!("{}: {err}", data_dir.join(keys::KEY_FILE).display()))?;
        Ok(Self {
            issuer: std::sync::OnceLock::new(),
            clients: RwLock::new(Arc::new(clients)),
            clients_file,
            keys: RwLock::new(Arc::new(keys)),
            data_dir,
            grants,
            sessions,
            guard,
        })
    }

    /// Reads the client file and the keys again (on `SIGHUP`, after
    /// `wicket oidc rotate-key`); a bad file keeps what is in force.
    pub fn reload(&self) -> Result<(), String> {
        let clients =
            Clients::load(&self.clients_file).map_err(|err: RulesError| err.to_string())?;
        let keys = KeySet::load_or_create(&self.data_dir).map_err(|err| err.to_string())?;
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(clients);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// The origins the clients send browsers back to (for the pages' `form-action`).
    pub fn form_targets(&self) -> Vec<String> {
        let mut origins: Vec<String> = self.clients().iter().flat_map(Client::origins).collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Sets the issuer (`iss`): the public URL, or the address bound.
    pub fn set_issuer(&self, issuer: &str) {
        let _ = self.issuer.set(issuer.trim_end_matches('/').to_owned());
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        self.issuer.get().map_or("", String::as_str)
    }

    /// The clients in force.
    pub fn clients(&self) -> Arc<Clients> {
        self.clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn keys(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> String {
        self.keys().jwks().to_owned()
    }

    /// The discovery document.
    pub fn discovery(&self) -> serde_json::Value {
        let issuer = self.issuer();
        let at = |path: &str| format!("{issuer}{path}");
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": at("/oidc/authorize"),
            "token_endpoint": at("/oidc/token"),
            "userinfo_endpoint": at("/oidc/userinfo"),
            "jwks_uri": at("/oidc/jwks"),
            "revocation_endpoint": at("/oidc/revoke"),
            "end_session_endpoint": at("/oidc/logout"),
            "scopes_supported": SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "EdDSA"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "sid", "azp", "preferred_username", "email", "email_verified", "groups"],
            "acr_values_supported": [ACR_MFA],
            "prompt_values_supported": ["none", "login", "consent"],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// Checks an authorization request. Until the client and its redirect URI are
    /// known to be genuine, a refusal is a page, never a redirect.
    pub fn check_request(&self, p: &AuthorizeParams) -> Result<AuthRequest, Refusal> {
        let clients = self.clients();
        let client = clients.get(&p.client_id).ok_or(Refusal::Page(
            "This app is not registered with Wicket, so Wicket will not log you in to it.",
        ))?;
        if !client.redirect_uris.contains(&p.redirect_uri) {
            return Err(Refusal::Page(
                "This app asked Wicket to send you to an address it has not registered, so Wicket will not.",
            ));
        }
        // Not sent back either: a huge `state` would only be echoed.
        if p.state.as_ref().is_some_and(|s| s.len() > MAX_STATE)
            || p.nonce.as_ref().is_some_and(|n| n.len() > 512)
        {
            return Err(Refusal::Page(
                "This app sent a login request too long to answer. Tell whoever runs the app.",
            ));
        }
        let fail = |error: &str, description: &str| {
            Refusal::Redirect(self.answer(
                &p.redirect_uri,
                &[("error", error), ("error_description", description)],
                p.state.as_deref(),
            ))
        };
        if p.response_type != "code" {
            return Err(fail("unsupported_response_type", "only response_type=code"));
        }
        if p.request.is_some() || p.request_uri.is_some() {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if p.response_mode.as_deref().is_some_and(|m| m != "query") {
            return Err(fail("invalid_request", "only response_mode=query"));
        }
        let asked: Vec<&str> = p.scope.split(' ').filter(|s| !s.is_empty()).collect();
        if !asked.contains(&"openid") {
            return Err(fail("invalid_scope", "the openid scope is required"));
        }
        let scopes = SCOPES
            .iter()
            .filter(|s| asked.contains(s))
            .map(|s| (*s).to_owned())
            .collect();
        match (
            p.code_challenge.as_deref(),
            p.code_challenge_method.as_deref(),
        ) {
            (None, None) if client.secret_hash.is_some() => {}
            (None, _) => {
                return Err(fail(
                    "invalid_request",
                    "PKCE is required: code_challenge with code_challenge_method=S256",
                ));
            }
            (Some(challenge), Some("S256")) => {
                let ok = challenge.len() == 43
                    && challenge
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                if !ok {
                    return Err(fail(
                        "invalid_request",
                        "code_challenge is not an S256 challenge",
                    ));
                }
            }
            (Some(_), _) => return Err(fail("invalid_request", "only code_challenge_method=S256")),
        }

        let prompts: Vec<&str> = p
            .prompt
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if prompts.contains(&"none") && prompts.len() > 1 {
            return Err(fail("invalid_request", "prompt=none goes alone"));
        }
        let known = ["none", "login", "consent", "select_account"];
        if !prompts.iter().all(|p| known.contains(p)) {
            return Err(fail("invalid_request", "unknown prompt value"));
        }
        let now = now();
        let mut login_after = None;
        if let Some(max_age) = p.max_age.as_deref() {
            let secs: i64 = max_age
                .parse()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| fail("invalid_request", "max_age is not a number of seconds"))?;
            login_after = Some(now - Duration::seconds(secs.min(400 * 86_400)));
        }
        if prompts.contains(&"login") || prompts.contains(&"select_account") {
            login_after = Some(now);
        }
        Ok(AuthRequest {
            client: client.id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            scopes,
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            challenge: p.code_challenge.clone(),
            login_after,
            ask_consent: prompts.contains(&"consent"),
            silent: prompts.contains(&"none"),
            eddsa: client.alg == Alg::EdDSA,
        })
    }

    /// `redirect_uri` with `params`, the `state` and the issuer (RFC 9207) added.
    fn answer(&self, redirect_uri: &str, params: &[(&str, &str)], state: Option<&str>) -> String {
        let mut url = url::Url::parse(redirect_uri)
            .expect("registered redirect URIs parse (checked at load)");
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer());
        }
        url.into()
    }

    /// An error for the app, at its redirect URI.
    pub fn error_to(&self, request: &AuthRequest, error: &str, description: &str) -> String {
        self.answer(
            &request.redirect_uri,
            &[("error", error), ("error_description", description)],
            request.state.as_deref(),
        )
    }

    /// Keeps a checked request while the browser logs in; the token names it.
    pub async fn save_request(&self, request: AuthRequest) -> Result<String, StoreError> {
        let token = random_hex::<32>();
        let grant = Grant {
            expires: now() + REQUEST_TTL,
            kind: GrantKind::Request(request),
        };
        self.grants
            .put_grant(&Shelf::Requests, &secret_name(&token), &grant)
            .await?;
        Ok(token)
    }

    /// The waiting request `token` names, if it is still waiting.
    pub async fn request(&self, token: &str) -> Result<Option<AuthRequest>, StoreError> {
        if !valid_name(token) || token.len() != 64 {
            return Ok(None);
        }
        Ok(
            match self
                .grants
                .get_grant(&Shelf::Requests, &secret_name(token))
                .await?
            {
                Some(Grant {
                    expires,
                    kind: GrantKind::Request(request),
                }) if now() < expires => Some(request),
                _ => None,
            },
        )
    }

    /// What comes next for `request` (waiting as `token`) in a browser with `session`:
    /// a login, a second factor, consent, or the code (sent back to the app).
    pub async fn proceed(
        &self,
        token: &str,
        request: &AuthRequest,
        session: Option<&Session>,
    ) -> Result<Next, StoreError> {
        let clients = self.clients();
        let Some(client) = clients.get(&request.client) else {
            return Ok(Next::Refused(
                "This app is no longer registered with Wicket.",
            ));
        };
        let Some(session) = session else {
            return Ok(if request.silent {
                Next::Redirect(self.error_to(request, "login_required", "nobody is logged in"))
            } else {
                Next::LogIn { end_session: false }
            });
        };
        if request.login_after.is_some_and(|after| {
            session.record.created < after.replace_nanosecond(0).unwrap_or(after)
        }) {
            return Ok(if request.silent {
                Next::Redirect(self.error_to(
                    request,
                    "login_required",
                    "a fresher login is needed",
                ))
            } else {
                Next::LogIn { end_session: true }
            });
        }
        let Some(user) = session.account.as_deref() else {
            return Ok(Next::LogIn { end_session: false });
        };
        if !client.admits(&user.groups) {
            return Ok(Next::Refused(
                "Your account is not in a group that may use this app. Ask whoever runs this site to add you.",
            ));
        }
        // An access rule naming the app's address applies to it as to its pages.
        let asker = crate::guard::Asker {
            groups: &user.groups,
            second_factor: session.record.second_factor,
        };
        let ruled =
            crate::guard::Target::of_url(&request.redirect_uri, "GET").and_then(|(target, _)| {
                let rules = self.guard.rules();
                let rule = rules.matching(&target)?;
                Some(rule.access(Some(asker)))
            });
        if ruled == Some(crate::guard::Access::Forbidden) {
            return Ok(Next::Refused(
                "The access rules do not let your account use this app. Ask whoever runs this site.",
            ));
        }
        let step_up = ruled == Some(crate::guard::Access::StepUp);
        if (client.two_step || step_up) && !session.record.second_factor {
            return Ok(if request.silent {
                Next::Redirect(self.error_to(
                    request,
                    "interaction_required",
                    "a second factor is needed",
                ))
            } else {
                Next::StepUp
            });
        }
        if !client.trusted && (request.ask_consent || !self.consented(&user.id, request).await?) {
            return Ok(if request.silent {
                Next::Redirect(self.error_to(
                    request,
                    "consent_required",
                    "the member has not agreed",
                ))
            } else {
                Next::Consent
            });
        }
        self.issue_code(token, request, session, user).await
    }

    async fn consented(
        &self,
        account: &AccountId,
        request: &AuthRequest,
    ) -> Result<bool, StoreError> {
        let shelf = Shelf::Account(account.clone());
        Ok(
            match self
                .grants
                .get_grant(&shelf, &consent_name(&request.client))
                .await?
            {
                Some(Grant {
                    kind: GrantKind::Consent(consent),
                    expires,
                }) if now() < expires => request.scopes.iter().all(|s| consent.scopes.contains(s)),
                _ => false,
            },
        )
    }

    /// The member agreed to `request` (waiting as `token`): remembered, then on as
    /// [`proceed`](Self::proceed) would.
    pub async fn agree(
        &self,
        token: &str,
        request: &AuthRequest,
        session: &Session,
    ) -> Result<Next, StoreError> {
        let user = session
            .account
            .as_deref()
            .ok_or_else(|| StoreError::corrupt("a live session without its account"))?;
        let consent = Consent {
            client: request.client.clone(),
            scopes: request.scopes.clone(),
            given: now(),
        };
        let grant = Grant {
            expires: now() + Duration::days(400),
            kind: GrantKind::Consent(consent),
        };
        self.grants
            .put_grant(
                &Shelf::Account(user.id.clone()),
                &consent_name(&request.client),
                &grant,
            )
            .await?;
        let mut agreed = request.clone();
        agreed.ask_consent = false;
        self.proceed(token, &agreed, Some(session)).await
    }

    /// The member said no: the request ends, and the app is told.
    pub async fn refuse(&self, token: &str, request: &AuthRequest) -> Result<String, StoreError> {
        self.grants
            .take_grant(&Shelf::Requests, &secret_name(token))
            .await?;
        Ok(self.error_to(request, "access_denied", "the member said no"))
    }

    async fn issue_code(
        &self,
        token: &str,
        request: &AuthRequest,
        session: &Session,
        user: &User,
    ) -> Result<Next, StoreError> {
        // The request is used up: of two tabs finishing it, one gets a code.
        if self
            .grants
            .take_grant(&Shelf::Requests, &secret_name(token))
            .await?
            .is_none()
        {
            return Ok(Next::Refused(
                "This login to the app was already finished. Go back to the app and start again.",
            ));
        }
        let code = random_hex::<32>();
        let login = Authentication {
            account: user.id.clone(),
            user: user.name.to_string(),
            session: session.id.as_str().to_owned(),
            auth_time: session.record.created,
            amr: session.record.amr.clone(),
            password: password_mark(&user.password_hash),
        };
        let grant = Grant {
            expires: now() + CODE_TTL,
            kind: GrantKind::Code(CodeGrant {
                request: request.clone(),
                login,
            }),
        };
        self.grants
            .put_grant(&Shelf::Codes, &secret_name(&code), &grant)
            .await?;
        tracing::info!(user = %user.name, client = %request.client, "authorization code issued");
        Ok(Next::Redirect(self.answer(
            &request.redirect_uri,
            &[("code", &code)],
            request.state.as_deref(),
        )))
    }

    /// The client a token request comes from, authenticated as it registered:
    /// a secret (Basic or in the form, not both) or, for a public client, its id.
    pub fn authenticate(&self, auth: &ClientAuth) -> Result<Client, TokenError> {
        let invalid = TokenError::new("invalid_client", "unknown client or wrong secret");
        let (id, secret) = match (&auth.basic, &auth.client_secret) {
            (Some(_), Some(_)) => {
                return Err(TokenError::new(
                    "invalid_request",
                    "one client authentication method at a time",
                ));
            }
            (Some((id, secret)), None) => {
                if auth.client_id.as_ref().is_some_and(|form_id| form_id != id) {
                    return Err(invalid);
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, secret) => (
                auth.client_id.as_deref().ok_or(invalid.clone())?,
                secret.as_deref(),
            ),
        };
        let clients = self.clients();
        let client = clients.get(id).ok_or(invalid.clone())?;
        let genuine = match (&client.secret_hash, secret) {
            (Some(_), Some(secret)) => client.secret_matches(secret),
            (None, None) => true,
            _ => false,
        };
        genuine.then(|| client.clone()).ok_or(invalid)
    }

    /// The login behind a family or code, if it still holds: its session is live
    /// (resuming it records activity), its account is the same, its password
    /// unchanged, and `client` still registered and open to the member's groups.
    async fn login_holds(
        &self,
        login: &Authentication,
        client: &str,
    ) -> Result<Option<(Session, Arc<User>)>, StoreError> {
        let Some(id) = SessionId::parse(&login.session) else {
            return Ok(None);
        };
        let Resumed::Live(session) = self.sessions.resume(id).await? else {
            return Ok(None);
        };
        let Some(user) = session.account.clone() else {
            return Ok(None);
        };
        // The client is still registered and still admits the member (groups change).
        let admitted = self
            .clients()
            .get(client)
            .is_some_and(|c| c.admits(&user.groups));
        let holds = user.id == login.account
            && !user.must_change_password
            && password_mark(&user.password_hash) == login.password
            && admitted;
        Ok(holds.then_some((*session, user)))
    }

    /// `grant_type=authorization_code`.
    pub async fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<Result<Tokens, TokenError>, StoreError> {
        let invalid = |why| Ok(Err(TokenError::new("invalid_grant", why)));
        if code.len() != 64 || !valid_name(code) {
            return invalid("unknown code");
        }
        let name = secret_name(code);
        let grant = match self.grants.get_grant(&Shelf::Codes, &name).await? {
            Some(Grant {
                expires,
                kind: GrantKind::Code(grant),
            }) => (expires, grant),
            _ => {
                if self.revoke_spent(&name).await? {
                    return invalid("the code was already used: what it issued is revoked");
                }
                return invalid("unknown or expired code");
            }
        };
        let (expires, CodeGrant { request, login }) = grant;
        if now() >= expires {
            return invalid("the code expired");
        }
        if request.client != client.id {
            return invalid("the code was issued to another client");
        }
        // "Remove access" came after this code was issued (a code lives CODE_TTL and
        // the mark ends CODE_TTL after the removal: an earlier code ends first).
        let shelf = Shelf::Account(login.account.clone());
        if let Some(removed) = self
            .grants
            .get_grant(&shelf, &removed_name(&client.id))
            .await?
            && expires <= removed.expires
        {
            return invalid("the member removed this app's access after the code was issued");
        }
        if request.redirect_uri != redirect_uri {
            return invalid("redirect_uri differs from the authorization request's");
        }
        let pkce_ok = match (&request.challenge, verifier) {
            (Some(challenge), Some(verifier)) => pkce_matches(challenge, verifier),
            (None, None) => true,
            _ => false,
        };
        if !pkce_ok {
            return invalid("code_verifier does not match the code_challenge");
        }
        let family = random_hex::<16>();
        let spent = Grant {
            expires: now() + SPENT_KEPT,
            kind: GrantKind::Spent {
                family: family.clone(),
                account: login.account.clone(),
            },
        };
        if !self.grants.add_grant(&Shelf::Spent, &name, &spent).await? {
            // Another exchange of this code got there first.
            self.revoke_spent(&name).await?;
            return invalid("the code was already used: what it issued is revoked");
        }
        self.grants.take_grant(&Shelf::Codes, &name).await?;
        let Some((session, user)) = self.login_holds(&login, &client.id).await? else {
            return invalid("the login behind the code has ended");
        };
        let now = now();
        let mut family_record = Family {
            client: client.id.clone(),
            scopes: request.scopes.clone(),
            eddsa: request.eddsa,
            login,
            created: now,
            last_used: now,
            refresh: String::new(),
            previous: Vec::new(),
            access: String::new(),
            access_expires: now,
        };
        let tokens = self.fill(
            &mut family_record,
            &family,
            &session,
            &user,
            request.nonce.as_deref(),
        )?;
        self.put_family(&family, &family_record).await?;
        tracing::info!(user = %user.name, client = %client.id, "code exchanged");
        Ok(Ok(tokens))
    }

    /// `grant_type=refresh_token`.
    pub async fn refresh(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Result<Tokens, TokenError>, StoreError> {
        let invalid = |why| Ok(Err(TokenError::new("invalid_grant", why)));
        let Some((account, family, secret)) = parse_token(token) else {
            return invalid("unknown refresh token");
        };
        let shelf = Shelf::Account(account.clone());
        let Some(mut record) = self.family(&shelf, family).await? else {
            return invalid("unknown refresh token");
        };
        if record.client != client.id {
            return invalid("the refresh token was issued to another client");
        }
        let presented = secret_name(secret);
        if presented != record.refresh {
            if record.previous.contains(&presented) {
                self.revoke_family(&account, family, "refresh token reused")
                    .await?;
                return invalid("the refresh token was already used: its family is revoked");
            }
            return invalid("unknown refresh token");
        }
        let spent = Grant {
            expires: now() + SPENT_KEPT,
            kind: GrantKind::Spent {
                family: family.to_owned(),
                account: account.clone(),
            },
        };
        if !self
            .grants
            .add_grant(&Shelf::Spent, &presented, &spent)
            .await?
        {
            self.revoke_family(&account, family, "refresh token used twice at once")
                .await?;
            return invalid("the refresh token was already used: its family is revoked");
        }
        let Some((session, user)) = self.login_holds(&record.login, &record.client).await? else {
            return invalid("the login behind the refresh token has ended");
        };
        record.previous.push(presented);
        let excess = record.previous.len().saturating_sub(PREVIOUS_KEPT);
        record.previous.drain(..excess);
        record.last_used = now();
        let tokens = self.fill(&mut record, family, &session, &user, None)?;
        self.put_family(family, &record).await?;
        // A revocation that raced this rotation wins.
        if self.is_revoked(&shelf, family).await? {
            return invalid("the family was revoked");
        }
        Ok(Ok(tokens))
    }

    /// New refresh and access tokens for `family` (recorded in `record`) and an ID
    /// token.
    fn fill(
        &self,
        record: &mut Family,
        family: &str,
        session: &Session,
        user: &User,
        nonce: Option<&str>,
    ) -> Result<Tokens, StoreError> {
        let account = user.id.as_str();
        let (refresh, access) = (random_hex::<32>(), random_hex::<32>());
        record.refresh = secret_name(&refresh);
        record.access = secret_name(&access);
        record.access_expires = now() + ACCESS_TTL;
        let id_token = self.id_token(record, session, user, nonce)?;
        Ok(Tokens {
            access_token: format!("{account}.{family}.{access}"),
            token_type: "Bearer",
            expires_in: ACCESS_TTL.whole_seconds(),
            refresh_token: format!("{account}.{family}.{refresh}"),
            id_token,
            scope: record.scopes.join(" "),
        })
    }

    fn id_token(
        &self,
        record: &Family,
        session: &Session,
        user: &User,
        nonce: Option<&str>,
    ) -> Result<String, StoreError> {
        let now = now();
        let second_factor = record.login.amr.iter().any(|m| m == "otp" || m == "hwk");
        let sid = self.sessions.handle(&session.id);
        let claims = IdClaims {
            iss: self.issuer(),
            sub: user.id.as_str(),
            aud: &record.client,
            azp: &record.client,
            exp: (now + ID_TOKEN_TTL).unix_timestamp(),
            iat: now.unix_timestamp(),
            auth_time: record.login.auth_time.unix_timestamp(),
            nonce,
            amr: &record.login.amr,
            acr: second_factor.then_some(ACR_MFA),
            sid: &sid,
            profile: profile_claims(user, &record.scopes),
        };
        let alg = if record.eddsa { Alg::EdDSA } else { Alg::RS256 };
        self.keys().sign(alg, &claims).map_err(StoreError::corrupt)
    }

    async fn family(&self, shelf: &Shelf, family: &str) -> Result<Option<Family>, StoreError> {
        let record = match self.grants.get_grant(shelf, family).await? {
            Some(Grant {
                expires,
                kind: GrantKind::Family(record),
            }) if now() < expires => record,
            _ => return Ok(None),
        };
        if self.is_revoked(shelf, family).await? {
            return Ok(None);
        }
        Ok(Some(record))
    }

    async fn is_revoked(&self, shelf: &Shelf, family: &str) -> Result<bool, StoreError> {
        Ok(self
            .grants
            .get_grant(shelf, &revoked_name(family))
            .await?
            .is_some())
    }

    async fn put_family(&self, family: &str, record: &Family) -> Result<(), StoreError> {
        let expires = (record.created + FAMILY_TTL).min(record.last_used + FAMILY_TTL);
        let grant = Grant {
            expires,
            kind: GrantKind::Family(record.clone()),
        };
        self.grants
            .put_grant(
                &Shelf::Account(record.login.account.clone()),
                family,
                &grant,
            )
            .await
    }

    /// Revokes the family a spent code started, if the mark names one; whether it did.
    async fn revoke_spent(&self, code: &str) -> Result<bool, StoreError> {
        let spent = self.grants.get_grant(&Shelf::Spent, code).await?;
        let Some(Grant {
            kind: GrantKind::Spent { family, account },
            ..
        }) = spent
        else {
            return Ok(false);
        };
        self.revoke_family(&account, &family, "code used twice")
            .await?;
        Ok(true)
    }

    /// Revokes a family: its refresh and access tokens stop working at once.
    async fn revoke_family(
        &self,
        account: &AccountId,
        family: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let grant = Grant {
            expires: now() + FAMILY_TTL,
            kind: GrantKind::Revoked,
        };
        self.grants
            .add_grant(
                &Shelf::Account(account.clone()),
                &revoked_name(family),
                &grant,
            )
            .await?;
        tracing::warn!(account = %account, why, "token family revoked");
        Ok(())
    }

    /// The claims `/oidc/userinfo` answers for an access token; `None` if it does
    /// not work (unknown, expired, revoked, or its login ended).
    pub async fn userinfo(&self, token: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let Some((account, family, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let shelf = Shelf::Account(account);
        let Some(record) = self.family(&shelf, family).await? else {
            return Ok(None);
        };
        let genuine = !record.access.is_empty()
            // Hashes compared: timing tells nothing of the secret.
            && record.access == secret_name(secret)
            && now() < record.access_expires;
        if !genuine {
            return Ok(None);
        }
        let Some((_, user)) = self.login_holds(&record.login, &record.client).await? else {
            return Ok(None);
        };
        let mut claims = profile_claims(&user, &record.scopes);
        claims.insert("sub".into(), user.id.as_str().into());
        Ok(Some(claims.into()))
    }

    /// `/oidc/revoke`: a refresh or access token revokes its family.
    /// Tokens of other clients and unknown tokens change nothing (and are not told).
    pub async fn revoke(&self, client: &Client, token: &str) -> Result<(), StoreError> {
        let Some((account, family, secret)) = parse_token(token) else {
            return Ok(());
        };
        let shelf = Shelf::Account(account.clone());
        let Some(record) = self.family(&shelf, family).await? else {
            return Ok(());
        };
        if record.client != client.id {
            return Ok(());
        }
        // Either token ends the family (RFC 7009 allows it): revocation is a mark
        // beside the family, never a rewrite of it that could undo a rotation.
        let presented = secret_name(secret);
        let ours = presented == record.refresh
            || presented == record.access
            || record.previous.contains(&presented);
        if ours {
            self.revoke_family(&account, family, "revoked by its client")
                .await?;
        }
        Ok(())
    }

    /// The apps `account` has let in: consents, and clients holding live tokens.
    pub async fn apps_of(&self, account: &AccountId) -> Result<Vec<App>, StoreError> {
        let shelf = Shelf::Account(account.clone());
        let grants = self.grants.grants_on(&shelf).await?;
        let now = now();
        let revoked: Vec<&str> = grants
            .iter()
            .filter(|(_, g)| matches!(g.kind, GrantKind::Revoked))
            .map(|(n, _)| n.as_str())
            .collect();
        let clients = self.clients();
        let mut apps: Vec<App> = Vec::new();
        for (name, grant) in &grants {
            if grant.expires <= now {
                continue;
            }
            let (client, scopes, used) = match &grant.kind {
                GrantKind::Consent(c) => (&c.client, &c.scopes, None),
                GrantKind::Family(f) if !revoked.contains(&revoked_name(name).as_str()) => {
                    (&f.client, &f.scopes, Some(f.last_used))
                }
                _ => continue,
            };
            let Some(registered) = clients.get(client) else {
                continue;
            };
            match apps.iter_mut().find(|a| &a.client == client) {
                Some(app) => {
                    app.last_used = app.last_used.max(used);
                    for s in scopes {
                        if !app.scopes.contains(s) {
                            app.scopes.push(s.clone());
                        }
                    }
                }
                None => apps.push(App {
                    client: client.clone(),
                    name: registered.name.clone(),
                    scopes: scopes.clone(),
                    last_used: used,
                }),
            }
        }
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }

    /// "Remove access": forgets the consent and revokes every family of `client`.
    pub async fn remove_access(
        &self,
        account: &AccountId,
        client: &str,
    ) -> Result<usize, StoreError> {
        let shelf = Shelf::Account(account.clone());
        self.grants
            .take_grant(&shelf, &consent_name(client))
            .await?;
        // Codes issued before now die with the consent.
        let mark = Grant {
            expires: now() + CODE_TTL,
            kind: GrantKind::Revoked,
        };
        self.grants
            .put_grant(&shelf, &removed_name(client), &mark)
            .await?;
        let mut revoked = 0;
        for (name, grant) in self.grants.grants_on(&shelf).await? {
            if let GrantKind::Family(f) = grant.kind
                && f.client == client
            {
                self.revoke_family(account, &name, "access removed by the member")
                    .await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// The client an `id_token_hint` was issued to (by this provider, with one of its
    /// keys, expired or not).
    pub fn hint_client(&self, hint: &str) -> Option<String> {
        let claims: HintClaims = self.keys().read(hint)?;
        (claims.iss == self.issuer()).then_some(claims.aud)
    }

    /// Deletes expired grants.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.grants.sweep_grants(now()).await
    }
}

/// What the scopes let an app learn about `user`: `preferred_username` (`profile`),
/// a confirmed address (`email`) and the groups (`groups`).
fn profile_claims(user: &User, scopes: &[String]) -> serde_json::Map<String, serde_json::Value> {
    let mut claims = serde_json::Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        claims.insert("preferred_username".into(), user.name.to_string().into());
    }
    if has("email")
        && let Some(address) = user.verified_email()
    {
        claims.insert("email".into(), address.into());
        claims.insert("email_verified".into(), true.into());
    }
    if has("groups") {
        let groups: Vec<&str> = user.groups.iter().map(|g| g.as_str()).collect();
        claims.insert("groups".into(), groups.into());
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_only_its_verifier() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r-wW1gFWs4dSw8M";
        let verifier = &verifier[..43];
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        assert!(pkce_matches(&challenge, verifier));
        assert!(!pkce_matches(&challenge, &verifier.replace('d', "e")));
        assert!(!pkce_matches(verifier, verifier), "plain is not S256");
        assert!(!pkce_matches(&challenge, "short"));
    }

    #[test]
    fn tokens_parse_only_in_their_exact_shape() {
        let good = format!("{}.{}.{}", "a".repeat(32), "b".repeat(32), "c".repeat(64));
        assert!(parse_token(&good).is_some());
        for bad in [
            String::new(),
            format!("{good}.x"),
            good.to_uppercase(),
            good.replacen('a', "/", 1),
            format!("{}.{}", "a".repeat(32), "c".repeat(64)),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad}");
        }
    }
}
