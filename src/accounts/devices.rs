//! Device cookies: how an account's own browsers keep logging in while someone else
//! guesses its password (OWASP, "Slow Down Online Guessing Attacks with Device
//! Cookies").
//!
//! A successful login gives the browser a long-lived, signed, `HttpOnly` cookie
//! naming the account (by its id, never its name: a name registered again by someone
//! else is another account, and none of its browsers are known) and a random device id. Failed logins from a browser that
//! presents a genuine one for the account count against that device alone; everyone
//! else counts against the account's limit for unknown clients. So an attacker
//! hammering an account locks out only unknown clients, and the owner's browsers
//! keep working (within their own limit). The cookie grants nothing by itself: the
//! password is still checked.
//!
//! One cookie holds the entries of up to five accounts (a shared computer), most
//! recent first: `<account id>.<device id>.<HMAC>` joined by `~`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use poem::http::HeaderValue;
use sha2::Sha256;

use crate::cookies::CookiePolicy;
use crate::domain::AccountId;
use crate::secret::{SubKey, hex, random_bytes, unhex};

/// Accounts one browser keeps device entries for.
const MAX_ACCOUNTS: usize = 5;

/// How long a browser stays known without logging in again.
const LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Bytes of a device id.
const ID_BYTES: usize = 16;

/// Signs and checks device cookies.
#[derive(Debug, Clone)]
pub struct DeviceCookies {
    name: String,
    key: SubKey,
    policy: CookiePolicy,
}

/// One genuine entry of a device cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    account: String,
    id: String,
}

impl DeviceCookies {
    /// A codec signing with `key`, naming and flagging cookies by `policy`.
    pub fn new(key: SubKey, policy: CookiePolicy) -> Self {
        Self {
            name: policy.name("wicket_device"),
            key,
            policy,
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// HMAC-SHA256 over the account id and the device id (marked as ids: entries of
    /// the older, name-keyed form never verify).
    fn mac(&self, account: &str, id: &str) -> Hmac<Sha256> {
        let mut mac = self.key.mac();
        mac.update(b"account-id\0");
        mac.update(account.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        mac
    }

    /// The genuine entries of a cookie value; anything forged or malformed is skipped.
    fn entries(&self, value: &str) -> Vec<Entry> {
        value
            .split('~')
            .take(MAX_ACCOUNTS)
            .filter_map(|entry| {
                let mut parts = entry.rsplitn(3, '.');
                let (tag, id, account) = (parts.next()?, parts.next()?, parts.next()?);
                let well_formed = id.len() == ID_BYTES * 2 && unhex(id).is_some();
                let genuine =
                    well_formed && self.mac(account, id).verify_slice(&unhex(tag)?).is_ok();
                genuine.then(|| Entry {
                    account: account.to_owned(),
                    id: id.to_owned(),
                })
            })
            .collect()
    }

    /// The device id this browser holds for `account`, if the cookie has a genuine
    /// entry for it.
    pub fn device_for(&self, cookie: Option<&str>, account: &AccountId) -> Option<String> {
        self.entries(cookie?)
            .into_iter()
            .find(|entry| entry.account == account.as_str())
            .map(|entry| entry.id)
    }

    /// `Set-Cookie` making this browser known to `account` (keeping its device id if
    /// it had one, and its entries for up to four other accounts).
    pub fn remember(&self, cookie: Option<&str>, account: &AccountId) -> HeaderValue {
        let account = account.as_str();
        let mut entries = cookie.map(|c| self.entries(c)).unwrap_or_default();
        let id = match entries.iter().position(|e| e.account == account) {
            Some(at) => entries.remove(at).id,
            None => hex(&random_bytes::<ID_BYTES>()),
        };
        entries.insert(
            0,
            Entry {
                account: account.to_owned(),
                id,
            },
        );
        entries.truncate(MAX_ACCOUNTS);
        let value: Vec<String> = entries
            .iter()
            .map(|e| {
                let tag = self.mac(&e.account, &e.id).finalize().into_bytes();
                format!("{}.{}.{}", e.account, e.id, hex(&tag))
            })
            .collect();
        self.policy
            .set(&self.name, &value.join("~"), Some(LIFETIME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    /// An account id with a readable text, for the tests.
    fn account(text: &str) -> AccountId {
        serde_json::from_value(serde_json::Value::String(text.into())).unwrap()
    }

    fn codec(seed: u8) -> DeviceCookies {
        DeviceCookies::new(
            SecretKey::new(vec![seed; 32]).unwrap().derive("device"),
            CookiePolicy::new(false),
        )
    }

    /// The value a `Set-Cookie` header sets.
    fn value(header: &HeaderValue) -> String {
        let text = header.to_str().unwrap();
        let (_, rest) = text.split_once('=').unwrap();
        rest.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_remembered_browser_is_known_to_that_account_only() {
        let devices = codec(1);
        let cookie = value(&devices.remember(None, &account("alice")));
        let id = devices
            .device_for(Some(&cookie), &account("alice"))
            .expect("known");
        assert_eq!(id.len(), 32);
        assert_eq!(devices.device_for(Some(&cookie), &account("bob")), None);
        assert_eq!(devices.device_for(None, &account("alice")), None);
        // Logging in again keeps the id; another account is added in front.
        let again = value(&devices.remember(Some(&cookie), &account("alice")));
        assert_eq!(
            devices.device_for(Some(&again), &account("alice")),
            Some(id.clone())
        );
        let both = value(&devices.remember(Some(&again), &account("bob.smith")));
        assert_eq!(devices.device_for(Some(&both), &account("alice")), Some(id));
        assert!(
            devices
                .device_for(Some(&both), &account("bob.smith"))
                .is_some()
        );
    }

    #[test]
    fn forged_or_foreign_entries_are_worthless() {
        let devices = codec(1);
        let cookie = value(&devices.remember(None, &account("alice")));
        // The same entry under another name, another id, or another server's key.
        let renamed = cookie.replacen("alice", "mallory", 1);
        assert_eq!(
            devices.device_for(Some(&renamed), &account("mallory")),
            None
        );
        let (head, tag) = cookie.rsplit_once('.').unwrap();
        let (owner, _) = head.split_once('.').unwrap();
        let other_id = format!("{owner}.{}.{tag}", "0".repeat(32));
        assert_eq!(devices.device_for(Some(&other_id), &account("alice")), None);
        assert_eq!(codec(2).device_for(Some(&cookie), &account("alice")), None);
        for junk in ["", "~~", "alice", "alice..", "a.b.c.d", &"x~".repeat(1000)] {
            assert_eq!(
                devices.device_for(Some(junk), &account("alice")),
                None,
                "{junk}"
            );
        }
    }

    #[test]
    fn a_browser_keeps_the_five_most_recent_accounts() {
        let devices = codec(1);
        let mut cookie = String::new();
        for name in ["a1", "a2", "a3", "a4", "a5", "a6"] {
            cookie = value(&devices.remember(Some(&cookie), &account(name)));
        }
        assert_eq!(devices.device_for(Some(&cookie), &account("a1")), None);
        for name in ["a2", "a3", "a4", "a5", "a6"] {
            assert!(
                devices.device_for(Some(&cookie), &account(name)).is_some(),
                "{name}"
            );
        }
        let header = devices.remember(None, &account("alice"));
        let text = header.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("Max-Age=31536000"),
            "{text}"
        );
    }
}
