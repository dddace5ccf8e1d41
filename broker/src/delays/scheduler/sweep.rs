//! A pass over the pending part of a partition's log that reads back the bodies the budget
//! has room for again, one chunk per turn of the scheduler's loop.
//!
//! The budget holds the bodies due soonest; as they are delivered its room frees up, and
//! the next-soonest are in the log, spread over all of it (a producer's batch holds records
//! due anywhere in the delay window). Reading the log once from the low mark, in order,
//! refills the budget for the cost of one sequential read, where reading back record by
//! record when each comes due read the same megabytes again for every few records.

use strata_format::RecordBatch;
use strata_log::LogReader;

use crate::error::Result;

/// Bytes read per step: decoded in tens of milliseconds, so a delivery waits at most a step.
const STEP_BYTES: u64 = 2 << 20;

pub(super) struct Sweep {
    reader: LogReader,
    next: i64,
    end: i64,
}

impl Sweep {
    /// A sweep of `[from, end)` with `reader` (whose cache is the broker's sweep cache).
    pub(super) fn new(reader: LogReader, from: i64, end: i64) -> Self {
        Self {
            reader,
            next: from,
            end,
        }
    }

    /// The batches of the next step, or `None` when the sweep is over.
    pub(super) async fn step(
        &mut self,
        topic: &str,
        partition: u32,
    ) -> Result<Option<Vec<RecordBatch>>> {
        if self.next >= self.end {
            return Ok(None);
        }
        let read = self
            .reader
            .read(topic, partition, self.next, STEP_BYTES)
            .await?;
        let batches: Vec<RecordBatch> = read
            .batches
            .into_iter()
            .filter(|b| b.next_offset() > self.next && b.base_offset() < self.end)
            .collect();
        // A read that returns nothing new below the end (the log changed under the sweep)
        // ends it; a pending record the log lost is reported by the read-back that needs it.
        self.next = batches.last().map_or(self.end, RecordBatch::next_offset);
        Ok(Some(batches))
    }
}
