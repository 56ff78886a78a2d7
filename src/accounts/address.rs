//! A member's email address: setting, changing or removing it, and confirming it
//! through its mailed link. A confirmed address belongs to one account at most (an
//! index claim), and only a confirmed one receives resets and notices.

use super::links::still_good;
use super::{Accounts, Caller};
use crate::error::AppError;
use crate::mail::texts::Change;
use crate::store::journal::Event;
use crate::store::tokens::{ClaimKey, Purpose, Token};
use crate::store::{Email, User};

/// What following a confirmation link did.
#[derive(Debug)]
pub enum Confirmed {
    /// The address is now the account's confirmed one.
    Done {
        /// The address.
        address: String,
        /// The account's name.
        name: String,
    },
    /// Another account holds this address confirmed.
    Taken,
    /// Used, expired, unknown, or no longer the account's address.
    Unusable,
}

impl Accounts {
    /// Sets (or, with `None`, removes) `user`'s address: a new one waits for its link
    /// (mailed now); a confirmed one given up is freed for other accounts. Returns the
    /// account as stored.
    pub async fn change_address(
        &self,
        user: &User,
        address: Option<&str>,
        caller: &Caller,
    ) -> Result<User, AppError> {
        let unchanged = match (&user.email, address) {
            (Some(old), Some(new)) => old.address.eq_ignore_ascii_case(new) && old.verified,
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return Ok(user.clone());
        }
        let new = address.map(|a| Email {
            address: a.to_owned(),
            verified: false,
        });
        let updated = self
            .update(user, &move |u: &mut User| u.email.clone_from(&new))
            .await?;
        if let Some(old) = user.verified_email() {
            self.tokens
                .release(&ClaimKey::email(old), &user.name)
                .await?;
            if !address.is_some_and(|new| new.eq_ignore_ascii_case(old)) {
                // The address given up is told, with a way to take it back.
                let change = Change::AddressChanged(address);
                self.notify_change(user, change, Some(caller), Some(old))
                    .await;
            }
        }
        if let Some(address) = address {
            self.send_verification(&updated, address).await;
        }
        let event = match address {
            Some(_) => Event::EmailSet,
            None => Event::EmailRemoved,
        };
        self.note(&updated, event, Some(caller), None).await;
        tracing::info!(user = %user.name, removed = address.is_none(), "email address saved");
        Ok(updated)
    }

    /// Confirms the address the link `token` was mailed to, if it is still the
    /// account's and no other account holds it. The token is used up either way.
    pub async fn confirm_address(&self, token: &Token) -> Result<Confirmed, AppError> {
        let Some(record) = self.tokens.take_token(&token.key()).await? else {
            return Ok(Confirmed::Unusable);
        };
        let Some(user) = self.user_of(&record).await? else {
            return Ok(Confirmed::Unusable);
        };
        let current = user.email.as_ref().map(|e| e.address.as_str());
        let same_address = current.is_some_and(|a| a.eq_ignore_ascii_case(&record.email));
        if !still_good(&record, Purpose::VerifyEmail, &user) || !same_address {
            return Ok(Confirmed::Unusable);
        }
        let claim = ClaimKey::email(&record.email);
        if !self.tokens.claim(&claim, &user.name).await? {
            return Ok(Confirmed::Taken);
        }
        let address = record.email.clone();
        let confirm = move |u: &mut User| {
            if let Some(email) = u
                .email
                .as_mut()
                .filter(|e| e.address.eq_ignore_ascii_case(&address))
            {
                email.verified = true;
            }
        };
        let updated = self.users.update(&user.name, &confirm).await?;
        if updated.as_ref().and_then(User::verified_email).is_none() {
            // Changed or deleted meanwhile: the address is not theirs any more.
            self.tokens.release(&claim, &user.name).await?;
            return Ok(Confirmed::Unusable);
        }
        tracing::info!(user = %user.name, "email address verified");
        self.note(&user, Event::EmailConfirmed, None, None).await;
        Ok(Confirmed::Done {
            address: record.email,
            name: user.name.to_string(),
        })
    }

    /// Puts `address` back as `user`'s confirmed address ("This wasn't me" from the
    /// notice it got when it was given up): the address held now is freed. Confirmed
    /// again only if no other account took it meanwhile. Returns the account as stored.
    pub async fn restore_address(&self, user: &User, address: &str) -> Result<User, AppError> {
        let claimed = self
            .tokens
            .claim(&ClaimKey::email(address), &user.name)
            .await?;
        let restored = Email {
            address: address.to_owned(),
            verified: claimed,
        };
        let updated = self
            .update(user, &move |u: &mut User| u.email = Some(restored.clone()))
            .await?;
        if let Some(taken) = user.verified_email()
            && !taken.eq_ignore_ascii_case(address)
        {
            self.tokens
                .release(&ClaimKey::email(taken), &user.name)
                .await?;
        }
        tracing::warn!(user = %user.name, confirmed = claimed, "an address given up was put back by its owner");
        self.note(&updated, Event::EmailRestored, None, None).await;
        Ok(updated)
    }
}
