//! The write protocol of a partition's log, in one place: how a writer claims a partition, the
//! guard every later change of that writer carries, the commit of a flush, and how a refused
//! commit is resolved into "it landed", "still ours" or "fenced".
//!
//! The guard compares two mod revisions:
//! - the assignment the writer claimed under: a move (the controller bumps the epoch in the
//!   same transaction) or a deletion of the topic changes it;
//! - the checkpoint as this writer last wrote it (its claim, then each commit). The assignment
//!   alone cannot tell two incarnations of one broker at one epoch apart — a broker that lost
//!   its lease reopens its partitions under the unchanged assignment — and a commit still
//!   pending from the first incarnation must not land after the second has read the
//!   checkpoint and handed out the same offsets again.
//!
//! Nothing here buffers, schedules or touches storage: the broker decides when to claim and
//! what to commit; this module decides whether it may.

use std::sync::atomic::{AtomicI64, Ordering};

use strata_meta::schema::{self, Assignment, Checkpoint, Keyspace};
use strata_meta::{Compare, CompareOp, MetaStore, Revision, Txn, TxnOp};

use crate::{LogError, ProducerState, SegmentRecord};

/// Operations a flush commit spends per partition at most: puts of the segment record, the
/// checkpoint and the producers' state. The guard's two compares stay under the same limit.
const OPS_PER_UNIT: usize = 3;
/// What a unit's keys and values may take besides its topic name (in each of three keys), object
/// path, node names and producers: the rest of the keys, the writer's id and the numbers of the
/// segment record and checkpoint as JSON, with room to spare.
const UNIT_FIXED_BYTES: usize = 2048;
/// A bound on one producer's entry in the producers' state as JSON (id, epoch, last-seen time),
/// and on each of its recent batches.
const PRODUCER_BYTES: usize = 96;
const PRODUCER_BATCH_BYTES: usize = 64;

/// Partitions per flush commit under a store's per-transaction limit
/// ([`MetaStore::max_txn_ops`]): 42 at etcd's default of 128, 341 at 1024.
pub fn partitions_per_txn(max_txn_ops: usize) -> usize {
    (max_txn_ops / OPS_PER_UNIT).max(1)
}

/// A bound on the keys and values one unit adds to a commit, so a commit's units can be
/// grouped under the store's request size ([`strata_meta::MAX_REQUEST_BYTES`]) without
/// encoding them twice. Producers' state dominates when a partition has many idempotent
/// producers: up to 1,000 of them make a unit of about 100 KiB.
pub fn unit_bytes_bound(
    topic: &str,
    segment: &SegmentRecord,
    producers: Option<&ProducerState>,
) -> usize {
    let names: usize = segment.placement.nodes.iter().map(|n| n.0.len() + 8).sum();
    let producers: usize = producers.map_or(0, |state| {
        state
            .producers
            .values()
            .map(|p| PRODUCER_BYTES + PRODUCER_BATCH_BYTES * p.recent.len())
            .sum()
    });
    UNIT_FIXED_BYTES + 3 * topic.len() + segment.path.len() + names + producers
}
/// Claims that lose to a late commit of an earlier incarnation are retried this many times.
const CLAIM_ATTEMPTS: u32 = 5;
/// A guarded change of the log that lost only to this writer's own commits is retried this
/// many times.
const GUARDED_ATTEMPTS: u32 = 3;

/// The compares that make a change of a partition's log safe: the assignment is still the one
/// claimed under, and the checkpoint is still the one this writer last wrote (`None`: there
/// is no checkpoint yet). Every writer's change — the claim, each flush commit, each
/// compaction, retention and garbage-collection step — carries exactly these.
fn guard(
    keys: &Keyspace,
    topic: &str,
    partition: u32,
    assignment_revision: Revision,
    checkpoint_revision: Option<Revision>,
) -> [Compare; 2] {
    let checkpoint = keys.checkpoint(topic, partition);
    [
        Compare::mod_revision(
            keys.assignment(topic, partition),
            CompareOp::Equal,
            assignment_revision,
        ),
        match checkpoint_revision {
            Some(revision) => Compare::mod_revision(checkpoint, CompareOp::Equal, revision),
            None => Compare::absent(checkpoint),
        },
    ]
}

/// A writer's hold on one partition at one epoch: what every later change must compare.
#[derive(Debug)]
pub struct Claim {
    topic: String,
    partition: u32,
    epoch: u64,
    assignment_revision: Revision,
    /// The checkpoint's mod revision as this claim last wrote it.
    checkpoint_revision: AtomicI64,
}

