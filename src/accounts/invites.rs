//! Invitations to register (`--registration invite`): a 256-bit token in a link,
//! stored only as its hash, good for a number of accounts until it expires.
//!
//! Each use claims one numbered slot in the token store's index ([`ClaimKey::invite_use`]),
//! which every backend makes atomic: of two registrations racing for the last use,
//! exactly one gets it, across processes and instances.

use std::time::Duration;

use time::OffsetDateTime;

use super::Accounts;
use crate::domain::Group;
use crate::secret::{hex, random_bytes};
use crate::store::StoreError;
use crate::store::tokens::{ClaimKey, Purpose, Token, TokenKey, TokenRecord};

/// An invitation as `wicket invite list` shows it.
#[derive(Debug, Clone)]
pub struct Invite {
    /// Its id: the first 12 characters of its hash (the token itself is never kept).
    pub id: String,
    /// The groups an account it creates joins.
    pub groups: Vec<Group>,
    /// Accounts it has created.
    pub used: u32,
    /// Accounts it may create.
    pub uses: u32,
    /// When it stops working.
    pub expires: OffsetDateTime,
}

/// One use of an invitation, held while its account is created: given back if the
/// account could not be.
#[derive(Debug)]
pub struct InviteUse {
    key: ClaimKey,
    claimant: String,
    /// The groups the new account joins.
    pub groups: Vec<Group>,
}

/// Characters of a hash shown as an invitation's id.
const ID_LEN: usize = 12;

impl Accounts {
    /// A new invitation for `uses` accounts joining `groups`, working for `valid_for`.
    pub async fn create_invite(
        &self,
        groups: Vec<Group>,
        valid_for: Duration,
        uses: u32,
    ) -> Result<Token, StoreError> {
        let token = Token::generate();
        let record = TokenRecord {
            groups,
            uses,
            ..TokenRecord::new(Purpose::Invite, None, OffsetDateTime::now_utc() + valid_for)
        };
        self.tokens.put_token(&token.key(), &record).await?;
        Ok(token)
    }

    /// The invitation in a link (`?invite=…`), if it is live and has a use left.
    pub async fn open_invite(&self, text: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some((key, record)) = self.live_invite(text).await? else {
            return Ok(None);
        };
        let left = self.uses_of(&key, record.uses).await? < record.uses;
        Ok(left.then_some(record))
    }

    /// The invitation `text` names, if it is one and has not expired.
    async fn live_invite(&self, text: &str) -> Result<Option<(TokenKey, TokenRecord)>, StoreError> {
        let Some(token) = Token::parse(text) else {
            return Ok(None);
        };
        let key = token.key();
        let record = self.tokens.peek_token(&key).await?;
        let now = OffsetDateTime::now_utc();
        Ok(record
            .filter(|record| record.is_live(Purpose::Invite, now))
            .map(|record| (key, record)))
    }

    /// Takes one use of the invitation in `text` for an account called `name`: `None`
    /// if it is gone, expired or used up.
    pub async fn take_invite(
        &self,
        text: &str,
        name: &str,
    ) -> Result<Option<InviteUse>, StoreError> {
        let Some((key, record)) = self.live_invite(text).await? else {
            return Ok(None);
        };
        // Unique to this attempt: two registrations of one name are two claimants.
        let claimant = format!("{name}#{}", hex(&random_bytes::<8>()));
        for slot in 0..record.uses {
            let slot_key = ClaimKey::invite_use(&key, slot);
            if self.tokens.claim(&slot_key, &claimant).await? {
                return Ok(Some(InviteUse {
                    key: slot_key,
                    claimant,
                    groups: record.groups,
                }));
            }
        }
        Ok(None)
    }

    /// Gives a use back: its account could not be created.
    pub async fn give_back(&self, taken: InviteUse) -> Result<(), StoreError> {
        self.tokens.release(&taken.key, &taken.claimant).await
    }

    /// Every live invitation, soonest to expire first.
    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        let mut invites = Vec::new();
        for (key, record) in self.tokens.invites().await? {
            invites.push(Invite {
                id: key.as_str()[..ID_LEN].to_owned(),
                used: self.uses_of(&key, record.uses).await?,
                groups: record.groups,
                uses: record.uses,
                expires: record.expires,
            });
        }
        invites.sort_by_key(|invite| invite.expires);
        Ok(invites)
    }

    /// Withdraws the invitation whose id is `id`: `false` if there is none.
    pub async fn revoke_invite(&self, id: &str) -> Result<bool, StoreError> {
        if id.len() < ID_LEN {
            return Ok(false);
        }
        for (key, _) in self.tokens.invites().await? {
            if key.as_str().starts_with(id) {
                return Ok(self.tokens.take_token(&key).await?.is_some());
            }
        }
        Ok(false)
    }

    async fn uses_of(&self, key: &TokenKey, uses: u32) -> Result<u32, StoreError> {
        let mut used = 0;
        for slot in 0..uses {
            if self
                .tokens
                .owner(&ClaimKey::invite_use(key, slot))
                .await?
                .is_some()
            {
                used += 1;
            }
        }
        Ok(used)
    }
}
