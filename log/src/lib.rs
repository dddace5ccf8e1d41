//! The committed log of a partition, as both writers (brokers) and readers (proxies) see it.
//!
//! A partition's log is its checkpoint (`log/{topic}/{p}/commit`: the high watermark) plus one
//! [`SegmentRecord`] per segment object (`log/{topic}/{p}/seg/{base_offset:020}`), all in the
//! metadata store; the bytes are in the storage node pool. [`LogReader`] reads committed
//! batches by offset; [`object_path`] names new objects so no two writes ever share a name.

pub mod cache;
mod index;
mod reader;
mod record;

pub use cache::{CacheConfig, ReadCache};
pub use reader::{LogReader, ReadResult};
pub use record::{
    GcRecord, ProducerEntry, ProducerState, SegmentRecord, object_path, partition_prefix,
};

/// Errors of reading the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("offset {offset} is out of range: the log holds [{start}, {end})")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error(transparent)]
    BadValue(#[from] strata_meta::schema::BadValue),
    #[error("metadata store: {0}")]
    Meta(#[from] strata_meta::MetaError),
    #[error("storage: {0}")]
    Storage(#[from] strata_storage::StorageError),
}
