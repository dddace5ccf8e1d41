use std::fmt;

/// Everything that can go wrong in the storage client.
///
/// Decoding errors carry what was being decoded and what was wrong with it, so a corrupt
/// object in production can be traced to its cause without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Bytes that should hold a record batch or a segment do not.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: Corrupted, detail: String },

    /// A checksum did not match: the bytes were damaged in flight or at rest.
    #[error("{what} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        what: Corrupted,
        stored: u32,
        computed: u32,
    },

    /// A record batch breaks a configured limit; the producer should split it.
    #[error(
        "record batch of {size} bytes exceeds the limit of {limit} bytes; send smaller batches"
    )]
    BatchTooLarge { size: usize, limit: usize },

    /// A segment lookup asked for an offset the segment does not hold.
    #[error("offset {offset} is outside segment [{base_offset}, {next_offset})")]
    OffsetOutOfRange {
        offset: i64,
        base_offset: i64,
        next_offset: i64,
    },

    /// Batches appended to a segment must be consecutive.
    #[error("batch starts at offset {found} but the segment continues at {expected}")]
    OffsetGap { expected: i64, found: i64 },

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

    /// The record codec rejected the records.
    #[error("record codec: {0}")]
    Codec(String),
}

/// The kind of structure that failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupted {
    RecordBatch,
    SegmentTrailer,
    SegmentFooter,
    SegmentData,
}

impl fmt::Display for Corrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RecordBatch => "record batch",
            Self::SegmentTrailer => "segment trailer",
            Self::SegmentFooter => "segment footer",
            Self::SegmentData => "segment data",
        })
    }
}

impl StorageError {
    pub(crate) fn corrupt(what: Corrupted, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            detail: detail.into(),
        }
    }

    /// True for damaged bytes (as opposed to an unavailable backend).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::ChecksumMismatch { .. })
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
