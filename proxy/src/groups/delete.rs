//! Deleting a group: its state, its members' liveness keys and its committed offsets (a
//! broadcast group's mark and its members' positions too).

use strata_meta::schema::{self, GroupState};
use strata_meta::{Compare, CompareOp, Txn, TxnOp};
use strata_proto::ErrorCode;

use super::{GroupCoordinator, validate_group};
use crate::error::ProxyError;

/// Rounds of read-then-delete before giving up on a group that keeps changing.
const ATTEMPTS: usize = 5;

/// Why a group was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteGroupError {
    #[error(
        "group `{group}` has {members} live member(s); stop its consumers (or wait for their sessions to end) before deleting it"
    )]
    NotEmpty { group: String, members: usize },
    #[error("group `{0}` does not exist (no members and no committed offsets); check its name")]
    NotFound(String),
    #[error(
        "group `{0}` changed {ATTEMPTS} times while being deleted (members keep joining); stop them and retry"
    )]
    Busy(String),
    #[error(transparent)]
    Failed(#[from] ProxyError),
}

impl From<DeleteGroupError> for ProxyError {
    fn from(e: DeleteGroupError) -> Self {
        match e {
            DeleteGroupError::NotEmpty { .. } | DeleteGroupError::Busy(_) => {
                ProxyError::refused(ErrorCode::GroupNotEmpty, e.to_string())
            }
            DeleteGroupError::NotFound(_) => {
                ProxyError::refused(ErrorCode::UnknownGroup, e.to_string())
            }
            DeleteGroupError::Failed(e) => e,
        }
    }
}

impl From<strata_meta::MetaError> for DeleteGroupError {
    fn from(e: strata_meta::MetaError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<schema::BadValue> for DeleteGroupError {
    fn from(e: schema::BadValue) -> Self {
        Self::Failed(e.into())
    }
}

impl GroupCoordinator {
    /// Kafka's DeleteGroups for one group: removes everything the group has, in one
    /// transaction, unless it has members whose session is still alive. Members whose session
    /// ended but that no call has evicted yet do not count: Kafka would have removed them.
    pub async fn delete(&self, group: &str) -> Result<(), DeleteGroupError> {
        validate_group(group)?;
        let key = self.keys.group_state(group);
        for _ in 0..ATTEMPTS {
            let current = self.meta.get(&key).await?;
            // The delete only happens if the state is still what was checked here, so a member
            // joining between the check and the delete makes it fail and look again.
            let guard = match &current {
                Some(kv) => {
                    let state: GroupState = schema::decode(&key, &kv.value)?;
                    let dead = self.dead_members(group, &state, None).await?;
                    let live = state.members.len() - dead.len();
                    if live > 0 {
                        return Err(DeleteGroupError::NotEmpty {
                            group: group.to_owned(),
                            members: live,
                        });
                    }
                    Compare::mod_revision(&key, CompareOp::Equal, kv.mod_revision)
                }
                None => {
                    // Committed offsets alone, or a broadcast group (which has no state):
                    // anything under the group's prefix.
                    let (left, _) = self.meta.range(&self.keys.group(group)).await?;
                    if left.is_empty() {
                        return Err(DeleteGroupError::NotFound(group.to_owned()));
                    }
                    Compare::absent(&key)
                }
            };
            let txn = Txn::new()
                .when([guard])
                .and_then([TxnOp::delete_prefix(self.keys.group(group))]);
            if self.meta.txn(txn).await?.succeeded {
                tracing::info!(group = %group, "group deleted");
                return Ok(());
            }
        }
        Err(DeleteGroupError::Busy(group.to_owned()))
    }
}
