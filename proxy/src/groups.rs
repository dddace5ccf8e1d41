//! The consumer group coordinator, shaped after Kafka's: members join, the coordinator waits
//! for every member to rejoin, the leader assigns, generations fence stale members, sessions
//! expire, and committed offsets survive any restart.
//!
//! All state is in the metadata store, so any proxy serves any group and a proxy can die at
//! any moment:
//!
//! - `groups/{g}/state` ([`GroupState`]): members, generation, phase, leader. Every change is
//!   a compare-and-swap on its mod revision, so proxies racing on one group never lose an
//!   update; waiting calls (JoinGroup, SyncGroup) watch the key.
//! - `groups/{g}/live/{member}`: one key per member on a lease whose TTL is the member's
//!   session timeout. Heartbeats renew the lease, wherever they arrive; when a member stops,
//!   the store deletes its key and the next call on the group evicts it and rebalances.
//! - `groups/{g}/offsets/{topic}/{p}` ([`CommittedOffset`]).
//!
//! The calls take and return the `strata.v1` messages, which mirror Kafka's JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and OffsetFetch field for field.

mod delete;
mod describe;
mod membership;
mod offsets;

pub use delete::DeleteGroupError;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use strata_clock::{Clock, RandomSource, SystemClock, ThreadRandom};
use strata_log::LogReader;
use strata_meta::schema::{self, GroupPhase, GroupState, Keyspace};
use strata_meta::{Compare, CompareOp, MetaStore, Revision, Txn, TxnOp};
use strata_proto::{Coded, ErrorCode};

use crate::error::{ProxyError, Result};
use crate::routes::Routes;

/// Session timeouts accepted from members (Kafka's broker defaults are 6 s to 30 min; the
/// lower bound here is what a lease in the metadata store can honour).
pub const MIN_SESSION_MS: u32 = 1_000;
pub const MAX_SESSION_MS: u32 = 300_000;
/// Longest a rebalance waits for members to rejoin.
const MAX_REBALANCE_MS: u32 = 600_000;
/// How long the first rebalance of an empty group waits for more members.
const INITIAL_REBALANCE_DELAY_MS: i64 = 500;

/// Serves consumer groups from the metadata store.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    routes: Arc<Routes>,
    reader: LogReader,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
}

/// A group's state with the mod revision it was read at (0 when the group has no state key).
#[derive(Debug)]
struct Loaded {
    state: GroupState,
    revision: Revision,
}

impl GroupCoordinator {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        keys: Keyspace,
        routes: Arc<Routes>,
        reader: LogReader,
    ) -> Self {
        Self {
            meta,
            keys,
            routes,
            reader,
            clock: Arc::new(SystemClock),
            random: Arc::new(ThreadRandom),
        }
    }

    /// Uses `clock` and `random` instead of the system's.
    pub fn with_sources(mut self, clock: Arc<dyn Clock>, random: Arc<dyn RandomSource>) -> Self {
        self.clock = clock;
        self.random = random;
        self
    }

    /// The clock the coordinator was given (the system's unless [`Self::with_sources`]).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    async fn load(&self, group: &str) -> Result<Loaded> {
        let key = self.keys.group_state(group);
        Ok(match self.meta.get(&key).await? {
            Some(kv) => Loaded {
                state: schema::decode(&key, &kv.value)?,
                revision: kv.mod_revision,
            },
            None => Loaded {
                state: GroupState::default(),
                revision: 0,
            },
        })
    }

    /// Writes `state` if nobody changed it since `revision`; `false` when somebody did.
    async fn save(
        &self,
        group: &str,
        revision: Revision,
        state: &GroupState,
        extra: Vec<TxnOp>,
    ) -> Result<bool> {
        let key = self.keys.group_state(group);
        // A broadcast group takes no clustering members, even one racing its first commit.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(&key, CompareOp::Equal, revision),
                Compare::absent(self.keys.group_broadcasting(group)),
            ])
            .and_then(std::iter::once(TxnOp::put(&key, schema::encode(state))).chain(extra));
        if self.meta.txn(txn).await?.succeeded {
            return Ok(true);
        }
        // Lost to a broadcast member's first commit: no retry can succeed.
        if self.is_broadcasting(group).await? {
            return Err(broadcast_mode(group));
        }
        Ok(false)
    }

    /// Whether `group` consumes in broadcast mode.
    pub(crate) async fn is_broadcasting(&self, group: &str) -> Result<bool> {
        Ok(self
            .meta
            .get(&self.keys.group_broadcasting(group))
            .await?
            .is_some())
    }

    /// Waits until the group's state changes after `revision`, or `timeout` passes.
    async fn wait_change(&self, group: &str, revision: Revision, timeout: Duration) {
        let key = self.keys.group_state(group);
        let wait = async {
            match self.meta.watch_prefix(&key, Some(revision + 1)).await {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(e) if e.key() == key => return,
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                }
                // History compacted or store unreachable: the caller re-reads after a pause.
                Err(_) => tokio::time::sleep(timeout).await,
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
    }

    /// Members other than `except` whose liveness key is gone: their session expired.
    async fn dead_members(
        &self,
        group: &str,
        state: &GroupState,
        except: Option<&str>,
    ) -> Result<Vec<String>> {
        if state.members.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.keys.group_live(group);
        let (live, _) = self.meta.range(&prefix).await?;
        let live: std::collections::HashSet<&str> = live
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(&prefix))
            .collect();
        Ok(state
            .members
            .keys()
            .filter(|m| Some(m.as_str()) != except && !live.contains(m.as_str()))
            .cloned()
            .collect())
    }

    /// Ends the leases of members that were removed, deleting their liveness keys. Best
    /// effort: a lease that already ended is what we wanted anyway.
    async fn revoke(&self, leases: Vec<i64>) {
        for lease in leases {
            let _ = self.meta.revoke_lease(lease).await;
        }
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let mut prefix: String = client_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(64)
            .collect();
        if prefix.is_empty() {
            prefix.push_str("member");
        }
        format!("{prefix}-{:016x}", self.random.next_u64())
    }
}

