//! One flush cycle: every partition with buffered data becomes one segment object, all objects
//! are written in parallel, and then committed together — one metadata transaction for up to
//! [`PARTITIONS_PER_TXN`] partitions — each guarded by its assignment's mod revision and by
//! the checkpoint revision its own incarnation last wrote.

use std::sync::Arc;

use futures::StreamExt;
use strata_format::SegmentBuilder;
use strata_log::{SegmentRecord, object_path};
use strata_meta::schema::{self, Checkpoint};
use strata_meta::{Compare, CompareOp, Txn, TxnOp};

use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::partition::{FlushUnit, Partition, now_ms, producers_key};

/// Partitions per commit transaction: two compares and up to three operations each stay under
/// etcd's default limit of 128 of each per transaction.
pub const PARTITIONS_PER_TXN: usize = 40;
/// Segment objects written at once.
const PARALLEL_PUTS: usize = 16;

/// A unit on its way: written to storage once `record` is set, committed after that.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub partition: Arc<Partition>,
    pub unit: FlushUnit,
    pub record: Option<SegmentRecord>,
    /// A commit of this unit failed without an answer (the metadata store went away
    /// mid-call): it may have landed.
    pub maybe_committed: bool,
}

/// What one cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub partitions: usize,
    pub bytes: u64,
    pub puts: usize,
    pub txns: usize,
    pub fenced: usize,
    /// Units kept for the next cycle (storage or metadata store unavailable).
    pub retrying: usize,
}

