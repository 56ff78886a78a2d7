//! Why a session ended, carried to the next page: a short-lived signed cookie.
//!
//! When a request finds its session ended (by an event or by time), or a handler ends
//! it (logout), the browser is given `wicket_notice=<reason>.<mac>`. The login form
//! shows the reason once and clears it. The MAC means only this server can set one:
//! a planted cookie shows nothing.

use std::time::Duration;

use hmac::Mac;
use poem::http::HeaderValue;

use crate::cookies::CookiePolicy;
use crate::secret::{SubKey, hex, unhex};
use crate::store::EndReason;

/// How long a notice waits for the page that shows it.
const NOTICE_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Bytes of MAC kept in the cookie (a notice is worth far less than a session).
const MAC_BYTES: usize = 16;

/// Signs and reads notice cookies.
#[derive(Clone, Debug)]
pub struct NoticeCodec {
    name: String,
    key: SubKey,
    policy: CookiePolicy,
}

impl NoticeCodec {
    /// A codec signing with `key`, naming and flagging cookies by `policy`.
    pub fn new(key: SubKey, policy: CookiePolicy) -> Self {
        Self {
            name: policy.name("wicket_notice"),
            key,
            policy,
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn mac(&self, code: &str) -> Vec<u8> {
        let mut mac = self.key.mac();
        mac.update(code.as_bytes());
        mac.finalize().into_bytes()[..MAC_BYTES].to_vec()
    }

    /// `Set-Cookie` carrying `reason` to the next page.
    pub fn set_cookie(&self, reason: EndReason) -> HeaderValue {
        let code = code(reason);
        let value = format!("{code}.{}", hex(&self.mac(code)));
        self.policy.set(&self.name, &value, Some(NOTICE_MAX_AGE))
    }

    /// `Set-Cookie` that drops the notice once shown.
    pub fn clear_cookie(&self) -> HeaderValue {
        self.policy.clear(&self.name)
    }

    /// The reason in a cookie value, if this server signed it.
    pub fn verify(&self, value: &str) -> Option<EndReason> {
        let (code, tag) = value.split_once('.')?;
        let reason = from_code(code)?;
        let tag = unhex(tag).filter(|tag| tag.len() == MAC_BYTES)?;
        let mut mac = self.key.mac();
        mac.update(code.as_bytes());
        mac.verify_truncated_left(&tag).ok()?;
        Some(reason)
    }
}

fn code(reason: EndReason) -> &'static str {
    match reason {
        EndReason::LoggedOut => "logged-out",
        EndReason::PasswordChanged => "password-changed",
        EndReason::PasswordReset => "password-reset",
        EndReason::ReportedNotMe => "reported-not-me",
        EndReason::EndedElsewhere => "ended-elsewhere",
        EndReason::AccountDeleted => "account-deleted",
        EndReason::AccountDisabled => "account-disabled",
        EndReason::SecondFactorReset => "second-factor-reset",
        EndReason::PasswordChangeRequired => "password-change-required",
        EndReason::Idle => "idle",
        EndReason::Lifetime => "lifetime",
    }
}

fn from_code(code: &str) -> Option<EndReason> {
    [
        EndReason::LoggedOut,
        EndReason::PasswordChanged,
        EndReason::PasswordReset,
        EndReason::ReportedNotMe,
        EndReason::EndedElsewhere,
        EndReason::AccountDeleted,
        EndReason::AccountDisabled,
        EndReason::SecondFactorReset,
        EndReason::PasswordChangeRequired,
        EndReason::Idle,
        EndReason::Lifetime,
    ]
    .into_iter()
    .find(|&reason| self::code(reason) == code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn codec(seed: u8) -> NoticeCodec {
        let key = SecretKey::new(vec![seed; 32]).unwrap().derive("notice");
        NoticeCodec::new(key, CookiePolicy::new(false))
    }

    #[test]
    fn a_signed_notice_reads_back_and_nothing_else_does() {
        let header = codec(1).set_cookie(EndReason::PasswordChanged);
        let value = header.to_str().unwrap().split(';').next().unwrap();
        let value = value.strip_prefix("wicket_notice=").unwrap();
        assert_eq!(codec(1).verify(value), Some(EndReason::PasswordChanged));
        assert_eq!(codec(2).verify(value), None, "another key");
        let (_, tag) = value.split_once('.').unwrap();
        assert_eq!(
            codec(1).verify(&format!("idle.{tag}")),
            None,
            "another reason"
        );
        for junk in [
            "",
            "idle",
            "idle.",
            "idle.zz",
            "nonsense.00",
            &value[..value.len() - 2],
        ] {
            assert_eq!(codec(1).verify(junk), None, "{junk:?}");
        }
    }
}
