//! One client connection.
//!
//! Kafka clients pipeline: librdkafka keeps many requests in flight on a connection and
//! expects the answers in request order. A Kafka broker handles them one at a time, which costs
//! it little because an `acks=all` produce waits for a replication round trip of about a
//! millisecond. Here it waits for a flush and a commit (tens of milliseconds), and librdkafka
//! puts one partition in each Produce request, so one at a time would turn eight partitions into
//! one (measured: `docs/benchmarks.md`, "Kafka wire protocol against the gRPC SDK").
//!
//! So requests are read ahead (up to twice `max_request_bytes`), and when the connection is
//! about to forward a Produce, the Produce requests already read behind it (with the same acks)
//! go in the same call of the service: their batches of one partition in request order, so
//! the owner appends them in that order, and one commit makes them all durable. Every other
//! request is handled alone, in order, and every answer is written in request order.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, RequestKind};
use strata_tls::Conn;
use tokio::io::ReadHalf;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::sasl::{Answer, Session};
use super::{WRITE_TIMEOUT, close};
use crate::error::{KafkaError, Result};
use crate::handlers::{self, Context};
use crate::metrics::{ApiLabel, KafkaMetrics, ReasonLabel};
use crate::request::{self, Parsed};
use crate::versions::Supported;

/// Produce requests forwarded in one call at most; also how many frames are read ahead. The
/// byte budget is the real bound: librdkafka at linger 0 keeps hundreds of small requests in
/// flight, and each round of forwarding costs a commit however many it carries.
pub const MAX_COALESCED: usize = 1024;

/// A frame as read, with its share of the connection's byte budget.
enum Read {
    Frame(Bytes, OwnedSemaphorePermit),
    Failed(KafkaError),
}

/// A frame as parsed: a request to handle, an answer ready to write, or a reason to close.
// One lives per frame and is taken apart at once (as `request::Parsed`).
#[allow(clippy::large_enum_variant)]
enum Item {
    Request {
        header: RequestHeader,
        api: &'static Supported,
        body: RequestKind,
        permit: OwnedSemaphorePermit,
    },
    Answer(Bytes),
    Close(&'static str, KafkaError),
}

pub(super) async fn serve(
    ctx: &Context,
    metrics: &KafkaMetrics,
    conn: Conn,
    cancel: CancellationToken,
) {
    let peer = conn.peer().addr;
    let (reader, mut writer) = tokio::io::split(conn);
    let max = ctx.config.max_request_bytes;
    let budget = budget_size(max);
    let (frames, received) = mpsc::channel(MAX_COALESCED);
    let stop = cancel.child_token();
    let read = read_frames(reader, max, budget, frames, stop.clone());
    let answer = async {
        answer_in_order(ctx, metrics, &mut writer, received, peer).await;
        stop.cancel();
    };
    tokio::join!(read, answer);
}

async fn read_frames(
    reader: ReadHalf<Conn>,
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
    let mut held: Option<Item> = None;
    let mut session = Session::new(ctx);
    loop {
        let item = match held.take() {
            Some(item) => item,
            None => match received.recv().await {
                Some(read) => parse(metrics, read),
                None => return,
            },
        };
        // Produce requests coalesced below with this one pass too: the check depends on the
        // session alone, which only a SASL request (answered on its own) changes.
        if let Item::Request { api, .. } = &item
            && let Err(e) = session.check(api)
        {
            return close(metrics, peer, "request before SASL authentication", &e);
        }
        let answers = match item {
            Item::Close(reason, e) => return close(metrics, peer, reason, &e),
            Item::Answer(answer) => vec![Ok(Some(answer))],
            Item::Request {
                header,
                api,
                body: RequestKind::Produce(first),
                permit,
            } => {
                let acks = first.acks;
                // Each permit is held until the answers are made, as the frame's bytes are.
                let mut permits = vec![permit];
                let mut group = vec![(header, api, first)];
                while group.len() < MAX_COALESCED {
                    let Ok(read) = received.try_recv() else {
                        break;
                    };
                    match parse(metrics, read) {
                        Item::Request {
                            header,
                            api,
                            body: RequestKind::Produce(next),
                            permit,
                        } if next.acks == acks => {
                            group.push((header, api, next));
                            permits.push(permit);
                        }
                        other => {
                            held = Some(other);
                            break;
                        }
                    }
                }
                let answers =
                    handlers::produce_together(&ctx.call(session.principal()), group).await;
                drop(permits);
                answers
            }
            Item::Request {
                header,
                api,
                body,
                permit,
            } => {
                let body = match session.answer(ctx, metrics, peer, &header, api, body).await {
                    Ok(answer) => {
                        if !sasl_answered(metrics, writer, peer, answer).await {
                            return;
                        }
                        continue;
                    }
                    Err(other) => other,
                };
                let answer =
                    handlers::handle(&ctx.call(session.principal()), peer, &header, api, body)
                        .await;
                drop(permit);
                vec![answer]
            }
        };
        for answer in answers {
            match answer {
                Ok(Some(answer)) => {
                    if !write(metrics, writer, &answer, peer).await {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => return close(metrics, peer, "cannot answer", &e),
            }
        }
    }
}

/// Writes a SASL answer; `false` when the connection ends (a failed login ends it after the
/// answer, already logged within the peer's budget, so not logged again here).
async fn sasl_answered<W: AsyncWriteExt + Unpin>(
    metrics: &KafkaMetrics,
    writer: &mut W,
    peer: SocketAddr,
    answer: Result<Answer>,
) -> bool {
    match answer {
        Ok(Answer { frame, close }) => {
            let written = write(metrics, writer, &frame, peer).await;
            if close.is_some() {
                metrics
                    .closed
                    .get_or_create(&ReasonLabel {
                        reason: "authentication failed",
                    })
                    .inc();
                return false;
            }
            written
        }
        Err(e) => {
            close(metrics, peer, "cannot answer", &e);
            false
        }
    }
}

/// A read frame as a request, an answer or a reason to close.
fn parse(metrics: &KafkaMetrics, read: Read) -> Item {
    let (frame, permit) = match read {
        Read::Frame(frame, permit) => (frame, permit),
        Read::Failed(e) => return Item::Close("unreadable frame", e),
    };
    metrics.bytes_in.inc_by(frame.len() as u64 + 4);
    match request::parse(frame) {
        Ok(Parsed::Request { header, api, body }) => {
            metrics
                .requests
                .get_or_create(&ApiLabel { api: api.name })
                .inc();
            Item::Request {
                header,
                api,
                body,
                permit,
            }
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
            match handlers::unsupported_version(api, version, correlation_id) {
                Some(answer) => Item::Answer(answer),
                None => Item::Close(
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
            }
        }
        Err(e) => Item::Close("bad request", e),
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
