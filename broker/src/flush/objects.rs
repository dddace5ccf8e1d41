//! Writing a cycle's units to storage: one flush object for every partition of the cycle
//! (a section each), or a segment object of its own for a lone unit.

use futures::StreamExt;
use strata_format::{EncodedSegment, FlushObjectBuilder, SegmentBuilder};
use strata_log::{SegmentRecord, flush_object_path, object_path};

use super::{Flusher, InFlight};
use crate::error::Result;
use crate::partition::{FlushUnit, now_ms};

/// Objects written at once.
const PARALLEL_PUTS: usize = 16;
/// Largest flush object: a cycle with more buffered data writes several, in parallel.
pub(super) const MAX_FLUSH_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// The unit's batches as one segment (no batch bytes are copied).
fn build_segment(unit: &FlushUnit) -> Result<EncodedSegment> {
    let mut builder = SegmentBuilder::default();
    for batch in &unit.batches {
        builder.append(batch)?;
    }
    Ok(builder.finish()?)
}

impl Flusher {
    /// Writes the units that have no object yet; returns `(written, failed, objects written)`.
    ///
    /// A unit alone becomes a segment object in its partition's folder, as it always did; two
    /// or more share flush objects of up to [`MAX_FLUSH_OBJECT_BYTES`], so a cycle costs one
    /// PUT however many partitions it flushes. Each unit's record points at its section.
    pub(super) async fn write_segments(
        &self,
        work: Vec<InFlight>,
        started: tokio::time::Instant,
    ) -> (Vec<InFlight>, Vec<InFlight>, usize) {
        let (mut ready, unwritten): (Vec<InFlight>, Vec<InFlight>) =
            work.into_iter().partition(|w| w.record.is_some());
        if unwritten.is_empty() {
            return (ready, Vec::new(), 0);
        }
        let attempt = self.stall.writing(started);
        let mut pending = Vec::new();
        let mut objects: Vec<Vec<(InFlight, EncodedSegment)>> = Vec::new();
        let mut object_bytes = 0u64;
        for item in unwritten {
            let segment = match build_segment(&item.unit) {
                Ok(segment) => segment,
                Err(e) => {
                    tracing::error!(topic = %item.partition.topic, partition = item.partition.partition, error = %e, "cannot build a segment of buffered batches; will retry");
                    pending.push(item);
                    continue;
                }
            };
            let size = segment.meta.size;
            match objects.last_mut() {
                Some(object) if object_bytes + size <= MAX_FLUSH_OBJECT_BYTES => {
                    object_bytes += size;
                    object.push((item, segment));
                }
                _ => {
                    object_bytes = size;
                    objects.push(vec![(item, segment)]);
                }
            }
        }
        let mut puts = futures::stream::iter(objects)
            .map(|units| self.write_object(units))
            .buffer_unordered(PARALLEL_PUTS);
        let mut objects_written = 0;
        while let Some((written, failed)) = puts.next().await {
            objects_written += usize::from(!written.is_empty());
            ready.extend(written);
            pending.extend(failed);
        }
        attempt.finish(pending.is_empty());
        (ready, pending, objects_written)
    }

    /// Writes one object holding `units`; returns them as `(written, failed)`.
    async fn write_object(
        &self,
        units: Vec<(InFlight, EncodedSegment)>,
    ) -> (Vec<InFlight>, Vec<InFlight>) {
        let result = if let [(item, segment)] = units.as_slice() {
            self.put_segment(item, segment)
                .await
                .map(|record| vec![record])
        } else {
            self.put_flush_object(&units).await
        };
        let items = units.into_iter().map(|(item, _)| item);
        match result {
            Ok(records) => {
                let written = items
                    .zip(records)
                    .map(|(mut item, record)| {
                        item.record = Some(record);
                        item
                    })
                    .collect();
                (written, Vec::new())
            }
            Err(e) => {
                tracing::warn!(partitions = items.len(), error = %e, "object write failed; will retry");
                self.metrics.flush_failed("put");
                (Vec::new(), items.collect())
            }
        }
    }

    /// A segment object of its own, in the partition's folder.
    async fn put_segment(
        &self,
        item: &InFlight,
        segment: &EncodedSegment,
    ) -> Result<SegmentRecord> {
        let p = &item.partition;
        let path = object_path(
            self.log.keys.root(),
            &p.topic,
            p.topic_id,
            p.partition,
            segment.meta.base_offset,
            p.epoch,
        );
        let placement = self
            .log
            .pool
            .put(&path, segment.chunks.iter().cloned().collect())
            .await?;
        self.metrics.flush_objects.inc();
        self.metrics.flush_sections.inc();
        Ok(SegmentRecord::own_object(
            &path,
            placement,
            segment.meta.clone(),
            p.epoch,
            now_ms(),
        ))
    }

    /// One flush object holding a section per unit; the records in the units' order.
    async fn put_flush_object(
        &self,
        units: &[(InFlight, EncodedSegment)],
    ) -> Result<Vec<SegmentRecord>> {
        let mut builder = FlushObjectBuilder::new();
        for (item, segment) in units {
            let p = &item.partition;
            builder.push(&p.topic, p.topic_id, p.partition, segment.clone());
        }
        let object = builder.finish()?;
        let created_ms = now_ms();
        let path = flush_object_path(self.log.keys.root(), &self.log.writer, created_ms);
        let placement = self
            .log
            .pool
            .put(&path, object.chunks.into_iter().collect())
            .await?;
        self.metrics.flush_objects.inc();
        self.metrics.flush_sections.inc_by(units.len() as u64);
        Ok(units
            .iter()
            .zip(object.sections)
            .map(|((item, _), section)| SegmentRecord {
                path: path.to_string(),
                placement: placement.clone(),
                start: section.start,
                shared: true,
                object_size: object.size,
                meta: section.meta,
                epoch: item.partition.epoch,
                created_ms,
            })
            .collect())
    }
}
