//! One prefetching task per assigned partition, all feeding one bounded channel.
//!
//! Each task long-polls its partition from its position and hands over the records it got;
//! the channel's bound is the consumer's memory bound. A seek or a revocation stops the task
//! and starts another with a new epoch, so records still queued from the old one are told
//! apart and dropped.

use std::collections::HashMap;
use std::time::Duration;

use strata_format::select::Selector;
use strata_format::{RecordBatch, decode_batch};
use strata_proto::ErrorCode;
use strata_proto::v1;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ConsumerRecord;
use crate::connection::Connection;
use crate::error::{Error, Result, check};
use crate::types::{Offset, TopicPartition};

/// Fetch answers waiting to be polled, across all partitions.
pub(super) const QUEUED_FETCHES: usize = 64;

/// What one fetch task delivered.
#[derive(Debug)]
pub(super) struct Fetched {
    pub tp: TopicPartition,
    pub epoch: u64,
    pub records: Result<Vec<ConsumerRecord>>,
    /// Where the partition's position goes once these records are handed out: past records
    /// the tag expression left out too.
    pub next_offset: i64,
}

#[derive(Debug, Clone)]
pub(super) struct FetchSettings {
    pub max_bytes: u32,
    pub max_wait: Duration,
    /// Where to go when the position is no longer in the log (Earliest or Latest).
    pub reset: Offset,
    /// The tag expression the proxy filters with; empty for every record.
    pub tags: String,
    /// The property filter the proxy filters with; empty for none.
    pub filter: String,
    /// The swimlane served (empty: the main lane), and whether with the main lane's records.
    pub lane: String,
    pub lane_with_main: bool,
    /// Both, parsed: records are checked again here, so a proxy that predates a filter and
    /// ignores it cannot hand out records the consumer did not select.
    pub selector: Selector,
    /// The consumer's group (empty: none), named in message traces.
    pub group: String,
}

#[derive(Debug)]
pub(super) struct Fetchers {
    connection: Connection,
    settings: FetchSettings,
    tx: mpsc::Sender<Fetched>,
    rx: mpsc::Receiver<Fetched>,
    running: HashMap<TopicPartition, (u64, CancellationToken)>,
    tasks: JoinSet<()>,
    next_epoch: u64,
}

impl Fetchers {
    pub fn new(connection: Connection, settings: FetchSettings) -> Self {
        let (tx, rx) = mpsc::channel(QUEUED_FETCHES);
        Self {
            connection,
            settings,
            tx,
            rx,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            next_epoch: 1,
        }
    }

    /// Starts fetching `tp` at `offset`, replacing any task it had.
    pub fn start(&mut self, tp: TopicPartition, offset: i64) {
        self.stop(&tp);
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let cancel = CancellationToken::new();
        self.running.insert(tp.clone(), (epoch, cancel.clone()));
        let task = FetchTask {
            connection: self.connection.clone(),
            settings: self.settings.clone(),
            tx: self.tx.clone(),
            tp,
            epoch,
        };
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = task.run(offset) => {}
            }
        });
        // Reap finished tasks so the set does not grow with every seek.
        while self.tasks.try_join_next().is_some() {}
    }

    pub fn stop(&mut self, tp: &TopicPartition) {
        if let Some((_, cancel)) = self.running.remove(tp) {
            cancel.cancel();
        }
    }

    pub fn stop_all(&mut self) {
        for (_, (_, cancel)) in self.running.drain() {
            cancel.cancel();
        }
    }

    pub fn is_running(&self, tp: &TopicPartition) -> bool {
        self.running.contains_key(tp)
    }

    /// Whether `fetched` comes from the current task of its partition.
    pub fn is_current(&self, fetched: &Fetched) -> bool {
        self.running
            .get(&fetched.tp)
            .is_some_and(|(epoch, _)| *epoch == fetched.epoch)
    }

    /// The next delivery, or `None` when `timeout` passes first.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Fetched> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// A fetch answer that has already arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<Fetched> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Fetchers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

struct FetchTask {
    connection: Connection,
    settings: FetchSettings,
    tx: mpsc::Sender<Fetched>,
    tp: TopicPartition,
    epoch: u64,
}

