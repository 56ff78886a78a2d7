//! Passkeys (WebAuthn, through `webauthn-rs`): the ceremonies that add one to an
//! account and log in with one, and how they are stored.
//!
//! Each ceremony's state (its challenge) waits in the token store under a single-use
//! 256-bit token that expires after five minutes, so any instance can finish it; a
//! registration is bound to its account and password like any token. A credential id
//! belongs to one account (an index claim); a login must match the credential's user
//! handle, its id and the account's stored key, the authenticator must have verified
//! its user, and the signature counter must rise — checked again in the update that
//! stores it, so of two signatures racing with one counter only one logs in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::{Accounts, Caller, links};
use crate::error::AppError;
use crate::mail::texts::Change;
use crate::net::PublicUrl;
use crate::store::journal::Event;
use crate::store::tokens::{ClaimKey, Purpose, Token, TokenRecord};
use crate::store::{CounterStore, PasskeySetting, StoreError, User};
use crate::throttle::{Limit, Throttle};

/// Ceremonies one client address may start per minute (each is a stored record).
/// Every login page a passkey browser opens starts one (autofill), so a few people
/// behind one address must fit.
pub const STARTS_PER_MINUTE: u32 = 120;

/// The relying party and a limit on ceremonies started.
#[derive(Debug, Clone)]
pub struct Passkeys {
    webauthn: Arc<Webauthn>,
    starts: Arc<Throttle>,
}

impl Passkeys {
    /// The relying party for `site`; `None` when its host is an IP address (WebAuthn
    /// needs a domain name; `localhost` is one).
    pub fn new(site: &PublicUrl, counters: Arc<dyn CounterStore>) -> Result<Option<Self>, String> {
        let host = site.host();
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(None);
        }
        let origin = Url::parse(site.origin()).map_err(|err| format!("--public-url: {err}"))?;
        let webauthn = WebauthnBuilder::new(host, &origin)
            .and_then(|b| {
                b.rp_name(crate::brand::name())
                    .timeout(ceremony_life())
                    .build()
            })
            .map_err(|err| format!("passkeys for {}: {err}", site.origin()))?;
        let limit = Some(Limit {
            max: STARTS_PER_MINUTE,
            window: Duration::from_secs(60),
        });
        Ok(Some(Self {
            webauthn: Arc::new(webauthn),
            starts: Arc::new(Throttle::new("passkey-start", limit, counters)),
        }))
    }

    /// Counts a ceremony started from `address_key`; `Err(wait)` over the limit.
    pub async fn may_start(&self, address_key: &str) -> Result<Result<(), Duration>, StoreError> {
        self.starts.hit(address_key).await
    }
}

/// How long a ceremony may take.
fn ceremony_life() -> Duration {
    links::valid_for(Purpose::PasskeyLogin)
}

/// A ceremony begun: the token that finishes it, and what the browser passes to
/// `navigator.credentials`.
#[derive(Debug)]
pub struct Begun<O> {
    /// The single-use token naming the stored state.
    pub ceremony: Token,
    /// The browser's options.
    pub options: O,
}

/// Why a passkey was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRefusal {
    /// The ceremony is used, expired or unknown (or another account's).
    TooSlow,
    /// The signature or the credential did not check out.
    DidNotWork,
    /// No account holds this passkey (any more).
    Unknown,
    /// Another account holds this passkey.
    Taken,
    /// Another registration of this account finished first (with this key, or under
    /// another handle).
    Raced,
}

/// What a registration ceremony keeps besides the challenge.
#[derive(serde::Serialize, serde::Deserialize)]
struct Adding {
    state: PasskeyRegistration,
    name: String,
    handle: Uuid,
}

impl Accounts {
    /// A challenge for any passkey of this site (a login, before anyone is known).
    pub async fn start_passkey_login(
        &self,
        passkeys: &Passkeys,
    ) -> Result<Begun<RequestChallengeResponse>, AppError> {
        let (mut options, ceremony) = passkeys
            .webauthn
            .start_discoverable_authentication()
            .map_err(|err| AppError::internal(format!("passkey login options: {err}")))?;
        // A button asked for it: a modal prompt, not autofill's conditional one.
        options.mediation = None;
        self.begin(Purpose::PasskeyLogin, None, &ceremony, options)
            .await
    }

