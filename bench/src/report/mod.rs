//! What a run found: the JSON document (`--json`, read back by `--chart-from`), the table, and
//! the goals of issue 8. Fields are only ever added, so results of earlier runs still load.

mod goals;
mod table;

use serde::{Deserialize, Serialize};

use crate::baseline::Baselines;
use crate::consume::ConsumeResult;
use crate::elastic::{KillResult, MoveResult, RollingResult};
use crate::load::LoadResult;
use crate::stats::CpuUse;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub load_avg_1m_start: Option<f64>,
    pub load_avg_1m_end: Option<f64>,
    /// Over the whole run.
    pub cpu: CpuUse,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    pub server: String,
    pub sizes: Vec<usize>,
    pub partitions: Vec<u32>,
    pub acks: Vec<String>,
    pub warmup_s: f64,
    pub measure_s: f64,
    /// The latency runs send at this fraction of the same point's maximum.
    pub latency_load: f64,
    pub producer_linger_ms: u64,
    pub partitioner: String,
    pub quick: bool,
}

/// One (message size, partitions, ack mode) point.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Point {
    pub size: usize,
    pub partitions: u32,
    pub ack: String,
    /// As fast as the producer takes records.
    pub max: LoadResult,
    /// At `latency_load` × the maximum: the latency figures to read.
    pub at_load: Option<LoadResult>,
    /// `max.mb_per_s` ÷ the storage's write baseline (fsync'd disk or parallel PUT).
    pub write_ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    /// `None`: not measured in this run.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// Storage label, e.g. `file` or `s3`.
    pub label: String,
    /// `file` or `s3`: which write baseline the ratios use.
    pub storage_kind: String,
    pub started_unix_ms: i64,
    pub duration_s: f64,
    pub machine: Machine,
    pub settings: Settings,
    pub baselines: Baselines,
    /// The write baseline the ratios divide by, MB/s.
    pub write_baseline_mb_s: Option<f64>,
    pub write_baseline: String,
    pub points: Vec<Point>,
    pub consume: Vec<ConsumeResult>,
    pub partition_move: Option<MoveResult>,
    pub broker_kill: Option<KillResult>,
    pub rolling_restart: Option<RollingResult>,
    pub goals: Vec<Goal>,
    /// Steps that failed; the rest of the run went on.
    pub failures: Vec<String>,
}

/// The figures of a step that worked; a step that failed is listed in `failures` instead, and
/// the run goes on.
pub fn or_failure<T>(
    failures: &mut Vec<String>,
    step: &str,
    result: anyhow::Result<T>,
) -> Option<T> {
    result
        .map_err(|e| failures.push(format!("{step}: {e:#}")))
        .ok()
}

impl Results {
    pub fn point(&self, size: usize, partitions: u32, ack: &str) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.size == size && p.partitions == partitions && p.ack == ack)
    }

    /// Divides every point's maximum by what the storage itself can take: the S3 server's
    /// parallel PUTs, or the fsync'd disk for `file://`.
    pub fn divide_by_write_baseline(&mut self) {
        let (base, name) = if self.storage_kind == "s3" {
            (
                self.baselines.storage.as_ref().map(|s| s.parallel_put_mb_s),
                "the S3 server's parallel PUT throughput (16 × 1 MiB at a time)",
            )
        } else {
            (
                self.baselines.disk_mb_s(),
                "fsync'd sequential write of the storage directory (mean of before and after)",
            )
        };
        self.write_baseline_mb_s = base;
        self.write_baseline = name.to_owned();
        for p in &mut self.points {
            p.write_ratio = base.map(|b| p.max.mb_per_s / b);
        }
    }
}
