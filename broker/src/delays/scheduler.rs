//! One partition's delayed-message scheduler: finds the delayed originals in the partition's
//! log, and appends each one's copy to the same partition when it is due.

mod reads;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use strata_clock::Clock;
use strata_format::delay::{self, delayed_from};
use strata_format::{BatchOptions, Compression, Record, RecordBatch, decode_batch, encode_batch};
use strata_log::{CacheConfig, LogReader, ReadCache};
use strata_meta::schema::{self, DelayMark};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::pending::{Budget, Pending};
use crate::error::{BrokerError, Result};
use crate::metrics::BrokerMetrics;
use crate::partition::Partition;
use crate::table::LogAccess;
use reads::{covered_by, fetch_window, read_round, spread};
use sweep::Sweep;

/// Most copies in one appended batch, and their bytes: one batch per flush cycle keeps up with
/// tens of thousands of due records a second.
const MAX_COPIES_PER_BATCH: usize = 4_096;
const MAX_COPY_BATCH_BYTES: usize = 512 << 10;
/// How far ahead bodies not held are read back, between deliveries, so due records rarely
/// wait for a read.
const LOOKAHEAD_MS: i64 = 2_000;
/// A sweep of the log starts when the held bodies reach less than this far ahead: it reads
/// the whole pending log, in steps between deliveries, and has to finish before they run out.
const SWEEP_LEAD_MS: i64 = 10_000;
/// Least time from the end of one sweep to the start of the next, so a budget too small for
/// the load, or a log too long to sweep quickly, costs a sweep every few seconds, not one
/// after the other.
const SWEEP_REST: Duration = Duration::from_secs(2);
/// Most records read back per pass, so delivery is never starved by the reads.
const MAX_READS_PER_PASS: usize = 64;
/// Bytes of the log each read back reads from the record it is for. A producer's batches
/// hold records due all over the window, and with the budget holding the bodies due
/// soonest, one large read refills many of them instead of one batch's.
const READ_BACK_BYTES: u64 = 1 << 20;
/// Reads (of the log, or of segments into a cache) in flight at once: a takeover's scan and
/// first deliveries read hundreds of small segments, and one after another they took seconds.
const READS_AT_ONCE: usize = 16;
/// Segments a recovery scan fetches at once: nothing is delivered until it is done, and its
/// segments are small (one per flush cycle until compaction merges them), so the GETs'
/// latency, not their bytes, sets how long it takes.
const SCAN_FETCHES_AT_ONCE: usize = 64;
/// How often the low mark is saved when it moved.
const MARK_EVERY: Duration = Duration::from_secs(2);
/// Longest sleep with nothing due, so a stalled clock or a lost wake-up costs at most this.
const IDLE_WAKE_MS: i64 = 500;
/// Least time between two batches of copies that are not full. Every append is a segment of
/// the partition until compaction merges them, and a tailing reader reads each one: copies
/// appended as soon as each came due made a hundred segments a second per partition, more
/// than readers kept up with (lateness of seconds at 1,700 copies a second per partition).
/// Batches this far apart cost at most this much lateness.
const DELIVERY_SPACING: Duration = Duration::from_millis(50);
/// Bytes per read of the log while scanning.
const SCAN_READ_BYTES: u64 = 4 << 20;
/// The memory a recovery scan's segments may take: it fetches half of it ahead at a time.
const SCAN_CACHE_BYTES: u64 = 64 << 20;
const SCAN_WINDOW_BYTES: u64 = SCAN_CACHE_BYTES / 2;
/// Segments (or flush objects) up to this size are fetched whole ahead of the scan; larger
/// ones are read in ranges as it goes.
const SCAN_MAX_OBJECT_BYTES: u64 = SCAN_CACHE_BYTES / 16;

