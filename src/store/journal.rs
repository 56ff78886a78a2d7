//! What happened to an account, for its member to read (`/account`, "Recent
//! activity"): one journal per account, newest first, the latest [`KEPT`] entries.
//! Written by the account service as each change is made; never a secret in it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreFuture;
use crate::domain::AccountId;

/// How many entries an account's journal keeps; older ones are dropped.
pub const KEPT: usize = 200;

/// Where journals live. Appends are atomic with respect to each other, across
/// processes (the server and `wicket user …`).
pub trait JournalStore: std::fmt::Debug + Send + Sync {
    /// Adds `entry` as `account`'s newest, dropping any beyond [`KEPT`].
    fn record<'a>(&'a self, account: &'a AccountId, entry: &'a Entry) -> StoreFuture<'a, ()>;

    /// `account`'s entries, newest first: `take` of them after the first `skip`, and
    /// how many there are in all.
    fn entries<'a>(
        &'a self,
        account: &'a AccountId,
        skip: usize,
        take: usize,
    ) -> StoreFuture<'a, (Vec<Entry>, usize)>;

    /// Deletes `account`'s journal (the account was deleted).
    fn forget<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, ()>;
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What.
    pub event: Event,
    /// The browser, in a few words (absent for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// The client address (absent for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A name it concerns: a passkey's, a login's method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A login (the method in `detail`).
    LoggedIn,
    /// A wrong password.
    WrongPassword,
    /// A wrong second-factor code.
    WrongCode,
    /// Two-step login turned on.
    TwoStepOn,
    /// Two-step login turned off.
    TwoStepOff,
    /// New recovery codes.
    RecoveryCodesRenewed,
    /// A passkey added (its name in `detail`).
    PasskeyAdded,
    /// A passkey removed (its name in `detail`).
    PasskeyRemoved,
    /// An email address given (waiting for its link).
    EmailSet,
    /// The address removed.
    EmailRemoved,
    /// An address confirmed through its link.
    EmailConfirmed,
    /// An address given up put back through the notice's link.
    EmailRestored,
    /// The password changed on `/account`.
    PasswordChanged,
    /// The password reset through a mailed link.
    PasswordReset,
    /// The operator set the password.
    PasswordSetByOperator,
    /// One session ended from another (the sessions list).
    SessionEnded,
    /// Every other session ended from this one.
    OtherSessionsEnded,
    /// "This wasn't me": every session ended.
    ReportedNotMe,
    /// The operator ended every session.
    SessionsEndedByOperator,
    /// The operator disabled the account.
    Disabled,
    /// The operator enabled it again.
    Enabled,
    /// The operator cleared the guessing counts.
    Unlocked,
    /// The operator removed the second factors.
    SecondFactorsReset,
    /// The operator asked for a new password.
    PasswordChangeRequired,
    /// A session ran out (idle, or its lifetime), noticed when its browser came back.
    SessionExpired,
    /// The member logged out.
    LoggedOut,
    /// A browser trusted for 30 days at the second step.
    BrowserTrusted,
    /// A trusted browser forgotten.
    BrowserForgotten,
}

impl Event {
    /// How the activity list says it.
    pub fn said(self) -> &'static str {
        match self {
            Self::LoggedIn => "Logged in",
            Self::WrongPassword => "Wrong password",
            Self::WrongCode => "Wrong second-factor code",
            Self::TwoStepOn => "Two-step login turned on",
            Self::TwoStepOff => "Two-step login turned off",
            Self::RecoveryCodesRenewed => "New recovery codes made",
            Self::PasskeyAdded => "Passkey added",
            Self::PasskeyRemoved => "Passkey removed",
            Self::EmailSet => "Email address set (waiting for confirmation)",
            Self::EmailRemoved => "Email address removed",
            Self::EmailConfirmed => "Email address confirmed",
            Self::EmailRestored => "Email address put back (\"This wasn't me\")",
            Self::PasswordChanged => "Password changed",
            Self::PasswordReset => "Password reset by mailed link",
            Self::PasswordSetByOperator => "Password set by the operator",
            Self::SessionEnded => "A session ended from another one",
            Self::OtherSessionsEnded => "Every other session ended",
            Self::ReportedNotMe => "\"This wasn't me\": every session ended",
            Self::SessionsEndedByOperator => "Every session ended by the operator",
            Self::Disabled => "Account disabled by the operator",
            Self::Enabled => "Account enabled by the operator",
            Self::Unlocked => "Guessing counts cleared by the operator",
            Self::SecondFactorsReset => "Two-step login and passkeys reset by the operator",
            Self::PasswordChangeRequired => "New password asked for by the operator",
            Self::SessionExpired => "A session ended by itself",
            Self::LoggedOut => "Logged out",
            Self::BrowserTrusted => "Browser trusted for 30 days (no code asked)",
            Self::BrowserForgotten => "Trusted browser forgotten",
        }
    }
}
