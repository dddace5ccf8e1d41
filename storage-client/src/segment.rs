//! Reading segment objects from storage with at most two ranged GETs per lookup.
//!
//! The layout, the footer and the lookup rules are `strata_format::segment`'s; this module
//! only fetches the byte ranges its plans name, from a plain store, the node pool or memory.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use strata_format::{Corrupted, Footer, FormatError, RecordBatch, SegmentMeta};

use crate::error::Result;

/// How much of the object's end to fetch when the footer length is unknown.
const BLIND_TAIL_READ: u64 = 64 * 1024;

/// Ranged reads of one object, from a plain store or from the node pool's replicas.
#[async_trait]
pub trait RangeRead: Send + Sync {
    /// Reads `range` of the object; the whole range must exist.
    async fn read_range(&self, range: Range<u64>) -> Result<Bytes>;
    /// Reads the last `len` bytes (fewer if the object is shorter) and returns them with the
    /// object's total size.
    async fn read_tail(&self, len: u64) -> Result<(Bytes, u64)>;
}

/// One object in one store.
#[derive(Debug, Clone)]
pub struct StoreObject {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
}

#[async_trait]
impl RangeRead for StoreObject {
    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        Ok(self.store.get_range(&self.path, range).await?)
    }

    async fn read_tail(&self, len: u64) -> Result<(Bytes, u64)> {
        let options = GetOptions {
            range: Some(GetRange::Suffix(len)),
            ..Default::default()
        };
        let result = self.store.get_opts(&self.path, options).await?;
        let size = result.meta.size;
        Ok((result.bytes().await?, size))
    }
}

/// A whole object already in memory (for instance from a cache).
#[derive(Debug, Clone)]
pub struct MemoryObject(pub Bytes);

#[async_trait]
impl RangeRead for MemoryObject {
    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        let len = self.0.len() as u64;
        if range.start > range.end || range.end > len {
            // Ranges come from the object's own footer, so one outside it means damage.
            return Err(FormatError::corrupt(
                Corrupted::SegmentData,
                format!("range {range:?} is outside the {len}-byte object"),
            )
            .into());
        }
        Ok(self.0.slice(range.start as usize..range.end as usize))
    }

    async fn read_tail(&self, len: u64) -> Result<(Bytes, u64)> {
        let size = self.0.len() as u64;
        let start = size.saturating_sub(len) as usize;
        Ok((self.0.slice(start..), size))
    }
}

/// A segment stored inside a larger object: a partition's section of a flush object, whose
/// footer positions count from the section's start. A segment object of its own is the
/// section that starts at 0 and spans the object.
#[derive(Debug, Clone)]
pub struct Section<R> {
    pub source: R,
    pub start: u64,
    pub len: u64,
}

#[async_trait]
impl<R: RangeRead> RangeRead for Section<R> {
    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        if range.start > range.end || range.end > self.len {
            return Err(FormatError::corrupt(
                Corrupted::SegmentData,
                format!("range {range:?} is outside the {}-byte segment", self.len),
            )
            .into());
        }
        let shifted = self.start + range.start..self.start + range.end;
        self.source.read_range(shifted).await
    }

    async fn read_tail(&self, len: u64) -> Result<(Bytes, u64)> {
        let take = len.min(self.len);
        let tail = self.read_range(self.len - take..self.len).await?;
        Ok((tail, self.len))
    }
}

/// Reads batches out of one segment object.
///
/// Opening reads the footer (one GET, or none when a cached [`Footer`] is supplied); every
/// lookup after that is one GET of the byte range it needs.
#[derive(Debug, Clone)]
pub struct SegmentReader<R> {
    source: R,
    footer: Arc<Footer>,
}

impl<R: RangeRead> SegmentReader<R> {
    /// Opens a segment whose [`SegmentMeta`] is known: reads exactly footer + trailer.
    pub async fn open(source: R, meta: &SegmentMeta) -> Result<Self> {
        let tail = source.read_range(meta.footer_range()?).await?;
        let footer = Footer::decode_for(&tail, meta)?;
        Ok(Self::with_footer(source, Arc::new(footer)))
    }

    /// Opens a segment knowing nothing about it: reads a 64 KiB tail, and the rest of the
    /// footer with a second GET only when the footer is larger than that.
    pub async fn open_blind(source: R) -> Result<Self> {
        let (tail, size) = source.read_tail(BLIND_TAIL_READ).await?;
        let tail = match Footer::full_tail_range(&tail, size)? {
            Some(range) => source.read_range(range).await?,
            None => tail,
        };
        let footer = Footer::decode(&tail, size)?;
        Ok(Self::with_footer(source, Arc::new(footer)))
    }

    /// Uses a footer decoded earlier (for instance from a cache); reads nothing.
    pub fn with_footer(source: R, footer: Arc<Footer>) -> Self {
        Self { source, footer }
    }

    pub fn footer(&self) -> &Arc<Footer> {
        &self.footer
    }

    /// Reads the batch holding `offset` and the batches after it, stopping at the first index
    /// block boundary past `max_bytes` (at least one batch is returned). One GET.
    pub async fn read_from(&self, offset: i64, max_bytes: u64) -> Result<Vec<RecordBatch>> {
        let read = self.footer.plan_offset_read(offset, max_bytes)?;
        let data = self.source.read_range(read.range.clone()).await?;
        Ok(read.batches(data)?)
    }

    /// The first offset whose record timestamp is ≥ `timestamp`, or `None` if every record in
    /// the segment is older. At most one GET, plus decoding of one batch.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        let Some(read) = self.footer.plan_timestamp_read(timestamp) else {
            return Ok(None);
        };
        let data = self.source.read_range(read.range.clone()).await?;
        Ok(Some(read.offset(data)?))
    }
}