/// What recovery found: the claim, and where the log continues.
#[derive(Debug)]
pub struct Recovered {
    pub claim: Claim,
    /// The first offset not yet committed: the next batch gets it.
    pub next_offset: i64,
    /// Idempotent-producer state committed with the log.
    pub producers: ProducerState,
}

/// Recover: read the checkpoint and the producer state, then claim the partition by writing a
/// checkpoint with the assignment's epoch under the guard. Nothing is copied.
///
/// The claim can lose a race without the partition having moved: a late commit of an earlier
/// incarnation of this same writer may land between the read and the claim. That commit is
/// fenced from then on, so a fresh read wins; only a changed assignment is a real fence.
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    writer: &str,
    topic: &str,
    partition: u32,
    assignment: &Assignment,
    assignment_revision: Revision,
    now_ms: i64,
) -> Result<Recovered, LogError> {
    if assignment.broker != writer {
        return Err(LogError::NotAssigned {
            topic: topic.into(),
            partition,
            owner: assignment.broker.clone(),
        });
    }
    let fenced = || LogError::Fenced {
        topic: topic.into(),
        partition,
        epoch: assignment.epoch,
    };
    let checkpoint_key = keys.checkpoint(topic, partition);
    let producers_key = keys.producers(topic, partition);
    for attempt in 1..=CLAIM_ATTEMPTS {
        let stored = meta.get(&checkpoint_key).await?;
        let checkpoint = match &stored {
            Some(kv) => Some(schema::decode::<Checkpoint>(&checkpoint_key, &kv.value)?),
            None => None,
        };
        if checkpoint
            .as_ref()
            .is_some_and(|c| c.epoch > assignment.epoch)
        {
            return Err(fenced());
        }
        let producers = match meta.get(&producers_key).await? {
            Some(kv) => schema::decode::<ProducerState>(&producers_key, &kv.value)?,
            None => ProducerState::default(),
        };
        let next_offset = checkpoint.as_ref().map_or(0, |c| c.next_offset);
        let claimed = Checkpoint {
            epoch: assignment.epoch,
            next_offset,
            broker: writer.into(),
            committed_ms: now_ms,
        };
        let txn = Txn::new()
            .when(guard(
                keys,
                topic,
                partition,
                assignment_revision,
                stored.map(|kv| kv.mod_revision),
            ))
            .and_then([TxnOp::put(checkpoint_key.clone(), schema::encode(&claimed))]);
        let result = meta.txn(txn).await?;
        if result.succeeded {
            tracing::debug!(%topic, partition, epoch = assignment.epoch, next_offset, "partition claimed");
            return Ok(Recovered {
                claim: Claim {
                    topic: topic.into(),
                    partition,
                    epoch: assignment.epoch,
                    assignment_revision,
                    checkpoint_revision: AtomicI64::new(result.revision),
                },
                next_offset,
                producers,
            });
        }
        let assignment_now = meta.get(&keys.assignment(topic, partition)).await?;
        if assignment_now.is_none_or(|kv| kv.mod_revision != assignment_revision) {
            return Err(fenced());
        }
        tracing::info!(%topic, partition, epoch = assignment.epoch, attempt, "claim raced a late commit of an earlier incarnation; reading the checkpoint again");
    }
    Err(fenced())
}

impl Claim {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The compares every change of this writer must carry (see [`guard`]).
    pub fn guard(&self, keys: &Keyspace) -> [Compare; 2] {
        guard(
            keys,
            &self.topic,
            self.partition,
            self.assignment_revision,
            Some(self.checkpoint_revision()),
        )
    }

    fn checkpoint_revision(&self) -> Revision {
        self.checkpoint_revision.load(Ordering::SeqCst)
    }

    fn wrote_checkpoint(&self, revision: Revision) {
        self.checkpoint_revision.store(revision, Ordering::SeqCst);
    }

    /// The mod revisions the guard compares, as the store holds them now.
    async fn stored_revisions(
        &self,
        meta: &dyn MetaStore,
        keys: &Keyspace,
    ) -> Result<(Option<Revision>, Option<Revision>), LogError> {
        let assignment = meta
            .get(&keys.assignment(&self.topic, self.partition))
            .await?;
        let checkpoint = meta
            .get(&keys.checkpoint(&self.topic, self.partition))
            .await?;
        Ok((
            assignment.map(|kv| kv.mod_revision),
            checkpoint.map(|kv| kv.mod_revision),
        ))
    }

