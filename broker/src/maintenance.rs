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
//! Every metadata change is a transaction guarded by the assignment, like a flush, and by the
//! mod revisions of the segment records it replaces: a broker that lost the partition, or a
//! race with another change, leaves the log untouched.

use std::collections::HashSet;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_format::{BatchIter, SegmentBuilder};
use strata_log::{GcRecord, SegmentRecord, object_path, partition_prefix};
use strata_meta::schema::{self, TopicConfig};
use strata_meta::{Compare, CompareOp, KeyValue, Revision, Txn, TxnOp};
use strata_storage::Placement;

use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::partition::{Partition, PartitionState, now_ms};

/// Segments merged at most in one compaction: one compare and one delete each, under etcd's
/// 128 operations per transaction.
const MAX_MERGE: usize = 100;
/// Segment reads of one compaction in flight at once.
const PARALLEL_READS: usize = 16;
/// Compactions of one partition in one pass. A partition that hit it has a backlog, and the
/// next pass comes after [`BACKLOG_INTERVAL`] instead of the configured interval: a partition
/// flushing many times a second makes segments faster than one merge per pass removes them.
const MAX_COMPACTIONS_PER_PASS: usize = 8;
const BACKLOG_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of the maintenance loop.
#[derive(Debug, Clone, Copy)]
pub struct MaintenanceConfig {
    pub interval: Duration,
    /// How long unreferenced objects stay readable before deletion.
    pub gc_grace: Duration,
    /// Orphan sweeps (which list storage) run every this many cycles.
    pub orphan_sweep_every: u32,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            gc_grace: Duration::from_secs(60),
            orphan_sweep_every: 10,
        }
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

struct Segment {
    key: String,
    revision: Revision,
    record: SegmentRecord,
}

impl Broker {
    /// Runs maintenance every `config.interval` until cancelled.
    pub async fn run_maintenance(
        &self,
        config: MaintenanceConfig,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let mut cycle = 0u32;
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
            cycle = cycle.wrapping_add(1);
            let sweep =
                config.orphan_sweep_every > 0 && cycle.is_multiple_of(config.orphan_sweep_every);
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

    /// One pass over every partition in Write state.
    pub async fn maintain_once(&self, gc_grace: Duration, sweep_orphans: bool) -> MaintenanceStats {
        let mut total = MaintenanceStats::default();
        for p in self.partitions() {
            if p.state() != PartitionState::Write {
                continue;
            }
            match self.maintain_partition(&p, gc_grace, sweep_orphans).await {
                Ok(stats) => {
                    self.metrics.compactions.inc_by(stats.compactions as u64);
                    self.metrics
                        .expired_segments
                        .inc_by(stats.segments_expired as u64);
                    self.metrics
                        .deleted_objects
                        .inc_by((stats.objects_deleted + stats.orphans_deleted) as u64);
                    total += stats;
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "maintenance failed; next pass retries")
                }
            }
        }
        total
    }

    async fn maintain_partition(
        &self,
        p: &Partition,
        gc_grace: Duration,
        sweep_orphans: bool,
    ) -> Result<MaintenanceStats> {
        let mut stats = MaintenanceStats::default();
        let topic_key = self.keys.topic(&p.topic);
        let Some(kv) = self.meta.get(&topic_key).await? else {
            return Ok(stats); // topic deleted; the controller releases the partition
        };
        let config: TopicConfig = schema::decode(&topic_key, &kv.value)?;
        let grace_ms = gc_grace.as_millis() as i64;
        let segments = self.load_segments(p).await?;
        stats.segments_expired = self
            .apply_retention(p, &config, &segments, grace_ms)
            .await?;
        loop {
            let segments = self.load_segments(p).await?;
            let Some(run) = compaction_run(&segments, config.segment_bytes) else {
                break;
            };
            if stats.compactions == MAX_COMPACTIONS_PER_PASS {
                stats.backlog = true;
                break;
            }
            let merged = self.compact(p, &segments[run], grace_ms).await?;
            if merged == 0 {
                break; // lost a race; the next pass looks again
            }
            stats.segments_merged += merged;
            stats.compactions += 1;
        }
        stats.objects_deleted = self.collect_garbage(p).await?;
        if sweep_orphans {
            stats.orphans_deleted = self.sweep_orphans(p, grace_ms).await?;
        }
        Ok(stats)
    }

