//! One partition's state machine: `Start → Recover → Write → (Closing → Closed) | Fenced`.
//!
//! Start is entered when the broker sees an assignment naming it; Recover claims the partition
//! through the log's write protocol (`strata_log::write`: read the checkpoint, write one with
//! the new epoch; nothing is copied). In Write, batches get dense offsets under one lock and
//! wait in a bounded buffer for the flusher, which writes them to storage and commits them under
//! the claim's guard. A commit refused because a newer owner holds the partition fences it: its
//! buffer is dropped and every waiting producer hears `NOT_LEADER`.

mod producers;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use strata_config::{BrokerSection, Config};
use strata_format::RecordBatch;
use strata_log::{Claim, ProducerState};
use strata_meta::schema::{Assignment, Keyspace};
use strata_meta::{MetaStore, Revision};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::error::{BrokerError, Result};

/// Where a partition is in its life on this broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PartitionState {
    Start,
    Recover,
    Write,
    Closing,
    Closed,
    Fenced,
}

impl fmt::Display for PartitionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// When a produce is acknowledged (Kafka's acks 0 / 1 / all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ack {
    /// As soon as the batch is accepted; no offset guarantee survives any failure.
    None,
    /// Once the batch is in the broker's buffer: lost if the broker crashes before the flush.
    Buffered,
    /// Once the batch is in storage and committed in metadata.
    #[default]
    Durable,
}

/// Per-partition limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted record batch (Kafka's `message.max.bytes`).
    pub max_batch_bytes: usize,
    /// Buffered bytes above which producers wait (back-pressure).
    pub max_buffer_bytes: usize,
    /// How long a producer waits for buffer space before hearing `THROTTLED`.
    pub buffer_wait: Duration,
}

impl From<&BrokerSection> for Limits {
    fn from(s: &BrokerSection) -> Self {
        Self {
            max_batch_bytes: s.max_batch_bytes,
            max_buffer_bytes: s.max_buffer_bytes,
            buffer_wait: Duration::from_millis(s.buffer_wait_ms),
        }
    }
}

/// The shipped `[broker]` settings.
impl Default for Limits {
    fn default() -> Self {
        Self::from(&Config::shipped().broker)
    }
}

/// The committed position and state, broadcast to producers waiting for durable acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub high_watermark: i64,
    pub state: PartitionState,
}

/// A set of buffered batches taken by the flusher, with the producer state that matches them.
#[derive(Debug)]
pub(crate) struct FlushUnit {
    pub batches: Vec<RecordBatch>,
    pub next_offset: i64,
    pub producers: Option<ProducerState>,
    /// The unit's place among the partition's units: they commit in this order.
    pub seq: u64,
    /// When the flusher took it, and when its object was written.
    pub taken: Instant,
    pub written: Option<Instant>,
}

/// How many committed units' times a partition keeps: a durable produce looks its unit up
/// right after the commit wakes it, a few units back at most.
const RECENT_UNITS: usize = 16;

/// When a committed unit's steps happened.
#[derive(Debug, Clone, Copy)]
struct UnitTimes {
    start: i64,
    end: i64,
    taken: Instant,
    written: Instant,
    committed: Instant,
}

/// Where a durably acknowledged batch spent its time on the broker, from its arrival:
/// durations on the broker's own clock, so a proxy can place them on its clock without skew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTimes {
    /// From its arrival until a flush took it.
    pub buffered: Duration,
    /// Writing the flush's object to storage.
    pub put: Duration,
    /// Waiting for the commits before it, and its own.
    pub commit: Duration,
}

#[derive(Debug)]
struct Inner {
    state: PartitionState,
    /// Next offset to assign.
    next_offset: i64,
    buffer: Vec<RecordBatch>,
    buffer_bytes: usize,
    producers: ProducerState,
    producers_dirty: bool,
    /// Units taken by the flusher, and of those the ones committed. Several may be in
    /// flight (their flush cycles overlap); they commit in the order they were taken.
    units_taken: u64,
    units_committed: u64,
    /// End of the last committed unit, kept with the feed under one lock so a watcher of
    /// commits learns exactly where its feed starts.
    committed_end: i64,
    /// Where committed batches go for the delayed-message scheduler, when one watches.
    commit_feed: Option<CommitFeed>,
    /// The last units committed, oldest first.
    recent_units: VecDeque<UnitTimes>,
}

/// Receives every batch of a partition as it commits.
pub(crate) type CommitFeed = tokio::sync::mpsc::UnboundedSender<Vec<RecordBatch>>;

