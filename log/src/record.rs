use std::collections::BTreeMap;
use std::ops::Range;
use strata_clock::{RandomSource, ThreadRandom};

use object_store::path::Path;
use serde::{Deserialize, Serialize};
use strata_format::SegmentMeta;
use strata_storage::Placement;

/// What the metadata store keeps about one segment: an object of its own, or a partition's
/// section of a flush object that several partitions share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Object path in every node of the placement.
    pub path: String,
    pub placement: Placement,
    /// Where the segment starts in the object: 0 for a segment object, the section's start in
    /// a flush object. `meta.size` is the segment's own size either way.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start: u64,
    /// The object holds other partitions' sections too: only the flush-object sweep deletes
    /// it, once no record refers to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// Size of the whole flush object when `shared` (0 when unknown: records written before
    /// it was kept), so a tailing reader can fetch every section at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub object_size: u64,
    #[serde(flatten)]
    pub meta: SegmentMeta,
    /// Epoch of the writer that committed it.
    pub epoch: u64,
    pub created_ms: i64,
}

impl SegmentRecord {
    pub fn object_path(&self) -> Path {
        Path::from(self.path.as_str())
    }

    /// A segment that is an object of its own (a lone flush, a compaction's merge).
    pub fn own_object(
        path: &Path,
        placement: Placement,
        meta: SegmentMeta,
        epoch: u64,
        created_ms: i64,
    ) -> Self {
        Self {
            path: path.to_string(),
            placement,
            start: 0,
            shared: false,
            object_size: 0,
            meta,
            epoch,
            created_ms,
        }
    }

    /// The segment's bytes in the object.
    pub fn range(&self) -> Range<u64> {
        self.start..self.start + self.meta.size
    }

    /// The segment's batches in the object (its range without footer and trailer).
    pub fn data_range(&self) -> Range<u64> {
        self.start..self.start + self.meta.data_len()
    }

    /// Names the segment among those of its object, for caches keyed by what they hold.
    pub fn cache_key(&self) -> String {
        section_cache_key(&self.path, self.start)
    }
}

/// The cache key of the segment starting at `start` of the object at `path`.
pub(crate) fn section_cache_key(path: &str, start: u64) -> String {
    if start == 0 {
        path.to_owned()
    } else {
        format!("{path}#{start}")
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The folder of the flush objects of a cluster: one object per flush of a broker, holding a
/// section for each partition the flush wrote.
pub fn flush_prefix(cluster_root: &str) -> Path {
    Path::from(format!(
        "{}/{FLUSH_FOLDER}",
        cluster_root.trim_start_matches('/')
    ))
}

/// Flush objects live beside the topics' folders; a topic folder always ends in its 16-digit
/// id, so no topic's folder can have this name.
pub const FLUSH_FOLDER: &str = "flush";

/// A fresh, never reused path for a flush object of `writer`.
pub fn flush_object_path(cluster_root: &str, writer: &str, now_ms: i64) -> Path {
    let nonce = ThreadRandom.next_u64() as u32;
    flush_prefix(cluster_root).join(format!("{writer}-{now_ms:013}-{nonce:08x}.flush"))
}

/// Whether `path` names a flush object that `writer` wrote (see [`flush_object_path`]).
pub fn is_flush_object_of(path: &str, writer: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.strip_prefix(writer)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.get(..14))
        .is_some_and(|ms| ms.ends_with('-') && ms[..13].bytes().all(|b| b.is_ascii_digit()))
}

/// The folder holding every object of one partition of one topic incarnation.
pub fn partition_prefix(cluster_root: &str, topic: &str, topic_id: u64, partition: u32) -> Path {
    let root = cluster_root.trim_start_matches('/');
    Path::from(format!("{root}/{topic}-{topic_id:016x}/{partition}"))
}

/// A fresh, never reused object path for a segment of `topic`/`partition` written at `epoch`.
///
/// The random suffix makes a retried or zombie write land beside, never over, a committed
/// object, and lets garbage collection tell objects apart by name alone.
pub fn object_path(
    cluster_root: &str,
    topic: &str,
    topic_id: u64,
    partition: u32,
    base_offset: i64,
    epoch: u64,
) -> Path {
    let nonce = ThreadRandom.next_u64() as u32;
    partition_prefix(cluster_root, topic, topic_id, partition)
        .join(format!("{base_offset:020}-e{epoch}-{nonce:08x}.seg"))
}

/// Objects no longer referenced by the log (compacted away or past retention), deleted once
/// `due_ms` has passed so that readers holding older metadata can still finish their reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRecord {
    pub due_ms: i64,
    pub objects: Vec<(String, Placement)>,
}

/// Idempotent-producer state of one partition, committed with the log so that a retried
/// batch is recognised by any later owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    pub producers: BTreeMap<i64, ProducerEntry>,
}

/// What a partition remembers of one producer: its epoch and its most recent batches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// `(base_sequence, last_sequence, base_offset)` of the latest batches, oldest first.
    pub recent: Vec<(i32, i32, i64)>,
    pub last_seen_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_object_names_its_writer_and_no_other() {
        let path = flush_object_path("/strata/c", "b1", 1_700_000_000_000).to_string();
        assert!(is_flush_object_of(&path, "b1"), "{path}");
        assert!(!is_flush_object_of(&path, "b"));
        let longer = flush_object_path("/strata/c", "b1-x", 1_700_000_000_000).to_string();
        assert!(!is_flush_object_of(&longer, "b1"), "{longer}");
        assert!(!is_flush_object_of(
            "strata/c/t-0000000000000001/0/00000000000000000000-1.seg",
            "b1"
        ));
    }
}
