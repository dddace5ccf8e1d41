//! The listener: one task per connection ([`connection`]), whose requests are read ahead and
//! answered in order, with the Produce requests queued behind one forwarded together.
//!
//! What a client sends never panics the server, and a connection never holds more than twice
//! `max_request_bytes` of requests. A frame that cannot be read (over the limit, truncated,
//! garbage, an API that is not advertised) closes that connection with a log line, after the
//! answers to the requests before it; a client that stops reading is dropped after
//! [`WRITE_TIMEOUT`].

mod connection;
pub(crate) mod sasl;

pub use sasl::Mechanism;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use strata_tls::Incoming;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{KafkaError, Result};
use crate::handlers::Context;
use crate::metrics::{KafkaMetrics, ReasonLabel};

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
    /// SASL mechanisms offered; empty: no SASL, every connection is served as it comes.
    pub sasl: Vec<Mechanism>,
    /// Principals allowed everything (`User:name`), such as managing users.
    pub super_users: Vec<String>,
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
    pub async fn serve(self, mut incoming: Incoming, cancel: CancellationToken) {
        let mut connections = JoinSet::new();
        loop {
            let conn = tokio::select! {
                () = cancel.cancelled() => break,
                conn = incoming.accept() => conn,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let (ctx, metrics, cancel) = (self.ctx.clone(), self.metrics.clone(), cancel.clone());
            connections.spawn(async move {
                metrics.connections.inc();
                connection::serve(&ctx, &metrics, conn, cancel).await;
                metrics.connections.dec();
            });
        }
        while connections.join_next().await.is_some() {}
    }
}

pub(crate) fn close(
    metrics: &KafkaMetrics,
    peer: SocketAddr,
    reason: &'static str,
    error: &KafkaError,
) {
    metrics.closed.get_or_create(&ReasonLabel { reason }).inc();
    tracing::warn!(%peer, reason, error = %error, "closing Kafka connection");
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
