//! Flush objects: one object per broker flush, holding a segment of each partition flushed.
//!
//! ```text
//! [section 0][section 1]...[section n-1] [toc] [trailer: toc_len u32 | toc_crc u32 | version u16 | flags u16 | "STFO"]
//! ```
//!
//! Each section is a whole segment object exactly as [`SegmentBuilder`](crate::SegmentBuilder)
//! encodes it, footer and `STSG` trailer included, so the segment readers work on a section
//! unchanged once its ranges are shifted by the section's start. One object per flush instead
//! of one per partition keeps the PUT count independent of how many partitions a broker owns.
//!
//! The table of contents names every section's partition, position and [`SegmentMeta`], so a
//! reader that knows only the object's size reads the trailer, then the TOC, then whichever
//! section it wants; a reader that kept a [`Section`] in its metadata skips straight to the
//! section.

mod toc;

use std::ops::Range;

use bytes::Bytes;

pub use toc::{FLUSH_FORMAT_VERSION, FLUSH_TRAILER_LEN, FlushToc};

use crate::error::{FormatError, Result};
use crate::segment::{EncodedSegment, SegmentMeta};

/// One partition's segment inside a flush object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub topic: String,
    pub topic_id: u64,
    pub partition: u32,
    /// Byte position of the segment in the flush object.
    pub start: u64,
    /// The segment's meta as if it were an object of its own: positions relative to `start`.
    pub meta: SegmentMeta,
}

impl Section {
    /// The section's bytes in the flush object.
    pub fn range(&self) -> Range<u64> {
        // Decoded sections are checked not to overflow; saturating keeps a hand-built one
        // from panicking.
        self.start..self.start.saturating_add(self.meta.size)
    }

    /// The segment's footer and trailer in the flush object: the first read of a section.
    pub fn footer_range(&self) -> Result<Range<u64>> {
        let within = self.meta.footer_range()?;
        Ok(self.start.saturating_add(within.start)..self.start.saturating_add(within.end))
    }
}

/// Accumulates finished segments of many partitions into one flush object.
#[derive(Debug, Default)]
pub struct FlushObjectBuilder {
    chunks: Vec<Bytes>,
    sections: Vec<Section>,
    position: u64,
}

impl FlushObjectBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one partition's finished segment; returns the section's start position.
    pub fn push(
        &mut self,
        topic: &str,
        topic_id: u64,
        partition: u32,
        segment: EncodedSegment,
    ) -> u64 {
        debug_assert_eq!(
            segment.chunks.iter().map(|c| c.len() as u64).sum::<u64>(),
            segment.meta.size,
            "a segment's chunks add up to its size"
        );
        let start = self.position;
        self.position += segment.meta.size;
        self.chunks.extend(segment.chunks);
        self.sections.push(Section {
            topic: topic.to_owned(),
            topic_id,
            partition,
            start,
            meta: segment.meta,
        });
        start
    }

    /// Number of sections so far.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// Bytes of sections so far.
    pub fn data_len(&self) -> u64 {
        self.position
    }

    /// Appends the table of contents and trailer; fails on an empty builder, or when a topic
    /// name or the table is too long for its length field.
    pub fn finish(mut self) -> Result<EncodedFlushObject> {
        if self.sections.is_empty() {
            return Err(FormatError::EmptyFlushObject);
        }
        let tail = toc::encode(&self.sections)?;
        let size = self.position + tail.len() as u64;
        self.chunks.push(tail);
        Ok(EncodedFlushObject {
            chunks: self.chunks,
            sections: self.sections,
            size,
        })
    }
}

/// A finished flush object: its bytes as chunks (the segments' own chunks, not copied, then
/// one chunk of TOC and trailer), its sections and its size.
#[derive(Debug, Clone)]
pub struct EncodedFlushObject {
    pub chunks: Vec<Bytes>,
    pub sections: Vec<Section>,
    pub size: u64,
}

impl EncodedFlushObject {
    /// The whole object as one new buffer (copies; for tests and tools).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        Bytes::from(out)
    }
}
