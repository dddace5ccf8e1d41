use std::sync::Arc;

use strata_meta::MetaStore;
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_storage::{NodePool, RecordBatch, SegmentReader};

use crate::{LogError, SegmentRecord};

/// Committed batches from a read, and where the log stands.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub batches: Vec<RecordBatch>,
    /// First offset not yet committed.
    pub high_watermark: i64,
    /// First offset still stored (older segments were deleted by retention).
    pub log_start: i64,
}

/// Reads committed data of partitions straight from storage: no broker involved.
#[derive(Debug, Clone)]
pub struct LogReader {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
}

impl LogReader {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace, pool: Arc<NodePool>) -> Self {
        Self { meta, keys, pool }
    }

    /// The high watermark (0 for a partition never written).
    pub async fn high_watermark(&self, topic: &str, partition: u32) -> Result<i64, LogError> {
        let key = self.keys.commit(topic, partition);
        Ok(match self.meta.get(&key).await? {
            Some(kv) => schema::decode::<Checkpoint>(&key, &kv.value)?.next_offset,
            None => 0,
        })
    }

    /// The first offset still stored (the high watermark when nothing is).
    pub async fn log_start(&self, topic: &str, partition: u32) -> Result<i64, LogError> {
        let (kvs, _) = self
            .meta
            .range(&self.keys.segments(topic, partition))
            .await?;
        match kvs.first() {
            Some(kv) => Ok(schema::decode::<SegmentRecord>(&kv.key, &kv.value)?
                .meta
                .base_offset),
            None => self.high_watermark(topic, partition).await,
        }
    }

    /// The first committed offset whose record timestamp is at or after `timestamp`.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<i64>, LogError> {
        let high_watermark = self.high_watermark(topic, partition).await?;
        for segment in self.segments(topic, partition).await? {
            if segment.meta.max_timestamp < timestamp || segment.meta.base_offset >= high_watermark
            {
                continue;
            }
            let object = self
                .pool
                .object(segment.placement.clone(), segment.object_path());
            let reader = SegmentReader::open(object, &segment.meta).await?;
            if let Some(offset) = reader.offset_for_timestamp(timestamp).await? {
                return Ok((offset < high_watermark).then_some(offset));
            }
        }
        Ok(None)
    }

    /// Segment records of a partition in offset order.
    pub async fn segments(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Vec<SegmentRecord>, LogError> {
        let (kvs, _) = self
            .meta
            .range(&self.keys.segments(topic, partition))
            .await?;
        kvs.iter()
            .map(|kv| Ok(schema::decode(&kv.key, &kv.value)?))
            .collect()
    }

    /// Committed batches starting with the one holding `offset`, up to about `max_bytes`
    /// (at least one batch when any is available). Reading at the high watermark returns none.
    pub async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
        max_bytes: u64,
    ) -> Result<ReadResult, LogError> {
        match self.read_once(topic, partition, offset, max_bytes).await {
            // Compaction replaced a segment between our listing and our read, and its old
            // object is gone: the new listing has the replacement.
            Err(LogError::Storage(strata_storage::StorageError::NotFound(_))) => {
                self.read_once(topic, partition, offset, max_bytes).await
            }
            other => other,
        }
    }

    async fn read_once(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
        max_bytes: u64,
    ) -> Result<ReadResult, LogError> {
        let high_watermark = self.high_watermark(topic, partition).await?;
        let segments = self.segments(topic, partition).await?;
        let log_start = segments
            .first()
            .map_or(high_watermark, |s| s.meta.base_offset);
        if offset < log_start || offset > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: log_start,
                end: high_watermark,
            });
        }
        let mut batches = Vec::new();
        let mut next = offset;
        let mut budget = max_bytes;
        // Only segments below the high watermark are committed; a record past it is an orphan
        // of a failed commit and is never read.
        let start = segments.partition_point(|s| s.meta.next_offset <= offset);
        for segment in &segments[start..] {
            if next >= high_watermark || (budget == 0 && !batches.is_empty()) {
                break;
            }
            let object = self
                .pool
                .object(segment.placement.clone(), segment.object_path());
            let reader = SegmentReader::open(object, &segment.meta).await?;
            for batch in reader.read_from(next, budget.max(1)).await? {
                if batch.base_offset() >= high_watermark || (budget == 0 && !batches.is_empty()) {
                    break;
                }
                next = batch.next_offset();
                budget = budget.saturating_sub(batch.len() as u64);
                batches.push(batch);
            }
        }
        Ok(ReadResult {
            batches,
            high_watermark,
            log_start,
        })
    }
}
