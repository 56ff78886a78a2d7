//! What the account service tells a member by mail: a link to confirm an address, a
//! reset link, "your password was changed", "a new login". The words are in
//! [`crate::mail::texts`]; here is when each is sent and with which link.
//!
//! Sending never fails a request: each mail is handed to the outbox (which retries),
//! and a token that cannot be stored is logged and no mail goes.

use super::{Accounts, Caller, links};
use crate::error::chain;
use crate::mail::Kind;
use crate::mail::texts::{self, Change, Origin};
use crate::store::User;
use crate::store::tokens::Purpose;

impl Accounts {
    /// Sends `user` a link to confirm `address` (a new or changed address).
    pub async fn send_verification(&self, user: &User, address: &str) {
        let Some(mailer) = &self.mail else { return };
        let token = match self.issue(Purpose::VerifyEmail, user, address, |r| r).await {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(user = %user.name, error = %chain(&err), "could not store a verification token");
                return;
            }
        };
        let link = mailer.link(&format!("/verify-email/{}", token.as_str()));
        let letter = texts::confirm_address(&user.name, &link);
        mailer.send(Kind::Verify, address, letter, None);
    }

    /// Mails `user`'s confirmed address (if any) a link to reset the password, asked
    /// for by `caller`.
    pub async fn send_reset_link(&self, user: &User, caller: &Caller) {
        let (Some(mailer), Some(address)) = (&self.mail, user.verified_email()) else {
            return;
        };
        let purpose = Purpose::ResetPassword;
        let token = match self.issue(purpose, user, address, |r| r).await {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(user = %user.name, error = %chain(&err), "could not store a reset token");
                return;
            }
        };
        tracing::info!(user = %user.name, "reset link issued");
        let link = mailer.link(&format!("/reset/{}", token.as_str()));
        let letter = texts::reset(&user.name, origin(caller), &link);
        let useless_after = tokio::time::Instant::now() + links::valid_for(purpose);
        mailer.send(Kind::Reset, address, letter, Some(useless_after));
    }

    /// Tells `user` (at a confirmed address) the password was just changed or reset
    /// (`how`) by `caller`.
    pub fn notify_password_changed(&self, user: &User, caller: &Caller, how: &str) {
        let (Some(mailer), Some(address)) = (&self.mail, user.verified_email()) else {
            return;
        };
        let forgot = mailer.link("/forgot");
        let letter = texts::password_changed(&user.name, how, origin(caller), &forgot);
        mailer.send(Kind::PasswordChanged, address, letter, None);
    }

    /// After a login from a browser the account has not used: "Was this you?", with a
    /// link that ends every session and leads to a new password.
    pub async fn notify_new_login(&self, user: &User, caller: &Caller) {
        let (Some(mailer), Some(address)) = (&self.mail, user.verified_email()) else {
            return;
        };
        let token = match self.issue(Purpose::NotMe, user, address, |r| r).await {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(user = %user.name, error = %chain(&err), "could not store a not-me token");
                return;
            }
        };
        let link = mailer.link(&format!("/not-me/{}", token.as_str()));
        let letter = texts::new_login(&user.name, origin(caller), &link);
        mailer.send(Kind::NewLogin, address, letter, None);
    }
}

impl Accounts {
    /// Tells `user` (at their confirmed address, or `to` when given: the address just
    /// given up) of `change`, made by `caller` (a browser; `None`: the operator).
    /// A change a browser made carries "This wasn't me": for an address given up, a
    /// link that puts it back; else the new-login notice's (every session ends, then a
    /// new password). Never a secret in it.
    pub async fn notify_change(
        &self,
        user: &User,
        change: Change<'_>,
        caller: Option<&Caller>,
        to: Option<&str>,
    ) {
        let Some(mailer) = &self.mail else { return };
        let Some(address) = to.or(user.verified_email()) else {
            return;
        };
        let purpose = match change {
            Change::AddressChanged(_) => Some(Purpose::RestoreAddress),
            Change::AccountDeleted | Change::Disabled => None,
            _ => Some(Purpose::NotMe),
        };
        let link = match purpose.filter(|_| caller.is_some()) {
            Some(purpose) => match self.issue(purpose, user, address, |r| r).await {
                Ok(token) => {
                    let path = match purpose {
                        Purpose::RestoreAddress => "/restore-address",
                        _ => "/not-me",
                    };
                    let valid = match purpose {
                        Purpose::RestoreAddress => "7 days",
                        _ => "24 hours",
                    };
                    Some((mailer.link(&format!("{path}/{}", token.as_str())), valid))
                }
                Err(err) => {
                    tracing::error!(user = %user.name, error = %chain(&err), "could not store a not-me token");
                    None
                }
            },
            None => None,
        };
        let link = link.as_ref().map(|(link, valid)| (link.as_str(), *valid));
        let letter = texts::changed(&user.name, change, caller.map(origin), link);
        mailer.send(Kind::AccountChanged, address, letter, None);
    }
}

/// How a mail names where a change came from.
fn origin(caller: &Caller) -> Origin<'_> {
    Origin {
        browser: &caller.browser,
        address: &caller.address,
    }
}