impl Broker {
    /// Runs one flush cycle over every partition with buffered data.
    pub async fn flush_once(&self) -> FlushStats {
        let _one_at_a_time = self.flush_lock.lock().await;
        let mut work = std::mem::take(&mut *self.retry.lock().expect("retry mutex poisoned"));
        // Units of partitions released since (moved away, or the broker lost its lease) go:
        // their producers were told to retry elsewhere, and a reopened partition is a new
        // incarnation with units of its own.
        work.retain(|w| w.partition.wants_retry());
        for partition in self.partitions() {
            if work.iter().any(|w| Arc::ptr_eq(&w.partition, &partition)) {
                continue; // its earlier unit must commit first
            }
            if let Some(unit) = partition.take_unit() {
                work.push(InFlight {
                    partition,
                    unit,
                    record: None,
                    maybe_committed: false,
                });
            }
        }
        let mut stats = FlushStats {
            partitions: work.len(),
            ..FlushStats::default()
        };
        if work.is_empty() {
            return stats;
        }

        let started = tokio::time::Instant::now();
        let needs_put = work.iter().any(|w| w.record.is_none());
        if needs_put {
            self.storage_stall.writing(started);
        }
        let written: Vec<InFlight> = futures::stream::iter(work)
            .map(|mut item| async {
                if item.record.is_none() {
                    match self.write_segment(&item).await {
                        Ok(record) => item.record = Some(record),
                        Err(e) => tracing::warn!(topic = %item.partition.topic, partition = item.partition.partition, error = %e, "segment write failed; will retry"),
                    }
                }
                item
            })
            .buffer_unordered(PARALLEL_PUTS)
            .collect()
            .await;
        let (ready, mut pending): (Vec<InFlight>, Vec<InFlight>) =
            written.into_iter().partition(|w| w.record.is_some());
        if needs_put && pending.is_empty() {
            self.storage_stall.written();
        }
        stats.puts = ready.iter().filter(|w| w.record.is_some()).count();
        stats.bytes = ready
            .iter()
            .filter_map(|w| w.record.as_ref())
            .map(|r| r.meta.size)
            .sum();

        let put_done = tokio::time::Instant::now();
        self.metrics
            .flush_timings
            .put
            .observe((put_done - started).as_secs_f64());
        let mut queue = ready;
        while !queue.is_empty() {
            let rest = queue.split_off(queue.len().min(PARTITIONS_PER_TXN));
            let chunk = std::mem::replace(&mut queue, rest);
            stats.txns += 1;
            match self.commit(&chunk).await {
                Ok(Some(revision)) => chunk
                    .iter()
                    .for_each(|w| w.partition.committed(&w.unit, revision)),
                Ok(None) => {
                    // Someone's guard failed: fence those, retry the others at once.
                    for item in chunk {
                        if item.maybe_committed
                            && let Ok(Some(revision)) = self.landed_earlier(&item).await
                        {
                            tracing::info!(topic = %item.partition.topic, partition = item.partition.partition, next_offset = item.unit.next_offset, "a commit whose answer was lost had landed");
                            item.partition.committed(&item.unit, revision);
                        } else if self.still_owned(&item.partition).await.unwrap_or(true) {
                            queue.push(item);
                        } else {
                            item.partition.fence(
                                "commit refused: the assignment moved to a newer epoch or a \
                                 newer incarnation claimed the partition",
                            );
                            stats.fenced += 1;
                            self.reconcile_wanted.notify_one();
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "commit failed; will retry");
                    pending.extend(chunk.into_iter().map(|item| InFlight {
                        maybe_committed: true,
                        ..item
                    }));
                }
            }
        }
        let commit_time = put_done.elapsed();
        self.metrics
            .flush_timings
            .commit
            .observe(commit_time.as_secs_f64());
        tracing::debug!(
            partitions = stats.partitions,
            bytes = stats.bytes,
            put_ms = (put_done - started).as_secs_f64() * 1e3,
            commit_ms = commit_time.as_secs_f64() * 1e3,
            txns = stats.txns,
            "flushed"
        );
        pending.retain(|w| w.partition.wants_retry());
        stats.retrying = pending.len();
        self.metrics.flushes.inc();
        self.metrics.segment_puts.inc_by(stats.puts as u64);
        self.metrics.segment_bytes.inc_by(stats.bytes);
        self.metrics.commit_txns.inc_by(stats.txns as u64);
        self.metrics.fenced_partitions.inc_by(stats.fenced as u64);
        self.retry
            .lock()
            .expect("retry mutex poisoned")
            .extend(pending);
        stats
    }

    async fn write_segment(&self, item: &InFlight) -> Result<SegmentRecord> {
        let p = &item.partition;
        let mut builder = SegmentBuilder::default();
        for batch in &item.unit.batches {
            builder.append(batch)?;
        }
        let segment = builder.finish()?;
        let path = object_path(
            self.keys.root(),
            &p.topic,
            p.topic_id,
            p.partition,
            segment.meta.base_offset,
            p.epoch,
        );
        let placement = self
            .pool
            .put(&path, segment.chunks.iter().cloned().collect())
            .await?;
        Ok(SegmentRecord {
            path: path.to_string(),
            placement,
            meta: segment.meta,
            epoch: p.epoch,
            created_ms: now_ms(),
        })
    }

    /// Commits a chunk in one transaction: the revision it committed at, or `None` when a
    /// guard failed.
    async fn commit(&self, chunk: &[InFlight]) -> Result<Option<strata_meta::Revision>> {
        let mut txn = Txn::new();
        for item in chunk {
            let p = &item.partition;
            let record = item
                .record
                .as_ref()
                .expect("only written units are committed");
            let checkpoint = Checkpoint {
                epoch: p.epoch,
                next_offset: item.unit.next_offset,
                broker: self.id.clone(),
                committed_ms: now_ms(),
            };
            txn = txn
                .when([
                    Compare::mod_revision(
                        self.keys.assignment(&p.topic, p.partition),
                        CompareOp::Equal,
                        p.assignment_revision,
                    ),
                    Compare::mod_revision(
                        self.keys.commit(&p.topic, p.partition),
                        CompareOp::Equal,
                        p.commit_revision(),
                    ),
                ])
                .and_then([
                    TxnOp::put(
                        self.keys
                            .segment(&p.topic, p.partition, record.meta.base_offset),
                        schema::encode(record),
                    ),
                    TxnOp::put(
                        self.keys.commit(&p.topic, p.partition),
                        schema::encode(&checkpoint),
                    ),
                ]);
            if let Some(producers) = &item.unit.producers {
                txn = txn.and_then([TxnOp::put(
                    producers_key(&self.keys, &p.topic, p.partition),
                    schema::encode(producers),
                )]);
            }
        }
        let result = self.meta.txn(txn).await.map_err(BrokerError::from)?;
        Ok(result.succeeded.then_some(result.revision))
    }

    /// Whether an earlier attempt to commit `item` landed although its answer was lost: then
    /// the retry's guard fails against the checkpoint that very attempt wrote, and fencing
    /// would strand a partition nobody else owns (the long fault run found this after an etcd
    /// restart). It landed exactly when the segment key holds this unit's record (object
    /// paths are never reused), the checkpoint was last written by the same transaction (so
    /// no claim came after it) and the assignment is still the one this incarnation claimed.
    /// Returns the revision it committed at.
    async fn landed_earlier(&self, item: &InFlight) -> Result<Option<strata_meta::Revision>> {
        let p = &item.partition;
        let record = item
            .record
            .as_ref()
            .expect("only written units are committed");
        let key = self
            .keys
            .segment(&p.topic, p.partition, record.meta.base_offset);
        let Some(stored) = self.meta.get(&key).await? else {
            return Ok(None);
        };
        if schema::decode::<SegmentRecord>(&key, &stored.value)?.path != record.path {
            return Ok(None);
        }
        let (assignment, checkpoint) = self.guard_revisions(p).await?;
        let landed =
            checkpoint == Some(stored.mod_revision) && assignment == Some(p.assignment_revision);
        Ok(landed.then_some(stored.mod_revision))
    }

    /// Whether this incarnation still owns the partition: the assignment is the one it
    /// claimed and the checkpoint is the one it last wrote.
    async fn still_owned(&self, p: &Partition) -> Result<bool> {
        let (assignment, checkpoint) = self.guard_revisions(p).await?;
        Ok(assignment == Some(p.assignment_revision) && checkpoint == Some(p.commit_revision()))
    }

    /// The mod revisions a commit's guard compares, as the store holds them now: the
    /// partition's assignment and its checkpoint.
    async fn guard_revisions(
        &self,
        p: &Partition,
    ) -> Result<(Option<strata_meta::Revision>, Option<strata_meta::Revision>)> {
        let assignment = self
            .meta
            .get(&self.keys.assignment(&p.topic, p.partition))
            .await?;
        let checkpoint = self
            .meta
            .get(&self.keys.commit(&p.topic, p.partition))
            .await?;
        Ok((
            assignment.map(|kv| kv.mod_revision),
            checkpoint.map(|kv| kv.mod_revision),
        ))
    }
}
