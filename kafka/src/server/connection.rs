//! One client connection.
//!
//! Kafka clients pipeline: librdkafka keeps many requests in flight on a connection and
//! expects the answers in request order. A Kafka broker handles them one at a time, which costs
//! it little because an `acks=all` produce waits for a replication round trip of about a
//! millisecond. Here it waits for a flush and a commit (tens of milliseconds), and librdkafka
//! puts one partition in each Produce request, so one at a time would turn eight partitions into
//! one (measured: `docs/benchmarks.md`, "Kafka wire protocol against the gRPC SDK").
//!
//! So requests are read ahead, up to [`MAX_IN_FLIGHT`] and twice `max_request_bytes`, and run
//! concurrently with one rule that keeps every order a client can see: a Produce waits for the
//! earlier requests on the connection that name one of its partitions (one request in flight
//! per partition, as the SDK sends, which keeps idempotent producers' sequences in order), and
//! any other request waits for everything before it and holds back everything after it. The
//! answers are written in request order.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use kafka_protocol::messages::RequestKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{WRITE_TIMEOUT, close};
use crate::error::{KafkaError, Result};
use crate::handlers::{self, Context};
use crate::metrics::{ApiLabel, KafkaMetrics};
use crate::request::{self, Parsed};

/// Requests of one connection read but not yet answered (Java clients send at most 5).
pub const MAX_IN_FLIGHT: usize = 8;

/// What a request must not overtake, and what must not overtake it.
#[derive(Debug)]
enum Scope {
    /// A Produce: the partitions it writes.
    Partitions(Vec<(Bytes, i32)>),
    /// Any other request: everything.
    Everything,
}

impl Scope {
    fn of(body: &RequestKind) -> Self {
        match body {
            RequestKind::Produce(r) => Self::Partitions(
                r.topic_data
                    .iter()
                    .flat_map(|t| {
                        let topic = t.name.0.clone().into_bytes();
                        t.partition_data
                            .iter()
                            .map(move |p| (topic.clone(), p.index))
                    })
                    .collect(),
            ),
            _ => Self::Everything,
        }
    }

    fn must_wait_for(&self, earlier: &Scope) -> bool {
        match (self, earlier) {
            (Self::Partitions(mine), Self::Partitions(theirs)) => {
                mine.iter().any(|p| theirs.contains(p))
            }
            _ => true,
        }
    }
}

/// A frame as read, with its share of the connection's byte budget.
enum Read {
    Frame(Bytes, OwnedSemaphorePermit),
    Failed(KafkaError),
}

/// How a request ended: an answer to write (none for acks=0), or a reason to close.
enum Outcome {
    Answer(Option<Bytes>),
    Close(&'static str, KafkaError),
}

type Running<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

pub(super) async fn serve(
    ctx: &Context,
    metrics: &KafkaMetrics,
    stream: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let max = ctx.config.max_request_bytes;
    let budget = budget_size(max);
    let (frames, received) = mpsc::channel(1);
    let stop = cancel.child_token();
    let read = read_frames(reader, max, budget, frames, stop.clone());
    let answer = async {
        answer_in_order(ctx, metrics, &mut writer, received, peer).await;
        stop.cancel();
    };
    tokio::join!(read, answer);
}

async fn read_frames(
    reader: OwnedReadHalf,
    max: usize,
    budget: usize,
    frames: mpsc::Sender<Read>,
    stop: CancellationToken,
) {
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let budget = Arc::new(Semaphore::new(budget));
    loop {
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = read_frame(&mut reader, max, &budget) => read,
        };
        let item = match read {
            Ok(Some((frame, permit))) => Read::Frame(frame, permit),
            Ok(None) => return,
            Err(e) => Read::Failed(e),
        };
        let failed = matches!(item, Read::Failed(_));
        if frames.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// One length-prefixed frame, once the budget has room for it; `None` at a clean end of
/// stream between frames.
async fn read_frame<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    max: usize,
    budget: &Arc<Semaphore>,
) -> Result<Option<(Bytes, OwnedSemaphorePermit)>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = i32::from_be_bytes(len);
    let size = usize::try_from(len).map_err(|_| KafkaError::NegativeLength(len))?;
    if size > max {
        return Err(KafkaError::FrameTooLarge { size, limit: max });
    }
    // Never more than the whole budget, or a frame of exactly `max` could wait forever.
    let share = size.clamp(1, budget_size(max)) as u32;
    let permit = budget
        .clone()
        .acquire_many_owned(share)
        .await
        .map_err(|_| std::io::Error::other("the connection's byte budget closed"))?;
    let mut frame = BytesMut::zeroed(size);
    reader.read_exact(&mut frame).await?;
    Ok(Some((frame.freeze(), permit)))
}

fn budget_size(max: usize) -> usize {
    max.saturating_mul(2).min(u32::MAX as usize)
}

