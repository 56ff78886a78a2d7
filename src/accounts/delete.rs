//! Deleting an account: the one sequence behind `/account`'s delete form and `wicket
//! user delete`.

use super::{Accounts, Caller};
use crate::error::AppError;
use crate::mail::texts::Change;
use crate::store::tokens::ClaimKey;
use crate::store::{EndReason, SessionId, User};

impl Accounts {
    /// Deletes `user`'s account: its record, what it holds in the indexes (its
    /// confirmed address, its passkeys), and every session but `keep` (whose browser
    /// the caller logs out itself). Returns how many sessions ended, or `None` if the
    /// account was already gone.
    pub async fn delete(
        &self,
        user: &User,
        keep: Option<&SessionId>,
        caller: Option<&Caller>,
    ) -> Result<Option<usize>, AppError> {
        if !self.users.delete(&user.name).await? {
            return Ok(None);
        }
        for key in ClaimKey::held_by(user) {
            self.tokens.release(&key, &user.name).await?;
        }
        let ended = self
            .sessions
            .end_all(&user.name, keep, EndReason::AccountDeleted)
            .await?;
        tracing::info!(user = %user.name, ended, "account deleted");
        if let Err(err) = self.journal.forget(&user.id).await {
            tracing::warn!(user = %user.name, error = %crate::error::chain(&err), "could not delete the journal");
        }
        self.notify_change(user, Change::AccountDeleted, caller, None)
            .await;
        Ok(Some(ended))
    }
}
