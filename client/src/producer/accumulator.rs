//! Per-partition batching, ordering and sequence numbers: the producer's logic without any I/O.
//!
//! The sender drives it with explicit times, so every rule here is tested without a server.
//!
//! Invariants:
//! - A partition has at most one request in flight; batches wait in `sealed` in send order, and
//!   a failed batch goes back to the front, so records of a partition are stored in the order
//!   they were enqueued.
//! - With idempotence, a batch gets its producer id, epoch and base sequence when it is first
//!   sent and keeps them (and its exact bytes) across retries, so the broker recognises a retry.
//! - A batch that fails for good after getting a sequence leaves a gap the broker would refuse
//!   every later batch for; the partition then moves to a new epoch, which restarts sequences.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use strata_clock::{RandomSource, ThreadRandom};

use bytes::Bytes;
use strata_format::{BatchOptions, Compression, Record, RecordBatch, decode_batch, encode_batch};
use strata_proto::ErrorCode;
use tokio::sync::{Notify, OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use super::{ProducerConfig, RecordMetadata};
use crate::error::{Error, Result};
use crate::partitioner::Partitioner;
use crate::types::TopicPartition;

/// Fixed part of an encoded v2 batch, before its records.
pub(crate) const BATCH_OVERHEAD: usize = strata_format::batch::HEADER_LEN;
/// Batches of one partition in one request. The broker remembers a producer's last five
/// batches per partition, so a resent request of at most five is always recognised as a retry.
pub(crate) const MAX_BATCHES_PER_REQUEST: usize = 5;
/// Bound on one partition's share of a request, well under the connection's message limit.
pub(crate) const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Upper bound of a record's encoded size in a v2 batch: every varint at its widest (length 5,
/// attributes 1, timestamp delta 10, offset delta 5, key and value lengths 5 each, header count
/// 5, and 10 per header). Using a true bound keeps every batch under `max_request_size`.
pub(crate) fn record_size(record: &Record) -> usize {
    const FIXED: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
    let key = record.key.as_ref().map_or(0, Bytes::len);
    let value = record.value.as_ref().map_or(0, Bytes::len);
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, Bytes::len))
        .sum();
    FIXED + key + value + headers
}

/// A fresh random producer id: positive, as the broker requires for idempotence.
pub(crate) fn new_producer_id() -> i64 {
    ((ThreadRandom.next_u64() >> 2) as i64).max(1)
}

/// The delay before retry number `attempts` (1-based): doubling from `retry_backoff` up to
/// `retry_backoff_max`, less up to 20 % jitter so producers that failed together spread out.
pub(crate) fn backoff(config: &ProducerConfig, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let full = config
        .retry_backoff
        .saturating_mul(1 << exponent)
        .min(config.retry_backoff_max);
    full.mul_f64(1.0 - ThreadRandom.next_f64() * 0.2)
}

/// A copy of an error for each of the records it fails (errors are not `Clone`).
pub(crate) fn duplicate(e: &Error) -> Error {
    match e {
        Error::Server { code, message } => Error::Server {
            code: *code,
            message: message.clone(),
        },
        Error::Connect { server, message } => Error::Connect {
            server: server.clone(),
            message: message.clone(),
        },
        Error::Transport(status) => Error::Transport(status.clone()),
        Error::InvalidConfig(m) => Error::InvalidConfig(m.clone()),
        Error::Timeout(d, m) => Error::Timeout(*d, m.clone()),
        Error::BufferFull(n) => Error::BufferFull(*n),
        Error::Closed => Error::Closed,
        Error::Codec(e) => Error::Codec(e.clone()),
    }
}

/// Batches not finished yet, by id, so `flush` can wait for every batch created before it.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    state: Mutex<TrackerState>,
    /// Woken whenever a batch finishes.
    pub(crate) finished: Notify,
}

