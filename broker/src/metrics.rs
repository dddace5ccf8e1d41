//! Prometheus metrics of the broker (`strata_broker_*`), served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use std::sync::Arc;

use strata_storage::NodePool;

use crate::partition::{Partition, PartitionState};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// A partition this broker serves.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: String,
}

/// The stage of a flush cycle that failed: `put` (writing the objects) or `commit`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

/// Seconds, from 0.5 ms to about 8 s: the range of one flush stage.
fn stage_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 15,
    ))
}

/// Time spent in each stage of flush cycles, so a slow ack can be traced to its stage.
#[derive(Debug)]
pub struct FlushTimings {
    /// Building and writing the cycle's segment objects (all partitions, in parallel).
    pub put: Histogram,
    /// The commit transactions of the cycle.
    pub commit: Histogram,
}

impl Default for FlushTimings {
    fn default() -> Self {
        Self {
            put: stage_histogram(),
            commit: stage_histogram(),
        }
    }
}

/// What the delayed-message schedulers do.
#[derive(Debug)]
pub struct DelayMetrics {
    /// Delayed records stored and not yet delivered, over the broker's partitions.
    pub pending: Gauge,
    /// Copies appended.
    pub delivered: Counter,
    /// From a record's due time to its copy's commit, by the broker's clock.
    pub lateness: Histogram,
    /// Batches read back from storage for bodies not held in memory.
    pub read_backs: Counter,
    /// Sweeps of a partition's pending log that refilled the budget with the bodies due next.
    pub sweeps: Counter,
    /// Bytes of pending bodies held in memory.
    pub body_bytes: Gauge,
}

impl Default for DelayMetrics {
    fn default() -> Self {
        Self {
            pending: Gauge::default(),
            delivered: Counter::default(),
            // 1 ms to about 65 s.
            lateness: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 17,
            )),
            read_backs: Counter::default(),
            sweeps: Counter::default(),
            body_bytes: Gauge::default(),
        }
    }
}

impl DelayMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "delay_pending_records",
            "Delayed records stored and not yet delivered",
            self.pending.clone(),
        );
        r.register(
            "delay_delivered_records",
            "Copies of delayed records appended when due",
            self.delivered.clone(),
        );
        r.register(
            "delay_lateness_seconds",
            "From a delayed record's due time to the commit of its copy",
            self.lateness.clone(),
        );
        r.register(
            "delay_read_backs",
            "Batches read back from storage for delayed records not held in memory",
            self.read_backs.clone(),
        );
        r.register(
            "delay_sweeps",
            "Sweeps of a partition's pending log that refill the held bodies with those due next",
            self.sweeps.clone(),
        );
        r.register(
            "delay_body_bytes",
            "Bytes of pending delayed records held in memory (delay_memory_bytes bounds it)",
            self.body_bytes.clone(),
        );
    }
}

/// Counters the write path updates.
#[derive(Debug, Default)]
pub struct BrokerMetrics {
    pub flush_timings: FlushTimings,
    pub delays: DelayMetrics,
    pub produced_batches: Counter,
    pub produced_bytes: Counter,
    pub produce_errors: Family<CodeLabel, Counter>,
    pub flushes: Counter,
    /// Flush stages that failed and are retried, by stage.
    pub flush_errors: Family<StageLabel, Counter>,
    pub flush_objects: Counter,
    pub flush_sections: Counter,
    pub segment_bytes: Counter,
    pub commit_txns: Counter,
    pub fenced_partitions: Counter,
    pub storage_give_ups: Counter,
    pub compactions: Counter,
    /// Flush objects compaction fetched whole, and sections it took from them.
    pub compaction_object_loads: Counter,
    pub compaction_shared_sections: Counter,
    pub expired_segments: Counter,
    pub deleted_objects: Counter,
}

impl BrokerMetrics {
    /// Counts a flush stage that failed (`put` or `commit`); the cycle retries it.
    pub(crate) fn flush_failed(&self, stage: &str) {
        self.flush_errors
            .get_or_create(&StageLabel {
                stage: stage.to_owned(),
            })
            .inc();
    }