impl FetchTask {
    async fn run(self, mut offset: i64) {
        let mut failures = 0u32;
        loop {
            match self.fetch(offset).await {
                Ok((records, next_offset)) => {
                    failures = 0;
                    let next_offset = records
                        .last()
                        .map_or(offset, |last| last.offset + 1)
                        .max(next_offset);
                    if next_offset == offset {
                        continue;
                    }
                    offset = next_offset;
                    if !self.deliver(Ok(records), next_offset).await {
                        return;
                    }
                }
                Err(Error::Server {
                    code: ErrorCode::OffsetOutOfRange,
                    message,
                }) => {
                    // Retention removed our position (or it was never valid): start over
                    // where the reset policy says, as Kafka's auto.offset.reset does.
                    match resolve_offset(&self.connection, &self.tp, self.settings.reset).await {
                        Ok(reset) => {
                            tracing::warn!(partition = %self.tp, offset, reset, %message, "position out of range; resetting");
                            offset = reset;
                        }
                        Err(e) => failures = self.backoff(failures, &e).await,
                    }
                }
                Err(e) if e.is_retriable() => failures = self.backoff(failures, &e).await,
                Err(e) => {
                    let _ = self.deliver(Err(e), offset).await;
                    return;
                }
            }
        }
    }

    async fn backoff(&self, failures: u32, e: &Error) -> u32 {
        let failures = failures + 1;
        if failures % 10 == 1 {
            tracing::warn!(partition = %self.tp, failures, error = %e, "fetch failed; retrying");
        }
        let delay = Duration::from_millis(100 * u64::from(failures.min(20)));
        tokio::time::sleep(delay).await;
        failures
    }

    async fn deliver(&self, records: Result<Vec<ConsumerRecord>>, next_offset: i64) -> bool {
        self.tx
            .send(Fetched {
                tp: self.tp.clone(),
                epoch: self.epoch,
                records,
                next_offset,
            })
            .await
            .is_ok()
    }

    /// The records from `offset` on that the proxy sent, and where the next fetch starts.
    async fn fetch(&self, offset: i64) -> Result<(Vec<ConsumerRecord>, i64)> {
        let request = v1::FetchRequest {
            topic: self.tp.topic.clone(),
            partition: self.tp.partition,
            offset,
            max_bytes: self.settings.max_bytes,
            max_wait_ms: self.settings.max_wait.as_millis() as u32,
            tags: self.settings.tags.clone(),
            filter: self.settings.filter.clone(),
            lane: self.settings.lane.clone(),
            lane_with_main: self.settings.lane_with_main,
            group: self.settings.group.clone(),
        };
        let answer = self
            .connection
            .grpc()
            .fetch(request)
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        let mut records = Vec::new();
        // Past every batch read, whatever was kept of it: where a proxy too old to say
        // `next_offset` lets the next read start.
        let mut read_end = offset;
        for bytes in answer.batches {
            // Sparse: a filter may have left records out of a batch.
            let batch = RecordBatch::parse_sparse(bytes)?;
            read_end = read_end.max(batch.next_offset());
            for r in decode_batch(&batch)? {
                // A fetch starts at the batch holding `offset`; skip what came before it.
                if r.offset < offset || !self.settings.selector.matches(&r.headers) {
                    continue;
                }
                records.push(ConsumerRecord {
                    topic: self.tp.topic.clone(),
                    partition: self.tp.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
        }
        Ok((records, answer.next_offset.max(read_end)))
    }
}

/// The offset `spec` names in `tp`: earliest, latest (the high watermark), exact, or the
/// first record at or after a timestamp (the high watermark when every record is older).
pub(super) async fn resolve_offset(
    connection: &Connection,
    tp: &TopicPartition,
    spec: Offset,
) -> Result<i64> {
    let timestamp = match spec {
        Offset::At(offset) => return Ok(offset),
        Offset::Earliest => -2,
        Offset::Latest => -1,
        Offset::Timestamp(ts) => ts.max(0),
    };
    let answer = connection
        .grpc()
        .list_offsets(v1::ListOffsetsRequest {
            topic: tp.topic.clone(),
            partition: tp.partition,
            timestamp,
        })
        .await
        .map_err(|s| connection.call_error(s))?
        .into_inner();
    check(answer.error)?;
    if answer.offset < 0 {
        return Box::pin(resolve_offset(connection, tp, Offset::Latest)).await;
    }
    Ok(answer.offset)
}
