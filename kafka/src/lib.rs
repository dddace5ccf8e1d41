#![cfg_attr(test, allow(clippy::unwrap_used))]

//! The Kafka wire protocol, served by every proxy (default port 9092).
//!
//! Unmodified Kafka clients produce, consume, join groups and manage topics here. Every handler
//! translates a Kafka request into a call of the proxy's own service ([`strata_proxy`]), the
//! one gRPC clients use, so both kinds of clients share topics, offsets and groups, and a record
//! batch a Kafka producer sends is stored, and fetched back, byte for byte.
//!
//! - [`request`] turns a frame into a decoded request without I/O (the fuzz target's entry).
//! - [`versions`] is the table of what is advertised; nothing else is answered.
//! - [`cluster`] is how stateless proxies look like a Kafka cluster: each registers under a lease,
//!   Metadata lists the live ones and spreads partition leadership over them.
//! - [`server`] owns the connections: one task each, requests answered in order.

#[cfg(feature = "server")]
pub mod cluster;
#[cfg(feature = "server")]
mod codes;
mod error;
#[cfg(feature = "server")]
mod handlers;
#[cfg(feature = "server")]
mod metrics;
pub mod request;
#[cfg(feature = "server")]
pub mod server;
pub mod versions;

#[cfg(feature = "server")]
pub use cluster::{Cluster, ClusterConfig};
pub use error::KafkaError;
#[cfg(feature = "server")]
pub use metrics::KafkaMetrics;
#[cfg(feature = "server")]
pub use server::{KafkaServer, Mechanism, ServerConfig};
