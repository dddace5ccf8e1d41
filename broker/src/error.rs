use strata_format::FormatError;
use strata_log::LogError;
use strata_meta::MetaError;
use strata_meta::schema::BadValue;
use strata_proto::ErrorCode;
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
    #[error("record batch rejected: {0}")]
    CorruptBatch(String),
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
    #[error("storage: {0}")]
    Storage(String),
    #[error("metadata store: {0}")]
    Meta(String),
    #[error("metadata store unavailable: {0}")]
    MetaUnavailable(String),
    #[error("broker is shutting down; retry against the partition's next owner")]
    ShuttingDown,
}

impl From<StorageError> for BrokerError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e.to_string())
    }
}

/// Building a segment or reading one back for compaction: a failure of what the broker stores,
/// reported like the storage failures around it. Producers' batches never get here; they are
/// refused as `CorruptBatch` when parsed.
impl From<FormatError> for BrokerError {
    fn from(e: FormatError) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<MetaError> for BrokerError {
    fn from(e: MetaError) -> Self {
        if e.is_retriable() {
            Self::MetaUnavailable(e.to_string())
        } else {
            Self::Meta(e.to_string())
        }
    }
}

impl From<object_store::Error> for BrokerError {
    fn from(e: object_store::Error) -> Self {
        StorageError::from(e).into()
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
            LogError::Meta(e) => e.into(),
            LogError::Storage(e) => e.into(),
            LogError::BadValue(e) => e.into(),
            // Reads only; the write protocol never reports it.
            e @ LogError::OffsetOutOfRange { .. } => Self::Meta(e.to_string()),
        }
    }
}

impl From<BadValue> for BrokerError {
    fn from(e: BadValue) -> Self {
        Self::Meta(e.to_string())
    }
}

impl BrokerError {
    /// The wire code. A fenced writer tells its producers `NOT_LEADER`: retriable, they find
    /// the new owner and their idempotent retries land exactly once.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Fenced { .. }
            | Self::NotLeader { .. }
            | Self::EpochMismatch { .. }
            | Self::ShuttingDown => ErrorCode::NotLeader,
            Self::CorruptBatch(_) => ErrorCode::CorruptMessage,
            Self::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::ProducerFenced { .. } => ErrorCode::Fenced,
            Self::OutOfOrderSequence { .. } => ErrorCode::InvalidArgument,
            Self::Throttled(_) => ErrorCode::Throttled,
            Self::Storage(_) | Self::MetaUnavailable(_) => ErrorCode::Unavailable,
            Self::Meta(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