    async fn load_segments(&self, p: &Partition) -> Result<Vec<Segment>> {
        let (kvs, _) = self
            .meta
            .range(&self.keys.segments(&p.topic, p.partition))
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

    fn fence_guard(&self, p: &Partition) -> Compare {
        Compare::mod_revision(
            self.keys.assignment(&p.topic, p.partition),
            CompareOp::Equal,
            p.assignment_revision,
        )
    }

    fn gc_put(&self, p: &Partition, objects: Vec<(String, Placement)>, grace_ms: i64) -> TxnOp {
        let due_ms = now_ms() + grace_ms;
        let nonce: u32 = rand_nonce();
        let key = format!(
            "{}{due_ms:020}-{nonce:08x}",
            self.keys.gc_records(&p.topic, p.partition)
        );
        TxnOp::put(key, schema::encode(&GcRecord { due_ms, objects }))
    }

    async fn apply_retention(
        &self,
        p: &Partition,
        config: &TopicConfig,
        segments: &[Segment],
        grace_ms: i64,
    ) -> Result<usize> {
        let now = now_ms();
        let mut expired = 0;
        if config.retention_ms > 0 {
            expired = segments
                .iter()
                .take_while(|s| s.record.meta.max_timestamp < now - config.retention_ms)
                .count();
        }
        if config.retention_bytes > 0 {
            let mut total: u64 = segments.iter().map(|s| s.record.meta.size).sum();
            let mut by_size = 0;
            while by_size < segments.len() && total > config.retention_bytes as u64 {
                total -= segments[by_size].record.meta.size;
                by_size += 1;
            }
            expired = expired.max(by_size);
        }
        let expired = expired.min(MAX_MERGE);
        if expired == 0 {
            return Ok(0);
        }
        let doomed = &segments[..expired];
        let mut txn = Txn::new().when([self.fence_guard(p)]);
        for s in doomed {
            txn = txn
                .when([Compare::mod_revision(
                    s.key.clone(),
                    CompareOp::Equal,
                    s.revision,
                )])
                .and_then([TxnOp::delete(s.key.clone())]);
        }
        let objects = doomed
            .iter()
            .map(|s| (s.record.path.clone(), s.record.placement.clone()))
            .collect();
        txn = txn.and_then([self.gc_put(p, objects, grace_ms)]);
        if !self.meta.txn(txn).await?.succeeded {
            return Ok(0);
        }
        tracing::info!(topic = %p.topic, partition = p.partition, segments = expired,
            log_start = segments.get(expired).map(|s| s.record.meta.base_offset), "retention deleted segments");
        Ok(expired)
    }

    async fn compact(&self, p: &Partition, run: &[Segment], grace_ms: i64) -> Result<usize> {
        let mut builder = SegmentBuilder::default();
        // Boxed before they enter the stream: a closure returning the future directly makes
        // the spawned maintenance task fail the `Send` check (a higher-ranked lifetime).
        let reads: Vec<futures::future::BoxFuture<'_, _>> = run
            .iter()
            .map(|s| {
                let path = s.record.object_path();
                async move {
                    self.pool
                        .get_range(&s.record.placement, &path, 0..s.record.meta.data_len())
                        .await
                }
                .boxed()
            })
            .collect();
        let mut reads = futures::stream::iter(reads).buffered(PARALLEL_READS);
        while let Some(data) = reads.next().await {
            for batch in BatchIter::new(data?) {
                builder.append(&batch?)?;
            }
        }
        let merged = builder.finish()?;
        let base = merged.meta.base_offset;
        let path = object_path(
            self.keys.root(),
            &p.topic,
            p.topic_id,
            p.partition,
            base,
            p.epoch,
        );
        let placement = self
            .pool
            .put(&path, merged.chunks.iter().cloned().collect())
            .await?;
        let record = SegmentRecord {
            path: path.to_string(),
            placement: placement.clone(),
            meta: merged.meta,
            epoch: p.epoch,
            created_ms: now_ms(),
        };
        let mut txn = Txn::new().when([self.fence_guard(p)]);
        for s in run {
            txn = txn.when([Compare::mod_revision(
                s.key.clone(),
                CompareOp::Equal,
                s.revision,
            )]);
            if s.key != run[0].key {
                txn = txn.and_then([TxnOp::delete(s.key.clone())]);
            }
        }
        let replaced = run
            .iter()
            .map(|s| (s.record.path.clone(), s.record.placement.clone()))
            .collect();
        txn = txn.and_then([
            TxnOp::put(run[0].key.clone(), schema::encode(&record)),
            self.gc_put(p, replaced, grace_ms),
        ]);
        if !self.meta.txn(txn).await?.succeeded {
            // Lost a race or the partition: the merged object is an orphan; delete it now.
            let _ = self.pool.delete(&placement, &path).await;
            return Ok(0);
        }
        tracing::debug!(topic = %p.topic, partition = p.partition, segments = run.len(), base, "compacted segments");
        Ok(run.len())
    }

    async fn collect_garbage(&self, p: &Partition) -> Result<usize> {
        let (kvs, _) = self
            .meta
            .range(&self.keys.gc_records(&p.topic, p.partition))
            .await?;
        let now = now_ms();
        let mut deleted = 0;
        for kv in kvs {
            let record: GcRecord = schema::decode(&kv.key, &kv.value)?;
            if record.due_ms > now {
                break; // keys sort by due time
            }
            for (path, placement) in &record.objects {
                self.pool
                    .delete(placement, &Path::from(path.as_str()))
                    .await?;
                deleted += 1;
            }
            let txn = Txn::new()
                .when([
                    self.fence_guard(p),
                    Compare::mod_revision(kv.key.clone(), CompareOp::Equal, kv.mod_revision),
                ])
                .and_then([TxnOp::delete(kv.key.clone())]);
            self.meta.txn(txn).await?;
        }
        Ok(deleted)
    }

    async fn sweep_orphans(&self, p: &Partition, grace_ms: i64) -> Result<usize> {
        let mut referenced: HashSet<String> = self
            .load_segments(p)
            .await?
            .into_iter()
            .map(|s| s.record.path)
            .collect();
        let (gc, _) = self
            .meta
            .range(&self.keys.gc_records(&p.topic, p.partition))
            .await?;
        for kv in gc {
            let record: GcRecord = schema::decode(&kv.key, &kv.value)?;
            referenced.extend(record.objects.into_iter().map(|(path, _)| path));
        }
        let prefix = partition_prefix(self.keys.root(), &p.topic, p.topic_id, p.partition);
        let cutoff = now_ms() - grace_ms;
        let mut deleted = 0;
        for node in self.pool.node_ids() {
            let Some(store) = self.pool.store(&node) else {
                continue;
            };
            let objects: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(strata_storage::StorageError::from)?;
            for object in objects {
                let old_enough = object.last_modified.timestamp_millis() < cutoff;
                if old_enough && !referenced.contains(object.location.as_ref()) {
                    store
                        .delete(&object.location)
                        .await
                        .map_err(strata_storage::StorageError::from)?;
                    tracing::info!(%node, path = %object.location, "deleted orphan object");
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

impl Broker {
    /// Deletes the objects of topics that no longer exist (deleted, or deleted and created
    /// again: the folder names the incarnation), once older than `gc_grace`. No partition owner
    /// is left to do this, so the registered broker with the lowest id does it for the cluster.
    pub async fn sweep_deleted_topics(&self, gc_grace: Duration) -> Result<usize> {
        let (brokers, _) = self.meta.range(&self.keys.brokers()).await?;
        let lowest = brokers
            .iter()
            .filter_map(|kv| self.keys.broker_id_of(&kv.key))
            .min();
        if lowest.is_some_and(|id| id != self.id) {
            return Ok(0);
        }
        let (topics, _) = self.meta.range(&self.keys.topics()).await?;
        let mut live = HashSet::new();
        for kv in topics {
            let config: TopicConfig = schema::decode(&kv.key, &kv.value)?;
            if let Some(name) = self.keys.topic_name_of(&kv.key) {
                live.insert(format!("{name}-{:016x}", config.id));
            }
        }
        let root = Path::from(self.keys.root().trim_start_matches('/'));
        let cutoff = now_ms() - gc_grace.as_millis() as i64;
        let mut deleted = 0;
        for node in self.pool.node_ids() {
            let Some(store) = self.pool.store(&node) else {
                continue;
            };
            let listing = store
                .list_with_delimiter(Some(&root))
                .await
                .map_err(strata_storage::StorageError::from)?;
            for folder in listing.common_prefixes {
                if folder.filename().is_none_or(|name| live.contains(name)) {
                    continue;
                }
                let objects: Vec<_> = store
                    .list(Some(&folder))
                    .try_collect()
                    .await
                    .map_err(strata_storage::StorageError::from)?;
                for object in objects
                    .into_iter()
                    .filter(|o| o.last_modified.timestamp_millis() < cutoff)
                {
                    store
                        .delete(&object.location)
                        .await
                        .map_err(strata_storage::StorageError::from)?;
                    deleted += 1;
                }
                tracing::info!(%node, folder = %folder, deleted, "swept objects of a deleted topic");
            }
        }
        Ok(deleted)
    }
}

fn rand_nonce() -> u32 {
    use strata_storage::clock::{RandomSource, ThreadRandom};
    ThreadRandom.next_u64() as u32
}

/// The first run of at least two adjacent segments whose total size fits in `segment_bytes`
/// and in which no segment outweighs twice all the others together. The second rule bounds
/// the rewriting: a byte is copied again only when its segment grows by half at least, so a
/// growing segment is not rewritten whole for every few small ones appended to it.
fn compaction_run(segments: &[Segment], segment_bytes: u64) -> Option<std::ops::Range<usize>> {
    for start in 0..segments.len() {
        let mut end = start;
        let mut size = 0u64;
        while end < segments.len()
            && end - start < MAX_MERGE
            && size + segments[end].record.meta.size <= segment_bytes
        {
            size += segments[end].record.meta.size;
            end += 1;
        }
        let largest = segments[start..end]
            .iter()
            .map(|s| s.record.meta.size)
            .max()
            .unwrap_or(0);
        if end - start >= 2 && largest <= 2 * (size - largest) {
            return Some(start..end);
        }
    }
    None
}

impl From<object_store::Error> for BrokerError {
    fn from(e: object_store::Error) -> Self {
        Self::Storage(e.to_string())
    }
}
