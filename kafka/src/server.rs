//! The listener: one task per connection; each connection's requests are answered one at a
//! time, in order, as Kafka brokers do (a client pipelines, the broker reads the next request
//! when it has answered the last).
//!
//! What a client sends never panics the server and never holds more than one request's bytes
//! (at most `max_request_bytes`) per connection. A frame that cannot be read (over the limit,
//! truncated, garbage, an API that is not advertised) closes that connection with a log line;
//! a client that stops reading is dropped after [`WRITE_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{KafkaError, Result};
use crate::handlers::{self, Context};
use crate::metrics::{ApiLabel, KafkaMetrics, ReasonLabel};
use crate::request::{self, Parsed};

/// How long a response may take to leave before the client is taken to have stopped reading.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the Kafka listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request frame accepted; a larger one closes the connection.
    pub max_request_bytes: usize,
    /// Create unknown topics that Metadata asks for (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic.
    pub default_partitions: u32,
}

/// The Kafka listener of one proxy.
#[derive(Debug, Clone)]
pub struct KafkaServer {
    ctx: Arc<Context>,
    metrics: Arc<KafkaMetrics>,
}

impl KafkaServer {
    pub fn new(
        service: strata_proxy::ProxyService,
        cluster: crate::Cluster,
        config: ServerConfig,
        metrics: Arc<KafkaMetrics>,
    ) -> Self {
        Self {
            ctx: Arc::new(Context::new(service, cluster, config)),
            metrics,
        }
    }

    /// Accepts connections until `cancel`; then stops accepting and ends every connection
    /// after the request it is answering.
    pub async fn serve(self, listener: TcpListener, cancel: CancellationToken) {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let (ctx, metrics, cancel) =
                        (self.ctx.clone(), self.metrics.clone(), cancel.clone());
                    connections.spawn(async move {
                        metrics.connections.inc();
                        connection(&ctx, &metrics, stream, peer, cancel).await;
                        metrics.connections.dec();
                    });
                }
                Err(e) => {
                    // Out of file descriptors, mostly: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a Kafka connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(
    ctx: &Context,
    metrics: &KafkaMetrics,
    stream: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return,
            frame = read_frame(&mut reader, ctx.config.max_request_bytes) => frame,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => return close(metrics, peer, "unreadable frame", &e),
        };
        metrics.bytes_in.inc_by(frame.len() as u64 + 4);
        let response = match request::parse(frame) {
            Ok(Parsed::Request { header, api, body }) => {
                metrics
                    .requests
                    .get_or_create(&ApiLabel { api: api.name })
                    .inc();
                handlers::handle(ctx, peer, &header, api, body).await
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
                    Some(response) => Ok(Some(response)),
                    None => {
                        let e = KafkaError::Decode {
                            api: api.name,
                            version,
                            reason: format!(
                                "version not served; this listener serves {}..={}",
                                api.min, api.max
                            ),
                        };
                        return close(metrics, peer, "unsupported version", &e);
                    }
                }
            }
            Err(e) => return close(metrics, peer, "bad request", &e),
        };
        let response = match response {
            Ok(Some(response)) => response,
            Ok(None) => continue, // acks=0 produce: Kafka sends no response
            Err(e) => return close(metrics, peer, "cannot answer", &e),
        };
        metrics.bytes_out.inc_by(response.len() as u64);
        match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&response)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return, // the client went away
            Err(_) => {
                let e = KafkaError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the client read nothing for {WRITE_TIMEOUT:?}"),
                ));
                return close(metrics, peer, "client stopped reading", &e);
            }
        }
    }
}

fn close(metrics: &KafkaMetrics, peer: SocketAddr, reason: &'static str, error: &KafkaError) {
    metrics.closed.get_or_create(&ReasonLabel { reason }).inc();
    tracing::warn!(%peer, reason, error = %error, "closing Kafka connection");
}

/// Reads one length-prefixed frame; `None` at a clean end of stream between frames.
async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R, max: usize) -> Result<Option<Bytes>> {
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
    let mut frame = BytesMut::zeroed(size);
    reader.read_exact(&mut frame).await?;
    Ok(Some(frame.freeze()))
}

/// A response frame: the length, the header, then the body.
pub(crate) fn frame(header_and_body: impl FnOnce(&mut BytesMut) -> Result<()>) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header_and_body(&mut buf)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}
