//! Idempotent producers: a batch whose producer id, epoch and sequences match one of that
//! producer's recent batches is a retry and gets its original offsets back.

use strata_format::RecordBatch;
use strata_log::ProducerState;

use crate::error::{BrokerError, Result};

/// Batches remembered per producer (Kafka keeps five in flight).
const HISTORY: usize = 5;
/// Producers remembered per partition; the least recently seen are forgotten first.
const MAX_PRODUCERS: usize = 1000;

fn last_sequence(batch: &RecordBatch) -> i32 {
    batch
        .base_sequence()
        .wrapping_add(batch.last_offset_delta())
}

/// `Ok(Some(base_offset))` for a duplicate, `Ok(None)` for a batch to append, or why it is
/// refused.
pub(super) fn check(state: &mut ProducerState, batch: &RecordBatch) -> Result<Option<i64>> {
    if !batch.is_idempotent() {
        return Ok(None);
    }
    let Some(entry) = state.producers.get(&batch.producer_id()) else {
        return Ok(None);
    };
    let (epoch, current) = (batch.producer_epoch(), entry.epoch);
    if epoch < current {
        return Err(BrokerError::ProducerFenced {
            producer_id: batch.producer_id(),
            epoch,
            current,
        });
    }
    if epoch > current {
        return Ok(None); // a new producer session starts its sequences afresh
    }
    let (first, last) = (batch.base_sequence(), last_sequence(batch));
    if let Some(&(_, _, base)) = entry
        .recent
        .iter()
        .find(|(f, l, _)| *f == first && *l == last)
    {
        return Ok(Some(base));
    }
    let expected = entry
        .recent
        .last()
        .map_or(first, |(_, l, _)| l.wrapping_add(1));
    if first != expected {
        return Err(BrokerError::OutOfOrderSequence {
            producer_id: batch.producer_id(),
            expected,
            got: first,
        });
    }
    Ok(None)
}

/// Remembers an appended batch (after `check` said it is new).
pub(super) fn record(state: &mut ProducerState, batch: &RecordBatch) {
    if !batch.is_idempotent() {
        return;
    }
    let entry = state.producers.entry(batch.producer_id()).or_default();
    if batch.producer_epoch() != entry.epoch {
        entry.epoch = batch.producer_epoch();
        entry.recent.clear();
    }
    entry.recent.push((
        batch.base_sequence(),
        last_sequence(batch),
        batch.base_offset(),
    ));
    if entry.recent.len() > HISTORY {
        entry.recent.remove(0);
    }
    entry.last_seen_ms = super::now_ms();
    if state.producers.len() > MAX_PRODUCERS
        && let Some(oldest) = state
            .producers
            .iter()
            .min_by_key(|(_, e)| e.last_seen_ms)
            .map(|(id, _)| *id)
    {
        state.producers.remove(&oldest);
    }
}
