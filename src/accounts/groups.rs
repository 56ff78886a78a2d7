//! Groups: which an account is in (the operator's `wicket user group`, an invitation's).

use super::Accounts;
use crate::domain::Group;
use crate::store::{StoreError, User};

impl Accounts {
    /// Puts `user` in `group` (`join`) or takes them out; the account as it is now, or
    /// `None` if it is gone. The list stays sorted and without repeats.
    pub async fn set_group(
        &self,
        user: &User,
        group: &Group,
        join: bool,
    ) -> Result<Option<User>, StoreError> {
        let group = group.clone();
        let change = move |u: &mut User| {
            u.groups.retain(|g| *g != group);
            if join {
                u.groups.push(group.clone());
                u.groups.sort();
            }
        };
        self.users.update(&user.name, &change).await
    }
}