    /// The account whose passkey signed the login ceremony `ceremony` with
    /// `credential` (its counter and last use now stored), or why there is none.
    pub async fn finish_passkey_login(
        &self,
        passkeys: &Passkeys,
        ceremony: &str,
        credential: &str,
    ) -> Result<Result<User, PasskeyRefusal>, AppError> {
        let Some(record) = self.take_ceremony(ceremony, Purpose::PasskeyLogin).await? else {
            return Ok(Err(PasskeyRefusal::TooSlow));
        };
        let (Some(ceremony), Ok(credential)) = (
            ceremony_of::<DiscoverableAuthentication>(&record),
            serde_json::from_str::<PublicKeyCredential>(credential),
        ) else {
            return Ok(Err(PasskeyRefusal::DidNotWork));
        };
        let Ok((handle, id)) = passkeys
            .webauthn
            .identify_discoverable_authentication(&credential)
        else {
            return Ok(Err(PasskeyRefusal::DidNotWork));
        };
        let owner = self.tokens.owner(&ClaimKey::passkey(id)).await?;
        let user = match owner.map(|name| crate::domain::Username::parse(&name)) {
            Some(Ok(name)) => self.users.get(&name).await?,
            _ => None,
        };
        let Some(user) = user.filter(|u| u.passkey_handle == Some(handle)) else {
            return Ok(Err(PasskeyRefusal::Unknown));
        };
        let Some(setting) = user.passkeys.iter().find(|p| p.key.cred_id()[..] == *id) else {
            return Ok(Err(PasskeyRefusal::Unknown));
        };
        // `finish_discoverable_authentication_v2` wants the key's inner `Credential`,
        // which webauthn-rs only hands out behind its `danger-credential-internals`.
        #[allow(deprecated)]
        let checked = passkeys.webauthn.finish_discoverable_authentication(
            &credential,
            ceremony,
            &[DiscoverableKey::from(&setting.key)],
        );
        let result = match checked {
            // Required by the ceremony already; said again so no change can lose it.
            Ok(result) if result.user_verified() => result,
            Ok(_) => return Ok(Err(PasskeyRefusal::DidNotWork)),
            Err(err) => {
                tracing::warn!(user = %user.name, error = %err, "passkey signature refused");
                return Ok(Err(PasskeyRefusal::DidNotWork));
            }
        };
        // The counter is checked again against the stored one in the update that
        // raises it: of two signatures racing with one counter (a clone and its
        // original), one wins.
        let now = OffsetDateTime::now_utc();
        let counts = result.counter() > 0;
        let fresh = Arc::new(Mutex::new(false));
        let seen = fresh.clone();
        let used = move |u: &mut User| {
            let mut ok = false;
            for setting in &mut u.passkeys {
                let mut candidate = setting.key.clone();
                if let Some(changed) = candidate.update_credential(&result)
                    && (changed || !counts)
                {
                    setting.key = candidate;
                    setting.last_used = Some(now);
                    ok = true;
                }
            }
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = ok;
        };
        let updated = self.update(&user, &used).await?;
        if !*fresh.lock().unwrap_or_else(|p| p.into_inner()) {
            tracing::warn!(user = %user.name, "passkey counter did not rise (a race or a clone)");
            return Ok(Err(PasskeyRefusal::DidNotWork));
        }
        Ok(Ok(updated))
    }

