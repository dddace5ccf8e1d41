#![cfg_attr(test, allow(clippy::unwrap_used))]

//! The proxy: the stateless front door clients talk to (gRPC `strata.v1.Strata`, port 7070).
//!
//! - Produces are routed to the owning broker from a routing table that follows the metadata
//!   store by watch; a partition that moves (or whose broker restarts) is retried until a
//!   deadline, so clients see latency, not errors.
//! - Reads need no broker: committed data is in storage, so the proxy reads it itself, and a
//!   fetch with nothing new waits for the partition's next commit (long poll).
//!
//! - Consumer groups are coordinated here too, with all their state in the metadata store
//!   ([`groups`]), so any proxy serves any group.
//!
//! Any number of proxies can run behind one address: they share nothing but the metadata store.

pub mod auth;
mod checkpoints;
mod error;
pub mod groups;
pub mod http;
mod metrics;
mod routes;
mod service;
pub mod trace;

pub use checkpoints::CheckpointWatch;
pub use error::{ProxyError, Result};
pub use groups::GroupCoordinator;
pub use metrics::{MetricsSource, ProxyMetrics};
pub use routes::Routes;
pub use service::{Delivery, DeliveryTracedByCaller, ProxyService, kafka_client};