    /// Whether the guard holds now: the assignment is the one claimed under and the checkpoint
    /// the one this claim last wrote.
    pub async fn still_owned(
        &self,
        meta: &dyn MetaStore,
        keys: &Keyspace,
    ) -> Result<bool, LogError> {
        let (assignment, checkpoint) = self.stored_revisions(meta, keys).await?;
        Ok(assignment == Some(self.assignment_revision)
            && checkpoint == Some(self.checkpoint_revision()))
    }

    /// Whether an earlier attempt to commit `segment` landed although its answer was lost:
    /// then the retry's guard fails against the checkpoint that very attempt wrote. It landed
    /// exactly when the segment key holds this record (object paths are never reused), the
    /// checkpoint was last written by the same transaction (no claim came after it) and the
    /// assignment is still the one claimed under. Returns the revision it landed at.
    async fn landed(
        &self,
        meta: &dyn MetaStore,
        keys: &Keyspace,
        segment: &SegmentRecord,
    ) -> Result<Option<Revision>, LogError> {
        let key = keys.segment(&self.topic, self.partition, segment.meta.base_offset);
        let Some(stored) = meta.get(&key).await? else {
            return Ok(None);
        };
        if schema::decode::<SegmentRecord>(&key, &stored.value)?.path != segment.path {
            return Ok(None);
        }
        let (assignment, checkpoint) = self.stored_revisions(meta, keys).await?;
        let landed =
            checkpoint == Some(stored.mod_revision) && assignment == Some(self.assignment_revision);
        Ok(landed.then_some(stored.mod_revision))
    }
}

/// One partition's share of a flush commit: its new segment, the checkpoint after it, and the
/// producer state when it changed.
#[derive(Debug)]
pub struct CommitUnit<'a> {
    pub claim: &'a Claim,
    pub segment: &'a SegmentRecord,
    pub next_offset: i64,
    pub producers: Option<&'a ProducerState>,
}

/// Commits the units of one flush (at most [`partitions_per_txn`]) in one transaction, each
/// under its claim's guard. Returns the revision it committed at, or `None` when some guard
/// failed and nothing was written; [`resolve_refused`] then says, per unit, what to do.
pub async fn commit(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    writer: &str,
    units: &[CommitUnit<'_>],
    now_ms: i64,
) -> Result<Option<Revision>, LogError> {
    debug_assert!(units.len() <= partitions_per_txn(meta.max_txn_ops()));
    let mut txn = Txn::new();
    for unit in units {
        let claim = unit.claim;
        let checkpoint = Checkpoint {
            epoch: claim.epoch,
            next_offset: unit.next_offset,
            broker: writer.into(),
            committed_ms: now_ms,
        };
        txn = txn.when(claim.guard(keys)).and_then([
            TxnOp::put(
                keys.segment(&claim.topic, claim.partition, unit.segment.meta.base_offset),
                schema::encode(unit.segment),
            ),
            TxnOp::put(
                keys.checkpoint(&claim.topic, claim.partition),
                schema::encode(&checkpoint),
            ),
        ]);
        if let Some(producers) = unit.producers {
            txn = txn.and_then([TxnOp::put(
                keys.producers(&claim.topic, claim.partition),
                schema::encode(producers),
            )]);
        }
    }
    let result = meta.txn(txn).await?;
    if !result.succeeded {
        return Ok(None);
    }
    for unit in units {
        unit.claim.wrote_checkpoint(result.revision);
    }
    Ok(Some(result.revision))
}

/// What a refused commit of one unit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An earlier attempt whose answer was lost had landed, at this revision.
    Landed(Revision),
    /// The guard still holds (another unit of the transaction failed, or the store cannot say
    /// now): commit it again.
    StillOwned,
    /// The partition moved, or a newer incarnation claimed it: this writer must stop.
    Fenced,
}