async fn answer_in_order<W: AsyncWriteExt + Unpin>(
    ctx: &Context,
    metrics: &KafkaMetrics,
    writer: &mut W,
    mut received: mpsc::Receiver<Read>,
    peer: SocketAddr,
) {
    let mut running: FuturesOrdered<Running<'_>> = FuturesOrdered::new();
    // The scopes of the running requests, oldest first, with a token cancelled when each ends.
    let mut scopes: VecDeque<(Scope, CancellationToken)> = VecDeque::new();
    let mut reading = true;
    loop {
        tokio::select! {
            biased;
            Some(outcome) = running.next(), if !running.is_empty() => {
                scopes.pop_front();
                match outcome {
                    Outcome::Answer(Some(answer)) => {
                        if !write(metrics, writer, &answer, peer).await {
                            return;
                        }
                    }
                    Outcome::Answer(None) => {}
                    Outcome::Close(reason, e) => return close(metrics, peer, reason, &e),
                }
            }
            read = received.recv(), if reading && running.len() < MAX_IN_FLIGHT => {
                let Some(read) = read else {
                    reading = false;
                    continue;
                };
                let (scope, job) = start(ctx, metrics, read, peer);
                let waits: Vec<CancellationToken> = scopes
                    .iter()
                    .filter(|(earlier, _)| scope.must_wait_for(earlier))
                    .map(|(_, done)| done.clone())
                    .collect();
                let done = CancellationToken::new();
                scopes.push_back((scope, done.clone()));
                running.push_back(Box::pin(async move {
                    for earlier in waits {
                        earlier.cancelled().await;
                    }
                    let outcome = job.await;
                    done.cancel();
                    outcome
                }));
            }
            else => return,
        }
    }
}

/// The scope of a read frame and the work that answers it (not started until awaited).
fn start<'a>(
    ctx: &'a Context,
    metrics: &'a KafkaMetrics,
    read: Read,
    peer: SocketAddr,
) -> (Scope, Running<'a>) {
    let (frame, permit) = match read {
        Read::Frame(frame, permit) => (frame, permit),
        Read::Failed(e) => {
            return (
                Scope::Everything,
                Box::pin(async move { Outcome::Close("unreadable frame", e) }),
            );
        }
    };
    metrics.bytes_in.inc_by(frame.len() as u64 + 4);
    match request::parse(frame) {
        Ok(Parsed::Request { header, api, body }) => {
            metrics
                .requests
                .get_or_create(&ApiLabel { api: api.name })
                .inc();
            let scope = Scope::of(&body);
            let job = async move {
                let answer = handlers::handle(ctx, peer, &header, api, body).await;
                drop(permit);
                match answer {
                    Ok(answer) => Outcome::Answer(answer),
                    Err(e) => Outcome::Close("cannot answer", e),
                }
            };
            (scope, Box::pin(job))
        }
        Ok(Parsed::UnsupportedVersion {
            api,
            version,
            correlation_id,
        }) => {
            metrics
                .unsupported_versions
                .get_or_create(&ApiLabel { api: api.name })
                .inc();
            let outcome = match handlers::unsupported_version(api, version, correlation_id) {
                Some(answer) => Outcome::Answer(Some(answer)),
                None => Outcome::Close(
                    "unsupported version",
                    KafkaError::Decode {
                        api: api.name,
                        version,
                        reason: format!(
                            "version not served; this listener serves {}..={}",
                            api.min, api.max
                        ),
                    },
                ),
            };
            (Scope::Everything, Box::pin(async move { outcome }))
        }
        Err(e) => (
            Scope::Everything,
            Box::pin(async move { Outcome::Close("bad request", e) }),
        ),
    }
}

/// Writes one answer; `false` when the connection is over (the client left or stopped reading).
async fn write<W: AsyncWriteExt + Unpin>(
    metrics: &KafkaMetrics,
    writer: &mut W,
    answer: &[u8],
    peer: SocketAddr,
) -> bool {
    metrics.bytes_out.inc_by(answer.len() as u64);
    match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(answer)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            let e = KafkaError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {WRITE_TIMEOUT:?}"),
            ));
            close(metrics, peer, "client stopped reading", &e);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(partitions: &[(&'static str, i32)]) -> Scope {
        Scope::Partitions(
            partitions
                .iter()
                .map(|(t, p)| (Bytes::from_static(t.as_bytes()), *p))
                .collect(),
        )
    }

    #[test]
    fn produces_of_other_partitions_overtake_and_everything_else_waits() {
        let first = produce(&[("a", 0), ("a", 1)]);
        assert!(!produce(&[("a", 2)]).must_wait_for(&first));
        assert!(!produce(&[("b", 0)]).must_wait_for(&first));
        assert!(produce(&[("a", 1), ("b", 0)]).must_wait_for(&first));
        assert!(Scope::Everything.must_wait_for(&first));
        assert!(produce(&[("c", 0)]).must_wait_for(&Scope::Everything));
    }
}
