use std::fmt;

use strata_proto::{Coded, ErrorCode};

/// Everything that can be wrong with bytes that should hold Strata's data, or with a request
/// to encode or look something up in them.
///
/// Decoding errors carry what was being decoded and what was wrong with it, so a corrupt
/// object in production can be traced to its cause without a debugger. The type is `Clone`
/// so one failure can be reported to every record it fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
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

    /// A segment was finished before any batch was appended.
    #[error("a segment needs at least one batch; append one before finishing it")]
    EmptySegment,

    /// A flush object was finished before any segment was pushed.
    #[error("a flush object needs at least one section; push a segment before finishing it")]
    EmptyFlushObject,

    /// What was pushed into a flush object does not fit its table of contents' fixed-width
    /// fields (a topic name over 65535 bytes, or a table over 4 GiB).
    #[error("flush object table of contents cannot hold {0}")]
    FlushTocOverflow(String),

    /// The record codec (`kafka-protocol`) rejected the records or the batch bytes.
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
    FlushTrailer,
    FlushToc,
}

impl fmt::Display for Corrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RecordBatch => "record batch",
            Self::SegmentTrailer => "segment trailer",
            Self::SegmentFooter => "segment footer",
            Self::SegmentData => "segment data",
            Self::FlushTrailer => "flush object trailer",
            Self::FlushToc => "flush object table of contents",
        })
    }
}

impl FormatError {
    pub fn corrupt(what: Corrupted, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            detail: detail.into(),
        }
    }

    /// True for damaged bytes, as opposed to a request the data cannot answer (an offset the
    /// segment does not hold, batches out of order).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::ChecksumMismatch { .. })
    }
}

/// This crate cannot tell whose bytes it decodes, so the codes are those of a batch a client
/// sent: damaged bytes are the sender's `CORRUPT_MESSAGE`. Stored bytes reach callers through
/// `StorageError`, which answers `INTERNAL` for every `FormatError`, since stored data is never
/// the client's fault.
impl Coded for FormatError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Corrupt { .. } | Self::ChecksumMismatch { .. } | Self::Codec(_) => {
                ErrorCode::CorruptMessage
            }
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            // Segments and flush objects are built by the broker, so a bad build is its bug.
            Self::OffsetGap { .. }
            | Self::EmptySegment
            | Self::EmptyFlushObject
            | Self::FlushTocOverflow(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_bytes_are_the_senders_corrupt_message() {
        let damaged = [
            FormatError::corrupt(Corrupted::RecordBatch, "magic 1"),
            FormatError::ChecksumMismatch {
                what: Corrupted::RecordBatch,
                stored: 1,
                computed: 2,
            },
            FormatError::Codec("truncated record".into()),
        ];
        for e in damaged {
            assert_eq!(e.code(), ErrorCode::CorruptMessage, "{e}");
            assert!(!e.is_retriable(), "{e}");
        }
    }

    #[test]
    fn a_segment_built_wrong_is_internal() {
        let gap = FormatError::OffsetGap {
            expected: 10,
            found: 12,
        };
        assert_eq!(gap.code(), ErrorCode::Internal);
        assert_eq!(FormatError::EmptySegment.code(), ErrorCode::Internal);
        assert_eq!(FormatError::EmptyFlushObject.code(), ErrorCode::Internal);
    }
}
