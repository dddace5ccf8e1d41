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
pub mod write;

pub use cache::{CacheConfig, ReadCache};
pub use reader::{LogReader, ReadResult, read_flush_object};
pub use record::{
    FLUSH_FOLDER, GcRecord, ProducerEntry, ProducerState, SegmentRecord, flush_object_path,
    flush_prefix, is_flush_object_of, object_path, partition_prefix,
};
pub use write::{Claim, CommitUnit, Recovered, Refusal, partitions_per_txn, unit_bytes_bound};

use strata_proto::{Coded, ErrorCode};

/// Errors of reading and writing the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The partition is assigned to another writer.
    #[error(
        "{topic}/{partition}: assigned to `{owner}`, not to this broker; refresh routing and retry"
    )]
    NotAssigned {
        topic: String,
        partition: u32,
        owner: String,
    },
    /// A newer owner (a later epoch, or a newer incarnation at this epoch) holds the
    /// partition: this writer can never change its log again.
    #[error(
        "{topic}/{partition}: fenced at epoch {epoch}, the partition moved to a newer owner; refresh routing and retry"
    )]
    Fenced {
        topic: String,
        partition: u32,
        epoch: u64,
    },
    #[error("offset {offset} is out of range: the log holds [{start}, {end})")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error(transparent)]
    BadValue(#[from] strata_meta::schema::BadValue),
    #[error("metadata store: {0}")]
    Meta(#[from] strata_meta::MetaError),
    #[error("storage: {0}")]
    Storage(#[from] strata_storage::StorageError),
}

impl Coded for LogError {
    fn code(&self) -> ErrorCode {
        match self {
            // What brokers have always told producers: retriable, they find the new owner and
            // their idempotent retries land exactly once.
            Self::NotAssigned { .. } | Self::Fenced { .. } => ErrorCode::NotLeader,
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            Self::BadValue(e) => e.code(),
            Self::Meta(e) => e.code(),
            Self::Storage(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_meta::MetaError;
    use strata_meta::schema::BadValue;

    use super::*;

    #[test]
    fn a_writer_that_lost_its_partition_is_not_leader_and_retriable() {
        let fenced = LogError::Fenced {
            topic: "t".into(),
            partition: 0,
            epoch: 3,
        };
        let moved = LogError::NotAssigned {
            topic: "t".into(),
            partition: 0,
            owner: "b2".into(),
        };
        for e in [fenced, moved] {
            assert_eq!(e.code(), ErrorCode::NotLeader, "{e}");
            assert!(e.is_retriable());
        }
    }

    #[test]
    fn errors_below_the_log_keep_their_own_code() {
        let corrupt = BadValue {
            key: "/strata/c/log/t/0/commit".into(),
            detail: "expected value".into(),
        };
        let wrapped = LogError::from(corrupt.clone());
        assert_eq!(wrapped.code(), corrupt.code());
        assert!(!wrapped.is_retriable());
        let meta = MetaError::Backend("unexpected".into());
        let code = meta.code();
        assert_eq!(LogError::from(meta).code(), code);
    }
}
