//! The committed segment records of the partitions a reader serves, kept between reads.
//!
//! A partition's segment list grows by one record per flush, and a tailing consumer fetches
//! after every commit: listing (and decoding) the whole list on every fetch made a read cost
//! grow with the partition's history, and made the proxy's CPU the limit of the whole
//! machine at a few thousand messages a second. With the index a read costs the checkpoint
//! `get` plus, when the high watermark moved, one range over the records committed since.
//!
//! What a tail read cannot see — compaction replacing records with merged ones, retention
//! deleting the oldest — is picked up by a full re-list every [`RELIST_AFTER`]. Until then
//! the replaced records still name objects that exist (garbage collection waits a grace
//! period, 60 s by default, for exactly such readers), so reads stay correct; a read that
//! finds an object gone anyway re-lists at once (`fresh`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strata_meta::Revision;
use tokio::time::Instant;

use crate::SegmentRecord;

/// Age after which a partition's records are listed again in full.
pub(crate) const RELIST_AFTER: Duration = Duration::from_secs(10);
/// Partitions not read for this long are forgotten when another partition is first listed.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// Most records a view hands to one read; a read ends early rather than walk more.
pub(crate) const VIEW_SEGMENTS: usize = 64;

/// What one read needs of a partition's list.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The first offset still stored (the high watermark when nothing is).
    pub log_start: i64,
    /// Committed records from the one holding the read's offset on, in offset order.
    pub segments: Vec<Arc<SegmentRecord>>,
}

/// Where a read stands: the checkpoint it read and the offset it wants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadAt {
    /// The checkpoint key's create revision: a deleted and recreated topic gets a new one.
    pub incarnation: Revision,
    pub high_watermark: i64,
    pub offset: i64,
}

/// What the index can do for a read.
#[derive(Debug)]
pub(crate) enum Lookup {
    Hit(View),
    /// Listed up to this offset: the records committed since must be read.
    Tail(i64),
    /// Not listed, listed too long ago, or of an earlier incarnation of the topic.
    Miss,
}

#[derive(Debug)]
struct Listed {
    /// See [`ReadAt::incarnation`].
    incarnation: Revision,
    listed_at: Instant,
    used_at: Instant,
    /// Every committed record with a base offset below this is in `records`.
    end: i64,
    records: BTreeMap<i64, Arc<SegmentRecord>>,
}

impl Listed {
    fn view(&self, high_watermark: i64, offset: i64) -> View {
        let log_start = self
            .records
            .values()
            .next()
            .map_or(high_watermark, |r| r.meta.base_offset.min(high_watermark));
        let from = self
            .records
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        let segments = self
            .records
            .range(from..high_watermark.max(from))
            .map(|(_, r)| r)
            .skip_while(|r| r.meta.next_offset <= offset)
            .take(VIEW_SEGMENTS)
            .cloned()
            .collect();
        View {
            log_start,
            segments,
        }
    }
}

/// Segment records by partition; shared by the clones of one reader.
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    partitions: Mutex<HashMap<(String, u32), Listed>>,
}

type Key = (String, u32);

impl SegmentIndex {
    fn partitions(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Listed>> {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What the index holds for a read of a partition.
    pub fn lookup(&self, topic: &str, partition: u32, at: ReadAt) -> Lookup {
        let now = Instant::now();
        let mut partitions = self.partitions();
        let Some(listed) = partitions.get_mut(&(topic.to_owned(), partition)) else {
            return Lookup::Miss;
        };
        if listed.incarnation != at.incarnation || now - listed.listed_at >= RELIST_AFTER {
            return Lookup::Miss;
        }
        listed.used_at = now;
        if listed.end < at.high_watermark {
            return Lookup::Tail(listed.end);
        }
        Lookup::Hit(listed.view(at.high_watermark, at.offset))
    }

    /// Adds the records committed since `from_end` (read with a range from that offset on):
    /// the view, or `None` when they do not continue the list exactly (compaction merged
    /// across the boundary, or the list changed meanwhile) and a full listing is needed.
    pub fn extend(
        &self,
        topic: &str,
        partition: u32,
        at: ReadAt,
        from_end: i64,
        tail: Vec<SegmentRecord>,
    ) -> Option<View> {
        let high_watermark = at.high_watermark;
        let mut partitions = self.partitions();
        let listed = partitions.get_mut(&(topic.to_owned(), partition))?;
        if listed.incarnation != at.incarnation || listed.end != from_end {
            return None;
        }
        let mut next = from_end;
        for record in tail
            .iter()
            .take_while(|r| r.meta.base_offset < high_watermark)
        {
            if record.meta.base_offset != next {
                return None;
            }
            next = record.meta.next_offset;
        }
        if next != high_watermark {
            return None;
        }
        for record in tail
            .into_iter()
            .take_while(|r| r.meta.base_offset < high_watermark)
        {
            listed
                .records
                .insert(record.meta.base_offset, Arc::new(record));
        }
        listed.end = high_watermark;
        Some(listed.view(high_watermark, at.offset))
    }

    /// Replaces a partition's records with a full listing read after a checkpoint at
    /// `high_watermark`; records at or past it are orphans of failed commits and are left out.
    pub fn replace(
        &self,
        topic: &str,
        partition: u32,
        at: ReadAt,
        all: Vec<SegmentRecord>,
    ) -> View {
        let now = Instant::now();
        let records = all
            .into_iter()
            .filter(|r| r.meta.base_offset < at.high_watermark)
            .map(|r| (r.meta.base_offset, Arc::new(r)))
            .collect();
        let listed = Listed {
            incarnation: at.incarnation,
            listed_at: now,
            used_at: now,
            end: at.high_watermark,
            records,
        };
        let view = listed.view(at.high_watermark, at.offset);
        let mut partitions = self.partitions();
        let key = (topic.to_owned(), partition);
        if !partitions.contains_key(&key) {
            partitions.retain(|_, l| now - l.used_at < FORGET_AFTER);
        }
        partitions.insert(key, listed);
        view
    }

    /// Partitions listed (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.partitions().len()
    }
}

#[cfg(test)]
mod tests;
