//! One pass's reads of flush objects: a flush object holds a section of many partitions, and
//! compaction merges each partition on its own, so reading section by section costs one GET per
//! partition per flush object. Instead, the first merge that needs a section of a flush object
//! this broker wrote fetches the object whole, and later merges of the pass slice their
//! sections from memory. Objects other brokers wrote hold sections of partitions that moved
//! here, usually few of them, and are read section by section.
//!
//! Objects are held at most up to a byte budget, never evicted to make room (an object let go
//! and needed again would be fetched whole again); past the budget, sections are read alone as
//! before. An object is let go once every section of this broker's partitions was taken, and
//! all of them at the end of the pass.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strata_log::SegmentRecord;

use crate::error::Result;
use crate::partition::PartitionState;
use crate::table::{LogAccess, PartitionTable};

#[derive(Debug)]
struct Held {
    object: Bytes,
    /// Sections of partitions written here that no merge has taken yet.
    left: usize,
}

/// Flush objects read whole during one maintenance pass.
#[derive(Debug)]
pub(super) struct SharedReads {
    budget: u64,
    state: Mutex<SharedState>,
}

#[derive(Debug, Default)]
struct SharedState {
    held: HashMap<String, Held>,
    /// One load at a time per object; merges reading other objects go on meanwhile.
    loading: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Objects fetched whole once already this pass.
    loaded: HashSet<String>,
    /// Bytes held, and reserved by loads in flight.
    bytes: u64,
    loads: u64,
    served: u64,
}

impl SharedReads {
    pub(super) fn new(budget: u64) -> Self {
        Self {
            budget,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// (whole objects fetched, sections served from them) so far.
    pub(super) fn counts(&self) -> (u64, u64) {
        let state = self.state();
        (state.loads, state.served)
    }

    /// The batches of `segment` (its data range): sliced from a held flush object, or read
    /// alone.
    pub(super) async fn data(
        &self,
        log: &LogAccess,
        partitions: &PartitionTable,
        segment: &SegmentRecord,
    ) -> Result<Bytes> {
        let range = segment.data_range();
        let ours = segment.shared
            && segment.object_size > 0
            && strata_log::is_flush_object_of(&segment.path, &log.writer);
        if ours {
            let lock = self
                .state()
                .loading
                .entry(segment.path.clone())
                .or_default()
                .clone();
            let _one_load = lock.lock().await;
            if let Some(data) = self.take(&segment.path, &range) {
                return Ok(data);
            }
            if self.reserve(segment) {
                let loaded = self.load(log, partitions, segment).await;
                if loaded.is_err() {
                    self.state().bytes -= segment.object_size;
                }
                loaded?;
                if let Some(data) = self.take(&segment.path, &range) {
                    return Ok(data);
                }
            }
        }
        Ok(log
            .pool
            .get_range(&segment.placement, &segment.object_path(), range)
            .await?)
    }

    /// Reserves the budget for fetching `segment`'s object whole, unless it was fetched
    /// already this pass or does not fit.
    fn reserve(&self, segment: &SegmentRecord) -> bool {
        let mut state = self.state();
        if state.loaded.contains(&segment.path) || state.bytes + segment.object_size > self.budget {
            return false;
        }
        state.bytes += segment.object_size;
        true
    }

    /// The section's bytes from a held object, counting it taken.
    fn take(&self, path: &str, range: &Range<u64>) -> Option<Bytes> {
        let mut state = self.state();
        let held = state.held.get_mut(path)?;
        let (Ok(start), Ok(end)) = (usize::try_from(range.start), usize::try_from(range.end))
        else {
            return None;
        };
        held.object.get(start..end)?;
        let data = held.object.slice(start..end);
        held.left = held.left.saturating_sub(1);
        if held.left == 0 {
            let size = held.object.len() as u64;
            state.held.remove(path);
            state.bytes -= size;
        }
        state.served += 1;
        Some(data)
    }

    /// Fetches the object of `segment` whole (its budget reserved) and holds it until every
    /// section of a partition written here was taken.
    async fn load(
        &self,
        log: &LogAccess,
        partitions: &PartitionTable,
        segment: &SegmentRecord,
    ) -> Result<()> {
        let (object, toc) = strata_log::read_flush_object(&log.pool, segment).await?;
        let ours = toc
            .sections
            .iter()
            .filter(|s| {
                partitions
                    .get(&s.topic, s.partition)
                    .is_some_and(|p| p.topic_id == s.topic_id && p.state() == PartitionState::Write)
            })
            .count();
        let mut state = self.state();
        state.loads += 1;
        state.loaded.insert(segment.path.clone());
        // The size reserved is the record's; hold the bytes actually read.
        state.bytes = state.bytes - segment.object_size + object.len() as u64;
        state.held.insert(
            segment.path.clone(),
            Held {
                object,
                // At least the section that asked, even if its partition just moved.
                left: ours.max(1),
            },
        );
        Ok(())
    }
}
