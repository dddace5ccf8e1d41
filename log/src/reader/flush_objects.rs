//! Tail reads of flush objects: the first reader of a fresh flush object fetches it whole and
//! caches every partition's section, so the consumers tailing all the partitions of a broker
//! cost one GET per flush between them instead of one per partition.
//!
//! Only sections among a partition's newest segments are read this way: consumers at the tail
//! of many partitions come for the same object within moments of each other, while a consumer
//! catching up on one partition of an older object would fetch everyone else's bytes for
//! nothing (compaction moves that data into per-partition segments soon anyway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strata_format::FlushToc;
use strata_storage::NodePool;
use strata_storage::SegmentReader;
use strata_storage::segment::MemoryObject;

use super::LogReader;
use crate::cache::{Cached, ReadCache};
use crate::record::section_cache_key;
use crate::{LogError, SegmentRecord};

/// How many of a partition's newest segments count as its tail.
pub(super) const TAIL_SEGMENTS: usize = 4;

/// One load at a time per object: readers of an object being fetched (of any of its sections)
/// wait for it and then find what they need in the cache.
#[derive(Debug, Default)]
pub(super) struct Loads {
    by_path: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Loads {
    pub(super) fn lock_of(&self, path: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.by_path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(path.to_owned())
            .or_default()
            .clone()
    }

    pub(super) fn done(&self, path: &str) {
        self.by_path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(path);
    }
}

/// The whole flush object holding `segment` (a section, whose record knows the object's
/// size) and its decoded table of contents.
pub async fn read_flush_object(
    pool: &NodePool,
    segment: &SegmentRecord,
) -> Result<(Bytes, FlushToc), LogError> {
    let object = pool
        .get_range(
            &segment.placement,
            &segment.object_path(),
            0..segment.object_size,
        )
        .await?;
    let toc = FlushToc::decode(&object, object.len() as u64)
        .map_err(strata_storage::StorageError::from)?;
    Ok((object, toc))
}

impl LogReader {
    /// Whether `segment` is a section worth fetching its whole flush object for.
    pub(super) fn loads_whole(segment: &SegmentRecord, cache: &ReadCache) -> bool {
        segment.shared
            && segment.object_size > 0
            && segment.object_size <= cache.config().max_object_bytes
    }

    /// The cached section of `segment`, fetching its flush object whole (once, however many
    /// readers ask at the same time) and caching every section in it. `None` when the cache
    /// could not keep it (smaller than the object), so the caller reads the section alone.
    pub(super) async fn section_from_whole_object(
        &self,
        segment: &SegmentRecord,
        cache: &ReadCache,
    ) -> Result<Option<Cached>, LogError> {
        let key = segment.cache_key();
        let lock = self.loads.lock_of(&segment.path);
        let _loading = lock.lock().await;
        if let Some(cached) = cache.get(&key) {
            return Ok(Some(cached));
        }
        let result = self.load_flush_object(segment, cache).await;
        self.loads.done(&segment.path);
        result?;
        Ok(cache.get(&key))
    }

    async fn load_flush_object(
        &self,
        segment: &SegmentRecord,
        cache: &ReadCache,
    ) -> Result<(), LogError> {
        let (object, toc) = read_flush_object(&self.pool, segment).await?;
        cache
            .stats
            .object_loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for section in toc.sections {
            let range = section.range();
            let (Ok(start), Ok(end)) = (usize::try_from(range.start), usize::try_from(range.end))
            else {
                continue;
            };
            // The TOC was checked against the object's size when decoded.
            let data = object.slice(start..end);
            let reader = SegmentReader::open(MemoryObject(data.clone()), &section.meta).await?;
            cache.insert(
                &section_cache_key(&segment.path, section.start),
                Cached {
                    footer: reader.footer().clone(),
                    data: Some(data),
                },
            );
        }
        Ok(())
    }
}
