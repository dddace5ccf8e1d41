//! Retention: whole segments go once older than `retention_ms` or beyond `retention_bytes`.

use strata_log::Claim;
use strata_meta::TxnOp;
use strata_meta::schema::{DelayMark, TopicConfig};

use super::{MAX_SEGMENTS_PER_CHANGE, Maintainer, Segment};
use crate::error::Result;
use crate::partition::now_ms;

/// How many of the oldest segments retention deletes: those whose largest record timestamp
/// is older than `retention_ms`, or as many as it takes to get within `retention_bytes`,
/// whichever is more.
fn expired_count(config: &TopicConfig, segments: &[Segment], now_ms: i64) -> usize {
    let mut expired = 0;
    if config.retention_ms > 0 {
        expired = segments
            .iter()
            .take_while(|s| s.record.meta.max_timestamp < now_ms - config.retention_ms)
            .count();
    }
    if config.retention_bytes > 0 {
        let mut total: u64 = segments.iter().map(|s| s.record.meta.size).sum();
        let mut by_size = 0;
        while by_size < segments.len() && total > config.retention_bytes as u64 {
            total -= segments[by_size].record.meta.size;
            by_size += 1;
        }
        expired = expired.max(by_size);
    }
    expired.min(MAX_SEGMENTS_PER_CHANGE)
}

impl Maintainer {
    /// How many of the oldest segments hold only delivered delayed records: those wholly
    /// below the delay scheduler's low mark. A pending record is never deleted, whatever
    /// retention says (a producer's clock behind, a maximum delay lowered): it is stored
    /// until delivered. Without a mark, nothing is known delivered.
    async fn below_delay_mark(
        &self,
        claim: &Claim,
        config: &TopicConfig,
        segments: &[Segment],
    ) -> Result<usize> {
        let key = self.log.keys.delays(claim.topic(), claim.partition());
        let low = match self.log.meta.get(&key).await? {
            Some(kv) => strata_meta::schema::decode::<DelayMark>(&key, &kv.value)
                .ok()
                .filter(|m| m.topic_id == config.id)
                .map_or(0, |m| m.low),
            None => 0,
        };
        Ok(segments
            .iter()
            .take_while(|s| s.record.meta.next_offset <= low)
            .count())
    }

    pub(super) async fn apply_retention(
        &self,
        claim: &Claim,
        config: &TopicConfig,
        segments: &[Segment],
        grace_ms: i64,
    ) -> Result<usize> {
        let mut expired = expired_count(config, segments, now_ms());
        if expired > 0 && config.delay_filtering {
            expired = expired.min(self.below_delay_mark(claim, config, segments).await?);
        }
        if expired == 0 {
            return Ok(0);
        }
        let doomed = &segments[..expired];
        let compares: Vec<_> = doomed.iter().map(Segment::unchanged).collect();
        let mut ops: Vec<_> = doomed
            .iter()
            .map(|s| TxnOp::delete(s.key.clone()))
            .collect();
        ops.extend(self.gc_later(claim, doomed, grace_ms));
        if !self.apply(claim, &compares, &ops).await? {
            return Ok(0);
        }
        tracing::info!(topic = %claim.topic(), partition = claim.partition(), segments = expired,
            log_start = segments.get(expired).map(|s| s.record.meta.base_offset), "retention deleted segments");
        Ok(expired)
    }
}
