use std::sync::Arc;

use strata_format::FormatError;
use strata_log::LogError;
use strata_meta::MetaError;
use strata_meta::schema::BadValue;
use strata_proto::{Coded, ErrorCode};
use strata_storage::StorageError;

/// Everything the broker's write path can refuse or fail at.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// This broker lost the partition to a newer epoch: it can never commit to it again.
    #[error(
        "{topic}/{partition}: fenced at epoch {epoch}, the partition moved to a newer owner; refresh routing and retry"
    )]
    Fenced {
        topic: String,
        partition: u32,
        epoch: u64,
    },
    /// The partition is not (or not yet) served by this broker.
    #[error("{topic}/{partition}: not served by this broker ({reason}); refresh routing and retry")]
    NotLeader {
        topic: String,
        partition: u32,
        reason: String,
    },
    /// The sender's routing names another epoch of the partition than the one served here.
    #[error(
        "{topic}/{partition}: request for epoch {requested} but epoch {current} is served here; refresh routing and retry"
    )]
    EpochMismatch {
        topic: String,
        partition: u32,
        requested: u64,
        current: u64,
    },
    /// A producer's batch that does not parse.
    #[error("record batch rejected: {0}")]
    CorruptBatch(FormatError),
    #[error("record batch of {size} bytes exceeds max.batch.bytes = {limit}; send smaller batches")]
    BatchTooLarge { size: usize, limit: usize },
    #[error(
        "producer {producer_id} has epoch {epoch} but epoch {current} is active: a newer instance of this producer took over"
    )]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "producer {producer_id}: sequence {got} where {expected} was expected; restart the producer to reset its sequence"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("{0}; retry shortly")]
    Throttled(String),
    /// A failure below the broker: the metadata store, storage, or a stored value. Shared, so
    /// one failure can answer every producer waiting on it.
    #[error(transparent)]
    Log(Arc<LogError>),
    #[error("broker is shutting down; retry against the partition's next owner")]
    ShuttingDown,
    /// The committed log does not hold what the delayed-message scheduler knows it must: it
    /// stops rather than skip a record, and the next pass starts it again.
    #[error("{0}; the delay scheduler stops and starts again, report this if it repeats")]
    DelaysInconsistent(String),
}

impl BrokerError {
    /// Whether the partition is no longer this broker's to write: work on it should stop.
    pub fn is_fenced_or_gone(&self) -> bool {
        matches!(
            self,
            Self::Fenced { .. } | Self::NotLeader { .. } | Self::ShuttingDown
        )
    }
}

impl From<LogError> for BrokerError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Fenced {
                topic,
                partition,
                epoch,
            } => Self::Fenced {
                topic,
                partition,
                epoch,
            },
            LogError::NotAssigned {
                topic,
                partition,
                owner,
            } => Self::NotLeader {
                topic,
                partition,
                reason: format!("assigned to `{owner}`"),
            },
            other => Self::Log(Arc::new(other)),
        }
    }
}

impl From<MetaError> for BrokerError {
    fn from(e: MetaError) -> Self {
        LogError::from(e).into()
    }
}

impl From<StorageError> for BrokerError {
    fn from(e: StorageError) -> Self {
        LogError::from(e).into()
    }
}

/// Building a segment or reading one back for compaction: a failure of what the broker stores,
/// reported like the storage failures around it. Producers' batches never get here; they are
/// refused as `CorruptBatch` when parsed.
impl From<FormatError> for BrokerError {
    fn from(e: FormatError) -> Self {
        StorageError::from(e).into()
    }
}

impl From<object_store::Error> for BrokerError {
    fn from(e: object_store::Error) -> Self {
        StorageError::from(e).into()
    }
}

impl From<BadValue> for BrokerError {
    fn from(e: BadValue) -> Self {
        LogError::from(e).into()
    }
}

/// A fenced writer tells its producers `NOT_LEADER`: retriable, they find the new owner and
/// their idempotent retries land exactly once.
impl Coded for BrokerError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Fenced { .. }
            | Self::NotLeader { .. }
            | Self::EpochMismatch { .. }
            | Self::ShuttingDown => ErrorCode::NotLeader,
            Self::CorruptBatch(e) => e.code(),
            Self::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::ProducerFenced { .. } => ErrorCode::Fenced,
            Self::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequence,
            Self::Throttled(_) => ErrorCode::Throttled,
            Self::Log(e) => e.code(),
            Self::DelaysInconsistent(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use strata_format::{Corrupted, RecordBatch};

    use super::*;

    #[test]
    fn a_producers_bad_batch_is_corrupt_message_and_a_bad_stored_segment_is_internal() {
        let parsed = RecordBatch::parse(bytes::Bytes::from_static(b"not a record batch"))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            BrokerError::CorruptBatch(parsed).code(),
            ErrorCode::CorruptMessage
        );
        let stored = FormatError::corrupt(Corrupted::SegmentData, "batch length past the end");
        let compacting = BrokerError::from(stored);
        assert_eq!(compacting.code(), ErrorCode::Internal, "{compacting}");
    }

    #[test]
    fn a_lower_error_keeps_its_code_and_message_in_every_producers_copy() {
        let meta = MetaError::Unavailable {
            message: "no leader".into(),
        };
        let (code, message) = (meta.code(), meta.to_string());
        let failed = BrokerError::from(meta);
        for copy in [failed.clone(), failed] {
            assert_eq!(copy.code(), code);
            assert!(copy.to_string().contains(&message), "{copy}");
        }
    }
}