/// One partition owned by this broker at one epoch.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub partition: u32,
    pub topic_id: u64,
    pub epoch: u64,
    assignment: Assignment,
    /// Mod revision of the assignment seen at Start; the claim compares it.
    assignment_revision: Revision,
    /// Set by Recover: what every commit of this incarnation must compare
    /// (`strata_log::write`).
    claim: OnceLock<Claim>,
    limits: Limits,
    inner: Mutex<Inner>,
    progress: watch::Sender<Progress>,
    flush_wanted: Arc<Notify>,
}

impl Partition {
    /// Start: the broker saw an assignment naming it. The partition takes no writes until
    /// [`recover`](Self::recover) has claimed it.
    pub fn start(
        topic: &str,
        partition: u32,
        assignment: &Assignment,
        assignment_revision: Revision,
        limits: Limits,
        flush_wanted: Arc<Notify>,
    ) -> Self {
        let (progress, _) = watch::channel(Progress {
            high_watermark: 0,
            state: PartitionState::Start,
        });
        tracing::info!(%topic, partition, epoch = assignment.epoch, "partition starting");
        Self {
            topic: topic.into(),
            partition,
            topic_id: assignment.topic_id,
            epoch: assignment.epoch,
            assignment: assignment.clone(),
            assignment_revision,
            claim: OnceLock::new(),
            limits,
            inner: Mutex::new(Inner {
                state: PartitionState::Start,
                next_offset: 0,
                buffer: Vec::new(),
                buffer_bytes: 0,
                producers: ProducerState::default(),
                producers_dirty: false,
                units_taken: 0,
                units_committed: 0,
                committed_end: 0,
                commit_feed: None,
                recent_units: VecDeque::new(),
            }),
            progress,
            flush_wanted,
        }
    }

    /// Recover: claim the partition through the log's write protocol (which reads the
    /// checkpoint and producer state and writes a checkpoint with this epoch), then Write.
    /// Nothing is copied. A partition that fails to recover is finished (Fenced when a newer
    /// owner holds it, Closed otherwise).
    pub async fn recover(&self, meta: &dyn MetaStore, keys: &Keyspace, writer: &str) -> Result<()> {
        self.enter(PartitionState::Start, PartitionState::Recover)?;
        tracing::info!(topic = %self.topic, partition = self.partition, epoch = self.epoch, "partition recovering");
        let claimed = strata_log::write::claim(
            meta,
            keys,
            writer,
            &self.topic,
            self.partition,
            &self.assignment,
            self.assignment_revision,
            now_ms(),
        )
        .await;
        let recovered = match claimed {
            Ok(recovered) => recovered,
            Err(e) => {
                let e = BrokerError::from(e);
                self.finish(match e {
                    BrokerError::Fenced { .. } => PartitionState::Fenced,
                    _ => PartitionState::Closed,
                });
                return Err(e);
            }
        };
        let next_offset = recovered.next_offset;
        let _ = self.claim.set(recovered.claim);
        {
            let mut inner = self.lock();
            if inner.state != PartitionState::Recover {
                // Released while recovering: the claim stands in the store, unused.
                return Err(self.refuse(inner.state));
            }
            inner.state = PartitionState::Write;
            inner.next_offset = next_offset;
            inner.committed_end = next_offset;
            inner.producers = recovered.producers;
        }
        self.progress.send_replace(Progress {
            high_watermark: next_offset,
            state: PartitionState::Write,
        });
        tracing::info!(topic = %self.topic, partition = self.partition, epoch = self.epoch, next_offset, "partition recovered");
        Ok(())
    }

    /// Moves from `from` to `to`, or refuses with the state it is in.
    fn enter(&self, from: PartitionState, to: PartitionState) -> Result<()> {
        let mut inner = self.lock();
        if inner.state != from {
            return Err(self.refuse(inner.state));
        }
        inner.state = to;
        let hw = self.progress.borrow().high_watermark;
        self.progress.send_replace(Progress {
            high_watermark: hw,
            state: to,
        });
        Ok(())
    }

    /// The claim every commit of this partition carries; set once recovered.
    pub(crate) fn claim(&self) -> Option<&Claim> {
        self.claim.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("partition mutex poisoned")
    }

    pub fn state(&self) -> PartitionState {
        self.lock().state
    }

    pub fn high_watermark(&self) -> i64 {
        self.progress.borrow().high_watermark
    }

    /// Bytes waiting for the flusher.
    pub fn buffered_bytes(&self) -> usize {
        self.lock().buffer_bytes
    }

    fn refuse(&self, state: PartitionState) -> BrokerError {
        match state {
            PartitionState::Fenced => BrokerError::Fenced {
                topic: self.topic.clone(),
                partition: self.partition,
                epoch: self.epoch,
            },
            other => BrokerError::NotLeader {
                topic: self.topic.clone(),
                partition: self.partition,
                reason: format!("partition is {other}"),
            },
        }
    }