#[derive(Debug, Default)]
struct TrackerState {
    next: u64,
    open: BTreeSet<u64>,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>) -> Ticket {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.open.insert(id);
        Ticket {
            tracker: Arc::clone(self),
            id,
        }
    }

    /// The id the next batch will get: every batch created so far has a smaller one.
    pub(crate) fn mark(&self) -> u64 {
        self.lock().next
    }

    /// Whether every batch created before `mark` has finished.
    pub(crate) fn finished_before(&self, mark: u64) -> bool {
        self.lock().open.first().is_none_or(|first| *first >= mark)
    }
}

/// A batch's place in the tracker, released however the batch ends (acknowledged, failed,
/// or dropped with a cancelled task), so `flush` can never wait for a batch that is gone.
#[derive(Debug)]
struct Ticket {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.tracker.lock().open.remove(&self.id);
        self.tracker.finished.notify_waiters();
    }
}

/// Who a record's outcome is reported to.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) tx: oneshot::Sender<Result<RecordMetadata>>,
    pub(crate) timestamp: i64,
}

/// The producer session a batch's sequence numbers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sequence {
    pub(crate) session: Session,
    pub(crate) base: i32,
}

#[derive(Debug)]
enum Payload {
    Records(Vec<Record>),
    /// Kept after the first send so a retry resends exactly the same bytes.
    Encoded {
        bytes: Bytes,
        sequence: Option<Sequence>,
    },
}

/// Records of one partition that travel (and succeed or fail) together.
#[derive(Debug)]
pub(crate) struct Batch {
    payload: Payload,
    waiters: Vec<Waiter>,
    /// Sum of the records' `record_size`, an upper bound of the encoded size less the header.
    size: usize,
    created: Instant,
    deadline: Instant,
    memory: Option<OwnedSemaphorePermit>,
    sequence: Option<Sequence>,
    /// Requests this batch was part of that reached the server (or may have).
    attempts: u32,
    needs_resequence: bool,
    resequenced: bool,
    last_error: Option<Error>,
    _ticket: Ticket,
}

