//! The producer's background task: sends what the accumulator has ready — one request in
//! flight per partition, the ready partitions of one broker sharing a call — and feeds the
//! answers back.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use strata_proto::v1;
use tokio::sync::{Notify, Semaphore};
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ProducerConfig;
use super::accumulator::{Accumulator, Outcome, Request, Tracker};
use super::metadata::Metadata;
use crate::connection::Connection;
use crate::error::Error;
use crate::types::TopicPartition;

/// State shared by every handle of one producer and its background task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) connection: Connection,
    pub(crate) config: ProducerConfig,
    pub(crate) accumulator: Mutex<Accumulator>,
    pub(crate) tracker: Arc<Tracker>,
    /// Wakes the sender: a batch to time or to send.
    pub(crate) wake: Notify,
    /// Bytes of records buffered or in flight, bounded by `buffer_memory`.
    pub(crate) memory: Arc<Semaphore>,
    pub(crate) metadata: Metadata,
    pub(crate) cancel: CancellationToken,
    pub(crate) closed: AtomicBool,
}

impl Shared {
    pub(crate) fn new(connection: Connection, config: ProducerConfig) -> Self {
        let tracker = Arc::new(Tracker::default());
        let memory = config.buffer_memory.min(Semaphore::MAX_PERMITS);
        Self {
            metadata: Metadata::new(
                connection.clone(),
                config.metadata_max_age,
                config.request_timeout,
            ),
            connection,
            accumulator: Mutex::new(Accumulator::new(config.clone(), Arc::clone(&tracker))),
            tracker,
            wake: Notify::new(),
            memory: Arc::new(Semaphore::new(memory)),
            cancel: CancellationToken::new(),
            closed: AtomicBool::new(false),
            config,
        }
    }

    pub(crate) fn accumulator(&self) -> MutexGuard<'_, Accumulator> {
        self.accumulator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Largest request the sender builds from several partitions (the proxy accepts 64 MiB).
const MAX_GROUP_BYTES: usize = 8 << 20;
/// Most partitions in one request.
const MAX_GROUP_PARTITIONS: usize = 256;

/// Runs until the producer is closed or dropped. Request tasks live in a `JoinSet` owned
/// here, so cancelling (or aborting) this task ends them too.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut requests: JoinSet<Vec<(Request, Vec<Outcome>)>> = JoinSet::new();
    let mut running: HashMap<Id, Vec<TopicPartition>> = HashMap::new();
    loop {
        let (ready, wake_at) = shared.accumulator().ready(Instant::now());
        for group in group_by_owner(&shared, ready) {
            let tps = group.iter().map(|r| r.tp.clone()).collect();
            let handle = requests.spawn(send(Arc::clone(&shared), group));
            running.insert(handle.id(), tps);
        }
        let sleep = async {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => break,
            Some(joined) = requests.join_next_with_id() => match joined {
                Ok((id, answered)) => {
                    running.remove(&id);
                    for (request, outcomes) in answered {
                        let topic = request.tp.topic.clone();
                        let completion =
                            shared
                                .accumulator()
                                .complete(request, outcomes, Instant::now());
                        if completion.stale_metadata {
                            shared.metadata.invalidate(&topic);
                        }
                    }
                }
                Err(e) => {
                    for tp in running.remove(&e.id()).unwrap_or_default() {
                        tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "produce task ended without an answer");
                        shared.accumulator().abandon(&tp);
                    }
                }
            },
            () = shared.wake.notified() => {}
            () = sleep => {}
        }
    }
    requests.shutdown().await;
    tracing::debug!("producer sender stopped");
}

/// Puts the partitions of one broker (as the last metadata lookup saw them) into shared
/// requests, bounded in bytes and partitions: a client writing many partitions makes a few
/// calls instead of one per partition, and a broker that stalls holds up only its own.
fn group_by_owner(shared: &Shared, ready: Vec<Request>) -> Vec<Vec<Request>> {
    let mut by_owner: HashMap<String, Vec<Vec<Request>>> = HashMap::new();
    for request in ready {
        let groups = by_owner
            .entry(shared.metadata.owner(&request.tp))
            .or_default();
        let size = request.size();
        let fits = groups.last().is_some_and(|g| {
            g.len() < MAX_GROUP_PARTITIONS
                && g.iter().map(Request::size).sum::<usize>() + size <= MAX_GROUP_BYTES
        });
        match groups.last_mut() {
            Some(group) if fits => group.push(request),
            _ => groups.push(vec![request]),
        }
    }
    by_owner.into_values().flatten().collect()
}

