//! Segment objects: the immutable unit of storage.
//!
//! ```text
//! [batch][batch]...[batch] [footer] [trailer: footer_len u32 | footer_crc u32 | version u16 | flags u16 | "STSG"]
//! ```
//!
//! Batches are stored exactly as validated (only `baseOffset` assigned). The footer holds the
//! segment's offset and timestamp range, a sparse offset index (one entry per block of about
//! `index_interval_bytes`: first offset → byte position) and a timestamp index (for each block,
//! the largest timestamp seen up to its end). Both are binary-searched. The trailer has a fixed
//! size, so a reader that knows the object size and footer length — recorded in the metadata
//! at write time as [`SegmentMeta`] — needs one ranged GET for the footer and one for the data.
//!
//! Nothing here fetches bytes: [`SegmentMeta::footer_range`] and the lookup plans
//! ([`OffsetRead`], [`TimestampRead`]) say which range to read, and decode what the caller read.

mod footer;
mod lookup;

use std::ops::Range;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use footer::{FORMAT_VERSION, Footer, IndexEntry, TRAILER_LEN};
pub use lookup::{OffsetRead, TimestampRead};

use crate::batch::RecordBatch;
use crate::error::{Corrupted, FormatError, Result};

/// Default spacing of offset index entries, in bytes of batch data.
pub const DEFAULT_INDEX_INTERVAL: u64 = 4096;

/// What a writer records about a segment object so readers can find and open it cheaply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub base_offset: i64,
    /// One past the last offset in the segment.
    pub next_offset: i64,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    /// Size of the whole object in bytes.
    pub size: u64,
    /// Bytes of footer plus trailer at the end of the object.
    pub footer_len: u32,
    pub batch_count: u32,
    pub record_count: u64,
}

impl SegmentMeta {
    /// Bytes of batch data (the object minus footer and trailer).
    pub fn data_len(&self) -> u64 {
        self.size - u64::from(self.footer_len)
    }

    /// The byte range of footer and trailer, the first read of a segment; fails when the
    /// recorded lengths cannot belong to a segment object.
    pub fn footer_range(&self) -> Result<Range<u64>> {
        let tail_len = u64::from(self.footer_len);
        if tail_len < TRAILER_LEN as u64 || tail_len > self.size {
            return Err(FormatError::corrupt(
                Corrupted::SegmentTrailer,
                format!(
                    "recorded footer length {tail_len} does not fit object size {}",
                    self.size
                ),
            ));
        }
        Ok(self.size - tail_len..self.size)
    }
}

/// A finished segment: its bytes as a list of chunks (batches are not copied, so a PUT can
/// send them as they are) and its meta.
#[derive(Debug, Clone)]
pub struct EncodedSegment {
    pub chunks: Vec<Bytes>,
    pub meta: SegmentMeta,
}

impl EncodedSegment {
    /// Appends the whole object to `out` (copies; for writers that need one buffer).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.meta.size as usize);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
    }

    /// The whole object as one new buffer (copies; for tests and tools).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out);
        Bytes::from(out)
    }
}

/// Accumulates consecutive batches of one partition into a segment object.
#[derive(Debug)]
pub struct SegmentBuilder {
    chunks: Vec<Bytes>,
    index: Vec<IndexEntry>,
    index_interval: u64,
    position: u64,
    next_offset: Option<i64>,
    min_timestamp: i64,
    max_timestamp: i64,
    batch_count: u32,
    record_count: u64,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        Self::new(DEFAULT_INDEX_INTERVAL)
    }
}

impl SegmentBuilder {
    /// A builder that starts a new index block every `index_interval` bytes of data.
    pub fn new(index_interval: u64) -> Self {
        Self {
            chunks: Vec::new(),
            index: Vec::new(),
            index_interval: index_interval.max(1),
            position: 0,
            next_offset: None,
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
            batch_count: 0,
            record_count: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.batch_count == 0
    }

    /// Bytes of batch data so far.
    pub fn data_len(&self) -> u64 {
        self.position
    }

    /// Appends the next batch; its base offset must follow the previous batch's last offset.
    pub fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(expected) = self.next_offset
            && batch.base_offset() != expected
        {
            return Err(FormatError::OffsetGap {
                expected,
                found: batch.base_offset(),
            });
        }
        self.min_timestamp = self.min_timestamp.min(batch.base_timestamp());
        self.max_timestamp = self.max_timestamp.max(batch.max_timestamp());
        let starts_block = match self.index.last() {
            None => true,
            Some(last) => self.position - last.position >= self.index_interval,
        };
        if starts_block {
            self.index.push(IndexEntry {
                offset: batch.base_offset(),
                position: self.position,
                max_timestamp: self.max_timestamp,
            });
        } else if let Some(last) = self.index.last_mut() {
            last.max_timestamp = self.max_timestamp;
        }
        self.chunks.extend(batch.chunks());
        self.position += batch.len() as u64;
        self.next_offset = Some(batch.next_offset());
        self.batch_count += 1;
        self.record_count += batch.record_count() as u64;
        Ok(())
    }

    /// Writes the footer and trailer; fails on an empty builder.
    pub fn finish(mut self) -> Result<EncodedSegment> {
        let (Some(first), Some(next_offset)) = (self.index.first(), self.next_offset) else {
            return Err(FormatError::EmptySegment);
        };
        let footer = Footer {
            base_offset: first.offset,
            next_offset,
            min_timestamp: self.min_timestamp,
            max_timestamp: self.max_timestamp,
            data_len: self.position,
            batch_count: self.batch_count,
            record_count: self.record_count,
            index: self.index,
        };
        let tail = footer.encode();
        let meta = SegmentMeta {
            base_offset: footer.base_offset,
            next_offset,
            min_timestamp: footer.min_timestamp,
            max_timestamp: footer.max_timestamp,
            size: self.position + tail.len() as u64,
            footer_len: tail.len() as u32,
            batch_count: footer.batch_count,
            record_count: footer.record_count,
        };
        self.chunks.push(tail);
        Ok(EncodedSegment {
            chunks: self.chunks,
            meta,
        })
    }
}
