//! Strata's data format, without I/O: what the bytes at rest look like and how to read them.
//!
//! - [`batch`]: Kafka RecordBatch v2, a zero-copy validated header view and a full codec.
//! - [`segment`]: immutable segment objects — whole batches of one partition plus a footer
//!   with a sparse offset index and a timestamp index — and lookups that say which byte range
//!   to fetch and how to cut batches out of it, so a reader needs at most two ranged GETs.
//! - [`tags`]: record tags and the tag expressions consumers filter with.
//! - [`lanes`]: swimlanes, test traffic kept apart on a production topic by a header.
//! - [`properties`]: SQL-92 conditions on record headers, RocketMQ's property filters.
//! - [`delay`]: delayed and scheduled messages, asked for by a header, delivered as copies.
//! - [`retry`]: consumer retries and dead letters, the records nacks write.
//! - [`select`]: both together, and the cutting of stored batches down to what a consumer takes.
//! - [`trace`]: message traces, the internal topic sampled records' paths are written to.
//! - [`flush`]: flush objects — one per broker flush, the segments of many partitions back
//!   to back plus a table of contents saying where each one is.
//!
//! Fetching those bytes is the storage client's job (`strata-storage`); this crate depends on
//! bytes, CRC-32C and the record codec only, so the SDK can encode and decode batches without
//! linking an object store, an HTTP client or TLS.

pub mod batch;
pub mod delay;
mod error;
pub mod flush;
pub mod lanes;
pub mod properties;
pub mod retry;
pub mod segment;
pub mod select;
pub mod tags;
pub mod trace;

pub use batch::codec::{
    BatchOptions, Compression, Record, decode_batch, encode_batch, encode_records_at,
};
pub use batch::{BatchIter, RecordBatch};
pub use error::{Corrupted, FormatError, Result};
pub use flush::{
    EncodedFlushObject, FLUSH_FORMAT_VERSION, FLUSH_TRAILER_LEN, FlushObjectBuilder, FlushToc,
    Section,
};
pub use segment::{EncodedSegment, Footer, SegmentBuilder, SegmentMeta};
