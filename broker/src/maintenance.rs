//! Compaction, retention and garbage collection of the partitions this broker owns.
//!
//! - **Compaction** merges runs of adjacent small segments into one segment of up to the
//!   topic's `segment_bytes`, so a partition's object and key counts stay bounded however
//!   often it flushes.
//! - **Retention** deletes whole segments older than `retention_ms` (by their largest record
//!   timestamp) or beyond `retention_bytes` (oldest first).
//! - **GC** deletes the objects those steps unreferenced, once their grace period has passed
//!   (readers that listed segments before the change can still finish), and sweeps orphans:
//!   objects of the partition that no record references (failed commits, zombies, crashes
//!   between PUT and commit) and that are older than the grace period.
//!
//! Every metadata change goes through `strata_log::write::apply_guarded`: under the claim's
//! guard, like a flush, and the mod revisions of the segment records it replaces. A broker
//! that lost the partition, or a race with another change, leaves the log untouched.

mod compaction;
mod flush_objects;
mod gc;
mod retention;
mod shared_reads;

use std::sync::Arc;
use std::time::Duration;

use strata_config::{Config, MaintenanceSection};
use strata_log::{Claim, GcRecord, SegmentRecord};
use strata_meta::schema::{self, TopicConfig};
use strata_meta::{Compare, KeyValue, Revision, TxnOp};
use strata_storage::Placement;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metrics::BrokerMetrics;
use crate::partition::{Partition, PartitionState, now_ms};
use crate::table::{LogAccess, PartitionTable};

/// Segments changed at most in one transaction: one compare and one delete each, under
/// etcd's 128 operations per transaction.
const MAX_SEGMENTS_PER_CHANGE: usize = 100;
/// Compactions of one partition in one pass. A partition that hit it has a backlog, and the
/// next pass comes after [`BACKLOG_INTERVAL`] instead of the configured interval: a partition
/// flushing many times a second makes segments faster than one merge per pass removes them.
const MAX_COMPACTIONS_PER_PASS: usize = 8;
const BACKLOG_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of the maintenance loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceConfig {
    pub interval: Duration,
    /// How long unreferenced objects stay readable before deletion.
    pub gc_grace: Duration,
    /// Orphan sweeps (which list storage) run every this many passes; 0 never.
    pub orphan_sweep_every: u32,
    /// Most bytes compaction holds in memory: half for the merge being built, half for the
    /// flush objects a pass reads whole (`shared_reads`).
    pub compaction_memory_bytes: u64,
}

impl From<&MaintenanceSection> for MaintenanceConfig {
    fn from(s: &MaintenanceSection) -> Self {
        Self {
            interval: Duration::from_millis(s.interval_ms),
            gc_grace: Duration::from_millis(s.gc_grace_ms),
            orphan_sweep_every: s.orphan_sweep_every,
            compaction_memory_bytes: s.compaction_memory_bytes,
        }
    }
}

/// The shipped `[broker.maintenance]` settings.
impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self::from(&Config::shipped().broker.maintenance)
    }
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceStats {
    pub compactions: usize,
    pub segments_merged: usize,
    pub segments_expired: usize,
    pub objects_deleted: usize,
    pub orphans_deleted: usize,
    /// Some partition had more to compact than one pass does.
    pub backlog: bool,
}

impl std::ops::AddAssign for MaintenanceStats {
    fn add_assign(&mut self, o: Self) {
        self.compactions += o.compactions;
        self.segments_merged += o.segments_merged;
        self.segments_expired += o.segments_expired;
        self.objects_deleted += o.objects_deleted;
        self.orphans_deleted += o.orphans_deleted;
        self.backlog |= o.backlog;
    }
}

/// A segment record as read, with the mod revision a change replacing it compares.
struct Segment {
    key: String,
    revision: Revision,
    record: SegmentRecord,
}

impl Segment {
    fn unchanged(&self) -> Compare {
        Compare::mod_revision(
            self.key.clone(),
            strata_meta::CompareOp::Equal,
            self.revision,
        )
    }

    /// The object, when it is this segment's alone: a flush object is deleted by the
    /// flush-object sweep once no record refers to it.
    fn own_object(&self) -> Option<(String, Placement)> {
        (!self.record.shared).then(|| (self.record.path.clone(), self.record.placement.clone()))
    }
}

