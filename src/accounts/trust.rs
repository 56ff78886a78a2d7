//! "Trust this browser for 30 days", ticked at a login's second step: that browser
//! logs in to the account with the password alone until then. The browser holds a
//! 256-bit secret (in the `wicket_trust` cookie, with the account's id); the account
//! keeps only its SHA-256, with the browser and address it was made from (listed on
//! `/account`, each with "Forget"). A password change or reset, a second-factor change
//! and "This wasn't me" forget every trusted browser.

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::{Accounts, Caller};
use crate::error::AppError;
use crate::secret::{hex, random_bytes};
use crate::store::User;
use crate::store::journal::Event;
use crate::store::users::TrustedBrowser;

/// How long a browser stays trusted.
pub const TRUSTED_FOR: Duration = Duration::days(30);
/// The most trusted browsers an account keeps (the oldest go first).
const MOST: usize = 10;

/// A trust cookie's value: `<account id>.<secret>`.
pub fn cookie_value(user: &User, secret: &str) -> String {
    format!("{}.{secret}", user.id.as_str())
}

fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Forgets every trusted browser of an account (inside an update).
pub fn forget_all(user: &mut User) {
    user.trusted.clear();
}

impl Accounts {
    /// Trusts `caller`'s browser for `user`'s account for [`TRUSTED_FOR`]: the secret
    /// for its cookie.
    pub async fn trust_browser(&self, user: &User, caller: &Caller) -> Result<String, AppError> {
        let secret = hex(&random_bytes::<32>());
        let now = OffsetDateTime::now_utc();
        let trusted = TrustedBrowser {
            digest: digest(&secret),
            handle: hex(&random_bytes::<8>()),
            browser: caller.browser.clone(),
            address: caller.address.clone(),
            since: now,
            until: now + TRUSTED_FOR,
        };
        let add = move |u: &mut User| {
            u.trusted.retain(|t| t.until > now);
            u.trusted.insert(0, trusted.clone());
            u.trusted.truncate(MOST);
        };
        let updated = self.update(user, &add).await?;
        self.note(&updated, Event::BrowserTrusted, Some(caller), None)
            .await;
        Ok(secret)
    }

    /// Whether the trust cookie `value` holds a secret `user`'s account trusts now.
    pub fn trusts(&self, user: &User, value: Option<&str>) -> bool {
        let Some((account, secret)) = value.and_then(|v| v.split_once('.')) else {
            return false;
        };
        if account != user.id.as_str() || secret.len() != 64 {
            return false;
        }
        let digest = digest(secret);
        let now = OffsetDateTime::now_utc();
        // Digests compared: timing says nothing of the secret.
        user.trusted
            .iter()
            .any(|t| t.until > now && t.digest == digest)
    }

    /// Forgets the trusted browser `handle` of `user`'s account (its "Forget").
    pub async fn forget_browser(
        &self,
        user: &User,
        handle: &str,
        caller: &Caller,
    ) -> Result<User, AppError> {
        let handle = handle.to_owned();
        let forget = move |u: &mut User| u.trusted.retain(|t| t.handle != handle);
        let updated = self.update(user, &forget).await?;
        self.note(&updated, Event::BrowserForgotten, Some(caller), None)
            .await;
        Ok(updated)
    }

    /// Forgets every trusted browser of `user`'s account ("This wasn't me").
    pub async fn forget_browsers(&self, user: &User) -> Result<User, AppError> {
        self.update(user, &forget_all).await
    }
}