/// Settings of every scheduler of a broker.
#[derive(Debug, Clone)]
pub(crate) struct SchedulerConfig {
    /// Bytes of pending records' bodies the broker's schedulers hold together.
    pub budget: Arc<Budget>,
    /// Segments read back for bodies not held, shared by the broker's schedulers, so reads
    /// of records in the same small segment cost one GET.
    pub read_cache: Arc<ReadCache>,
    /// The sweeps' segments, shared by the broker's schedulers.
    pub sweep_cache: Arc<ReadCache>,
    pub metrics: Arc<BrokerMetrics>,
    pub clock: Arc<dyn Clock>,
}

pub(crate) struct Scheduler {
    partition: Arc<Partition>,
    log: LogAccess,
    reader: LogReader,
    config: SchedulerConfig,
    pending: Pending,
    /// Everything below this offset has been looked at.
    seen_end: i64,
    saved_low: Option<i64>,
    sweep: Option<Sweep>,
    /// When the last sweep ended, on the monotonic clock.
    swept_at: Option<std::time::Instant>,
}

impl Scheduler {
    pub(crate) fn new(partition: Arc<Partition>, log: LogAccess, config: SchedulerConfig) -> Self {
        let reader = LogReader::new(log.meta.clone(), log.keys.clone(), log.pool.clone())
            .with_cache(config.read_cache.clone());
        Self {
            partition,
            log,
            reader,
            pending: Pending::new(config.budget.clone()),
            config,
            seen_end: 0,
            saved_low: None,
            sweep: None,
            swept_at: None,
        }
    }

    fn topic(&self) -> &str {
        &self.partition.topic
    }