/// Resolves a refused commit of `segment` for `claim`. `maybe_committed` says an earlier
/// attempt failed without an answer (the store went away mid-call) and may have landed.
/// When the store cannot answer, the unit is kept (`StillOwned`): it is never fenced on a
/// guess, and a later attempt resolves it.
pub async fn resolve_refused(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    claim: &Claim,
    segment: &SegmentRecord,
    maybe_committed: bool,
) -> Refusal {
    if maybe_committed && let Ok(Some(revision)) = claim.landed(meta, keys, segment).await {
        claim.wrote_checkpoint(revision);
        tracing::info!(topic = %claim.topic, partition = claim.partition, revision, "a commit whose answer was lost had landed");
        return Refusal::Landed(revision);
    }
    match claim.still_owned(meta, keys).await {
        Ok(false) => Refusal::Fenced,
        Ok(true) | Err(_) => Refusal::StillOwned,
    }
}

/// Applies a change of the log other than a flush commit (compaction, retention, garbage
/// collection) under `claim`'s guard, with the change's own `compares`. Returns whether it
/// was applied.
///
/// This writer's own flush commits move the checkpoint, so a change can lose to one of them
/// while the claim still holds; it is then tried again with the new checkpoint revision.
pub async fn apply_guarded(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    claim: &Claim,
    compares: &[Compare],
    ops: &[TxnOp],
) -> Result<bool, LogError> {
    for _ in 0..GUARDED_ATTEMPTS {
        let seen = claim.checkpoint_revision();
        let txn = Txn::new()
            .when(claim.guard(keys))
            .when(compares.iter().cloned())
            .and_then(ops.iter().cloned());
        if meta.txn(txn).await?.succeeded {
            return Ok(true);
        }
        if claim.checkpoint_revision() == seen || !claim.still_owned(meta, keys).await? {
            // Lost to something else than our own commit: the partition moved, or the
            // change's own compares failed.
            return Ok(false);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strata_format::SegmentMeta;
    use strata_storage::{NodeId, Placement};

    use super::*;
    use crate::ProducerEntry;

    #[test]
    fn a_flush_commits_a_third_of_the_stores_limit_in_partitions() {
        assert_eq!(partitions_per_txn(128), 42);
        assert_eq!(partitions_per_txn(1024), 341);
    }

    /// The bound holds for the largest unit a partition makes: a topic name of Kafka's
    /// longest, three nodes, and 1,000 producers with five recent batches each, every number
    /// at its widest.
    #[test]
    fn the_bound_on_a_units_bytes_holds_for_the_largest_unit() {
        let keys = Keyspace::new("a-cluster-with-a-long-name").unwrap();
        let topic = "t".repeat(249);
        let placement = Placement {
            nodes: (0..3)
                .map(|i| NodeId(format!("storage-node-{i}")))
                .collect(),
        };
        let meta = SegmentMeta {
            base_offset: i64::MAX,
            next_offset: i64::MAX,
            min_timestamp: i64::MIN,
            max_timestamp: i64::MIN,
            size: u64::MAX,
            footer_len: u32::MAX,
            batch_count: u32::MAX,
            record_count: u64::MAX,
        };
        let path =
            crate::flush_object_path("/strata/a-cluster-with-a-long-name", "broker-0", i64::MAX);
        let mut segment = SegmentRecord::own_object(&path, placement, meta, u64::MAX, i64::MIN);
        segment.start = u64::MAX;
        segment.shared = true;
        segment.object_size = u64::MAX;
        let producers = ProducerState {
            producers: (0..1000)
                .map(|id| {
                    let entry = ProducerEntry {
                        epoch: i16::MIN,
                        recent: vec![(i32::MIN, i32::MIN, i64::MIN); 5],
                        last_seen_ms: i64::MIN,
                    };
                    (i64::MIN + id, entry)
                })
                .collect::<BTreeMap<_, _>>(),
        };
        let checkpoint = Checkpoint {
            epoch: u64::MAX,
            next_offset: i64::MIN,
            broker: "broker-0".repeat(8),
            committed_ms: i64::MIN,
        };
        let written = [
            (
                keys.segment(&topic, u32::MAX, i64::MIN),
                schema::encode(&segment),
            ),
            (
                keys.checkpoint(&topic, u32::MAX),
                schema::encode(&checkpoint),
            ),
            (keys.producers(&topic, u32::MAX), schema::encode(&producers)),
        ];
        let actual: usize = written.iter().map(|(k, v)| k.len() + v.len()).sum();
        let bound = unit_bytes_bound(&topic, &segment, Some(&producers));
        assert!(actual <= bound, "{actual} bytes written, bound {bound}");
        let without: usize = written[..2].iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(without <= unit_bytes_bound(&topic, &segment, None));
    }
}
