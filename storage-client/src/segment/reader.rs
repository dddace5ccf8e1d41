use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use super::SegmentMeta;
use super::footer::{Footer, TRAILER_LEN};
use crate::batch::{BatchIter, RecordBatch, codec};
use crate::error::{Corrupted, Result, StorageError};

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
            return Err(StorageError::corrupt(
                Corrupted::SegmentData,
                format!("range {range:?} is outside the {len}-byte object"),
            ));
        }
        Ok(self.0.slice(range.start as usize..range.end as usize))
    }

    async fn read_tail(&self, len: u64) -> Result<(Bytes, u64)> {
        let size = self.0.len() as u64;
        let start = size.saturating_sub(len) as usize;
        Ok((self.0.slice(start..), size))
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
        let tail_len = u64::from(meta.footer_len);
        if tail_len < TRAILER_LEN as u64 || tail_len > meta.size {
            return Err(StorageError::corrupt(
                Corrupted::SegmentTrailer,
                format!(
                    "recorded footer length {tail_len} does not fit object size {}",
                    meta.size
                ),
            ));
        }
        let tail = source.read_range(meta.size - tail_len..meta.size).await?;
        let footer = Footer::decode(&tail, meta.size)?;
        if footer.base_offset != meta.base_offset || footer.next_offset != meta.next_offset {
            return Err(StorageError::corrupt(
                Corrupted::SegmentFooter,
                format!(
                    "object holds offsets [{}, {}) but its metadata says [{}, {})",
                    footer.base_offset, footer.next_offset, meta.base_offset, meta.next_offset
                ),
            ));
        }
        Ok(Self {
            source,
            footer: Arc::new(footer),
        })
    }

    /// Opens a segment knowing nothing about it: reads a 64 KiB tail, and the rest of the
    /// footer with a second GET only when the footer is larger than that.
    pub async fn open_blind(source: R) -> Result<Self> {
        let (tail, size) = source.read_tail(BLIND_TAIL_READ).await?;
        let needed = (Footer::footer_len_from_trailer(&tail)? + TRAILER_LEN) as u64;
        let tail = if needed as usize > tail.len() && needed <= size {
            source.read_range(size - needed..size).await?
        } else {
            tail
        };
        let footer = Footer::decode(&tail, size)?;
        Ok(Self {
            source,
            footer: Arc::new(footer),
        })
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
        let block = self.footer.block_for_offset(offset)?;
        let start = self.footer.index[block].position;
        let end = self
            .footer
            .boundary_at_or_after(start.saturating_add(max_bytes))
            .max(self.footer.block_range(block).end);
        let data = self.source.read_range(start..end).await?;
        let batches = self.parse_range(data, self.footer.index[block].offset)?;
        let first = batches.partition_point(|b| b.next_offset() <= offset);
        if first == batches.len() {
            return Err(StorageError::corrupt(
                Corrupted::SegmentData,
                format!("offset {offset} is missing from the block the index points at"),
            ));
        }
        Ok(batches[first..].to_vec())
    }

    /// The first offset whose record timestamp is ≥ `timestamp`, or `None` if every record in
    /// the segment is older. One GET plus decoding of one batch.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        let Some(block) = self.footer.block_for_timestamp(timestamp) else {
            return Ok(None);
        };
        let data = self
            .source
            .read_range(self.footer.block_range(block))
            .await?;
        for batch in self.parse_range(data, self.footer.index[block].offset)? {
            if batch.max_timestamp() < timestamp {
                continue;
            }
            let records = codec::decode_batch(&batch)?;
            if let Some(r) = records.iter().find(|r| r.timestamp >= timestamp) {
                return Ok(Some(batch.base_offset() + (r.offset - records[0].offset)));
            }
        }
        Err(StorageError::corrupt(
            Corrupted::SegmentData,
            format!("timestamp index promised a record at or after {timestamp} that is not there"),
        ))
    }

    /// Parses consecutive batches and checks they continue from `first_offset` densely.
    fn parse_range(&self, data: Bytes, first_offset: i64) -> Result<Vec<RecordBatch>> {
        let mut expected = first_offset;
        let mut batches = Vec::new();
        for batch in BatchIter::new(data) {
            let batch = batch.map_err(|e| match e {
                StorageError::Corrupt { detail, .. } => {
                    StorageError::corrupt(Corrupted::SegmentData, detail)
                }
                other => other,
            })?;
            if batch.base_offset() != expected {
                return Err(StorageError::corrupt(
                    Corrupted::SegmentData,
                    format!(
                        "batch at offset {} where {expected} was expected",
                        batch.base_offset()
                    ),
                ));
            }
            expected = batch.next_offset();
            batches.push(batch);
        }
        if batches.is_empty() {
            return Err(StorageError::corrupt(
                Corrupted::SegmentData,
                "empty index block",
            ));
        }
        Ok(batches)
    }
}