impl Batch {
    fn new(now: Instant, config: &ProducerConfig, ticket: Ticket) -> Self {
        Self {
            payload: Payload::Records(Vec::new()),
            waiters: Vec::new(),
            size: 0,
            created: now,
            deadline: now + config.delivery_timeout,
            memory: None,
            sequence: None,
            attempts: 0,
            needs_resequence: false,
            resequenced: false,
            last_error: None,
            _ticket: ticket,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.waiters.len()
    }

    fn push(&mut self, record: Record, waiter: Waiter, size: usize, memory: OwnedSemaphorePermit) {
        if let Payload::Records(records) = &mut self.payload {
            records.push(record);
        }
        self.waiters.push(waiter);
        self.size += size;
        match &mut self.memory {
            Some(held) => held.merge(memory),
            None => self.memory = Some(memory),
        }
    }

    fn options(&self, compression: Compression) -> BatchOptions {
        match self.sequence {
            Some(s) => BatchOptions {
                compression,
                producer_id: s.session.producer_id,
                producer_epoch: s.session.epoch,
                base_sequence: s.base,
            },
            None => BatchOptions {
                compression,
                ..BatchOptions::default()
            },
        }
    }

    /// The batch's wire bytes for its current sequence: the bytes of the last attempt when the
    /// sequence is unchanged (a retry), otherwise a fresh encoding of at most `max_bytes`.
    pub(crate) fn encode(&mut self, compression: Compression, max_bytes: usize) -> Result<Bytes> {
        if let Payload::Encoded { bytes, sequence } = &self.payload
            && *sequence == self.sequence
        {
            return Ok(bytes.clone());
        }
        let records = match std::mem::replace(&mut self.payload, Payload::Records(Vec::new())) {
            Payload::Records(records) => records,
            // Re-sequenced after a failure: rare, so decoding beats keeping every record twice.
            Payload::Encoded { bytes, sequence } => {
                match RecordBatch::parse(bytes.clone()).and_then(|b| decode_batch(&b)) {
                    Ok(records) => records,
                    Err(e) => {
                        self.payload = Payload::Encoded { bytes, sequence };
                        return Err(e.into());
                    }
                }
            }
        };
        let mut encoded = encode_batch(&records, &self.options(compression));
        if compression != Compression::None && encoded.as_ref().is_ok_and(|b| b.len() > max_bytes) {
            // Incompressible data grows a little under compression; the plain encoding always
            // fits, since batches are cut by an upper bound of the uncompressed size.
            encoded = encode_batch(&records, &self.options(Compression::None));
        }
        match encoded {
            Ok(batch) => {
                let bytes = batch.to_bytes();
                self.payload = Payload::Encoded {
                    bytes: bytes.clone(),
                    sequence: self.sequence,
                };
                Ok(bytes)
            }
            Err(e) => {
                self.payload = Payload::Records(records);
                Err(e.into())
            }
        }
    }

    fn succeed(self, tp: &TopicPartition, base_offset: i64) {
        for (i, waiter) in self.waiters.into_iter().enumerate() {
            let offset = if base_offset >= 0 {
                base_offset + i as i64
            } else {
                -1
            };
            // A dropped DeliveryFuture means nobody is waiting for this record.
            let _ = waiter.tx.send(Ok(RecordMetadata {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                timestamp: waiter.timestamp,
            }));
        }
    }

    fn fail(self, error: &Error) {
        for waiter in self.waiters {
            let _ = waiter.tx.send(Err(duplicate(error)));
        }
    }
}

/// One partition's batches.
#[derive(Debug)]
struct Queue {
    tp: TopicPartition,
    open: Option<Batch>,
    sealed: VecDeque<Batch>,
    in_flight: bool,
    retry_at: Option<Instant>,
    /// `None` without idempotence.
    session: Option<Session>,
    next_sequence: i32,
}

impl Queue {
    fn new(tp: TopicPartition, session: Option<Session>) -> Self {
        Self {
            tp,
            open: None,
            sealed: VecDeque::new(),
            in_flight: false,
            retry_at: None,
            session,
            next_sequence: 0,
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.open.is_none() && self.sealed.is_empty() && !self.in_flight
    }

    /// Moves to a new epoch: the broker accepts any first sequence from a newer epoch.
    fn bump(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        if session.epoch == i16::MAX {
            session.producer_id = new_producer_id();
            session.epoch = 0;
        } else {
            session.epoch += 1;
        }
        self.next_sequence = 0;
        tracing::info!(
            topic = %self.tp.topic,
            partition = self.tp.partition,
            producer_id = session.producer_id,
            epoch = session.epoch,
            "producer epoch bumped to restart sequences after a failed batch"
        );
    }

    /// Fails the batches that ran out of delivery time. A sent batch's outcome is unknown, and
    /// the batches sent with it may have been stored after it; re-sequencing those could store
    /// them twice, so they fail with it.
    fn expire(&mut self, now: Instant, config: &ProducerConfig) {
        let mut expired_sent = false;
        let mut gap = false;
        let mut expired = false;
        while let Some(front) = self.sealed.front() {
            let sent = front.attempts > 0;
            if front.deadline > now && !(expired_sent && sent) {
                break;
            }
            let Some(batch) = self.sealed.pop_front() else {
                break;
            };
            expired_sent |= sent;
            gap |= batch.sequence.is_some();
            expired = true;
            self.fail_expired(batch, config);
        }
        if self.sealed.is_empty()
            && let Some(open) = self.open.take_if(|b| b.deadline <= now)
        {
            expired = true;
            self.fail_expired(open, config);
        }
        if expired {
            self.retry_at = None;
        }
        if gap {
            self.bump();
        }
    }

    fn fail_expired(&self, batch: Batch, config: &ProducerConfig) {
        let last = batch
            .last_error
            .as_ref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        tracing::warn!(
            topic = %self.tp.topic,
            partition = self.tp.partition,
            records = batch.count(),
            attempts = batch.attempts,
            "batch expired before it was acknowledged"
        );
        let error = Error::Timeout(
            config.delivery_timeout,
            format!(
                "{}: records not acknowledged within delivery_timeout{last}",
                self.tp
            ),
        );
        batch.fail(&error);
    }

    /// The next request's batches: up to five, in order, with sequences assigned.
    fn take(&mut self) -> Vec<Batch> {
        let mut out: Vec<Batch> = Vec::new();
        let mut bytes = 0;
        while out.len() < MAX_BATCHES_PER_REQUEST
            && let Some(front) = self.sealed.front()
        {
            let count = front.count() as i32;
            let fresh = self
                .session
                .is_some_and(|s| front.sequence.map(|q| q.session) != Some(s));
            // Sequences past i32::MAX would wrap negative, which the broker reads as "not
            // idempotent"; a new epoch starts again from 0.
            let exhausted = fresh && self.next_sequence.checked_add(count).is_none();
            let new_epoch = front.needs_resequence || exhausted;
            // One epoch per request: the broker fences an older epoch once it saw a newer one.
            if !out.is_empty() && (new_epoch || bytes + front.size > MAX_REQUEST_BYTES) {
                break;
            }
            if new_epoch {
                self.bump();
            }
            let Some(mut batch) = self.sealed.pop_front() else {
                break;
            };
            batch.needs_resequence = false;
            if let Some(session) = self.session
                && batch.sequence.map(|s| s.session) != Some(session)
            {
                batch.sequence = Some(Sequence {
                    session,
                    base: self.next_sequence,
                });
                self.next_sequence = self.next_sequence.saturating_add(count);
            }
            bytes += batch.size;
            out.push(batch);
        }
        out
    }

    fn seal(&mut self) -> bool {
        match self.open.take() {
            Some(batch) => {
                self.sealed.push_back(batch);
                true
            }
            None => false,
        }
    }
}

/// What became of one batch of a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored at this base offset (-1 with `Ack::None`).
    Stored(i64),
    Failed(Error),
    /// Never left the client (an earlier batch of the request could not be encoded).
    NotSent,
}

/// One partition's batches to send in one request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) tp: TopicPartition,
    pub(crate) batches: Vec<Batch>,
}

