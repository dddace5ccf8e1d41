//! OffsetCommit and OffsetFetch.

use futures::future::join_all;
use strata_meta::schema::{self, CommittedOffset, GroupPhase};
use strata_meta::{Compare, CompareOp, Txn, TxnOp};
use strata_proto::consumer_protocol::{Assignment, PROTOCOL_TYPE};
use strata_proto::{Coded, ErrorCode, v1};

use super::{
    GroupCoordinator, Loaded, member_at, rebalancing, remove_members, start_rebalance,
    validate_group,
};
use crate::error::{ProxyError, Result};

/// Offsets written per transaction (the store allows 128 operations).
const COMMITS_PER_TXN: usize = 100;

fn partition_error(o: &v1::PartitionOffset, e: &ProxyError) -> v1::PartitionError {
    v1::PartitionError {
        topic: o.topic.clone(),
        partition: o.partition,
        error: Some(e.to_wire()),
    }
}

impl GroupCoordinator {
    /// Kafka's OffsetCommit. The whole request fails for an unknown member, a stale generation
    /// or a group in the middle of assigning; single partitions fail for an unknown topic or
    /// partition, an offset outside the log, or (for consumer groups) a partition that is not
    /// assigned to the committing member. Returns one entry per requested partition.
    pub async fn commit(
        &self,
        request: &v1::OffsetCommitRequest,
    ) -> Result<Vec<v1::PartitionError>> {
        let group = &request.group;
        validate_group(group)?;
        let checks = join_all(request.offsets.iter().map(|o| self.check_offset(o))).await;
        if !request.broadcast_member.is_empty() {
            return self.commit_broadcast(request, checks).await;
        }
        for _ in 0..5 {
            let Loaded { state, revision } = self.load(group).await?;
            let simple = request.generation == -1 && request.member_id.is_empty();
            if simple && self.is_broadcasting(group).await? {
                // Offsets no member reads: a reset must name the member it moves.
                return Err(super::broadcast_mode(group));
            }
            let assignment = if simple {
                let dead = self.dead_members(group, &state, None).await?;
                if !state.members.is_empty() && dead.len() == state.members.len() {
                    // Every member's session ended without a call evicting it: the group is
                    // empty in all but name (Kafka would have removed them), so evict them now
                    // instead of refusing tools that reset offsets of a stopped group.
                    let mut state = state;
                    let revoke = remove_members(&mut state, &dead);
                    start_rebalance(&mut state, self.clock.unix_millis());
                    if self.save(group, revision, &state, Vec::new()).await? {
                        tracing::info!(group = %group, members = ?dead, "evicting members whose session ended");
                        self.revoke(revoke).await;
                    }
                    continue;
                }
                if !state.members.is_empty() {
                    return Err(ProxyError::refused(
                        ErrorCode::IllegalGeneration,
                        format!(
                            "group `{group}` has {} active members; commit as a member with its generation, or stop them first",
                            state.members.len()
                        ),
                    ));
                }
                None
            } else {
                let me = member_at(&state, group, &request.member_id, request.generation)?;
                // While preparing a rebalance the old assignment still holds, so members can
                // commit what they consumed before giving partitions up (as in Kafka).
                if state.phase == GroupPhase::CompletingRebalance {
                    return Err(rebalancing(group));
                }
                (state.protocol_type == PROTOCOL_TYPE)
                    .then(|| Assignment::decode(&me.assignment).ok())
                    .flatten()
            };
            let now = self.clock.unix_millis();
            let mut results = Vec::with_capacity(request.offsets.len());
            let mut writes = Vec::new();
            for (o, check) in request.offsets.iter().zip(&checks) {
                let refused = match check {
                    Err(e) => Some(partition_error(o, e)),
                    Ok(()) => match &assignment {
                        Some(a) if !a.contains(&o.topic, o.partition) => Some(partition_error(
                            o,
                            &ProxyError::refused(
                                ErrorCode::PartitionNotAssigned,
                                format!(
                                    "{}/{} is not assigned to member `{}` in generation {}; only its owner may commit it",
                                    o.topic, o.partition, request.member_id, state.generation
                                ),
                            ),
                        )),
                        _ => None,
                    },
                };
                match refused {
                    Some(e) => results.push(e),
                    None => {
                        writes.push(TxnOp::put(
                            self.keys.group_offset(group, &o.topic, o.partition),
                            schema::encode(&CommittedOffset {
                                offset: o.offset,
                                metadata: o.metadata.clone(),
                                generation: request.generation,
                                member: request.member_id.clone(),
                                committed_ms: now,
                            }),
                        ));
                        results.push(v1::PartitionError {
                            topic: o.topic.clone(),
                            partition: o.partition,
                            error: None,
                        });
                    }
                }
            }
            if self.write_guarded(group, revision, writes).await? {
                return Ok(results);
            }
        }
        Err(rebalancing(group))
    }

