//! The flusher: every cycle, the buffered data of every partition goes into one flush object
//! (a section per partition; several objects when the cycle holds more than
//! [`objects::MAX_FLUSH_OBJECT_BYTES`]), and the sections are then committed together through
//! the log's write protocol (`strata_log::write`) — up to [`strata_log::partitions_per_txn`]
//! partitions per transaction, each under its own claim's guard. Fencing stays per partition:
//! a section of a partition this writer lost is never committed, whatever else its object
//! holds.
//!
//! Cycles are pipelined: up to [`MAX_CYCLES_IN_FLIGHT`] run at once, so their PUTs overlap,
//! and their commits apply in the order the cycles started (a ticket each). A slow PUT then
//! delays the commits behind it but not the PUTs, and a partition may have a unit in each
//! cycle in flight; its units commit in the order they were taken.

mod commit;
mod objects;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strata_config::BrokerSection;
use strata_log::SegmentRecord;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::BrokerMetrics;
use crate::partition::{FlushUnit, Partition};
use crate::stall::StorageStall;
use crate::table::{LogAccess, PartitionTable};

/// Flush cycles in flight at once, and so units of one partition in flight at once.
pub const MAX_CYCLES_IN_FLIGHT: usize = 4;
/// Pause before the next cycle after one that left units to retry (storage or the metadata
/// store failing), so a failing dependency is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// When flushes start.
#[derive(Debug, Clone, Copy)]
pub struct FlushConfig {
    /// The longest wait between the starts of two flushes while the broker is busy (unless
    /// `flush_bytes` are buffered): a broker with no flush in flight flushes at once, so the
    /// linger adapts from 0 when quiet up to this when every cycle overlaps the next.
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
    /// The next cycle's ticket; held while a cycle takes its units, so tickets follow the
    /// order in which units were taken.
    next_ticket: Mutex<u64>,
    /// The ticket whose commits may apply now: each cycle passes the turn on when its
    /// commits are done.
    turn: watch::Sender<u64>,
    /// Units written or committed unsuccessfully, tried again first next cycle.
    retry: Mutex<Vec<InFlight>>,
    pub(crate) stall: StorageStall,
}