    /// Appends one validated batch and returns its base offset once `ack` is satisfied.
    pub async fn append(&self, batch: RecordBatch, ack: Ack) -> Result<i64> {
        let (base, end) = self.enqueue(batch).await?;
        if ack == Ack::Durable {
            self.wait_committed(end).await?;
        }
        Ok(base)
    }

    /// Waits until every offset below `end` is committed.
    pub async fn wait_committed(&self, end: i64) -> Result<()> {
        let mut progress = self.progress.subscribe();
        let outcome = progress
            .wait_for(|p| {
                p.high_watermark >= end
                    || !matches!(p.state, PartitionState::Write | PartitionState::Closing)
            })
            .await
            .map(|p| *p);
        match outcome {
            Ok(p) if p.high_watermark >= end => Ok(()),
            Ok(p) => Err(self.refuse(p.state)),
            Err(_) => Err(BrokerError::ShuttingDown),
        }
    }

    /// Where a batch that arrived at `arrived` and ends at `end` spent its time, once
    /// committed; `None` when its unit is no longer among the recent ones.
    pub fn store_times(&self, arrived: Instant, end: i64) -> Option<StoreTimes> {
        let inner = self.lock();
        let unit = inner
            .recent_units
            .iter()
            .find(|u| u.start < end && end <= u.end)?;
        // A resent batch taken before this arrival counts from the flush.
        let arrived = arrived.min(unit.taken);
        Some(StoreTimes {
            buffered: unit.taken - arrived,
            put: unit.written.saturating_duration_since(unit.taken),
            commit: unit.committed.saturating_duration_since(unit.written),
        })
    }

    /// Buffers one validated batch with its offsets assigned; returns `(base, end)` offsets.
    /// A retry of a batch already taken returns the original offsets instead.
    pub async fn enqueue(&self, batch: RecordBatch) -> Result<(i64, i64)> {
        if batch.len() > self.limits.max_batch_bytes {
            return Err(BrokerError::BatchTooLarge {
                size: batch.len(),
                limit: self.limits.max_batch_bytes,
            });
        }
        self.enqueue_any_size(batch).await
    }

    /// Appends a batch the broker made itself (delayed records' copies), durably. The batch
    /// size limit is the producers' (Kafka's `message.max.bytes`): a copy of a record that a
    /// producer sent compressed may be larger, and must still be delivered.
    pub(crate) async fn append_own(&self, batch: RecordBatch) -> Result<i64> {
        let (base, end) = self.enqueue_any_size(batch).await?;
        self.wait_committed(end).await?;
        Ok(base)
    }

