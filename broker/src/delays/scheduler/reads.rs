//! The scheduler's reads of the log: a recovery scan's segments fetched ahead in windows,
//! and bodies read back many at a time.

use futures::StreamExt;
use strata_format::RecordBatch;
use strata_log::{LogReader, SegmentRecord};

use super::{SCAN_FETCHES_AT_ONCE, SCAN_MAX_OBJECT_BYTES, SCAN_WINDOW_BYTES};
use crate::error::{BrokerError, Result};

/// Fetches into `reader`'s cache the segments from `from` that fit in [`SCAN_WINDOW_BYTES`]
/// (at least one), [`SCAN_FETCHES_AT_ONCE`] at a time; returns the index after the last. Only a head
/// start: a failed fetch, or a segment compaction replaced meanwhile, is read anew later.
pub(super) async fn fetch_window(
    reader: &LogReader,
    segments: &[SegmentRecord],
    from: usize,
) -> usize {
    let mut end = from;
    let mut bytes = 0;
    while let Some(segment) = segments.get(end) {
        let size = if segment.shared {
            segment.object_size
        } else {
            segment.meta.size
        };
        // Not fetched ahead: read in ranges, they take no room in the cache.
        let size = if size > SCAN_MAX_OBJECT_BYTES {
            0
        } else {
            size
        };
        if end > from && bytes + size > SCAN_WINDOW_BYTES {
            break;
        }
        bytes += size;
        end += 1;
    }
    // Made before streaming them: a closure in the stream would make the task not `Send`.
    let fetches: Vec<_> = segments[from..end]
        .iter()
        .map(|s| reader.prefetch(s))
        .collect();
    futures::stream::iter(fetches)
        .buffer_unordered(SCAN_FETCHES_AT_ONCE)
        .for_each(|_| async {})
        .await;
    end
}

/// Up to `n` entries spread evenly over `sorted`.
pub(super) fn spread(sorted: &[i64], n: usize) -> Vec<i64> {
    if sorted.len() <= n {
        return sorted.to_vec();
    }
    (0..n).map(|i| sorted[i * sorted.len() / n]).collect()
}

/// Reads the log from each of `picks` at once, `bytes` from each; the batches of each read.
pub(super) async fn read_round(
    reader: &LogReader,
    (topic, partition): (&str, u32),
    picks: &[i64],
    bytes: u64,
) -> Result<Vec<(i64, Vec<RecordBatch>)>> {
    let reads = futures::future::try_join_all(
        picks
            .iter()
            .map(|&offset| reader.read(topic, partition, offset, bytes)),
    )
    .await?;
    picks
        .iter()
        .zip(reads)
        .map(|(&offset, read)| {
            if read.batches.is_empty() {
                // Retention keeps every segment from the low mark on, so the log holds every
                // pending record: a miss is a fault to report, not a record to drop.
                return Err(BrokerError::DelaysInconsistent(format!(
                    "{topic}/{partition}: the pending delayed record at {offset} is not in the log"
                )));
            }
            Ok((offset, read.batches))
        })
        .collect()
}

/// The offsets a read's batches cover: they follow each other, so one range.
pub(super) fn covered_by(batches: &[RecordBatch]) -> Option<std::ops::Range<i64>> {
    Some(batches.first()?.base_offset()..batches.last()?.next_offset())
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn picks_are_spread_over_the_list() {
        let all: Vec<i64> = (0..100).collect();
        assert_eq!(spread(&all, 4), vec![0, 25, 50, 75]);
        assert_eq!(spread(&all[..3], 4), vec![0, 1, 2]);
        assert!(spread(&[], 4).is_empty());
    }
}
