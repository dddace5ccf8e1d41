//! Strata's storage client: everything between a broker (or proxy) and the bytes at rest.
//!
//! - [`batch`]: Kafka RecordBatch v2, a zero-copy validated header view and a full codec.
//! - [`segment`]: immutable segment objects — whole batches of one partition plus a footer
//!   with a sparse offset index and a timestamp index — and a reader that needs at most two
//!   ranged GETs per lookup.
//! - [`backend`]: object stores opened by URL (`file://`, `memory://`, `s3://`), with
//!   `file://` writes made durable by fsync.
//! - [`pool`]: a pool of storage nodes with random replica placement and BMQ-style failover.
//! - [`fault`]: a fault-injecting object store for tests and chaos experiments.
//!
//! This crate knows nothing of etcd or gRPC: it is the bottom of the dependency graph.

pub mod backend;
pub mod batch;
pub mod clock;
mod error;
pub mod fault;
pub mod pool;
pub mod segment;

pub use batch::codec::{BatchOptions, Compression, Record, decode_batch, encode_batch};
pub use batch::{BatchIter, RecordBatch};
pub use error::{Corrupted, Result, StorageError};
pub use pool::{NodeId, NodePool, Placement, PoolConfig};
pub use segment::{Footer, SegmentBuilder, SegmentMeta, SegmentReader};
