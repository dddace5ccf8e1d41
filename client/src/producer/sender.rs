//! The producer's background task: sends what the accumulator has ready, one request per
//! partition at a time, and feeds the answers back.

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

/// Runs until the producer is closed or dropped. Request tasks live in a `JoinSet` owned
/// here, so cancelling (or aborting) this task ends them too.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut requests: JoinSet<(Request, Vec<Outcome>)> = JoinSet::new();
    let mut running: HashMap<Id, TopicPartition> = HashMap::new();
    loop {
        let (ready, wake_at) = shared.accumulator().ready(Instant::now());
        for request in ready {
            let tp = request.tp.clone();
            let handle = requests.spawn(send(Arc::clone(&shared), request));
            running.insert(handle.id(), tp);
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
                Ok((id, (request, outcomes))) => {
                    running.remove(&id);
                    let topic = request.tp.topic.clone();
                    let completion =
                        shared
                            .accumulator()
                            .complete(request, outcomes, Instant::now());
                    if completion.stale_metadata {
                        shared.metadata.invalidate(&topic);
                    }
                }
                Err(e) => {
                    if let Some(tp) = running.remove(&e.id()) {
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

/// Encodes and sends one partition's batches; one outcome per batch.
async fn send(shared: Arc<Shared>, mut request: Request) -> (Request, Vec<Outcome>) {
    let config = &shared.config;
    let mut bytes = Vec::with_capacity(request.batches.len());
    let mut unencodable = None;
    for batch in &mut request.batches {
        match batch.encode(config.compression, config.max_request_size) {
            Ok(b) => bytes.push(b),
            Err(e) => {
                unencodable = Some(e);
                break;
            }
        }
    }
    let sent = bytes.len();
    let mut outcomes = if sent == 0 {
        Vec::new()
    } else {
        call(&shared, &request.tp, bytes).await
    };
    if let Some(e) = unencodable {
        outcomes.push(Outcome::Failed(e));
    }
    outcomes.resize_with(request.batches.len(), || Outcome::NotSent);
    (request, outcomes)
}

async fn call(shared: &Shared, tp: &TopicPartition, batches: Vec<bytes::Bytes>) -> Vec<Outcome> {
    let count = batches.len();
    let produce = v1::ProduceRequest {
        ack: shared.config.acks.to_wire() as i32,
        partitions: vec![v1::PartitionBatches {
            topic: tp.topic.clone(),
            partition: tp.partition,
            batches,
            leader_epoch: 0,
        }],
    };
    let timeout = shared.config.request_timeout;
    let all_failed = |e: Error| {
        (0..count)
            .map(|_| Outcome::Failed(super::accumulator::duplicate(&e)))
            .collect()
    };
    let response =
        match tokio::time::timeout(timeout, shared.connection.grpc().produce(produce)).await {
            Err(_) => {
                return all_failed(Error::Timeout(
                    timeout,
                    format!("produce to {tp} via {}", shared.connection.server()),
                ));
            }
            Ok(Err(status)) => return all_failed(shared.connection.call_error(status)),
            Ok(Ok(response)) => response.into_inner(),
        };
    let results = response
        .partitions
        .into_iter()
        .find(|p| p.topic == tp.topic && p.partition == tp.partition)
        .map(|p| p.batches)
        .unwrap_or_default();
    if results.len() != count {
        // Retriable: the idempotent resend gets the original offsets of what was stored.
        return all_failed(Error::Transport(tonic::Status::unknown(format!(
            "the proxy answered {} results for {count} batches of {tp}",
            results.len()
        ))));
    }
    results
        .into_iter()
        .map(|r| match &r.error {
            Some(e) => Outcome::Failed(Error::from_wire(e)),
            None => Outcome::Stored(r.base_offset),
        })
        .collect()
}
