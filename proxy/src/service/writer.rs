//! The proxy's own writes (retries, dead letters, replays), idempotent and grouped.
//!
//! A write whose answer is lost (its partition's owner died after committing it) is sent
//! again to the next owner, as a producer's is. Without a producer id the broker would append
//! it twice: a retry delivered twice, a dead letter listed twice. So each partition the proxy
//! writes to gets a writer with a producer id of its own, which numbers its batches as an
//! idempotent producer does, and the broker answers a resent batch with its first offsets.
//! The writer also groups the records queued meanwhile into one batch: many nacks, one
//! durable write.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use strata_clock::{RandomSource as _, ThreadRandom};
use strata_format::{BatchOptions, Record, encode_batch};
use strata_proto::{ErrorCode, v1};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{ProxyService, error};

/// How long one batch may take to write, moves of the partition included.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// A writer with nothing to write for this long stops; the next write starts a new one.
const IDLE: Duration = Duration::from_secs(60);
/// How long the trace topic's writers gather events before writing them: nobody waits for
/// them, and each write is a flush of the broker, which a stream of small ones would keep
/// busy (a consumer's every fetch and commit of a traced topic writes some).
const TRACE_LINGER: Duration = Duration::from_millis(250);
/// Most records, and about the most bytes, one batch groups.
const MAX_RECORDS: usize = 1_000;
const MAX_BYTES: usize = 512 << 10;

/// What is done with a record's offset, or with the failure to write it.
pub(super) type Reply = Box<dyn FnOnce(Result<i64, v1::Error>) + Send>;
/// A record to write and where its offset goes.
type Queued = (Record, Reply);

/// The writers of one proxy, one per partition written lately.
#[derive(Debug, Default)]
pub(super) struct Writers {
    queues: Mutex<HashMap<(String, u32), mpsc::UnboundedSender<Queued>>>,
}

/// A producer id of the proxy's own: random, with bit 61 set, so it can never be one the
/// Kafka listener hands out (a counter from 1,000 growing by 1,000 per proxy).
fn own_producer_id() -> i64 {
    ((ThreadRandom.next_u64() >> 3) | (1 << 61)) as i64
}

impl ProxyService {
    /// Writes `record` to `topic`/`partition` durably, grouped with the proxy's other writes
    /// there, idempotently; its offset.
    pub(super) async fn write_own(
        &self,
        topic: &str,
        partition: u32,
        record: Record,
    ) -> Result<i64, v1::Error> {
        let (reply, answer) = oneshot::channel();
        let reply: Reply = Box::new(move |outcome| {
            let _ = reply.send(outcome);
        });
        self.queue_own(topic, partition, record, reply);
        answer.await.unwrap_or_else(|_| {
            Err(error(
                ErrorCode::Internal,
                format!("the writer of {topic}/{partition} stopped"),
            ))
        })
    }

    /// Queues `record` for `topic`/`partition` like [`Self::write_own`] without waiting:
    /// `reply` gets the outcome.
    pub(super) fn queue_own(&self, topic: &str, partition: u32, record: Record, reply: Reply) {
        let key = (topic.to_owned(), partition);
        {
            // Sent under the lock a writer stops under, so no record queues behind its stop.
            let mut queues = self
                .writers
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let queue = queues
                .entry(key.clone())
                .or_insert_with(|| self.start_writer(key.clone()));
            if let Err(mpsc::error::SendError(item)) = queue.send((record, reply)) {
                // Its writer ended another way (the runtime is stopping): start another.
                let queue = self.start_writer(key.clone());
                let _ = queue.send(item);
                queues.insert(key, queue);
            }
        }
    }

    fn start_writer(&self, key: (String, u32)) -> mpsc::UnboundedSender<Queued> {
        let (queue, records) = mpsc::unbounded_channel();
        let service = self.clone();
        // Ends when idle (removing its queue) or when the proxy drops every queue.
        tokio::spawn(async move { service.run_writer(key, records).await });
        queue
    }

    async fn run_writer(&self, key: (String, u32), mut records: mpsc::UnboundedReceiver<Queued>) {
        let (topic, partition) = &key;
        let mut producer_id = own_producer_id();
        let mut sequence: i32 = 0;
        loop {
            let first = match tokio::time::timeout(IDLE, records.recv()).await {
                Ok(Some(first)) => first,
                Ok(None) => return,
                Err(_) => {
                    // Under the lock writers are found by: no write can queue behind the close.
                    let stopped = {
                        let mut queues = self
                            .writers
                            .queues
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        let idle = records.is_empty();
                        if idle {
                            queues.remove(&key);
                            records.close();
                        }
                        idle
                    };
                    if stopped {
                        return;
                    }
                    continue;
                }
            };
            let mut batch = vec![first];
            let mut bytes = 0;
            let gathered = Instant::now() + linger_of(topic);
            while batch.len() < MAX_RECORDS && bytes < MAX_BYTES {
                let next = match records.try_recv() {
                    Ok(next) => next,
                    Err(mpsc::error::TryRecvError::Empty) if Instant::now() < gathered => {
                        match tokio::time::timeout_at(gathered, records.recv()).await {
                            Ok(Some(next)) => next,
                            Ok(None) | Err(_) => break,
                        }
                    }
                    Err(_) => break,
                };
                bytes += next.0.value.as_ref().map_or(0, |v| v.len());
                batch.push(next);
            }
            let (written, replies): (Vec<Record>, Vec<Reply>) = batch.into_iter().unzip();
            let options = BatchOptions {
                producer_id,
                producer_epoch: 0,
                base_sequence: sequence,
                ..BatchOptions::default()
            };
            let outcome = match encode_batch(&written, &options) {
                Ok(encoded) => self.send_batch(topic, *partition, encoded.to_bytes()).await,
                Err(e) => Err(error(ErrorCode::Internal, e.to_string())),
            };
            match outcome {
                Ok(base) => {
                    sequence = sequence.wrapping_add(written.len() as i32);
                    for (i, reply) in replies.into_iter().enumerate() {
                        reply(Ok(base + i as i64));
                    }
                }
                Err(e) => {
                    // The batch may have landed: numbering on would let a different batch
                    // pass for it. A new producer id starts afresh.
                    producer_id = own_producer_id();
                    sequence = 0;
                    for reply in replies {
                        reply(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Sends one batch durably, following the partition when it moves; its base offset.
    async fn send_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: bytes::Bytes,
    ) -> Result<i64, v1::Error> {
        let partitions = vec![v1::PartitionBatches {
            topic: topic.to_owned(),
            partition,
            batches: vec![batch],
            ..Default::default()
        }];
        let deadline = Instant::now() + WRITE_DEADLINE;
        let answer = self
            .forward_all(v1::Ack::Durable as i32, partitions, deadline)
            .await;
        let result = answer
            .into_iter()
            .next()
            .and_then(|p| p.batches.into_iter().next())
            .ok_or_else(|| error(ErrorCode::Internal, format!("no answer writing to {topic}")))?;
        match result.error {
            Some(e) => Err(e),
            None => Ok(result.base_offset),
        }
    }
}

/// How long a writer of `topic` gathers records before it writes them: none, where a caller
/// waits (a nack, a replay), except on the trace topic.
fn linger_of(topic: &str) -> Duration {
    if topic == crate::trace::TRACE_TOPIC {
        TRACE_LINGER
    } else {
        Duration::ZERO
    }
}