    /// A challenge to add a passkey called `name` to `user`'s account (its password,
    /// and a code with two-step login on, already checked): discoverable and
    /// user-verified, under the account's random handle, excluding its other keys.
    pub async fn start_adding_passkey(
        &self,
        passkeys: &Passkeys,
        user: &User,
        name: &str,
    ) -> Result<Begun<CreationChallengeResponse>, AppError> {
        let handle = user.passkey_handle.unwrap_or_else(Uuid::new_v4);
        let exclude = user
            .passkeys
            .iter()
            .map(|p| p.key.cred_id().clone())
            .collect();
        let (mut options, registration) = passkeys
            .webauthn
            .start_passkey_registration(handle, &user.name, &user.name, Some(exclude))
            .map_err(|err| AppError::internal(format!("passkey options: {err}")))?;
        // Login finds the account from the passkey alone: it must be discoverable.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        let adding = Adding {
            state: registration,
            name: name.to_owned(),
            handle,
        };
        self.begin(Purpose::PasskeyRegistration, Some(user), &adding, options)
            .await
    }

    /// Checks the passkey the browser made in the registration ceremony `ceremony`
    /// (this account's, under its current password) and stores it: its credential id
    /// claimed for this account alone. Returns the account as stored.
    pub async fn finish_adding_passkey(
        &self,
        passkeys: &Passkeys,
        user: &User,
        ceremony: &str,
        credential: &str,
        caller: &Caller,
    ) -> Result<Result<User, PasskeyRefusal>, AppError> {
        let record = self
            .take_ceremony(ceremony, Purpose::PasskeyRegistration)
            .await?;
        // The ceremony must be this account's, started under its current password.
        let record = record.filter(|r| r.belongs_to(user));
        let Some(adding) = record.as_ref().and_then(ceremony_of::<Adding>) else {
            return Ok(Err(PasskeyRefusal::TooSlow));
        };
        let made = serde_json::from_str::<RegisterPublicKeyCredential>(credential)
            .map_err(|err| err.to_string())
            .and_then(|credential| {
                passkeys
                    .webauthn
                    .finish_passkey_registration(&credential, &adding.state)
                    .map_err(|err| err.to_string())
            });
        let key = match made {
            Ok(key) => key,
            Err(err) => {
                tracing::warn!(user = %user.name, error = %err, "passkey registration refused");
                return Ok(Err(PasskeyRefusal::DidNotWork));
            }
        };
        let claim = ClaimKey::passkey(key.cred_id());
        if !self.tokens.claim(&claim, &user.name).await? {
            return Ok(Err(PasskeyRefusal::Taken));
        }
        let setting = PasskeySetting {
            name: adding.name.clone(),
            key,
            added: OffsetDateTime::now_utc(),
            last_used: None,
        };
        let handle = adding.handle;
        let added = Arc::new(Mutex::new(false));
        let seen = added.clone();
        let store = move |u: &mut User| {
            let fits = u.passkey_handle.is_none_or(|h| h == handle);
            let fresh = !u.passkeys.iter().any(|p| p.key == setting.key);
            let ok = fits && fresh;
            if ok {
                u.passkey_handle = Some(handle);
                u.passkeys.push(setting.clone());
            }
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = ok;
        };
        let updated = self.update(user, &store).await?;
        if !*added.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(Err(PasskeyRefusal::Raced));
        }
        tracing::info!(user = %user.name, "passkey added");
        let change = Change::PasskeyAdded(&adding.name);
        self.notify_change(&updated, change, Some(caller), None)
            .await;
        let event = Event::PasskeyAdded;
        self.note(&updated, event, Some(caller), Some(&adding.name))
            .await;
        Ok(Ok(updated))
    }

    /// Forgets `user`'s passkey `gone` and frees its credential id.
    pub async fn remove_passkey(
        &self,
        user: &User,
        gone: &PasskeySetting,
        caller: &Caller,
    ) -> Result<User, AppError> {
        let key = gone.key.clone();
        let forget = move |u: &mut User| u.passkeys.retain(|p| p.key != key);
        let updated = self.update(user, &forget).await?;
        let claim = ClaimKey::passkey(gone.key.cred_id());
        self.tokens.release(&claim, &user.name).await?;
        tracing::info!(user = %user.name, "passkey removed");
        let change = Change::PasskeyRemoved(&gone.name);
        self.notify_change(&updated, change, Some(caller), None)
            .await;
        let event = Event::PasskeyRemoved;
        self.note(&updated, event, Some(caller), Some(&gone.name))
            .await;
        Ok(updated)
    }

    /// Stores `ceremony` for `purpose` (on behalf of `user`, if known) under a new
    /// token.
    async fn begin<C: Serialize, O>(
        &self,
        purpose: Purpose,
        user: Option<&User>,
        ceremony: &C,
        options: O,
    ) -> Result<Begun<O>, AppError> {
        let token = Token::generate();
        let expires = OffsetDateTime::now_utc() + ceremony_life();
        let json = serde_json::to_string(ceremony)
            .map_err(|_| AppError::internal("a passkey ceremony does not serialise"))?;
        let record = TokenRecord {
            ceremony: Some(json),
            ..TokenRecord::new(purpose, user, expires)
        };
        self.tokens.put_token(&token.key(), &record).await?;
        Ok(Begun {
            ceremony: token,
            options,
        })
    }

    /// Takes (uses up) the ceremony `typed` names, if it is still live for `purpose`.
    async fn take_ceremony(
        &self,
        typed: &str,
        purpose: Purpose,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let Some(token) = Token::parse(typed) else {
            return Ok(None);
        };
        let record = self.tokens.take_token(&token.key()).await?;
        Ok(record.filter(|r| r.is_live(purpose, OffsetDateTime::now_utc())))
    }
}

/// The ceremony state inside `record`, if it reads as `T`.
fn ceremony_of<T: DeserializeOwned>(record: &TokenRecord) -> Option<T> {
    serde_json::from_str(record.ceremony.as_deref()?).ok()
}
