//! The flusher: every cycle, the buffered data of every partition goes into one flush object
//! (a section per partition; several objects when the cycle holds more than
//! [`MAX_FLUSH_OBJECT_BYTES`]), and the sections are then committed together through the log's
//! write protocol (`strata_log::write`) — up to [`PARTITIONS_PER_TXN`] partitions per
//! transaction, each under its own claim's guard. Fencing stays per partition: a section of a
//! partition this writer lost is never committed, whatever else its object holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use strata_config::BrokerSection;
use strata_format::{EncodedSegment, FlushObjectBuilder, SegmentBuilder};
use strata_log::write::{self, CommitUnit, Refusal};
use strata_log::{PARTITIONS_PER_TXN, SegmentRecord, flush_object_path, object_path};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metrics::BrokerMetrics;
use crate::partition::{FlushUnit, Partition, now_ms};
use crate::stall::StorageStall;
use crate::table::{LogAccess, PartitionTable};

/// Objects written at once.
const PARALLEL_PUTS: usize = 16;
/// Commit transactions of one cycle in flight at once.
const PARALLEL_COMMITS: usize = 8;
/// Largest flush object: a cycle with more buffered data writes several, in parallel.
const MAX_FLUSH_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// The unit's batches as one segment (no batch bytes are copied).
fn build_segment(unit: &FlushUnit) -> Result<EncodedSegment> {
    let mut builder = SegmentBuilder::default();
    for batch in &unit.batches {
        builder.append(batch)?;
    }
    Ok(builder.finish()?)
}

/// When flushes start.
#[derive(Debug, Clone, Copy)]
pub struct FlushConfig {
    /// Least time between the starts of two flushes (unless `flush_bytes` are buffered); data
    /// reaching an idle broker is flushed at once.
    pub linger: Duration,
    /// Buffered bytes (all partitions) that start a flush at once.
    pub flush_bytes: usize,
}

impl From<&BrokerSection> for FlushConfig {
    fn from(s: &BrokerSection) -> Self {
        Self {
            linger: Duration::from_millis(s.linger_ms),
            flush_bytes: s.flush_bytes,
        }
    }
}

/// A unit on its way: written to storage once `record` is set, committed after that.
#[derive(Debug)]
struct InFlight {
    partition: Arc<Partition>,
    unit: FlushUnit,
    record: Option<SegmentRecord>,
    /// A commit of this unit failed without an answer (the metadata store went away
    /// mid-call): it may have landed.
    maybe_committed: bool,
}

/// What became of one commit transaction's units.
#[derive(Debug, Default)]
struct ChunkOutcome {
    /// Refused with the guard still holding: to commit again.
    again: Vec<InFlight>,
    /// The store did not answer: kept for the next cycle.
    failed: Vec<InFlight>,
    fenced: usize,
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

/// Turns the buffers of a broker's partitions into committed segments.
#[derive(Debug)]
pub struct Flusher {
    log: LogAccess,
    partitions: Arc<PartitionTable>,
    metrics: Arc<BrokerMetrics>,
    config: FlushConfig,
    /// Partitions ask for a flush through this when data arrives or their buffer is full.
    wanted: Arc<Notify>,
    /// A fenced partition asks the membership loop to read the assignments again: it may
    /// still be assigned here under a newer incarnation.
    reconcile_wanted: Arc<Notify>,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Units written or committed unsuccessfully, tried again first next cycle.
    retry: Mutex<Vec<InFlight>>,
    pub(crate) stall: StorageStall,
}

impl Flusher {
    pub(crate) fn new(
        log: LogAccess,
        partitions: Arc<PartitionTable>,
        metrics: Arc<BrokerMetrics>,
        config: FlushConfig,
        reconcile_wanted: Arc<Notify>,
    ) -> Self {
        Self {
            log,
            partitions,
            metrics,
            config,
            wanted: Arc::new(Notify::new()),
            reconcile_wanted,
            one_at_a_time: tokio::sync::Mutex::new(()),
            retry: Mutex::default(),
            stall: StorageStall::default(),
        }
    }

    /// What partitions notify when they want a flush.
    pub(crate) fn wanted(&self) -> Arc<Notify> {
        self.wanted.clone()
    }

    fn buffered_bytes(&self) -> usize {
        self.partitions
            .all()
            .iter()
            .map(|p| p.buffered_bytes())
            .sum()
    }

