//! One partition's delayed-message scheduler: finds the delayed originals in the partition's
//! log, and appends each one's copy to the same partition when it is due.

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

/// Most copies in one appended batch, and their bytes: one batch per flush cycle keeps up with
/// tens of thousands of due records a second.
const MAX_COPIES_PER_BATCH: usize = 4_096;
const MAX_COPY_BATCH_BYTES: usize = 512 << 10;
/// How far ahead bodies not held are read back, so due records rarely wait for a read.
const LOOKAHEAD_MS: i64 = 2_000;
/// Most reads back per pass, so delivery is never starved by them.
const MAX_READS_PER_PASS: usize = 64;
/// How often the low mark is saved when it moved.
const MARK_EVERY: Duration = Duration::from_secs(2);
/// Longest sleep with nothing due, so a stalled clock or a lost wake-up costs at most this.
const IDLE_WAKE: Duration = Duration::from_millis(500);
/// Bytes per read of the log while scanning.
const SCAN_READ_BYTES: u64 = 4 << 20;
/// Segments a recovery scan fetches at once, and the memory they may take.
const SCAN_PREFETCH: usize = 16;
const SCAN_CACHE_BYTES: u64 = 64 << 20;

/// Settings of every scheduler of a broker.
#[derive(Debug, Clone)]
pub(crate) struct SchedulerConfig {
    /// Bytes of pending records' bodies the broker's schedulers hold together.
    pub budget: Arc<Budget>,
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
}

impl Scheduler {
    pub(crate) fn new(partition: Arc<Partition>, log: LogAccess, config: SchedulerConfig) -> Self {
        let reader = LogReader::new(log.meta.clone(), log.keys.clone(), log.pool.clone());
        Self {
            partition,
            log,
            reader,
            pending: Pending::new(config.budget.clone()),
            config,
            seen_end: 0,
            saved_low: None,
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
        loop {
            while let Ok(batches) = feed.try_recv() {
                self.absorb(&batches)?;
            }
            let now = self.config.clock.unix_millis();
            let due = self.pending.due_by(now, MAX_COPIES_PER_BATCH);
            if !due.is_empty() {
                self.deliver(&due).await?;
                continue;
            }
            self.read_ahead(now).await?;
            if self.config.clock.now().duration_since(last_mark) >= MARK_EVERY {
                self.save_mark().await;
                last_mark = self.config.clock.now();
            }
            let sleep = self.pending.next_due().map_or(IDLE_WAKE, |due| {
                Duration::from_millis(due.saturating_sub(now).clamp(1, 500) as u64)
            });
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
    /// delivered until it is done, so its segments are fetched [`SCAN_PREFETCH`] at a time
    /// into a cache of the scan's own rather than one GET after another.
    async fn scan(&mut self, from: i64, to: i64) -> Result<()> {
        let reader = self
            .reader
            .clone()
            .with_cache(Arc::new(ReadCache::new(CacheConfig {
                capacity_bytes: SCAN_CACHE_BYTES,
                max_object_bytes: SCAN_CACHE_BYTES / SCAN_PREFETCH as u64,
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
            // Keep the next segments fetched ahead of the read.
            let reading = segments
                .iter()
                .position(|s| s.meta.next_offset > offset)
                .unwrap_or(segments.len());
            if fetched <= reading {
                let window = &segments[reading..segments.len().min(reading + SCAN_PREFETCH)];
                // Only a head start: a segment compaction replaced meanwhile is read anew below.
                let _ = futures::future::join_all(window.iter().map(|s| reader.prefetch(s))).await;
                fetched = reading + window.len();
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

    /// Reads back the bodies of records due within the lookahead that are not held.
    async fn read_ahead(&mut self, now: i64) -> Result<()> {
        let soon: Vec<i64> = self
            .pending
            .due_by(now + LOOKAHEAD_MS, usize::MAX)
            .into_iter()
            .map(|(_, offset)| offset)
            .filter(|o| !self.pending.has_body(*o))
            .take(MAX_READS_PER_PASS)
            .collect();
        self.read_back(&soon, false).await
    }

    /// Reads the batches holding `offsets` and keeps the pending bodies in them.
    async fn read_back(&mut self, offsets: &[i64], needed: bool) -> Result<()> {
        let mut offsets = offsets.to_vec();
        offsets.sort_unstable();
        let mut covered = i64::MIN;
        for &offset in &offsets {
            if offset < covered || self.pending.has_body(offset) {
                continue;
            }
            let read = self
                .reader
                .read(self.topic(), self.partition.partition, offset, 1)
                .await?;
            self.config.metrics.delays.read_backs.inc();
            for batch in &read.batches {
                covered = covered.max(batch.next_offset());
                for record in decode_batch(batch).map_err(BrokerError::CorruptBatch)? {
                    // The records asked for are held whatever the budget when `needed` (due
                    // now); the batch's others only within it.
                    let asked = record.offset == offset
                        || (needed && offsets.binary_search(&record.offset).is_ok());
                    self.pending.load(&record, asked);
                }
            }
            if read.batches.is_empty() {
                // Retention keeps every segment from the low mark on, so the log holds every
                // pending record: a miss is a fault to report, not a record to drop.
                return Err(BrokerError::DelaysInconsistent(format!(
                    "{}/{}: the pending delayed record at {offset} is not in the log",
                    self.topic(),
                    self.partition.partition
                )));
            }
        }
        Ok(())
    }

    /// Appends the copies of `due` records (earliest first) as one batch, durably, and drops
    /// them from the pending set once committed.
    async fn deliver(&mut self, due: &[(i64, i64)]) -> Result<()> {
        let missing: Vec<i64> = due
            .iter()
            .map(|(_, o)| *o)
            .filter(|o| !self.pending.has_body(*o))
            .collect();
        self.read_back(&missing, true).await?;
        let mut copies = Vec::with_capacity(due.len());
        let mut taken = Vec::with_capacity(due.len());
        let mut bytes = 0;
        for &(due_ms, offset) in due {
            let Some(body) = self.pending.take_body(offset) else {
                continue;
            };
            // A batch of copies stays near MAX_COPY_BATCH_BYTES; a larger copy goes alone.
            let size = body.size();
            if !copies.is_empty() && bytes + size > MAX_COPY_BATCH_BYTES {
                self.pending.restore_body(offset, body);
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
            return Ok(());
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
                Ok(())
            }
            Err(BrokerError::Throttled(_)) => {
                for (offset, body) in taken {
                    self.pending.restore_body(offset, body);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
