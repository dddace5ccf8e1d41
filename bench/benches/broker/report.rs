//! The run as a table on stdout and as JSON in the build's target folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_bench::baseline::DiskBaseline;
use strata_bench::stats::{CpuUse, fmt_opt};

use crate::points::{Outcome, ack_name};
use crate::stages::Stages;
use crate::{FSYNC_ROUNDS, MEASURE, RECORDS_PER_BATCH, VALUE_BYTES, WARMUP};

/// Everything one run found; written as `target/bench-broker.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub baseline: FsyncBaseline,
    pub stages: Stages,
    pub points: Vec<Outcome>,
}

/// The machine as the run saw it: others' work on a shared machine skews every figure.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// From the first probe to the last baseline.
    pub cpu: CpuUse,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub value_bytes: usize,
    pub records_per_batch: usize,
    pub warmup_s: f64,
    pub measure_s: f64,
    pub mb: f64,
}

impl Settings {
    pub fn of_this_build() -> Self {
        Self {
            value_bytes: VALUE_BYTES,
            records_per_batch: RECORDS_PER_BATCH,
            warmup_s: WARMUP.as_secs_f64(),
            measure_s: MEASURE.as_secs_f64(),
            mb: strata_bench::stats::MB,
        }
    }
}

/// Measured before and after the points: machines are shared and noisy, and the ratios use
/// the mean of the two.
#[derive(Debug, Serialize)]
pub struct FsyncBaseline {
    pub before: DiskBaseline,
    pub after: DiskBaseline,
    pub fsync_mb_s: Option<f64>,
}

impl FsyncBaseline {
    pub fn new(before: DiskBaseline, after: DiskBaseline) -> Self {
        let fsync_mb_s = DiskBaseline::mean_mb_s(Some(&before), Some(&after));
        Self {
            before,
            after,
            fsync_mb_s,
        }
    }
}

impl Report {
    /// The header lines and the table, as stdout shows them.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let b = &self.baseline;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "one broker, file storage (fsync), embedded metadata store; {VALUE_BYTES} B values, {RECORDS_PER_BATCH} per batch; {:.1} s warm-up + {:.1} s measured per point; MB = 10^6 B",
            WARMUP.as_secs_f64(),
            MEASURE.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "{} cores; over the run, other processes kept {} cores busy and the hypervisor stole {}",
            self.machine.cores,
            fmt_opt(self.machine.cpu.others_cores, 2),
            fmt_opt(self.machine.cpu.steal_cores, 2)
        );
        let _ = writeln!(
            out,
            "fsync baseline {} MB/s (16 x 4 MiB writes each followed by fdatasync, median of {FSYNC_ROUNDS} after a warm-up round; mean of {:.1} before and {:.1} after the points); 4 KiB append + fdatasync {:.2} ms",
            fmt_opt(b.fsync_mb_s, 1),
            b.before.fsync_mb_s,
            b.after.fsync_mb_s,
            b.before.small_fsync_ms
        );
        let _ = writeln!(out, "{}", self.stages.describe());
        let _ = writeln!(out);
        self.write_table(&mut out);
        out
    }

    fn write_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} | {:>5} {:>8} {:>7} {:>8} {:>9} {:>9} {:>6} {:>6}",
            "point",
            "parts",
            "ack",
            "msgs/s",
            "MB/s",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "txns/s",
            "PUTs/s",
            "÷fsync",
            "infl",
            "flush/s",
            "PUT/fl",
            "flush ms",
            "flushMB/s",
            "cpu u+s",
            "others",
            "errors",
        );
        for o in &self.points {
            let _ = writeln!(
                out,
                "{:<22} {:>5} {:>8} {:>9.0} {:>8.1} {:>8} {:>8} {:>8} {:>7.1} {:>7.1} {:>7} | {:>5} {:>8.1} {:>7} {:>8} {:>9.1} {:>9} {:>6} {:>6}",
                o.point.name,
                o.point.partitions,
                ack_name(o.point.ack),
                o.msgs_per_s,
                o.mb_per_s,
                fmt_opt(o.latency.p50_ms, 3),
                fmt_opt(o.latency.p99_ms, 3),
                fmt_opt(o.latency.p999_ms, 3),
                o.flush.txns_per_s,
                o.flush.puts_per_s,
                fmt_opt(o.mb_per_s_over_fsync, 3),
                o.point.in_flight,
                o.flush.flushes_per_s,
                fmt_opt(o.flush.puts_per_flush, 1),
                fmt_opt(o.flush.flush_ms_mean, 2),
                o.flush.flushed_mb_per_s,
                format!(
                    "{}+{}",
                    fmt_opt(o.cpu.bench_user_cores, 2),
                    fmt_opt(o.cpu.bench_system_cores, 2)
                ),
                fmt_opt(o.cpu.others_cores, 2),
                o.errors,
            );
        }
    }

    /// Writes the JSON next to the build's other outputs; returns where.
    pub fn write_json(&self) -> anyhow::Result<PathBuf> {
        let path = target_dir().join("bench-broker.json");
        std::fs::write(&path, serde_json::to_string_pretty(self)?)?;
        Ok(path)
    }
}

/// `target/` of this build: the bench binary is `target/<profile>/deps/broker-<hash>`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}
