//! Strata's storage client: the object stores between a broker (or proxy) and the bytes at rest.
//!
//! - [`backend`]: object stores opened by URL (`file://`, `memory://`, `s3://`), with
//!   `file://` writes made durable by fsync.
//! - [`pool`]: a pool of storage nodes with random replica placement and BMQ-style failover.
//! - [`segment`]: reading segment objects with at most two ranged GETs per lookup.
//!
//! What the bytes are (record batches, segment objects, their indexes) is `strata-format`'s
//! business; this crate moves them. It knows nothing of etcd or gRPC: it is the bottom of the
//! dependency graph, with `strata-format` beside it.

pub mod backend;
mod error;
pub mod pool;
pub mod segment;

pub use error::{Result, StorageError};
pub use pool::{NodeId, NodePool, Placement, PoolConfig};
pub use segment::{Section, SegmentReader};
