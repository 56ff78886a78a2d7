//! Single-use links and pending steps: issuing a token for an account, and deciding
//! whether one still stands for it.
//!
//! A token is 256 random bits, handed out once (in a mail, or a cookie) and stored only
//! as its SHA-256 ([`crate::store::tokens`]); each works once, for one purpose, until
//! it expires — and only while the account, its password and (for a mailed link) its
//! confirmed address are what they were when it was issued.

use std::time::Duration;

use time::OffsetDateTime;

use super::Accounts;
use crate::domain::Username;
use crate::store::tokens::{Purpose, Token, TokenRecord};
use crate::store::{StoreError, User};

/// How long a token for `purpose` works.
pub fn valid_for(purpose: Purpose) -> Duration {
    match purpose {
        Purpose::ResetPassword => Duration::from_secs(30 * 60),
        Purpose::PendingLogin | Purpose::PasskeyRegistration | Purpose::PasskeyLogin => {
            Duration::from_secs(5 * 60)
        }
        Purpose::VerifyEmail | Purpose::NotMe => Duration::from_secs(24 * 60 * 60),
        // The operator chooses (`wicket invite create --expires`); this is the default.
        Purpose::Invite | Purpose::RestoreAddress => Duration::from_secs(7 * 24 * 60 * 60),
    }
}

/// Whether `record` still stands for `user` now: live for `purpose`, made for this
/// account (its id, not its name) under the password it has now, and — for a link
/// mailed to the confirmed address (a reset, "This wasn't me") — that address is still
/// the account's confirmed one. So a link dies with what it was for: the account, the
/// password, or the mailbox it was sent to.
pub fn still_good(record: &TokenRecord, purpose: Purpose, user: &User) -> bool {
    if purpose == Purpose::RestoreAddress {
        // The owner's way back, sent to the address they lost: it must outlive a new
        // password or address set by whoever took the account. Its account only.
        let now = OffsetDateTime::now_utc();
        return record.is_live(purpose, now) && record.account.as_ref() == Some(&user.id);
    }
    let mailed_to_confirmed = matches!(purpose, Purpose::ResetPassword | Purpose::NotMe);
    let address_same = !mailed_to_confirmed
        || user
            .verified_email()
            .is_some_and(|a| a.eq_ignore_ascii_case(&record.email));
    record.is_live(purpose, OffsetDateTime::now_utc()) && record.belongs_to(user) && address_same
}

impl Accounts {
    /// Stores a new token for `purpose` on `user`'s account, mailed to `email` (empty
    /// for none), shaped further by `shape` (e.g. a pending login's `next`).
    pub async fn issue(
        &self,
        purpose: Purpose,
        user: &User,
        email: &str,
        shape: impl FnOnce(TokenRecord) -> TokenRecord,
    ) -> Result<Token, StoreError> {
        let token = Token::generate();
        let expires = OffsetDateTime::now_utc() + valid_for(purpose);
        let record = shape(TokenRecord {
            email: email.to_owned(),
            ..TokenRecord::new(purpose, Some(user), expires)
        });
        self.tokens.put_token(&token.key(), &record).await?;
        Ok(token)
    }

    /// The account a token names, if it still exists.
    pub async fn user_of(&self, record: &TokenRecord) -> Result<Option<User>, StoreError> {
        match Username::parse(&record.user) {
            Ok(name) => self.users.get(&name).await,
            Err(_) => Ok(None),
        }
    }

    /// What `token` stands for and the account it opens, if it still works for
    /// `purpose`; the token stays in place (its use takes it).
    pub async fn peek_good(
        &self,
        token: &Token,
        purpose: Purpose,
    ) -> Result<Option<(TokenRecord, User)>, StoreError> {
        let Some(record) = self.tokens.peek_token(&token.key()).await? else {
            return Ok(None);
        };
        let user = self.user_of(&record).await?;
        Ok(user
            .filter(|user| still_good(&record, purpose, user))
            .map(|user| (record, user)))
    }

    /// Takes (uses up) `token` and the account it opens, if it still works for
    /// `purpose`: of two concurrent takes, one gets it.
    pub async fn take_good(
        &self,
        token: &Token,
        purpose: Purpose,
    ) -> Result<Option<(TokenRecord, User)>, StoreError> {
        let Some(record) = self.tokens.take_token(&token.key()).await? else {
            return Ok(None);
        };
        let user = self.user_of(&record).await?;
        Ok(user
            .filter(|user| still_good(&record, purpose, user))
            .map(|user| (record, user)))
    }
}