    /// Flushes on demand until cancelled. `linger` is the least time between the starts of two
    /// flushes (unless `flush_bytes` are waiting): data arriving at an idle broker is flushed
    /// at once, so a lone durable produce waits one PUT and one commit rather than a fixed
    /// linger on top, while a steady stream still gets at most one flush per linger.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut last_start: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wanted.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if let Some(last) = last_start
                && self.buffered_bytes() < self.config.flush_bytes
            {
                tokio::time::sleep_until(last + self.config.linger).await;
            }
            last_start = Some(tokio::time::Instant::now());
            if self.flush_once().await.retrying > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Runs one flush cycle over every partition with buffered data.
    pub async fn flush_once(&self) -> FlushStats {
        let _one_at_a_time = self.one_at_a_time.lock().await;
        let work = self.collect_work();
        let mut stats = FlushStats {
            partitions: work.len(),
            ..FlushStats::default()
        };
        if work.is_empty() {
            return stats;
        }
        let started = tokio::time::Instant::now();
        let (ready, mut pending, puts) = self.write_segments(work, started).await;
        stats.puts = puts;
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

        self.commit_all(ready, &mut pending, &mut stats).await;
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
        self.metrics.segment_bytes.inc_by(stats.bytes);
        self.metrics.commit_txns.inc_by(stats.txns as u64);
        self.metrics.fenced_partitions.inc_by(stats.fenced as u64);
        self.retry
            .lock()
            .expect("retry mutex poisoned")
            .extend(pending);
        stats
    }