    /// Renders counters plus gauges read from the served partitions now (by state, buffer).
    /// Renders every metric, the storage pool's included.
    pub fn render(
        &self,
        served: &[Arc<Partition>],
        pool: &NodePool,
        tls: Option<&strata_tls::ServerTls>,
    ) -> String {
        let partitions: Family<StateLabel, Gauge> = Family::default();
        let buffered = Gauge::<i64>::default();
        let high_watermarks: Family<PartitionLabel, Gauge> = Family::default();
        for p in served {
            partitions
                .get_or_create(&StateLabel {
                    state: p.state().to_string(),
                })
                .inc();
            buffered.inc_by(p.buffered_bytes() as i64);
            // Only where it is current: before recovery it reads 0, and a rate over the jump
            // to the real figure would show a burst of records that never came.
            if matches!(p.state(), PartitionState::Write | PartitionState::Closing) {
                high_watermarks
                    .get_or_create(&PartitionLabel {
                        topic: p.topic.clone(),
                        partition: p.partition.to_string(),
                    })
                    .set(p.high_watermark());
            }
        }
        // Shown at 0 before the first failure: an empty family is not rendered at all, and a
        // rate over a counter that appears at 1 misses that failure.
        for stage in ["put", "commit"] {
            self.flush_errors
                .get_or_create(&StageLabel {
                    stage: stage.to_owned(),
                })
                .inc_by(0);
        }
        let mut r = Registry::with_prefix("strata_broker");
        if let Some(tls) = tls {
            tls.metrics().register(&mut r);
        }
        r.register(
            "partitions",
            "Partitions served, by state machine state",
            partitions,
        );
        r.register(
            "partition_high_watermark",
            "The offset after the last committed record of each partition served: its rate is \
             the partition's records per second",
            high_watermarks,
        );
        r.register(
            "buffered_bytes",
            "Bytes accepted and not yet flushed",
            buffered,
        );
        r.register(
            "produced_batches",
            "Record batches accepted",
            self.produced_batches.clone(),
        );
        r.register(
            "produced_bytes",
            "Record batch bytes accepted",
            self.produced_bytes.clone(),
        );
        r.register(
            "produce_errors",
            "Refused record batches by error code",
            self.produce_errors.clone(),
        );
        r.register(
            "flushes",
            "Flush cycles that wrote at least one segment",
            self.flushes.clone(),
        );
        r.register(
            "flush_errors",
            "Flush stages that failed and will be retried, by stage (put, commit)",
            self.flush_errors.clone(),
        );
        r.register(
            "flush_objects",
            "Objects flushes wrote (PUTs before replication): one per cycle, a segment object \
             when the cycle held one partition, else a flush object",
            self.flush_objects.clone(),
        );
        r.register(
            "flush_sections",
            "Partition segments flushes wrote; per flush object, the partitions it holds",
            self.flush_sections.clone(),
        );
        r.register(
            "segment_bytes",
            "Bytes of segment objects written",
            self.segment_bytes.clone(),
        );
        r.register(
            "commit_txns",
            "Commit transactions sent to the metadata store",
            self.commit_txns.clone(),
        );
        r.register(
            "fenced_partitions",
            "Partitions fenced by a newer owner",
            self.fenced_partitions.clone(),
        );
        r.register(
            "storage_give_ups",
            "Times the broker gave its lease up because segment writes were stuck",
            self.storage_give_ups.clone(),
        );
        r.register(
            "flush_put_seconds",
            "Time a flush cycle spends writing its segment objects",
            self.flush_timings.put.clone(),
        );
        r.register(
            "flush_commit_seconds",
            "Time a flush cycle spends committing to the metadata store",
            self.flush_timings.commit.clone(),
        );
        r.register("compactions", "Segment merges", self.compactions.clone());
        r.register(
            "compaction_object_loads",
            "Flush objects compaction fetched whole to take many partitions' sections from",
            self.compaction_object_loads.clone(),
        );
        r.register(
            "compaction_shared_sections",
            "Sections compaction took from a flush object it had fetched whole",
            self.compaction_shared_sections.clone(),
        );
        r.register(
            "expired_segments",
            "Segments deleted by retention",
            self.expired_segments.clone(),
        );
        r.register(
            "deleted_objects",
            "Objects deleted by garbage collection",
            self.deleted_objects.clone(),
        );
        self.delays.register(&mut r);
        pool.register_metrics(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r)
            .expect("writing to a String cannot fail");
        out
    }
}
