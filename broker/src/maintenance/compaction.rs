//! Compaction: a run of adjacent small segments becomes one segment object. Sections of flush
//! objects are segments like any other here; compaction is what moves a partition's data out
//! of the flush objects it shares with other partitions, into objects of its own.

use futures::{FutureExt, StreamExt};
use strata_format::{BatchIter, SegmentBuilder};
use strata_log::{Claim, SegmentRecord, object_path};
use strata_meta::TxnOp;
use strata_meta::schema;

use super::shared_reads::SharedReads;
use super::{MAX_SEGMENTS_PER_CHANGE, Maintainer, Segment};
use crate::error::Result;
use crate::partition::{Partition, now_ms};

/// Segment reads of one compaction in flight at once.
const PARALLEL_READS: usize = 16;

/// The first run of at least two adjacent segments whose total size fits in `segment_bytes`
/// and in which no segment outweighs twice all the others together. The second rule bounds
/// the rewriting: a byte is copied again only when its segment grows by half at least, so a
/// growing segment is not rewritten whole for every few small ones appended to it.
pub(super) fn run_to_merge(
    segments: &[Segment],
    segment_bytes: u64,
) -> Option<std::ops::Range<usize>> {
    for start in 0..segments.len() {
        let mut end = start;
        let mut size = 0u64;
        while end < segments.len()
            && end - start < MAX_SEGMENTS_PER_CHANGE
            && size + segments[end].record.meta.size <= segment_bytes
        {
            size += segments[end].record.meta.size;
            end += 1;
        }
        let largest = segments[start..end]
            .iter()
            .map(|s| s.record.meta.size)
            .max()
            .unwrap_or(0);
        if end - start >= 2 && largest <= 2 * (size - largest) {
            return Some(start..end);
        }
    }
    None
}

/// A section of a flush object that no merge took and that was written before `written_before`
/// (a grace period ago):
/// rewritten alone into a segment object of its own, so a partition that stopped flushing does
/// not keep a whole flush object (every other partition's bytes in it) alive.
pub(super) fn lone_section(
    segments: &[Segment],
    written_before: i64,
) -> Option<std::ops::Range<usize>> {
    let i = segments
        .iter()
        .position(|s| s.record.shared && s.record.created_ms < written_before)?;
    Some(i..i + 1)
}

impl Maintainer {
    /// Merges `run` into one new object and replaces its records with one, under the claim's
    /// guard and the run's revisions. Returns how many segments were merged (0: lost a race,
    /// and the new object was deleted again).
    pub(super) async fn compact(
        &self,
        p: &Partition,
        claim: &Claim,
        run: &[Segment],
        grace_ms: i64,
        reads: &SharedReads,
    ) -> Result<usize> {
        let mut builder = SegmentBuilder::default();
        // Boxed before they enter the stream: a closure returning the future directly makes
        // the spawned maintenance task fail the `Send` check (a higher-ranked lifetime).
        let reads: Vec<futures::future::BoxFuture<'_, _>> = run
            .iter()
            .map(|s| reads.data(&self.log, &self.partitions, &s.record).boxed())
            .collect();
        let mut reads = futures::stream::iter(reads).buffered(PARALLEL_READS);
        while let Some(data) = reads.next().await {
            for batch in BatchIter::new(data?) {
                builder.append(&batch?)?;
            }
        }
        let merged = builder.finish()?;
        let base = merged.meta.base_offset;
        let path = object_path(
            self.log.keys.root(),
            &p.topic,
            p.topic_id,
            p.partition,
            base,
            p.epoch,
        );
        let placement = self
            .log
            .pool
            .put(&path, merged.chunks.iter().cloned().collect())
            .await?;
        let record =
            SegmentRecord::own_object(&path, placement.clone(), merged.meta, p.epoch, now_ms());
        let compares: Vec<_> = run.iter().map(Segment::unchanged).collect();
        let mut ops: Vec<_> = run[1..]
            .iter()
            .map(|s| TxnOp::delete(s.key.clone()))
            .collect();
        ops.push(TxnOp::put(run[0].key.clone(), schema::encode(&record)));
        ops.extend(self.gc_later(claim, run, grace_ms));
        if !self.apply(claim, &compares, &ops).await? {
            // Lost a race or the partition: the merged object is an orphan; delete it now.
            let _ = self.log.pool.delete(&placement, &path).await;
            return Ok(0);
        }
        tracing::debug!(topic = %p.topic, partition = p.partition, segments = run.len(), base, "compacted segments");
        Ok(run.len())
    }
}
