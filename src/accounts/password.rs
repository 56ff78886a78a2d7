//! Setting a password: the one sequence behind a change on `/account`, a reset by mail
//! and `wicket user passwd`.

use super::{Accounts, Caller};
use crate::domain::Password;
use crate::error::AppError;
use crate::store::journal::Event;
use crate::store::{EndReason, SessionId, User};

/// Who set a new password: what the browsers whose sessions end are told, and what
/// the owner's mail says.
#[derive(Debug, Clone, Copy)]
pub enum PasswordSet<'a> {
    /// The member, on `/account`, from this caller.
    Changed(&'a Caller),
    /// Someone holding a mailed reset link (and the code, with two-step login on).
    Reset(&'a Caller),
    /// The operator, from the command line.
    ByOperator,
}

impl Accounts {
    /// Sets `user`'s password to `new`, over the one it had when `user` was read: if it
    /// changed meanwhile nothing is written and `None` comes back. Storing it voids
    /// every token issued under the old one (each records the password it stands for);
    /// then every session of the account but `keep` ends, and the owner is told by mail
    /// (not for the operator's change). Returns the account as stored and how many
    /// sessions ended.
    pub async fn set_password(
        &self,
        user: &User,
        new: Password,
        keep: Option<&SessionId>,
        how: PasswordSet<'_>,
    ) -> Result<Option<(User, usize)>, AppError> {
        let hash = self.hasher.hash(new).await?;
        let old = user.password_hash.clone();
        let set = move |u: &mut User| {
            if u.password_hash == old {
                u.password_hash.clone_from(&hash);
                u.must_change_password = false;
                super::trust::forget_all(u);
            }
        };
        let updated = self.users.update(&user.name, &set).await?;
        let Some(updated) = updated.filter(|u| u.password_hash != user.password_hash) else {
            return Ok(None);
        };
        let (reason, told) = match how {
            PasswordSet::Changed(caller) => (EndReason::PasswordChanged, Some((caller, "changed"))),
            PasswordSet::Reset(caller) => (EndReason::PasswordReset, Some((caller, "reset"))),
            PasswordSet::ByOperator => (EndReason::PasswordChanged, None),
        };
        let ended = self.sessions.end_all(&updated.name, keep, reason).await?;
        if let Some((caller, word)) = told {
            self.notify_password_changed(&updated, caller, word);
        }
        let (event, caller) = match how {
            PasswordSet::Changed(caller) => (Event::PasswordChanged, Some(caller)),
            PasswordSet::Reset(caller) => (Event::PasswordReset, Some(caller)),
            PasswordSet::ByOperator => (Event::PasswordSetByOperator, None),
        };
        self.note(&updated, event, caller, None).await;
        tracing::info!(user = %updated.name, ended, ?reason, "password set");
        Ok(Some((updated, ended)))
    }
}
