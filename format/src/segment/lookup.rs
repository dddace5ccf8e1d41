//! Lookups in a segment object, decided from its [`Footer`] without I/O.
//!
//! A plan names the one byte range a lookup needs; the caller fetches it however it likes (a
//! ranged GET, a slice of a cached object) and hands the bytes back to the plan, which checks
//! them and answers. So the reader in `strata-storage` only moves bytes, and every rule about
//! what those bytes must hold lives here, testable on a buffer.

use std::ops::Range;

use bytes::Bytes;

use super::Footer;
use crate::batch::{BatchIter, RecordBatch, codec};
use crate::error::{Corrupted, FormatError, Result};

/// A read of the batch holding `offset` and the batches after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRead {
    /// The bytes of the object to fetch: whole index blocks, so whole batches.
    pub range: Range<u64>,
    /// Base offset of the batch at the start of `range`.
    first_offset: i64,
    offset: i64,
}

/// A search for the first record with a timestamp at or after `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRead {
    /// The bytes of the object to fetch: the one index block that holds the record.
    pub range: Range<u64>,
    first_offset: i64,
    timestamp: i64,
}

impl Footer {
    /// Plans a read from `offset` that stops at the first index block boundary past
    /// `max_bytes`, but always covers the whole block holding `offset` (so at least one batch
    /// comes back: the Kafka fetch contract).
    pub fn plan_offset_read(&self, offset: i64, max_bytes: u64) -> Result<OffsetRead> {
        let block = self.block_for_offset(offset)?;
        let start = self.index[block].position;
        let end = self
            .boundary_at_or_after(start.saturating_add(max_bytes))
            .max(self.block_range(block).end);
        Ok(OffsetRead {
            range: start..end,
            first_offset: self.index[block].offset,
            offset,
        })
    }

    /// Plans the search for the first record at or after `timestamp`; `None` when every
    /// record of the segment is older, so nothing needs to be read.
    pub fn plan_timestamp_read(&self, timestamp: i64) -> Option<TimestampRead> {
        let block = self.block_for_timestamp(timestamp)?;
        Some(TimestampRead {
            range: self.block_range(block),
            first_offset: self.index[block].offset,
            timestamp,
        })
    }
}

impl OffsetRead {
    /// The batches of `data` (the bytes of [`Self::range`]) from the one holding the offset.
    pub fn batches(&self, data: Bytes) -> Result<Vec<RecordBatch>> {
        let mut batches = dense_batches(data, self.first_offset)?;
        let first = batches.partition_point(|b| b.next_offset() <= self.offset);
        if first == batches.len() {
            return Err(FormatError::corrupt(
                Corrupted::SegmentData,
                format!(
                    "offset {} is missing from the block the index points at",
                    self.offset
                ),
            ));
        }
        Ok(batches.split_off(first))
    }
}

impl TimestampRead {
    /// The offset of the first record in `data` (the bytes of [`Self::range`]) whose
    /// timestamp is at or after the one searched for. Decodes only the batch holding it.
    pub fn offset(&self, data: Bytes) -> Result<i64> {
        for batch in dense_batches(data, self.first_offset)? {
            if batch.max_timestamp() < self.timestamp {
                continue;
            }
            let records = codec::decode_batch(&batch)?;
            if let Some(r) = records.iter().find(|r| r.timestamp >= self.timestamp) {
                return Ok(batch.base_offset() + (r.offset - records[0].offset));
            }
        }
        Err(FormatError::corrupt(
            Corrupted::SegmentData,
            format!(
                "timestamp index promised a record at or after {} that is not there",
                self.timestamp
            ),
        ))
    }
}

/// Parses consecutive batches and checks they continue densely from `first_offset`.
fn dense_batches(data: Bytes, first_offset: i64) -> Result<Vec<RecordBatch>> {
    let mut expected = first_offset;
    let mut batches = Vec::new();
    for batch in BatchIter::new(data) {
        // Inside a segment a damaged batch is damaged segment data, whatever broke in it.
        let batch = batch.map_err(|e| match e {
            FormatError::Corrupt { detail, .. } => {
                FormatError::corrupt(Corrupted::SegmentData, detail)
            }
            other => other,
        })?;
        if batch.base_offset() != expected {
            return Err(FormatError::corrupt(
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
        return Err(FormatError::corrupt(
            Corrupted::SegmentData,
            "empty index block",
        ));
    }
    Ok(batches)
}