impl Request {
    /// An upper bound of the bytes it puts on the wire.
    pub(crate) fn size(&self) -> usize {
        self.batches.iter().map(|b| b.size + BATCH_OVERHEAD).sum()
    }
}

/// What the sender should do after a request finished.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    /// The server named the topic or partition unknown: the cached partition count is stale.
    pub(crate) stale_metadata: bool,
}

#[derive(Debug)]
struct TopicState {
    partitions: BTreeMap<u32, Queue>,
    count: u32,
    /// The partition records without a key go to until its batch is sealed.
    sticky: Option<u32>,
    round_robin: u32,
}

fn advance_sticky(sticky: &mut Option<u32>, sealed: u32, count: u32) {
    if *sticky == Some(sealed) {
        *sticky = Some((sealed + 1) % count.max(1));
    }
}

/// A record accepted into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub(crate) partition: u32,
    /// The sender has new work (a batch to time or to send).
    pub(crate) wake: bool,
}

/// Every partition's batches.
#[derive(Debug)]
pub(crate) struct Accumulator {
    config: ProducerConfig,
    topics: HashMap<String, TopicState>,
    tracker: Arc<Tracker>,
    producer_id: i64,
}

impl Accumulator {
    pub(crate) fn new(config: ProducerConfig, tracker: Arc<Tracker>) -> Self {
        Self {
            config,
            topics: HashMap::new(),
            tracker,
            producer_id: new_producer_id(),
        }
    }