/// Passes the turn to the next cycle when dropped, so a cycle that ends in any way never
/// holds up the ones behind it.
struct Turn<'a> {
    turn: &'a watch::Sender<u64>,
    ticket: u64,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let next = self.ticket + 1;
        self.turn.send_if_modified(|t| {
            let moves = *t < next;
            *t = (*t).max(next);
            moves
        });
    }
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
            next_ticket: Mutex::new(0),
            turn: watch::Sender::new(0),
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

    /// Flushes on demand until cancelled, then lets the cycles in flight finish.
    ///
    /// A cycle starts when data is waiting and fewer than [`MAX_CYCLES_IN_FLIGHT`] run: at
    /// once when none runs (a lone durable produce waits one PUT and one commit, no linger),
    /// else `linger` after the previous start, or at once past `flush_bytes` buffered.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut cycles = FuturesUnordered::new();
        let mut wanted = false;
        let mut last_start: Option<Instant> = None;
        let mut not_before = Instant::now();
        loop {
            let may_start = wanted && cycles.len() < MAX_CYCLES_IN_FLIGHT;
            let start_at = match last_start {
                Some(last) if may_start => {
                    if self.buffered_bytes() >= self.config.flush_bytes {
                        Instant::now()
                    } else {
                        last + self.config.linger
                    }
                }
                _ => Instant::now(),
            }
            .max(not_before);
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(stats) = cycles.next(), if !cycles.is_empty() => {
                    let stats: FlushStats = stats;
                    if stats.retrying > 0 {
                        not_before = Instant::now() + RETRY_PAUSE;
                    }
                    // Partitions whose units were all in flight may have data waiting.
                    wanted = true;
                }
                () = self.wanted.notified(), if !wanted => wanted = true,
                () = tokio::time::sleep_until(start_at), if may_start => {
                    wanted = false;
                    if let Some((ticket, work)) = self.begin_cycle() {
                        last_start = Some(Instant::now());
                        cycles.push(self.cycle(ticket, work));
                    }
                }
                // Units kept for a retry need no new data to be tried again.
                () = tokio::time::sleep(Duration::from_millis(200)), if !may_start => wanted = true,
            }
        }
        while cycles.next().await.is_some() {}
    }

    /// Runs one flush cycle over every partition with buffered data, to its end (commits
    /// included, after those of cycles already in flight).
    pub async fn flush_once(&self) -> FlushStats {
        match self.begin_cycle() {
            Some((ticket, work)) => self.cycle(ticket, work).await,
            None => FlushStats::default(),
        }
    }

    /// Takes the next cycle's units and its ticket; `None` when there is nothing to flush.
    fn begin_cycle(&self) -> Option<(u64, Vec<InFlight>)> {
        let mut next = self
            .next_ticket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let work = self.collect_work();
        if work.is_empty() {
            return None;
        }
        let ticket = *next;
        *next += 1;
        Some((ticket, work))
    }

    /// Writes the cycle's units, waits for its turn, commits them, and passes the turn on.
    async fn cycle(&self, ticket: u64, work: Vec<InFlight>) -> FlushStats {
        let turn = Turn {
            turn: &self.turn,
            ticket,
        };
        let mut stats = FlushStats {
            partitions: work.len(),
            ..FlushStats::default()
        };
        let started = Instant::now();
        let (mut ready, mut pending, puts) = self.write_segments(work, started).await;
        stats.puts = puts;
        stats.bytes = ready
            .iter()
            .filter_map(|w| w.record.as_ref())
            .map(|r| r.meta.size)
            .sum();
        let put_done = Instant::now();
        for w in &mut ready {
            w.unit.written = Some(put_done);
        }
        self.metrics
            .flush_timings
            .put
            .observe((put_done - started).as_secs_f64());

        // The sender lives as long as the flusher, so the wait ends when the turn comes.
        let _ = self.turn.subscribe().wait_for(|t| *t >= ticket).await;
        let commit_start = Instant::now();
        self.commit_in_order(ready, &mut pending, &mut stats).await;
        pending.retain(|w| w.partition.wants_retry());
        stats.retrying = pending.len();
        self.retry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(pending);
        drop(turn);

        let commit_time = commit_start.elapsed();
        self.metrics
            .flush_timings
            .commit
            .observe(commit_time.as_secs_f64());
        tracing::debug!(
            ticket,
            partitions = stats.partitions,
            bytes = stats.bytes,
            put_ms = (put_done - started).as_secs_f64() * 1e3,
            turn_wait_ms = (commit_start - put_done).as_secs_f64() * 1e3,
            commit_ms = commit_time.as_secs_f64() * 1e3,
            txns = stats.txns,
            "flushed"
        );
        self.metrics.flushes.inc();
        self.metrics.segment_bytes.inc_by(stats.bytes);
        self.metrics.commit_txns.inc_by(stats.txns as u64);
        self.metrics.fenced_partitions.inc_by(stats.fenced as u64);
        stats
    }

    /// The units to flush: those kept for a retry first, then one new unit per partition
    /// with buffered data and fewer than [`MAX_CYCLES_IN_FLIGHT`] units in flight.
    fn collect_work(&self) -> Vec<InFlight> {
        let mut work = std::mem::take(
            &mut *self
                .retry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // Units of partitions released since (moved away, or the broker lost its lease) go:
        // their producers were told to retry elsewhere, and a reopened partition is a new
        // incarnation with units of its own.
        work.retain(|w| w.partition.wants_retry());
        for partition in self.partitions.all() {
            if let Some(unit) = partition.take_unit(MAX_CYCLES_IN_FLIGHT as u64) {
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
}
