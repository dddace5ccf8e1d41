mod flush_objects;

pub use flush_objects::read_flush_object;

use std::sync::Arc;

use futures::StreamExt;
use strata_format::RecordBatch;
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_meta::{MetaStore, Revision};
use strata_storage::pool::PoolObject;
use strata_storage::segment::{MemoryObject, Section};
use strata_storage::{NodePool, SegmentReader};

use crate::cache::{Cached, ReadCache};
use crate::index::{Lookup, ReadAt, SegmentIndex, View};
use crate::{LogError, SegmentRecord};

/// Segments one read fetches into the cache at once (see `LogReader::fetch_ahead`).
const FETCHES_AT_ONCE: usize = 8;

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
    cache: Option<Arc<ReadCache>>,
    index: Arc<SegmentIndex>,
    loads: Arc<flush_objects::Loads>,
}

impl LogReader {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace, pool: Arc<NodePool>) -> Self {
        Self {
            meta,
            keys,
            pool,
            cache: None,
            index: Arc::default(),
            loads: Arc::default(),
        }
    }

    /// Serves reads through `cache` (see [`ReadCache`]).
    pub fn with_cache(mut self, cache: Arc<ReadCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The segment's bytes in storage, read with ranges relative to its start.
    fn stored(&self, segment: &SegmentRecord) -> Section<PoolObject<'_>> {
        Section {
            source: self
                .pool
                .object(segment.placement.clone(), segment.object_path()),
            start: segment.start,
            len: segment.meta.size,
        }
    }

    /// Batches of one segment from `offset`, through the cache when there is one; `at_tail`
    /// when the segment is among the partition's newest (see [`flush_objects`]).
    async fn read_segment(
        &self,
        segment: &SegmentRecord,
        offset: i64,
        max_bytes: u64,
        at_tail: bool,
    ) -> Result<Vec<RecordBatch>, LogError> {
        let stored = self.stored(segment);
        let Some(cache) = &self.cache else {
            let reader = SegmentReader::open(stored, &segment.meta).await?;
            return Ok(reader.read_from(offset, max_bytes).await?);
        };
        let key = segment.cache_key();
        let mut cached = cache.get(&key);
        if cached.is_none() && at_tail && Self::loads_whole(segment, cache) {
            cached = self.section_from_whole_object(segment, cache).await?;
        }
        match cached {
            Some(Cached {
                footer,
                data: Some(data),
            }) => Ok(SegmentReader::with_footer(MemoryObject(data), footer)
                .read_from(offset, max_bytes)
                .await?),
            Some(Cached { footer, data: None }) => Ok(SegmentReader::with_footer(stored, footer)
                .read_from(offset, max_bytes)
                .await?),
            None if segment.meta.size <= cache.config().max_object_bytes => {
                // One GET for the whole segment instead of footer + range, and the next
                // reader of this hot segment needs none.
                let (footer, data) = self.load_segment(segment, cache).await?;
                Ok(SegmentReader::with_footer(MemoryObject(data), footer)
                    .read_from(offset, max_bytes)
                    .await?)
            }
            None => {
                let reader = SegmentReader::open(stored, &segment.meta).await?;
                cache.insert(
                    &key,
                    Cached {
                        footer: reader.footer().clone(),
                        data: None,
                    },
                );
                Ok(reader.read_from(offset, max_bytes).await?)
            }
        }
    }

    /// Fetches into the cache, [`FETCHES_AT_ONCE`] at a time, the segments a read of
    /// `max_bytes` is about to walk that it would fetch whole: a reader behind by many small
    /// segments (a consumer catching up before compaction merged them) otherwise waits for
    /// their GETs one after another. Only a head start: the read fetches what this did not.
    async fn fetch_ahead(&self, segments: &[Arc<SegmentRecord>], max_bytes: u64, tail_from: usize) {
        let Some(cache) = &self.cache else {
            return;
        };
        let mut bytes = 0;
        let mut wanted = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            if bytes >= max_bytes {
                break;
            }
            bytes += segment.meta.size;
            let whole = Self::fetched_whole(segment, i >= tail_from, cache);
            if whole && !cache.contains(&segment.cache_key()) {
                wanted.push((segment, i >= tail_from));
            }
        }
        if wanted.len() < 2 {
            return; // the read itself fetches one as fast
        }
        let fetches: Vec<_> = wanted
            .into_iter()
            .map(|(segment, at_tail)| self.fetch_whole(segment, at_tail, cache))
            .collect();
        futures::stream::iter(fetches)
            .buffer_unordered(FETCHES_AT_ONCE)
            .for_each(|_| async {})
            .await;
    }

    /// Whether a read fetches `segment` whole into the cache: with its whole flush object at
    /// the tail, alone when small enough; large ones are left to ranged reads.
    fn fetched_whole(segment: &SegmentRecord, at_tail: bool, cache: &ReadCache) -> bool {
        (at_tail && Self::loads_whole(segment, cache))
            || segment.meta.size <= cache.config().max_object_bytes
    }

    /// Fetches a segment into the cache as a read of it would ([`Self::fetched_whole`]).
    async fn fetch_whole(
        &self,
        segment: &SegmentRecord,
        at_tail: bool,
        cache: &ReadCache,
    ) -> Result<(), LogError> {
        if at_tail && Self::loads_whole(segment, cache) {
            self.section_from_whole_object(segment, cache).await?;
        } else if segment.meta.size <= cache.config().max_object_bytes {
            self.load_segment(segment, cache).await?;
        }
        Ok(())
    }

    /// Fetches a small segment whole into the cache, once however many readers (and the
    /// prefetch) ask for it at the same time.
    async fn load_segment(
        &self,
        segment: &SegmentRecord,
        cache: &ReadCache,
    ) -> Result<(Arc<strata_format::Footer>, bytes::Bytes), LogError> {
        let lock = self.loads.lock_of(&segment.path);
        let _loading = lock.lock().await;
        if let Some(Cached {
            footer,
            data: Some(data),
        }) = cache.get(&segment.cache_key())
        {
            return Ok((footer, data));
        }
        // Done only once the segment is in the cache (or failed): a reader arriving in between
        // would otherwise find neither the load nor its result, and fetch it again.
        let loaded = self.fetch_segment_into(segment, cache).await;
        self.loads.done(&segment.path);
        loaded
    }

    async fn fetch_segment_into(
        &self,
        segment: &SegmentRecord,
        cache: &ReadCache,
    ) -> Result<(Arc<strata_format::Footer>, bytes::Bytes), LogError> {
        let data = self
            .pool
            .get_range(&segment.placement, &segment.object_path(), segment.range())
            .await?;
        let reader = SegmentReader::open(MemoryObject(data.clone()), &segment.meta).await?;
        let footer = reader.footer().clone();
        cache.insert(
            &segment.cache_key(),
            Cached {
                footer: footer.clone(),
                data: Some(data.clone()),
            },
        );
        Ok((footer, data))
    }

    /// Fetches a segment committed just now into the cache before a consumer asks for it, so
    /// a consumer at the tail waits for no GET: one GET per flush object for every partition
    /// in it, or one per small segment object. Does nothing without a cache, for segments
    /// already cached, and for those too large to cache whole.
    pub async fn prefetch(&self, segment: &SegmentRecord) -> Result<(), LogError> {
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        if cache.contains(&segment.cache_key()) {
            return Ok(());
        }
        if !Self::fetched_whole(segment, true, cache) {
            return Ok(());
        }
        self.fetch_whole(segment, true, cache).await?;
        cache
            .stats
            .prefetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The high watermark (0 for a partition never written).
    pub async fn high_watermark(&self, topic: &str, partition: u32) -> Result<i64, LogError> {
        Ok(self.checkpoint(topic, partition).await?.0)
    }

    /// The high watermark and the checkpoint key's create revision, which names the topic's
    /// incarnation; `(0, 0)` for a partition never written.
    async fn checkpoint(&self, topic: &str, partition: u32) -> Result<(i64, Revision), LogError> {
        let key = self.keys.checkpoint(topic, partition);
        Ok(match self.meta.get(&key).await? {
            Some(kv) => (
                schema::decode::<Checkpoint>(&key, &kv.value)?.next_offset,
                kv.create_revision,
            ),
            None => (0, 0),
        })
    }

    /// The first offset still stored (the high watermark when nothing is).
    ///
    /// The high watermark is read before the segment list: a commit landing between the two
    /// reads then only adds a record at or past it. Read the other way round, a partition
    /// whose first commit landed in between had no records yet but a high watermark past
    /// them, and a consumer starting "from the beginning" skipped that first commit (found by
    /// the cluster end-to-end test: a plain consumer started at offset 500 of a partition).
    pub async fn log_start(&self, topic: &str, partition: u32) -> Result<i64, LogError> {
        let high_watermark = self.high_watermark(topic, partition).await?;
        let (kvs, _) = self
            .meta
            .range(&self.keys.segments(topic, partition))
            .await?;
        match kvs.first() {
            Some(kv) => Ok(schema::decode::<SegmentRecord>(&kv.key, &kv.value)?
                .meta
                .base_offset
                .min(high_watermark)),
            None => Ok(high_watermark),
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
            let reader = SegmentReader::open(self.stored(&segment), &segment.meta).await?;
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
        decode_records(&kvs)
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
        match self
            .read_once(topic, partition, offset, max_bytes, false)
            .await
        {
            // Compaction or retention replaced a segment since the records we hold were
            // listed, and its old object is gone: a new listing has the replacement.
            Err(LogError::Storage(strata_storage::StorageError::NotFound(_))) => {
                self.read_once(topic, partition, offset, max_bytes, true)
                    .await
            }
            other => other,
        }
    }

    /// The records a read at `offset` needs, from the index when it is current (`fresh`
    /// forces a new listing).
    async fn view(
        &self,
        topic: &str,
        partition: u32,
        at: ReadAt,
        fresh: bool,
    ) -> Result<View, LogError> {
        let lookup = if fresh {
            Lookup::Miss
        } else {
            self.index.lookup(topic, partition, at)
        };
        match lookup {
            Lookup::Hit(view) => return Ok(view),
            Lookup::Tail(end) => {
                let (kvs, _) = self
                    .meta
                    .range_from(
                        &self.keys.segments(topic, partition),
                        &self.keys.segment(topic, partition, end),
                    )
                    .await?;
                let tail = decode_records(&kvs)?;
                if let Some(view) = self.index.extend(topic, partition, at, end, tail) {
                    return Ok(view);
                }
            }
            Lookup::Miss => {}
        }
        let all = self.segments(topic, partition).await?;
        Ok(self.index.replace(topic, partition, at, all))
    }

    async fn read_once(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
        max_bytes: u64,
        fresh: bool,
    ) -> Result<ReadResult, LogError> {
        let (high_watermark, incarnation) = self.checkpoint(topic, partition).await?;
        let at = ReadAt {
            incarnation,
            high_watermark,
            offset,
        };
        let View {
            log_start,
            segments,
        } = self.view(topic, partition, at, fresh).await?;
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
        // The view holds committed segments only (below the high watermark), starting with
        // the one holding `offset`; a record past it is an orphan of a failed commit.
        let tail_from = segments.len().saturating_sub(flush_objects::TAIL_SEGMENTS);
        self.fetch_ahead(&segments, max_bytes, tail_from).await;
        for (i, segment) in segments.iter().enumerate() {
            if next >= high_watermark || (budget == 0 && !batches.is_empty()) {
                break;
            }
            let at_tail = i >= tail_from;
            for batch in self
                .read_segment(segment, next, budget.max(1), at_tail)
                .await?
            {
                if batch.base_offset() >= high_watermark || (budget == 0 && !batches.is_empty()) {
                    break;
                }
                next = batch.next_offset();
                budget = budget.saturating_sub(batch.len() as u64);
                batches.push(batch);
            }
            // The segment reader stops at an index block boundary, which can come before the
            // budget is spent; the next segment does not hold `next` then, so the read ends
            // here and the next fetch continues in this segment.
            if next < segment.meta.next_offset {
                break;
            }
        }
        Ok(ReadResult {
            batches,
            high_watermark,
            log_start,
        })
    }
}

fn decode_records(kvs: &[strata_meta::KeyValue]) -> Result<Vec<SegmentRecord>, LogError> {
    kvs.iter()
        .map(|kv| Ok(schema::decode(&kv.key, &kv.value)?))
        .collect()
}