    /// The units to flush: those kept for a retry first, then one new unit per partition
    /// with buffered data and nothing in flight.
    fn collect_work(&self) -> Vec<InFlight> {
        let mut work = std::mem::take(&mut *self.retry.lock().expect("retry mutex poisoned"));
        // Units of partitions released since (moved away, or the broker lost its lease) go:
        // their producers were told to retry elsewhere, and a reopened partition is a new
        // incarnation with units of its own.
        work.retain(|w| w.partition.wants_retry());
        for partition in self.partitions.all() {
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
        work
    }

    /// Writes the units that have no object yet; returns `(written, failed, objects written)`.
    ///
    /// A unit alone becomes a segment object in its partition's folder, as it always did; two
    /// or more share flush objects of up to [`MAX_FLUSH_OBJECT_BYTES`], so a cycle costs one
    /// PUT however many partitions it flushes. Each unit's record points at its section.
    async fn write_segments(
        &self,
        work: Vec<InFlight>,
        started: tokio::time::Instant,
    ) -> (Vec<InFlight>, Vec<InFlight>, usize) {
        let (mut ready, unwritten): (Vec<InFlight>, Vec<InFlight>) =
            work.into_iter().partition(|w| w.record.is_some());
        if unwritten.is_empty() {
            return (ready, Vec::new(), 0);
        }
        self.stall.writing(started);
        let mut pending = Vec::new();
        let mut objects: Vec<Vec<(InFlight, EncodedSegment)>> = Vec::new();
        let mut object_bytes = 0u64;
        for item in unwritten {
            let segment = match build_segment(&item.unit) {
                Ok(segment) => segment,
                Err(e) => {
                    tracing::error!(topic = %item.partition.topic, partition = item.partition.partition, error = %e, "cannot build a segment of buffered batches; will retry");
                    pending.push(item);
                    continue;
                }
            };
            let size = segment.meta.size;
            match objects.last_mut() {
                Some(object) if object_bytes + size <= MAX_FLUSH_OBJECT_BYTES => {
                    object_bytes += size;
                    object.push((item, segment));
                }
                _ => {
                    object_bytes = size;
                    objects.push(vec![(item, segment)]);
                }
            }
        }
        let mut puts = futures::stream::iter(objects)
            .map(|units| self.write_object(units))
            .buffer_unordered(PARALLEL_PUTS);
        let mut objects_written = 0;
        while let Some((written, failed)) = puts.next().await {
            objects_written += usize::from(!written.is_empty());
            ready.extend(written);
            pending.extend(failed);
        }
        if pending.is_empty() {
            self.stall.written();
        }
        (ready, pending, objects_written)
    }

    /// Writes one object holding `units`; returns them as `(written, failed)`.
    async fn write_object(
        &self,
        units: Vec<(InFlight, EncodedSegment)>,
    ) -> (Vec<InFlight>, Vec<InFlight>) {
        let result = if let [(item, segment)] = units.as_slice() {
            self.put_segment(item, segment)
                .await
                .map(|record| vec![record])
        } else {
            self.put_flush_object(&units).await
        };
        let items = units.into_iter().map(|(item, _)| item);
        match result {
            Ok(records) => {
                let written = items
                    .zip(records)
                    .map(|(mut item, record)| {
                        item.record = Some(record);
                        item
                    })
                    .collect();
                (written, Vec::new())
            }
            Err(e) => {
                tracing::warn!(partitions = items.len(), error = %e, "object write failed; will retry");
                (Vec::new(), items.collect())
            }
        }
    }

    /// A segment object of its own, in the partition's folder.
    async fn put_segment(
        &self,
        item: &InFlight,
        segment: &EncodedSegment,
    ) -> Result<SegmentRecord> {
        let p = &item.partition;
        let path = object_path(
            self.log.keys.root(),
            &p.topic,
            p.topic_id,
            p.partition,
            segment.meta.base_offset,
            p.epoch,
        );
        let placement = self
            .log
            .pool
            .put(&path, segment.chunks.iter().cloned().collect())
            .await?;
        self.metrics.flush_objects.inc();
        self.metrics.flush_sections.inc();
        Ok(SegmentRecord {
            path: path.to_string(),
            placement,
            start: 0,
            shared: false,
            meta: segment.meta.clone(),
            epoch: p.epoch,
            created_ms: now_ms(),
        })
    }

    /// One flush object holding a section per unit; the records in the units' order.
    async fn put_flush_object(
        &self,
        units: &[(InFlight, EncodedSegment)],
    ) -> Result<Vec<SegmentRecord>> {
        let mut builder = FlushObjectBuilder::new();
        for (item, segment) in units {
            let p = &item.partition;
            builder.push(&p.topic, p.topic_id, p.partition, segment.clone());
        }
        let object = builder.finish()?;
        let created_ms = now_ms();
        let path = flush_object_path(self.log.keys.root(), &self.log.writer, created_ms);
        let placement = self
            .log
            .pool
            .put(&path, object.chunks.into_iter().collect())
            .await?;
        self.metrics.flush_objects.inc();
        self.metrics.flush_sections.inc_by(units.len() as u64);
        Ok(units
            .iter()
            .zip(object.sections)
            .map(|((item, _), section)| SegmentRecord {
                path: path.to_string(),
                placement: placement.clone(),
                start: section.start,
                shared: true,
                meta: section.meta,
                epoch: item.partition.epoch,
                created_ms,
            })
            .collect())
    }

    /// Commits the written units, [`PARTITIONS_PER_TXN`] per transaction, up to
    /// [`PARALLEL_COMMITS`] transactions at once: the chunks hold different partitions, so
    /// their order does not matter, and a cycle of 1,000 partitions pays about one round trip
    /// per [`PARALLEL_COMMITS`] transactions instead of one per transaction. A refused
    /// transaction is resolved unit by unit: landed ones are acknowledged, fenced ones fenced,
    /// the rest committed again at once; units whose commit failed go to `pending`.
    async fn commit_all(
        &self,
        ready: Vec<InFlight>,
        pending: &mut Vec<InFlight>,
        stats: &mut FlushStats,
    ) {
        let mut queue = ready;
        while !queue.is_empty() {
            let mut chunks = Vec::new();
            while !queue.is_empty() {
                let rest = queue.split_off(queue.len().min(PARTITIONS_PER_TXN));
                chunks.push(std::mem::replace(&mut queue, rest));
            }
            stats.txns += chunks.len();
            let mut commits = futures::stream::iter(chunks)
                .map(|chunk| self.commit_chunk(chunk))
                .buffer_unordered(PARALLEL_COMMITS);
            while let Some(outcome) = commits.next().await {
                queue.extend(outcome.again);
                pending.extend(outcome.failed);
                stats.fenced += outcome.fenced;
            }
        }
    }

    /// Commits one chunk and resolves a refusal.
    async fn commit_chunk(&self, chunk: Vec<InFlight>) -> ChunkOutcome {
        let mut outcome = ChunkOutcome::default();
        match self.commit(&chunk).await {
            Ok(true) => chunk.iter().for_each(|w| w.partition.committed(&w.unit)),
            Ok(false) => {
                for item in chunk {
                    match self.resolve(&item).await {
                        Refusal::Landed(_) => item.partition.committed(&item.unit),
                        Refusal::StillOwned => outcome.again.push(item),
                        Refusal::Fenced => {
                            item.partition.fence(
                                "commit refused: the assignment moved to a newer epoch or a \
                                 newer incarnation claimed the partition",
                            );
                            outcome.fenced += 1;
                            self.reconcile_wanted.notify_one();
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit failed; will retry");
                outcome.failed = chunk
                    .into_iter()
                    .map(|item| InFlight {
                        maybe_committed: true,
                        ..item
                    })
                    .collect();
            }
        }
        outcome
    }

    /// Commits one chunk; false when some guard failed and nothing was written.
    async fn commit(&self, chunk: &[InFlight]) -> Result<bool> {
        let units: Vec<CommitUnit<'_>> = chunk
            .iter()
            .map(|item| CommitUnit {
                claim: item
                    .partition
                    .claim()
                    .expect("only claimed partitions flush"),
                segment: item.record.as_ref().expect("only written units commit"),
                next_offset: item.unit.next_offset,
                producers: item.unit.producers.as_ref(),
            })
            .collect();
        let committed = write::commit(
            self.log.meta.as_ref(),
            &self.log.keys,
            &self.log.writer,
            &units,
            now_ms(),
        )
        .await?;
        Ok(committed.is_some())
    }

    async fn resolve(&self, item: &InFlight) -> Refusal {
        write::resolve_refused(
            self.log.meta.as_ref(),
            &self.log.keys,
            item.partition
                .claim()
                .expect("only claimed partitions flush"),
            item.record.as_ref().expect("only written units commit"),
            item.maybe_committed,
        )
        .await
    }
}