/// Keeps the logs of a broker's partitions compact, within retention and free of garbage.
#[derive(Debug)]
pub struct Maintainer {
    log: LogAccess,
    partitions: Arc<PartitionTable>,
    metrics: Arc<BrokerMetrics>,
    config: MaintenanceConfig,
    unreferenced: flush_objects::Unreferenced,
}

impl Maintainer {
    pub(crate) fn new(
        log: LogAccess,
        partitions: Arc<PartitionTable>,
        metrics: Arc<BrokerMetrics>,
        config: MaintenanceConfig,
    ) -> Self {
        Self {
            log,
            partitions,
            metrics,
            config,
            unreferenced: flush_objects::Unreferenced::default(),
        }
    }

    /// Runs a pass every `interval` (every second while a partition has a backlog) until
    /// cancelled.
    pub async fn run(&self, cancel: CancellationToken) {
        let config = self.config;
        let mut pass = 0u32;
        let mut backlog = false;
        loop {
            let wait = if backlog {
                BACKLOG_INTERVAL.min(config.interval)
            } else {
                config.interval
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            pass = pass.wrapping_add(1);
            let sweep =
                config.orphan_sweep_every > 0 && pass.is_multiple_of(config.orphan_sweep_every);
            // A stop does not wait for a pass: one cut short leaves at most an orphan object,
            // which a later sweep deletes.
            let mut stats = tokio::select! {
                () = cancel.cancelled() => return,
                stats = self.maintain_once(config.gc_grace, sweep) => stats,
            };
            backlog = stats.backlog;
            if sweep {
                match self.sweep_deleted_topics(config.gc_grace).await {
                    Ok(deleted) => stats.orphans_deleted += deleted,
                    Err(e) => {
                        tracing::warn!(error = %e, "sweeping deleted topics failed; next sweep retries")
                    }
                }
            }
            if stats != MaintenanceStats::default() {
                tracing::info!(?stats, "maintenance pass");
            }
        }
    }

    /// One pass over every partition in Write state, then over the cluster's flush objects
    /// when this broker sweeps for the cluster.
    ///
    /// Retention first; then compaction in rounds of one merge per partition, so that the
    /// merges of one round, which read sections of the same flush objects, find them held
    /// (`shared_reads`); then garbage collection.
    pub async fn maintain_once(&self, gc_grace: Duration, sweep_orphans: bool) -> MaintenanceStats {
        let mut total = MaintenanceStats::default();
        let grace_ms = gc_grace.as_millis() as i64;
        let mut active = Vec::new();
        for p in self.partitions.all() {
            let Some(claim) = Self::writing(&p) else {
                continue;
            };
            match self.retain(&p, claim, grace_ms).await {
                Ok(Some((config, expired))) => {
                    let stats = MaintenanceStats {
                        segments_expired: expired,
                        ..MaintenanceStats::default()
                    };
                    active.push((p, config, stats, true));
                }
                Ok(None) => {} // topic deleted; the controller releases the partition
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "maintenance failed; next pass retries")
                }
            }
        }
        let reads = shared_reads::SharedReads::new(self.config.compaction_memory_bytes / 2);
        for _round in 0..MAX_COMPACTIONS_PER_PASS {
            for (p, config, stats, more) in active.iter_mut().filter(|a| a.3) {
                let Some(claim) = Self::writing(p) else {
                    *more = false;
                    continue;
                };
                match self.compact_next(p, claim, config, grace_ms, &reads).await {
                    Ok(0) => *more = false,
                    Ok(merged) => {
                        stats.segments_merged += merged;
                        stats.compactions += 1;
                    }
                    Err(e) => {
                        *more = false;
                        tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "compaction failed; next pass retries")
                    }
                }
            }
        }
        let (loads, served) = reads.counts();
        self.metrics.compaction_object_loads.inc_by(loads);
        self.metrics.compaction_shared_sections.inc_by(served);
        drop(reads);
        for (p, _, mut stats, more) in active {
            stats.backlog = more;
            if let Some(claim) = Self::writing(&p) {
                match self.collect(&p, claim, grace_ms, sweep_orphans).await {
                    Ok((deleted, orphans)) => {
                        stats.objects_deleted = deleted;
                        stats.orphans_deleted = orphans;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "garbage collection failed; next pass retries")
                    }
                }
            }
            self.metrics.compactions.inc_by(stats.compactions as u64);
            self.metrics
                .expired_segments
                .inc_by(stats.segments_expired as u64);
            self.metrics
                .deleted_objects
                .inc_by((stats.objects_deleted + stats.orphans_deleted) as u64);
            total += stats;
        }
        match self.sweep_flush_objects(gc_grace).await {
            Ok(deleted) => {
                self.metrics.deleted_objects.inc_by(deleted as u64);
                total.objects_deleted += deleted;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sweeping flush objects failed; next pass retries")
            }
        }
        total
    }

    /// The partition's claim while it is written here.
    fn writing(p: &Partition) -> Option<&Claim> {
        p.claim().filter(|_| p.state() == PartitionState::Write)
    }

    /// Applies retention; returns the topic's config and the segments expired, `None` when
    /// the topic is gone.
    async fn retain(
        &self,
        p: &Partition,
        claim: &Claim,
        grace_ms: i64,
    ) -> Result<Option<(TopicConfig, usize)>> {
        let topic_key = self.log.keys.topic(&p.topic);
        let Some(kv) = self.log.meta.get(&topic_key).await? else {
            return Ok(None);
        };
        let config: TopicConfig = schema::decode(&topic_key, &kv.value)?;
        let segments = self.load_segments(p).await?;
        let expired = self
            .apply_retention(claim, &config, &segments, grace_ms)
            .await?;
        Ok(Some((config, expired)))
    }

    /// Merges the partition's next run; returns the segments merged (0: nothing to merge,
    /// or lost a race, which the next pass looks at again).
    async fn compact_next(
        &self,
        p: &Partition,
        claim: &Claim,
        config: &TopicConfig,
        grace_ms: i64,
        reads: &shared_reads::SharedReads,
    ) -> Result<usize> {
        let segments = self.load_segments(p).await?;
        let lone_before = now_ms() - grace_ms;
        let merge_bytes = config
            .segment_bytes
            .min(self.config.compaction_memory_bytes / 2);
        let Some(run) = compaction::run_to_merge(&segments, merge_bytes)
            .or_else(|| compaction::lone_section(&segments, lone_before))
        else {
            return Ok(0);
        };
        self.compact(p, claim, &segments[run], grace_ms, reads)
            .await
    }

    /// Deletes what earlier changes unreferenced once due, and sweeps orphans when asked;
    /// returns (objects deleted, orphans deleted).
    async fn collect(
        &self,
        p: &Partition,
        claim: &Claim,
        grace_ms: i64,
        sweep_orphans: bool,
    ) -> Result<(usize, usize)> {
        let deleted = self.collect_garbage(p, claim).await?;
        let orphans = if sweep_orphans {
            self.sweep_orphans(p, grace_ms).await?
        } else {
            0
        };
        Ok((deleted, orphans))
    }

    async fn load_segments(&self, p: &Partition) -> Result<Vec<Segment>> {
        let (kvs, _) = self
            .log
            .meta
            .range(&self.log.keys.segments(&p.topic, p.partition))
            .await?;
        kvs.into_iter()
            .map(|kv: KeyValue| {
                let record = schema::decode(&kv.key, &kv.value)?;
                Ok(Segment {
                    key: kv.key,
                    revision: kv.mod_revision,
                    record,
                })
            })
            .collect()
    }

    /// Applies a change of `claim`'s log under its guard (`strata_log::write`).
    async fn apply(&self, claim: &Claim, compares: &[Compare], ops: &[TxnOp]) -> Result<bool> {
        Ok(strata_log::write::apply_guarded(
            self.log.meta.as_ref(),
            &self.log.keys,
            claim,
            compares,
            ops,
        )
        .await?)
    }

    /// Records the objects of `replaced` segments for deletion once the grace period has
    /// passed; `None` when they are all sections of flush objects.
    fn gc_later(&self, claim: &Claim, replaced: &[Segment], grace_ms: i64) -> Option<TxnOp> {
        let objects: Vec<_> = replaced.iter().filter_map(Segment::own_object).collect();
        if objects.is_empty() {
            return None;
        }
        let due_ms = now_ms() + grace_ms;
        let nonce = rand_nonce();
        let key = format!(
            "{}{due_ms:020}-{nonce:08x}",
            self.log.keys.gc_records(claim.topic(), claim.partition())
        );
        Some(TxnOp::put(
            key,
            schema::encode(&GcRecord { due_ms, objects }),
        ))
    }
}

fn rand_nonce() -> u32 {
    use strata_clock::{RandomSource, ThreadRandom};
    ThreadRandom.next_u64() as u32
}