    /// Adds a record to its partition's open batch. `partition` is the explicit or keyed
    /// choice; `None` lets the partitioner pick. The caller checked that the record fits in a
    /// request and holds `memory` for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        topic: &str,
        partitions: u32,
        partition: Option<u32>,
        record: Record,
        waiter: Waiter,
        size: usize,
        memory: OwnedSemaphorePermit,
        now: Instant,
    ) -> Appended {
        if !self.topics.contains_key(topic) {
            self.topics.insert(
                topic.to_owned(),
                TopicState {
                    partitions: BTreeMap::new(),
                    count: partitions,
                    sticky: None,
                    // A random start spreads producers that start together.
                    round_robin: ThreadRandom.next_u64() as u32,
                },
            );
        }
        let session = self.config.idempotence.then_some(Session {
            producer_id: self.producer_id,
            epoch: 0,
        });
        let t = self
            .topics
            .get_mut(topic)
            .expect("the topic was inserted above");
        let count = partitions.max(1);
        t.count = count;
        let partition = partition.unwrap_or_else(|| match self.config.partitioner {
            Partitioner::Default => match t.sticky {
                Some(p) if p < count => p,
                _ => {
                    let p = ThreadRandom.below(count as usize) as u32;
                    t.sticky = Some(p);
                    p
                }
            },
            Partitioner::RoundRobin => {
                let p = t.round_robin % count;
                t.round_robin = t.round_robin.wrapping_add(1);
                p
            }
        });
        let q = t
            .partitions
            .entry(partition)
            .or_insert_with(|| Queue::new(TopicPartition::new(topic, partition), session));
        let mut work = false;
        if q.open
            .as_ref()
            .is_some_and(|b| BATCH_OVERHEAD + b.size + size > self.config.max_request_size)
        {
            q.seal();
            advance_sticky(&mut t.sticky, partition, count);
            work = true;
        }
        let open = q.open.get_or_insert_with(|| {
            work = true;
            Batch::new(now, &self.config, self.tracker.register())
        });
        let before = open.size;
        open.push(record, waiter, size, memory);
        if open.size >= self.config.batch_size {
            if before < self.config.batch_size || before == 0 {
                advance_sticky(&mut t.sticky, partition, count);
            }
            // A busy partition cannot send this batch yet: let it grow (up to
            // max_request_size) so a backlog leaves in few large batches, not many small ones.
            if !q.in_flight && q.retry_at.is_none_or(|at| at <= now) {
                q.seal();
                work = true;
            }
        }
        Appended {
            partition,
            // In flight, the request's completion brings the sender back anyway.
            wake: work && !q.in_flight,
        }
    }

    /// Seals every open batch so it goes out without waiting for `linger` (for `flush`).
    pub(crate) fn seal_all(&mut self) {
        for t in self.topics.values_mut() {
            for (p, q) in &mut t.partitions {
                if q.seal() {
                    advance_sticky(&mut t.sticky, *p, t.count);
                }
            }
        }
    }

    /// Expires what ran out of time, seals batches whose linger passed, and takes a request
    /// for each partition that can send. Also says when to look again.
    pub(crate) fn ready(&mut self, now: Instant) -> (Vec<Request>, Option<Instant>) {
        let mut requests = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut soonest = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        for t in self.topics.values_mut() {
            let TopicState {
                partitions,
                sticky,
                count,
                ..
            } = t;
            for (p, q) in partitions.iter_mut() {
                if q.in_flight {
                    continue;
                }
                q.expire(now, &self.config);
                if let Some(at) = q.retry_at.filter(|at| *at > now) {
                    soonest(at);
                    if let Some(open) = &q.open {
                        soonest(open.deadline);
                    }
                    continue;
                }
                q.retry_at = None;
                if let Some(open) = &q.open {
                    let due = open.created + self.config.linger;
                    if due <= now || open.size >= self.config.batch_size {
                        q.seal();
                        advance_sticky(sticky, *p, *count);
                    } else {
                        soonest(due);
                    }
                }
                if !q.sealed.is_empty() {
                    let batches = q.take();
                    q.in_flight = true;
                    requests.push(Request {
                        tp: q.tp.clone(),
                        batches,
                    });
                }
            }
        }
        (requests, wake)
    }

    fn queue(&mut self, tp: &TopicPartition) -> Option<&mut Queue> {
        self.topics
            .get_mut(&tp.topic)
            .and_then(|t| t.partitions.get_mut(&tp.partition))
    }

    /// Applies a request's outcomes (one per batch, in order).
    pub(crate) fn complete(
        &mut self,
        request: Request,
        outcomes: Vec<Outcome>,
        now: Instant,
    ) -> Completion {
        let config = &self.config;
        let mut completion = Completion::default();
        let Request { tp, batches } = request;
        let Some(q) = self
            .topics
            .get_mut(&tp.topic)
            .and_then(|t| t.partitions.get_mut(&tp.partition))
        else {
            return completion; // queues are never removed; nothing to update
        };
        q.in_flight = false;
        let mut requeue = Vec::new();
        let mut retry = false;
        let mut gap = false;
        let mut outcomes = outcomes.into_iter();
        for mut batch in batches {
            let outcome = outcomes.next().unwrap_or(Outcome::NotSent);
            match outcome {
                Outcome::Stored(base) => batch.succeed(&tp, base),
                Outcome::NotSent => requeue.push(batch),
                Outcome::Failed(e) => {
                    batch.attempts += 1;
                    if e.is_retriable() {
                        tracing::debug!(
                            topic = %tp.topic,
                            partition = tp.partition,
                            attempts = batch.attempts,
                            error = %e,
                            "produce failed; will retry"
                        );
                        batch.last_error = Some(e);
                        retry = true;
                        requeue.push(batch);
                    } else if e.code() == Some(ErrorCode::InvalidArgument)
                        && q.session.is_some()
                        && !batch.resequenced
                    {
                        // The broker refused the sequence: an earlier batch of this request
                        // failed, or the broker lost this producer's state (a crash with
                        // acks=buffered). The batch was not stored; a new epoch restarts the
                        // sequence, once.
                        tracing::warn!(
                            topic = %tp.topic,
                            partition = tp.partition,
                            error = %e,
                            "sequence refused; resending under a new producer epoch"
                        );
                        batch.needs_resequence = true;
                        batch.resequenced = true;
                        batch.last_error = Some(e);
                        requeue.push(batch);
                    } else {
                        tracing::warn!(
                            topic = %tp.topic,
                            partition = tp.partition,
                            records = batch.count(),
                            error = %e,
                            "produce failed for good"
                        );
                        completion.stale_metadata |= matches!(
                            e.code(),
                            Some(ErrorCode::UnknownPartition | ErrorCode::UnknownTopic)
                        );
                        gap |= batch.sequence.is_some();
                        batch.fail(&e);
                    }
                }
            }
        }
        for batch in requeue.into_iter().rev() {
            q.sealed.push_front(batch);
        }
        if gap {
            q.bump();
        }
        q.retry_at = None;
        if retry && let Some(front) = q.sealed.front() {
            let at = now + backoff(config, front.attempts.max(1));
            q.retry_at = Some(at.min(front.deadline));
        }
        completion
    }

    /// A request task ended without an answer (it panicked): its batches are gone, and so is
    /// the certainty about their sequences.
    pub(crate) fn abandon(&mut self, tp: &TopicPartition) {
        if let Some(q) = self.queue(tp) {
            q.in_flight = false;
            q.bump();
        }
    }

    /// Drops every batch: their records' futures report `Error::Closed`.
    pub(crate) fn clear(&mut self) {
        self.topics.clear();
    }

    /// Whether nothing is buffered or in flight.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.topics
            .values()
            .all(|t| t.partitions.values().all(Queue::is_empty))
    }
}

#[cfg(test)]
mod tests;