    /// Runs until the partition stops taking writes or `cancel`.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let partition = self.partition.clone();
        let outcome = tokio::select! {
            () = cancel.cancelled() => Ok(()),
            () = partition.stopped_writing() => Ok(()),
            outcome = self.serve() => outcome,
        };
        match outcome {
            Ok(()) => {}
            Err(e) if e.is_fenced_or_gone() => {
                tracing::info!(topic = %self.partition.topic, partition = self.partition.partition, reason = %e, "delay scheduler stopped: the partition moved on");
            }
            Err(e) => {
                tracing::warn!(topic = %self.partition.topic, partition = self.partition.partition, error = %e, "delay scheduler failed; it starts again on the next pass");
            }
        }
    }

    async fn serve(&mut self) -> Result<()> {
        let (feed_tx, mut feed) = mpsc::unbounded_channel();
        let feed_start = self.partition.watch_commits(feed_tx);
        let low = self.saved_mark().await?;
        self.scan(low, feed_start).await?;
        self.seen_end = self.seen_end.max(feed_start);
        tracing::info!(topic = %self.topic(), partition = self.partition.partition, from = low, to = feed_start,
            pending = self.pending.len(), "delay scheduler recovered its pending records");
        let mut last_mark = self.config.clock.now();
        // On the monotonic clock: a wall clock stepping back must not hold deliveries.
        let mut last_delivery = None;
        let mut backlog = false;
        loop {
            while let Ok(batches) = feed.try_recv() {
                self.absorb(&batches)?;
            }
            let now = self.config.clock.unix_millis();
            let due = self.pending.due_by(now, MAX_COPIES_PER_BATCH);
            // Behind a full batch (by count or bytes) the next goes at once; a smaller one
            // waits out the spacing, gathering what comes due meanwhile.
            let spacing_left = last_delivery.map_or(Duration::ZERO, |at| {
                DELIVERY_SPACING.saturating_sub(self.config.clock.now().duration_since(at))
            });
            let full = backlog || due.len() == MAX_COPIES_PER_BATCH;
            if !due.is_empty() && (full || spacing_left.is_zero()) {
                last_delivery = Some(self.config.clock.now());
                backlog = self.deliver(&due).await?;
                continue;
            }
            self.refill(now).await?;
            if self.config.clock.now().duration_since(last_mark) >= MARK_EVERY {
                self.save_mark().await;
                last_mark = self.config.clock.now();
            }
            if self.sweep.is_some() {
                // Its next step comes after the deliveries due meanwhile, without a sleep.
                tokio::task::yield_now().await;
                continue;
            }
            let until_due = self
                .pending
                .next_due()
                .map_or(IDLE_WAKE_MS, |due| due - now);
            let sleep =
                Duration::from_millis(until_due.clamp(1, IDLE_WAKE_MS) as u64).max(spacing_left);
            tokio::select! {
                batches = feed.recv() => match batches {
                    Some(batches) => self.absorb(&batches)?,
                    None => return Ok(()), // the partition finished
                },
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Where the last owner's scheduler got to, or the log's start.
    async fn saved_mark(&mut self) -> Result<i64> {
        let key = self.log.keys.delays(self.topic(), self.partition.partition);
        let saved = match self.log.meta.get(&key).await? {
            Some(kv) => schema::decode::<DelayMark>(&key, &kv.value)
                .ok()
                .filter(|m| m.topic_id == self.partition.topic_id)
                .map(|m| m.low),
            None => None,
        };
        let start = self
            .reader
            .log_start(self.topic(), self.partition.partition)
            .await?;
        self.saved_low = saved;
        Ok(saved.unwrap_or(start).max(start))
    }

    /// Saves the low mark when it moved: the next owner scans from there.
    async fn save_mark(&mut self) {
        let low = self.pending.lowest().unwrap_or(self.seen_end);
        if self.saved_low == Some(low) {
            return;
        }
        let key = self.log.keys.delays(self.topic(), self.partition.partition);
        let mark = DelayMark {
            topic_id: self.partition.topic_id,
            low,
        };
        match self.log.meta.put(&key, schema::encode(&mark), None).await {
            Ok(_) => self.saved_low = Some(low),
            Err(e) => {
                tracing::warn!(topic = %self.topic(), partition = self.partition.partition, error = %e, "saving the delay mark failed; retried later");
            }
        }
    }

    /// Reads the committed log over `[from, to)` and takes in what it holds. Nothing is
    /// delivered until it is done, so its segments are fetched [`SCAN_FETCHES_AT_ONCE`] at a time,
    /// [`SCAN_WINDOW_BYTES`] ahead of the read, into a cache of the scan's own.
    async fn scan(&mut self, from: i64, to: i64) -> Result<()> {
        let reader = self
            .reader
            .clone()
            .with_cache(Arc::new(ReadCache::new(CacheConfig {
                capacity_bytes: SCAN_CACHE_BYTES,
                max_object_bytes: SCAN_MAX_OBJECT_BYTES,
            })));
        let segments: Vec<_> = reader
            .segments(self.topic(), self.partition.partition)
            .await?
            .into_iter()
            .filter(|s| s.meta.next_offset > from && s.meta.base_offset < to)
            .collect();
        let mut fetched = 0;
        let mut offset = from;
        self.seen_end = from;
        while offset < to {
            let reading = segments
                .iter()
                .position(|s| s.meta.next_offset > offset)
                .unwrap_or(segments.len());
            if fetched <= reading {
                fetched = fetch_window(&reader, &segments, reading).await;
            }
            let read = reader
                .read(
                    self.topic(),
                    self.partition.partition,
                    offset,
                    SCAN_READ_BYTES,
                )
                .await?;
            let batches: Vec<RecordBatch> = read
                .batches
                .into_iter()
                .filter(|b| b.base_offset() < to && b.next_offset() > offset)
                .collect();
            let Some(last) = batches.last() else {
                // Committed data below `to` must be readable: a gap would lose what it holds.
                return Err(BrokerError::DelaysInconsistent(format!(
                    "{}/{}: no committed batch at offset {offset} below {to} while recovering delayed records",
                    self.topic(),
                    self.partition.partition
                )));
            };
            offset = last.next_offset();
            self.absorb(&batches)?;
        }
        Ok(())
    }

    /// Takes in committed batches: originals become pending, copies settle theirs.
    fn absorb(&mut self, batches: &[RecordBatch]) -> Result<()> {
        for batch in batches {
            if batch.next_offset() <= self.seen_end {
                continue; // seen by the scan already
            }
            let start = self.seen_end;
            let records = decode_batch(batch).map_err(BrokerError::CorruptBatch)?;
            // The first batch of a scan may begin below its start, where originals may be
            // delivered already and their copies not scanned.
            for record in records.iter().filter(|r| r.offset >= start) {
                self.take_in(record);
            }
            self.seen_end = self.seen_end.max(batch.next_offset());
        }
        Ok(())
    }

    fn take_in(&mut self, record: &Record) {
        // The proxy refuses this header from producers on delay topics, and a topic accepts
        // delays from its creation, so a record carrying it is a copy; a copy follows its
        // original.
        if let Some(original) = delayed_from(&record.headers).filter(|o| *o < record.offset) {
            self.pending.remove(original);
            return;
        }
        if !delay::is_delayed(&record.headers) {
            return;
        }
        let due = match delay::due_time(record) {
            Ok(Some(due)) => due,
            Ok(None) => return,
            Err(e) => {
                // The proxy refuses such records, so this one came another way (an older
                // proxy): consumers do not see it, so it is delivered now rather than never.
                tracing::warn!(topic = %self.topic(), partition = self.partition.partition, offset = record.offset, error = %e,
                    "a stored delayed record has a bad delay header; delivering it now");
                record.timestamp
            }
        };
        self.pending.insert(record.offset, due, record);
    }

    /// Reads back bodies ahead of their time: a step of a sweep of the log while one runs
    /// or is due, otherwise the bodies due within the lookahead that are not held.
    async fn refill(&mut self, now: i64) -> Result<()> {
        if self.sweep.is_none() && self.sweep_due(now) {
            let from = self.pending.lowest().unwrap_or(self.seen_end);
            let reader = self
                .reader
                .clone()
                .with_cache(self.config.sweep_cache.clone());
            self.sweep = Some(Sweep::new(reader, from, self.seen_end));
            self.config.metrics.delays.sweeps.inc();
        }
        // Without a sweep, or with one that has not reached what is due within the
        // lookahead yet, those bodies are read back now rather than when due.
        if self.sweep.is_none()
            || self
                .pending
                .held_until()
                .is_some_and(|until| until <= now + LOOKAHEAD_MS)
        {
            let soon = self
                .pending
                .unheld_due_by(now + LOOKAHEAD_MS, MAX_READS_PER_PASS);
            self.read_back(&soon, false).await?;
        }
        let Some(sweep) = &mut self.sweep else {
            return Ok(());
        };
        let (topic, partition) = (self.partition.topic.clone(), self.partition.partition);
        let step = sweep.step(&topic, partition).await;
        match step {
            Ok(Some(batches)) => return self.load_bodies(&batches, now + LOOKAHEAD_MS),
            Ok(None) => {}
            Err(e) => {
                // Only a head start: what it did not read is read back when due.
                tracing::warn!(topic = %topic, partition, error = %e, "a sweep of the delayed records' log failed; bodies are read back as they come due");
            }
        }
        self.sweep = None;
        self.swept_at = Some(self.config.clock.now());
        Ok(())
    }

    /// Whether the held bodies run out soon and a sweep could hold more of them.
    fn sweep_due(&self, now: i64) -> bool {
        let runs_out_soon = self
            .pending
            .held_until()
            .is_some_and(|until| until <= now + SWEEP_LEAD_MS);
        let rested = self
            .swept_at
            .is_none_or(|at| self.config.clock.now().duration_since(at) >= SWEEP_REST);
        runs_out_soon && rested && self.pending.could_hold_more()
    }

    /// Keeps the bodies of pending records in `batches` as the budget allows, and those due
    /// by `needed_by` whatever it says. Batches with no body to keep are not decoded.
    fn load_bodies(&mut self, batches: &[RecordBatch], needed_by: i64) -> Result<()> {
        for batch in batches {
            for record in self.records_to_load(batch)? {
                if let Some(due) = self.pending.unheld_due(record.offset) {
                    self.pending.load(&record, due <= needed_by);
                }
            }
        }
        Ok(())
    }

    /// The records of `batch`, decoded only when one of them is pending without its body.
    fn records_to_load(&self, batch: &RecordBatch) -> Result<Vec<Record>> {
        if !self
            .pending
            .any_unheld_in(batch.base_offset()..batch.next_offset())
        {
            return Ok(Vec::new());
        }
        decode_batch(batch).map_err(BrokerError::CorruptBatch)
    }

    /// Reads the batches holding `offsets`, [`READS_AT_ONCE`] at a time, and keeps the
    /// pending bodies in them.
    async fn read_back(&mut self, offsets: &[i64], needed: bool) -> Result<()> {
        let mut wanted: Vec<i64> = offsets
            .iter()
            .copied()
            .filter(|o| !self.pending.has_body(*o))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let (topic, partition) = (self.partition.topic.clone(), self.partition.partition);
        while !wanted.is_empty() {
            // Offsets far apart in the list, so that reads at once rarely hit the same batch.
            let picks = spread(&wanted, READS_AT_ONCE);
            let round =
                read_round(&self.reader, (&topic, partition), &picks, READ_BACK_BYTES).await?;
            let mut covered = Vec::with_capacity(picks.len());
            for (offset, batches) in round {
                self.config.metrics.delays.read_backs.inc();
                covered.extend(covered_by(&batches));
                for batch in &batches {
                    for record in self.records_to_load(batch)? {
                        // The records asked for are held whatever the budget when `needed`
                        // (due now); the others only within it, the soonest due first.
                        // A pick is held even ahead of time: left out by the budget, it would
                        // be picked and read again on every pass.
                        let asked = record.offset == offset
                            || (needed && wanted.binary_search(&record.offset).is_ok());
                        self.pending.load(&record, asked);
                    }
                }
            }
            // A record of a batch read is held now, or was left out by the budget; a pick is
            // never read twice, whatever the read returned.
            wanted.retain(|o| !picks.contains(o) && !covered.iter().any(|c| c.contains(o)));
        }
        Ok(())
    }

    /// Appends the copies of `due` records (earliest first) as one batch, durably, and drops
    /// them from the pending set once committed; whether the batch's bytes left some behind.
    async fn deliver(&mut self, due: &[(i64, i64)]) -> Result<bool> {
        let missing: Vec<i64> = due
            .iter()
            .map(|(_, o)| *o)
            .filter(|o| !self.pending.has_body(*o))
            .collect();
        self.read_back(&missing, true).await?;
        let mut copies = Vec::with_capacity(due.len());
        let mut taken = Vec::with_capacity(due.len());
        let mut bytes = 0;
        let mut left_behind = false;
        for &(due_ms, offset) in due {
            let Some(body) = self.pending.take_body(offset) else {
                continue;
            };
            // A batch of copies stays near MAX_COPY_BATCH_BYTES; a larger copy goes alone.
            let size = body.size();
            if !copies.is_empty() && bytes + size > MAX_COPY_BATCH_BYTES {
                self.pending.restore_body(offset, body);
                left_behind = true;
                break;
            }
            bytes += size;
            copies.push(delay::delivered_copy(
                body.clone().into_record(offset),
                offset,
                due_ms,
            ));
            taken.push((offset, body));
        }
        if copies.is_empty() {
            return Ok(false);
        }
        let batch = encode_batch(
            &copies,
            &BatchOptions {
                compression: Compression::None,
                ..BatchOptions::default()
            },
        )
        .map_err(BrokerError::CorruptBatch)?;
        match self.partition.append_own(batch).await {
            Ok(_) => {
                let now = self.config.clock.unix_millis();
                let delays = &self.config.metrics.delays;
                for (offset, _) in &taken {
                    if let Some(due) = self.pending.remove(*offset) {
                        let late_ms = now.saturating_sub(due).max(0);
                        delays.lateness.observe(late_ms as f64 / 1000.0);
                    }
                }
                delays.delivered.inc_by(taken.len() as u64);
                Ok(left_behind)
            }
            Err(BrokerError::Throttled(_)) => {
                for (offset, body) in taken {
                    self.pending.restore_body(offset, body);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