/// Encodes and sends the batches of several partitions in one call; one outcome per batch.
async fn send(shared: Arc<Shared>, mut group: Vec<Request>) -> Vec<(Request, Vec<Outcome>)> {
    let config = &shared.config;
    let mut encoded = Vec::with_capacity(group.len());
    let mut unencodable = Vec::with_capacity(group.len());
    for request in &mut group {
        let mut bytes = Vec::with_capacity(request.batches.len());
        let mut failed = None;
        for batch in &mut request.batches {
            match batch.encode(config.compression, config.max_request_size) {
                Ok(b) => bytes.push(b),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        encoded.push(bytes);
        unencodable.push(failed);
    }
    let sending: Vec<(&TopicPartition, Vec<bytes::Bytes>)> = group
        .iter()
        .zip(encoded)
        .filter(|(_, bytes)| !bytes.is_empty())
        .map(|(r, bytes)| (&r.tp, bytes))
        .collect();
    let mut answers = if sending.is_empty() {
        HashMap::new()
    } else {
        call(&shared, sending).await
    };
    group
        .into_iter()
        .zip(unencodable)
        .map(|(request, failed)| {
            let mut outcomes = answers.remove(&request.tp).unwrap_or_default();
            if let Some(e) = failed {
                outcomes.push(Outcome::Failed(e));
            }
            outcomes.resize_with(request.batches.len(), || Outcome::NotSent);
            (request, outcomes)
        })
        .collect()
}

async fn call(
    shared: &Shared,
    partitions: Vec<(&TopicPartition, Vec<bytes::Bytes>)>,
) -> HashMap<TopicPartition, Vec<Outcome>> {
    let counts: Vec<(TopicPartition, usize)> = partitions
        .iter()
        .map(|(tp, batches)| ((*tp).clone(), batches.len()))
        .collect();
    let produce = v1::ProduceRequest {
        ack: shared.config.acks.to_wire() as i32,
        partitions: partitions
            .into_iter()
            .map(|(tp, batches)| v1::PartitionBatches {
                topic: tp.topic.clone(),
                partition: tp.partition,
                batches,
                leader_epoch: 0,
            })
            .collect(),
    };
    let timeout = shared.config.request_timeout;
    let all_failed = |e: Error| {
        counts
            .iter()
            .map(|(tp, count)| {
                let failed = (0..*count)
                    .map(|_| Outcome::Failed(super::accumulator::duplicate(&e)))
                    .collect();
                (tp.clone(), failed)
            })
            .collect()
    };
    let response =
        match tokio::time::timeout(timeout, shared.connection.grpc().produce(produce)).await {
            Err(_) => {
                return all_failed(Error::Timeout(
                    timeout,
                    format!(
                        "produce to {} partitions via {}",
                        counts.len(),
                        shared.connection.server()
                    ),
                ));
            }
            Ok(Err(status)) => return all_failed(shared.connection.call_error(status)),
            Ok(Ok(response)) => response.into_inner(),
        };
    let mut answered: HashMap<TopicPartition, Vec<v1::BatchResult>> = response
        .partitions
        .into_iter()
        .map(|p| (TopicPartition::new(p.topic, p.partition), p.batches))
        .collect();
    counts
        .into_iter()
        .map(|(tp, count)| {
            let results = answered.remove(&tp).unwrap_or_default();
            let outcomes = if results.len() == count {
                results
                    .into_iter()
                    .map(|r| match &r.error {
                        Some(e) => Outcome::Failed(Error::from_wire(e)),
                        None => Outcome::Stored(r.base_offset),
                    })
                    .collect()
            } else {
                // Retriable: the idempotent resend gets the original offsets of what was
                // stored.
                let e = Error::Transport(tonic::Status::unknown(format!(
                    "the proxy answered {} results for {count} batches of {tp}",
                    results.len()
                )));
                (0..count)
                    .map(|_| Outcome::Failed(super::accumulator::duplicate(&e)))
                    .collect()
            };
            (tp, outcomes)
        })
        .collect()
}