    /// OffsetCommit by a member of a broadcast group: its own positions, which no other member
    /// touches, so no generation guards them; the group must have no clustering members,
    /// and its first such commit marks it as a broadcast group.
    async fn commit_broadcast(
        &self,
        request: &v1::OffsetCommitRequest,
        checks: Vec<Result<()>>,
    ) -> Result<Vec<v1::PartitionError>> {
        let (group, member) = (&request.group, &request.broadcast_member);
        validate_broadcast_member(member)?;
        if request.generation != -1 || !request.member_id.is_empty() {
            return Err(ProxyError::refused(
                ErrorCode::InvalidArgument,
                format!(
                    "a broadcast member commits with generation -1 and no member id, not as member `{}` of generation {}",
                    request.member_id, request.generation
                ),
            ));
        }
        let clustering = !self.admin().committed_offsets(group).await?.is_empty();
        for _ in 0..5 {
            let Loaded { state, revision } = self.load(group).await?;
            refuse_clustering(group, &state, clustering)?;
            let now = self.clock.unix_millis();
            let mut results = Vec::with_capacity(request.offsets.len());
            let mut writes = vec![TxnOp::put(
                self.keys.group_broadcasting(group),
                bytes::Bytes::from_static(b"{}"),
            )];
            for (o, check) in request.offsets.iter().zip(&checks) {
                if let Err(e) = check {
                    results.push(partition_error(o, e));
                    continue;
                }
                writes.push(TxnOp::put(
                    self.keys
                        .group_broadcast_offset(group, member, &o.topic, o.partition),
                    schema::encode(&CommittedOffset {
                        offset: o.offset,
                        metadata: o.metadata.clone(),
                        generation: -1,
                        member: member.clone(),
                        committed_ms: now,
                    }),
                ));
                results.push(v1::PartitionError {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    error: None,
                });
            }
            // Guarded by the group state, so a clustering member joining meanwhile wins.
            if self.write_guarded(group, revision, writes).await? {
                return Ok(results);
            }
        }
        Err(rebalancing(group))
    }

    /// Writes `ops` in transactions that each require the group state to be unchanged since
    /// `revision`, so a member removed meanwhile cannot commit.
    async fn write_guarded(&self, group: &str, revision: i64, ops: Vec<TxnOp>) -> Result<bool> {
        let key = self.keys.group_state(group);
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let chunk: Vec<TxnOp> = ops.by_ref().take(COMMITS_PER_TXN).collect();
            let txn = Txn::new()
                .when([Compare::mod_revision(&key, CompareOp::Equal, revision)])
                .and_then(chunk);
            if !self.meta.txn(txn).await?.succeeded {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether an offset may be committed for its partition at all.
    async fn check_offset(&self, o: &v1::PartitionOffset) -> Result<()> {
        self.routes.refresh_if_unknown(&o.topic).await;
        self.routes.route(&o.topic, o.partition)?;
        if o.offset < 0 {
            return Err(ProxyError::refused(
                ErrorCode::InvalidArgument,
                format!(
                    "offset {} for {}/{} is negative; commit the next offset to read (≥ 0)",
                    o.offset, o.topic, o.partition
                ),
            ));
        }
        let high_watermark = self.reader.high_watermark(&o.topic, o.partition).await?;
        if o.offset > high_watermark {
            return Err(ProxyError::refused(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "offset {} for {}/{} is past the end of the log ({high_watermark})",
                    o.offset, o.topic, o.partition
                ),
            ));
        }
        Ok(())
    }

    /// Kafka's OffsetFetch: the committed offsets of `partitions` (-1 where none), or of every
    /// partition the group ever committed when `partitions` is empty.
    pub async fn fetch_offsets(
        &self,
        request: &v1::OffsetFetchRequest,
    ) -> Result<Vec<v1::PartitionOffset>> {
        validate_group(&request.group)?;
        let admin = self.admin();
        let committed = if request.broadcast_member.is_empty() {
            admin.committed_offsets(&request.group).await?
        } else {
            validate_broadcast_member(&request.broadcast_member)?;
            admin
                .broadcast_member_positions(&request.group, &request.broadcast_member)
                .await?
        };
        if request.partitions.is_empty() {
            let mut all: Vec<v1::PartitionOffset> = committed
                .into_iter()
                .map(|((topic, partition), c)| v1::PartitionOffset {
                    topic,
                    partition,
                    offset: c.offset,
                    metadata: c.metadata,
                })
                .collect();
            all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            return Ok(all);
        }
        Ok(request
            .partitions
            .iter()
            .map(|tp| {
                let c = committed.get(&(tp.topic.clone(), tp.partition));
                v1::PartitionOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: c.map_or(-1, |c| c.offset),
                    metadata: c.map(|c| c.metadata.clone()).unwrap_or_default(),
                }
            })
            .collect())
    }
}

/// Checks a broadcast member's name, which is part of its positions' keys.
fn validate_broadcast_member(member: &str) -> Result<()> {
    schema::validate_name("broadcast member", member).map_err(|e| {
        ProxyError::refused(
            ErrorCode::InvalidArgument,
            format!("{e}; name each broadcast member once, the same across its restarts"),
        )
    })
}

/// A clustering group cannot take broadcast members: they would read what the clustering
/// members were given, with positions of their own. A group is clustering while it has
/// members, or a generation or committed offsets from them (a stopped app keeps its group).
fn refuse_clustering(group: &str, state: &schema::GroupState, offsets: bool) -> Result<()> {
    if state.members.is_empty() && state.generation == 0 && !offsets {
        return Ok(());
    }
    Err(ProxyError::refused(
        ErrorCode::InvalidArgument,
        format!(
            "group `{group}` consumes in clustering mode ({} members now); a broadcast member needs a group that only broadcasts: use another group name, or delete this one",
            state.members.len()
        ),
    ))
}
