use strata_format::FormatError;
use strata_proto::{Coded, ErrorCode};

/// Everything that can go wrong in the storage client.
///
/// Decoding errors are [`FormatError`]s, wrapped as they are so that `?` carries them through
/// and their message (what was being decoded, what was wrong with it) reaches the caller.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The bytes read are not a valid batch or segment, or a lookup asked a segment for
    /// offsets it does not hold.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// A storage URL could not be understood.
    #[error("invalid storage URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// Not enough healthy storage nodes to place all replicas of an object.
    #[error(
        "cannot place {required} replicas: only {healthy} of {total} storage nodes are healthy \
         ({failures}); bring nodes back or lower storage.replicas"
    )]
    InsufficientNodes {
        required: usize,
        healthy: usize,
        total: usize,
        failures: String,
    },

    /// Every replica of an object failed to read.
    #[error("all {tried} replicas of `{key}` failed: {failures}")]
    AllReplicasFailed {
        key: String,
        tried: usize,
        failures: String,
    },

    /// A placement names a node this pool does not know (config changed under old metadata).
    #[error(
        "storage node `{0}` is not configured; add it back to storage.nodes to read its objects"
    )]
    UnknownNode(String),

    /// The object does not exist.
    #[error("object `{0}` not found")]
    NotFound(String),

    /// The object store backend failed.
    #[error("object store error: {0}")]
    Backend(#[source] object_store::Error),

    /// A local file operation (fsync) failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StorageError {
    /// True for damaged bytes (as opposed to an unavailable backend).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Format(e) if e.is_corruption())
    }
}

impl Coded for StorageError {
    fn code(&self) -> ErrorCode {
        match self {
            // Bytes read back from storage: damaged or inconsistent with their metadata, which
            // neither the client nor a retry can fix.
            Self::Format(_) => ErrorCode::Internal,
            Self::InvalidUrl { .. } => ErrorCode::InvalidArgument,
            // Nodes come back and backends recover. A missing object is a read that lost a
            // race with compaction and garbage collection; a retry lists the segments again.
            Self::InsufficientNodes { .. }
            | Self::AllReplicasFailed { .. }
            | Self::NotFound(_)
            | Self::Backend(_)
            | Self::Io { .. } => ErrorCode::Unavailable,
            // Only an operator can fix the configuration; the message says how.
            Self::UnknownNode(_) => ErrorCode::Internal,
        }
    }
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Self::NotFound(path),
            other => Self::Backend(other),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use strata_format::Corrupted;

    use super::*;

    #[test]
    fn stored_bytes_that_do_not_decode_are_internal_not_the_clients_corrupt_message() {
        let damaged = FormatError::corrupt(Corrupted::SegmentFooter, "index out of order");
        assert_eq!(damaged.code(), ErrorCode::CorruptMessage);
        let stored = StorageError::from(damaged);
        assert_eq!(stored.code(), ErrorCode::Internal, "{stored}");
        assert!(!stored.is_retriable());
    }

    #[test]
    fn storage_that_cannot_answer_now_is_retriable_and_a_missing_node_is_not() {
        let down = StorageError::InsufficientNodes {
            required: 2,
            healthy: 1,
            total: 3,
            failures: "n2: connection refused".into(),
        };
        assert_eq!(down.code(), ErrorCode::Unavailable);
        assert!(down.is_retriable());
        let unknown = StorageError::UnknownNode("n9".into());
        assert_eq!(unknown.code(), ErrorCode::Internal);
    }
}