fn validate_group(group: &str) -> Result<()> {
    schema::validate_name("group", group).map_err(|e| ProxyError::refused(e.code(), e.to_string()))
}

fn unknown_member(group: &str, member: &str) -> ProxyError {
    ProxyError::refused(
        ErrorCode::UnknownMember,
        format!(
            "group `{group}` has no member `{member}` (it left, or its session expired); join again with an empty member id"
        ),
    )
}

fn rebalancing(group: &str) -> ProxyError {
    ProxyError::refused(
        ErrorCode::RebalanceInProgress,
        format!("group `{group}` is rebalancing; join again to get the new assignment"),
    )
}

fn illegal_generation(group: &str, theirs: i32, ours: i32) -> ProxyError {
    ProxyError::refused(
        ErrorCode::IllegalGeneration,
        format!(
            "generation {theirs} is not group `{group}`'s current generation {ours}; join again"
        ),
    )
}

/// The member `member` of `state`, if it is at `generation`.
fn member_at<'s>(
    state: &'s GroupState,
    group: &str,
    member: &str,
    generation: i32,
) -> Result<&'s strata_meta::schema::GroupMember> {
    let found = state
        .members
        .get(member)
        .ok_or_else(|| unknown_member(group, member))?;
    if state.generation != generation {
        return Err(illegal_generation(group, generation, state.generation));
    }
    Ok(found)
}

/// Removes `members` from the state; returns the leases to revoke once the change is saved.
fn remove_members(state: &mut GroupState, members: &[String]) -> Vec<i64> {
    members
        .iter()
        .filter_map(|m| state.members.remove(m))
        .map(|m| m.lease)
        .collect()
}

/// Starts a rebalance (or, with no members left, empties the group). A rebalance already in
/// progress keeps its deadline and the members that already rejoined.
fn start_rebalance(state: &mut GroupState, now_ms: i64) {
    if state.members.is_empty() {
        state.generation += 1;
        state.phase = GroupPhase::Empty;
        state.leader.clear();
        state.protocol.clear();
        return;
    }
    if state.phase == GroupPhase::PreparingRebalance {
        return;
    }
    state.hold_until_ms = if state.phase == GroupPhase::Empty {
        now_ms + INITIAL_REBALANCE_DELAY_MS
    } else {
        0
    };
    state.phase = GroupPhase::PreparingRebalance;
    let longest = state
        .members
        .values()
        .map(|m| m.rebalance_timeout_ms)
        .max()
        .unwrap_or(0);
    state.rebalance_deadline_ms = now_ms + i64::from(longest);
    for member in state.members.values_mut() {
        member.joined = false;
        member.assignment.clear();
    }
}

/// Ends the join phase: a new generation, a leader and a protocol every member speaks.
fn complete_rebalance(state: &mut GroupState) {
    state.generation += 1;
    state.phase = GroupPhase::CompletingRebalance;
    if !state.members.contains_key(&state.leader) {
        state.leader = state.members.keys().next().cloned().unwrap_or_default();
    }
    let candidates = state
        .members
        .get(&state.leader)
        .map(|m| m.protocols.clone())
        .unwrap_or_default();
    state.protocol = candidates
        .into_iter()
        .map(|p| p.name)
        .find(|name| {
            state
                .members
                .values()
                .all(|m| m.protocols.iter().any(|p| &p.name == name))
        })
        .unwrap_or_default();
    for member in state.members.values_mut() {
        member.assignment.clear();
    }
}

/// The refusal of a clustering call on a broadcast group.
pub(crate) fn broadcast_mode(group: &str) -> ProxyError {
    ProxyError::refused(
        ErrorCode::InvalidArgument,
        format!(
            "group `{group}` consumes in broadcast mode (every member reads every partition with positions of its own); join or commit as a broadcast member, use another group, or delete this one first"
        ),
    )
}
