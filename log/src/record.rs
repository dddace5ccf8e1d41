use std::collections::BTreeMap;
use strata_clock::{RandomSource, ThreadRandom};

use object_store::path::Path;
use serde::{Deserialize, Serialize};
use strata_format::SegmentMeta;
use strata_storage::Placement;

/// What the metadata store keeps about one segment object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Object path in every node of the placement.
    pub path: String,
    pub placement: Placement,
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
