//! Committing a cycle's written units through the log's write protocol, in each partition's
//! order, many transactions at once.

use futures::StreamExt;
use strata_log::write::{self, CommitUnit, Refusal};
use strata_log::{partitions_per_txn, unit_bytes_bound};
use strata_meta::MAX_REQUEST_BYTES;

use super::{FlushStats, Flusher, InFlight};
use crate::error::Result;
use crate::partition::now_ms;

/// Commit transactions of one cycle in flight at once.
const PARALLEL_COMMITS: usize = 8;

/// What became of one commit transaction's units.
#[derive(Debug, Default)]
struct ChunkOutcome {
    /// Refused with the guard still holding: to commit again.
    again: Vec<InFlight>,
    /// The store did not answer: kept for the next cycle.
    failed: Vec<InFlight>,
    fenced: usize,
}

impl Flusher {
    /// Commits `ready` in each partition's order: a unit commits only after the partition's
    /// earlier units, so units of one partition go in rounds (a transaction may not write one
    /// checkpoint twice), and a unit whose predecessor is still waiting for a retry waits
    /// behind it, in `pending`.
    pub(super) async fn commit_in_order(
        &self,
        ready: Vec<InFlight>,
        pending: &mut Vec<InFlight>,
        stats: &mut FlushStats,
    ) {
        let mut waiting = ready;
        loop {
            let (next, later): (Vec<InFlight>, Vec<InFlight>) = waiting
                .into_iter()
                .partition(|w| w.partition.commits_next(&w.unit));
            if next.is_empty() {
                pending.extend(later);
                return;
            }
            self.commit_all(next, pending, stats).await;
            waiting = later;
        }
    }

    /// Commits the written units, as many per transaction as the store's limits allow
    /// ([`partitions_per_txn`], and the request size), up to
    /// [`PARALLEL_COMMITS`] transactions at once: the chunks hold different partitions, so
    /// their order does not matter, and a cycle of 1,000 partitions pays about one round trip
    /// per [`PARALLEL_COMMITS`] transactions instead of one per transaction. A refused
    /// transaction is resolved unit by unit: landed ones are acknowledged, fenced ones fenced,
    /// the rest committed again at once; units whose commit failed go to `pending`.
    async fn commit_all(
        &self,
        ready: Vec<InFlight>,
        pending: &mut Vec<InFlight>,
        stats: &mut FlushStats,
    ) {
        let per_txn = partitions_per_txn(self.log.meta.max_txn_ops());
        let mut queue = ready;
        while !queue.is_empty() {
            let chunks = into_chunks(std::mem::take(&mut queue), per_txn);
            stats.txns += chunks.len();
            let mut commits = futures::stream::iter(chunks)
                .map(|chunk| self.commit_chunk(chunk))
                .buffer_unordered(PARALLEL_COMMITS);
            while let Some(outcome) = commits.next().await {
                queue.extend(outcome.again);
                pending.extend(outcome.failed);
                stats.fenced += outcome.fenced;
            }
        }
    }

    /// Commits one chunk and resolves a refusal.
    async fn commit_chunk(&self, chunk: Vec<InFlight>) -> ChunkOutcome {
        let mut outcome = ChunkOutcome::default();
        match self.commit(&chunk).await {
            Ok(true) => chunk.iter().for_each(|w| w.partition.committed(&w.unit)),
            Ok(false) => {
                for item in chunk {
                    match self.resolve(&item).await {
                        Refusal::Landed(_) => item.partition.committed(&item.unit),
                        Refusal::StillOwned => outcome.again.push(item),
                        Refusal::Fenced => {
                            item.partition.fence(
                                "commit refused: the assignment moved to a newer epoch or a \
                                 newer incarnation claimed the partition",
                            );
                            outcome.fenced += 1;
                            self.reconcile_wanted.notify_one();
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit failed; will retry");
                self.metrics.flush_failed("commit");
                outcome.failed = chunk
                    .into_iter()
                    .map(|item| InFlight {
                        maybe_committed: true,
                        ..item
                    })
                    .collect();
            }
        }
        outcome
    }

    /// Commits one chunk; false when some guard failed and nothing was written.
    async fn commit(&self, chunk: &[InFlight]) -> Result<bool> {
        let units: Vec<CommitUnit<'_>> = chunk
            .iter()
            .map(|item| CommitUnit {
                claim: item
                    .partition
                    .claim()
                    .expect("only claimed partitions flush"),
                segment: item.record.as_ref().expect("only written units commit"),
                next_offset: item.unit.next_offset,
                producers: item.unit.producers.as_ref(),
            })
            .collect();
        let committed = write::commit(
            self.log.meta.as_ref(),
            &self.log.keys,
            &self.log.writer,
            &units,
            now_ms(),
        )
        .await?;
        Ok(committed.is_some())
    }

    async fn resolve(&self, item: &InFlight) -> Refusal {
        write::resolve_refused(
            self.log.meta.as_ref(),
            &self.log.keys,
            item.partition
                .claim()
                .expect("only claimed partitions flush"),
            item.record.as_ref().expect("only written units commit"),
            item.maybe_committed,
        )
        .await
    }
}

/// Splits units into commit transactions of at most `per_txn` units and
/// [`MAX_REQUEST_BYTES`] of keys and values (by [`unit_bytes_bound`]); a unit larger than
/// that alone goes alone, and the store says what is wrong with it.
fn into_chunks(units: Vec<InFlight>, per_txn: usize) -> Vec<Vec<InFlight>> {
    let mut chunks: Vec<Vec<InFlight>> = Vec::new();
    let mut bytes = 0;
    for item in units {
        let size = unit_bytes_bound(
            &item.partition.topic,
            item.record.as_ref().expect("only written units commit"),
            item.unit.producers.as_ref(),
        );
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < per_txn && bytes + size <= MAX_REQUEST_BYTES => {
                chunk.push(item);
                bytes += size;
            }
            _ => {
                chunks.push(vec![item]);
                bytes = size;
            }
        }
    }
    chunks
}