    async fn enqueue_any_size(&self, mut batch: RecordBatch) -> Result<(i64, i64)> {
        let mut progress = self.progress.subscribe();
        let deadline = tokio::time::Instant::now() + self.limits.buffer_wait;
        let (base, end) = loop {
            {
                let mut inner = self.lock();
                if inner.state != PartitionState::Write {
                    return Err(self.refuse(inner.state));
                }
                if let Some(original) = producers::check(&mut inner.producers, &batch)? {
                    // A retry of a batch already taken: answer with its original offsets.
                    let end = original + i64::from(batch.last_offset_delta()) + 1;
                    break (original, end);
                }
                if inner.buffer_bytes == 0
                    || inner.buffer_bytes + batch.len() <= self.limits.max_buffer_bytes
                {
                    let base = inner.next_offset;
                    batch.set_base_offset(base);
                    inner.next_offset = batch.next_offset();
                    inner.buffer_bytes += batch.len();
                    producers::record(&mut inner.producers, &batch);
                    inner.producers_dirty |= batch.is_idempotent();
                    let end = inner.next_offset;
                    inner.buffer.push(batch);
                    break (base, end);
                }
            }
            // Buffer full: wait for a flush to make room (back-pressure), bounded.
            self.flush_wanted.notify_one();
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(BrokerError::ShuttingDown),
                Err(_) => {
                    return Err(BrokerError::Throttled(format!(
                        "{}/{}: write buffer full ({} bytes) for {:?}",
                        self.topic,
                        self.partition,
                        self.limits.max_buffer_bytes,
                        self.limits.buffer_wait
                    )));
                }
            }
        };
        self.flush_wanted.notify_one();
        Ok((base, end))
    }

    /// Takes everything buffered for one flush, unless `max_in_flight` units of this
    /// partition are already being flushed.
    pub(crate) fn take_unit(&self, max_in_flight: u64) -> Option<FlushUnit> {
        let mut inner = self.lock();
        if inner.units_taken - inner.units_committed >= max_in_flight
            || inner.buffer.is_empty()
            || !matches!(inner.state, PartitionState::Write | PartitionState::Closing)
        {
            return None;
        }
        let seq = inner.units_taken;
        inner.units_taken += 1;
        inner.buffer_bytes = 0;
        let producers = std::mem::take(&mut inner.producers_dirty).then(|| inner.producers.clone());
        let unit = FlushUnit {
            batches: std::mem::take(&mut inner.buffer),
            next_offset: inner.next_offset,
            producers,
            seq,
            taken: Instant::now(),
            written: None,
        };
        drop(inner);
        // The buffer has room again now, not only at the commit: wake producers waiting for
        // space (waiters for a commit re-check and sleep on).
        self.progress.send_modify(|_| {});
        Some(unit)
    }

    /// The flusher committed `unit` (the next in order): its batches are readable and their
    /// producers acked.
    pub(crate) fn committed(&self, unit: &FlushUnit) {
        let state = {
            let mut inner = self.lock();
            // A partition finished meanwhile counts every unit as done already.
            inner.units_committed = inner.units_committed.max(unit.seq + 1);
            inner.committed_end = inner.committed_end.max(unit.next_offset);
            if inner.recent_units.len() == RECENT_UNITS {
                inner.recent_units.pop_front();
            }
            let committed = Instant::now();
            inner.recent_units.push_back(UnitTimes {
                start: unit
                    .batches
                    .first()
                    .map_or(unit.next_offset, RecordBatch::base_offset),
                end: unit.next_offset,
                taken: unit.taken,
                written: unit.written.unwrap_or(committed),
                committed,
            });
            if let Some(feed) = &inner.commit_feed
                && feed.send(unit.batches.clone()).is_err()
            {
                inner.commit_feed = None;
            }
            inner.state
        };
        self.progress.send_replace(Progress {
            high_watermark: unit.next_offset,
            state,
        });
    }

    /// Sends every batch committed from now on to `feed`, replacing any earlier watcher;
    /// returns the offset the feed starts at (everything below it was committed before).
    pub(crate) fn watch_commits(&self, feed: CommitFeed) -> i64 {
        let mut inner = self.lock();
        inner.commit_feed = Some(feed);
        inner.committed_end
    }

    /// Waits until the partition stops taking writes (closing, released or fenced).
    pub(crate) async fn stopped_writing(&self) {
        let mut progress = self.progress.subscribe();
        let _ = progress
            .wait_for(|p| {
                p.state != PartitionState::Write
                    && p.state != PartitionState::Recover
                    && p.state != PartitionState::Start
            })
            .await;
    }

    /// Whether `unit` is the next of this partition's units to commit: the ones before it
    /// have committed.
    pub(crate) fn commits_next(&self, unit: &FlushUnit) -> bool {
        self.lock().units_committed == unit.seq
    }

    /// The unit could not be written; it stays with the flusher for a retry.
    pub(crate) fn wants_retry(&self) -> bool {
        matches!(
            self.state(),
            PartitionState::Write | PartitionState::Closing
        )
    }

    /// The assignment moved on: drop everything buffered and fail every waiter.
    pub(crate) fn fence(&self, reason: &str) {
        self.finish(PartitionState::Fenced);
        tracing::warn!(topic = %self.topic, partition = self.partition, epoch = self.epoch, %reason, "partition fenced");
    }

    /// Stop taking writes; what is buffered still gets flushed (shutdown).
    pub fn begin_closing(&self) {
        let mut inner = self.lock();
        if inner.state == PartitionState::Write {
            inner.state = PartitionState::Closing;
        }
        let hw = self.progress.borrow().high_watermark;
        self.progress.send_replace(Progress {
            high_watermark: hw,
            state: inner.state,
        });
    }

    /// True when nothing is buffered or being flushed.
    pub fn is_drained(&self) -> bool {
        let inner = self.lock();
        inner.buffer.is_empty() && inner.units_taken == inner.units_committed
    }

    /// Released: whatever is still buffered is dropped and its producers hear `NOT_LEADER`.
    pub fn close(&self) {
        self.finish(PartitionState::Closed);
    }

    fn finish(&self, state: PartitionState) {
        let mut inner = self.lock();
        if matches!(inner.state, PartitionState::Fenced | PartitionState::Closed) {
            return;
        }
        inner.state = state;
        inner.buffer.clear();
        inner.commit_feed = None;
        inner.buffer_bytes = 0;
        // Units still with the flusher are dropped by it (they no longer want a retry).
        inner.units_committed = inner.units_taken;
        let hw = self.progress.borrow().high_watermark;
        self.progress.send_replace(Progress {
            high_watermark: hw,
            state,
        });
    }
}

pub(crate) fn now_ms() -> i64 {
    use strata_clock::Clock;
    strata_clock::SystemClock.unix_millis()
}
