//! What a run found: the JSON document, the table, and the goals of issue 8.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::baseline::{DiskBaseline, MetaBaseline, StorageBaseline};
use super::elastic::{KillResult, MoveResult, RollingResult};
use super::load::{ConsumeResult, LoadResult};
use super::stats::{CpuUse, Percentiles, fmt_opt};

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baselines {
    pub disk_before: Option<DiskBaseline>,
    pub disk_after: Option<DiskBaseline>,
    pub loopback_tcp_mb_s: Option<f64>,
    pub crc32c_mb_s: Option<f64>,
    pub storage: Option<StorageBaseline>,
    pub meta: Option<MetaBaseline>,
    /// A Metadata call to the proxy: one gRPC round trip, the network floor of every ack.
    pub proxy_rpc: Option<Percentiles>,
}

impl Baselines {
    /// Mean of the disk baseline before and after the points.
    pub fn disk_mb_s(&self) -> Option<f64> {
        match (&self.disk_before, &self.disk_after) {
            (Some(a), Some(b)) => Some((a.fsync_mb_s + b.fsync_mb_s) / 2.0),
            (Some(a), None) | (None, Some(a)) => Some(a.fsync_mb_s),
            (None, None) => None,
        }
    }
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

fn size_name(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

impl Results {
    pub fn point(&self, size: usize, partitions: u32, ack: &str) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.size == size && p.partitions == partitions && p.ack == ack)
    }

    /// The goals of issue 8 this run can judge.
    pub fn judge(&mut self) {
        let mut goals = Vec::new();
        let durable_1k: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.size == 1024 && p.ack == "durable")
            .collect();
        let best = durable_1k
            .iter()
            .max_by(|a, b| a.max.mb_per_s.total_cmp(&b.max.mb_per_s))
            .copied();
        if let (Some(best), Some(base)) = (best, self.write_baseline_mb_s) {
            let (target, name) = if self.storage_kind == "s3" {
                (0.70, "parallel PUT throughput of the S3 server")
            } else {
                (0.60, "fsync'd sequential write bandwidth")
            };
            let ratio = best.max.mb_per_s / base;
            goals.push(Goal {
                goal: format!(
                    "{}: durable ingest of 1 KiB messages ≥ {:.0}% of the {name}",
                    self.label,
                    target * 100.0
                ),
                measured: format!(
                    "{:.1} MB/s at {} partitions = {:.0}% of {base:.1} MB/s",
                    best.max.mb_per_s,
                    best.partitions,
                    ratio * 100.0
                ),
                met: Some(ratio >= target),
            });
            if let Some(at) = &best.at_load {
                let p99 = at.ack.p99_ms;
                let (limit, how) = if self.storage_kind == "s3" {
                    let put = self.put_p99_for(at);
                    (
                        put.map(|(_, p)| p + 10.0),
                        match put {
                            Some((bytes, p)) => {
                                format!("PUT p99 of {} objects {p:.1} ms + 10 ms", size_name(bytes))
                            }
                            None => "PUT p99 not measured".into(),
                        },
                    )
                } else {
                    (Some(5.0), "5 ms".into())
                };
                goals.push(Goal {
                    goal: format!(
                        "{}: p99 durable ack at {:.0}% of the maximum ≤ {how}",
                        self.label,
                        self.settings.latency_load * 100.0
                    ),
                    measured: format!(
                        "p99 {} ms (p50 {} ms) at {:.1} MB/s, {} partitions",
                        fmt_opt(p99, 2),
                        fmt_opt(at.ack.p50_ms, 2),
                        at.mb_per_s,
                        best.partitions
                    ),
                    met: match (p99, limit) {
                        (Some(p), Some(l)) => Some(p <= l),
                        _ => None,
                    },
                });
            }
        }
        if let (Some(p10), Some(p1000)) = (
            self.point(1024, 10, "durable"),
            self.point(1024, 1000, "durable"),
        ) {
            let ratio = p1000.max.mb_per_s / p10.max.mb_per_s.max(1e-9);
            goals.push(Goal {
                goal: format!(
                    "{}: durable throughput with 1,000 partitions ≥ 80% of 10",
                    self.label
                ),
                measured: format!(
                    "{:.1} vs {:.1} MB/s = {:.0}%",
                    p1000.max.mb_per_s,
                    p10.max.mb_per_s,
                    ratio * 100.0
                ),
                met: Some(ratio >= 0.8),
            });
        }
        if let Some(m) = &self.partition_move {
            goals.push(Goal {
                goal:
                    "partition move ≤ 100 ms (request → first ack by the new owner), 0 bytes copied"
                        .into(),
                measured: format!(
                    "p50 {} ms, max {} ms over {} moves; {} bytes copied",
                    fmt_opt(m.move_p50_ms, 1),
                    fmt_opt(m.move_max_ms, 1),
                    m.move_ms.len(),
                    m.bytes_copied.map_or("-".into(), |b| b.to_string())
                ),
                met: m
                    .move_max_ms
                    .map(|ms| ms <= 100.0 && m.bytes_copied.unwrap_or(0) == 0),
            });
        }
        if let Some(k) = &self.broker_kill {
            goals.push(Goal {
                goal: "writable again ≤ 2 s after a broker kill -9".into(),
                measured: format!(
                    "worst partition per trial: {} s",
                    k.worst_s
                        .iter()
                        .map(|s| format!("{s:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                met: k.worst_max_s.map(|s| s <= 2.0),
            });
        }
        self.goals = goals;
    }

    /// The sequential PUT p99 of the probe size closest to the objects the brokers wrote at
    /// this point (256 KiB when the brokers' metrics were not scraped).
    fn put_p99_for(&self, at: &LoadResult) -> Option<(usize, f64)> {
        let storage = self.baselines.storage.as_ref()?;
        let object = at
            .broker
            .map(|b| b.bytes_per_put)
            .filter(|b| *b > 0.0)
            .unwrap_or(256.0 * 1024.0);
        storage
            .sequential
            .iter()
            .min_by(|a, b| {
                let d = |x: usize| (x as f64).ln() - object.ln();
                d(a.bytes).abs().total_cmp(&d(b.bytes).abs())
            })
            .and_then(|p| Some((p.bytes, p.put.p99_ms?)))
    }

    pub fn header(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "strata bench [{}] against {}: {} cores, load average {} at the start and {} at the end; over the run this process used {} cores and everything else {}",
            self.label,
            self.settings.server,
            m.cores,
            fmt_opt(m.load_avg_1m_start, 2),
            fmt_opt(m.load_avg_1m_end, 2),
            fmt_opt(m.cpu.bench_cores, 2),
            fmt_opt(m.cpu.others_cores, 2),
        );
        let b = &self.baselines;
        let any = b.disk_before.is_some()
            || b.loopback_tcp_mb_s.is_some()
            || b.storage.is_some()
            || b.meta.is_some()
            || b.proxy_rpc.is_some();
        if any {
            let _ = writeln!(out, "baselines (same run):");
        }
        if let Some(d) = &b.disk_before {
            let _ = writeln!(
                out,
                "  disk {}: fsync'd sequential write {:.1} MB/s before, {} after ({}); 4 KiB append + fdatasync {:.2} ms",
                d.dir,
                d.fsync_mb_s,
                b.disk_after
                    .as_ref()
                    .map_or("-".into(), |a| format!("{:.1} MB/s", a.fsync_mb_s)),
                d.method,
                d.small_fsync_ms
            );
        }
        if let Some(t) = b.loopback_tcp_mb_s {
            let _ = writeln!(out, "  loopback TCP, one connection: {t:.0} MB/s");
        }
        if let Some(c) = b.crc32c_mb_s {
            let _ = writeln!(out, "  CRC-32C: {c:.0} MB/s");
        }
        if let Some(s) = &b.storage {
            let seq: Vec<String> = s
                .sequential
                .iter()
                .map(|p| {
                    format!(
                        "{} p50 {} / p99 {} ms",
                        size_name(p.bytes),
                        fmt_opt(p.put.p50_ms, 2),
                        fmt_opt(p.put.p99_ms, 2)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  storage {}: PUT one at a time: {}",
                s.node,
                seq.join(", ")
            );
            let _ = writeln!(
                out,
                "  storage: {} PUTs of {} at a time: {:.1} MB/s ({:.0} PUTs/s, p50 {} / p99 {} ms); GETs {} at a time {:.1} MB/s",
                s.parallel,
                size_name(s.parallel_object_bytes),
                s.parallel_put_mb_s,
                s.parallel_puts_per_s,
                fmt_opt(s.parallel_put.p50_ms, 2),
                fmt_opt(s.parallel_put.p99_ms, 2),
                s.parallel,
                s.parallel_get_mb_s
            );
        }
        if let Some(m) = &b.meta {
            let _ = writeln!(
                out,
                "  metadata store {}: commit-shaped txn p50 {} / p99 {} ms",
                m.url,
                fmt_opt(m.txn.p50_ms, 2),
                fmt_opt(m.txn.p99_ms, 2)
            );
        }
        if let Some(r) = &b.proxy_rpc {
            let _ = writeln!(
                out,
                "  proxy Metadata RPC round trip p50 {} / p99 {} ms",
                fmt_opt(r.p50_ms, 3),
                fmt_opt(r.p99_ms, 3)
            );
        }
        if let Some(w) = self.write_baseline_mb_s {
            let _ = writeln!(
                out,
                "  write baseline for ÷base: {} = {w:.1} MB/s",
                self.write_baseline
            );
        }
        out
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        if !self.points.is_empty() {
            let _ = writeln!(
                out,
                "\nproduce (MB = 10^6 B of values; latency = enqueue → ack; 'at N%' rows send at N% of the max row's rate)"
            );
            let _ = writeln!(
                out,
                "{:>7} {:>5} {:>8} {:>8} | {:>9} {:>8} {:>6} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7} {:>7} {:>8} | {:>5} {:>5} {:>6}",
                "size",
                "parts",
                "ack",
                "run",
                "msgs/s",
                "MB/s",
                "÷base",
                "p50 ms",
                "p99 ms",
                "p999 ms",
                "e2e p50",
                "e2e p99",
                "flush/s",
                "PUTs/s",
                "txns/s",
                "KB/PUT",
                "cpu",
                "other",
                "errors"
            );
            for p in &self.points {
                let mut row = |run: &str, r: &LoadResult, ratio: Option<f64>| {
                    let b = r.broker.unwrap_or_default();
                    let has_b = r.broker.is_some();
                    let _ = writeln!(
                        out,
                        "{:>7} {:>5} {:>8} {:>8} | {:>9.0} {:>8.1} {:>6} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7} {:>7} {:>8} | {:>5} {:>5} {:>6}",
                        size_name(p.size),
                        p.partitions,
                        p.ack,
                        run,
                        r.msgs_per_s,
                        r.mb_per_s,
                        fmt_opt(ratio, 3),
                        fmt_opt(r.ack.p50_ms, 2),
                        fmt_opt(r.ack.p99_ms, 2),
                        fmt_opt(r.ack.p999_ms, 2),
                        fmt_opt(r.e2e.and_then(|e| e.p50_ms), 2),
                        fmt_opt(r.e2e.and_then(|e| e.p99_ms), 2),
                        fmt_opt(has_b.then_some(b.flushes_per_s), 0),
                        fmt_opt(has_b.then_some(b.puts_per_s), 0),
                        fmt_opt(has_b.then_some(b.txns_per_s), 0),
                        fmt_opt(has_b.then_some(b.bytes_per_put / 1e3), 1),
                        fmt_opt(r.cpu.bench_cores, 2),
                        fmt_opt(r.cpu.others_cores, 2),
                        r.errors,
                    );
                };
                row("max", &p.max, p.write_ratio);
                if let Some(at) = &p.at_load {
                    let ratio = self.write_baseline_mb_s.map(|b| at.mb_per_s / b);
                    row(
                        &format!("at {:.0}%", self.settings.latency_load * 100.0),
                        at,
                        ratio,
                    );
                }
            }
        }
        if !self.consume.is_empty() {
            let tcp = self.baselines.loopback_tcp_mb_s;
            let get = self.baselines.storage.as_ref().map(|s| s.parallel_get_mb_s);
            let _ = writeln!(
                out,
                "\nconsume (raw fetches from offset 0, 32 partitions at a time; cold = first read through the proxy, cached = the same again)"
            );
            let _ = writeln!(
                out,
                "{:>7} {:>5} | {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7} | {:>6}",
                "size",
                "parts",
                "cold MB/s",
                "msgs",
                "÷GET",
                "cache MB/s",
                "fetches",
                "÷TCP",
                "errors"
            );
            for c in &self.consume {
                let _ = writeln!(
                    out,
                    "{:>7} {:>5} | {:>9.1} {:>9} {:>7} | {:>9.1} {:>9} {:>7} | {:>6}",
                    size_name(c.size),
                    c.partitions,
                    c.cold.mb_per_s,
                    c.cold.msgs,
                    fmt_opt(get.map(|g| c.cold.mb_per_s / g), 3),
                    c.cached.mb_per_s,
                    c.cached.fetches,
                    fmt_opt(tcp.map(|t| c.cached.mb_per_s / t), 3),
                    c.errors
                );
            }
        }
        if let Some(m) = &self.partition_move {
            let _ = writeln!(
                out,
                "\npartition move (admin API → first produce acknowledged by the new owner): {} ms; admin API answered in {} ms; objects before {} ({} bytes), bytes copied {}, broker segment bytes written during the quiet move {}; errors {}",
                m.move_ms
                    .iter()
                    .map(|x| format!("{x:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.api_ms
                    .iter()
                    .map(|x| format!("{x:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.objects_before,
                m.bytes_before,
                m.bytes_copied.map_or("-".into(), |b| b.to_string()),
                m.broker_segment_bytes_during_move
                    .map_or("-".into(), |b| b.to_string()),
                m.errors
            );
        }
        if let Some(k) = &self.broker_kill {
            let _ = writeln!(
                out,
                "\nbroker kill -9 → first produce acknowledged by the new owner, per partition of the killed broker:"
            );
            for (i, t) in k.unwritable_s.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  trial {}: {} s",
                    i + 1,
                    t.iter()
                        .map(|x| format!("{x:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let _ = writeln!(out, "  records that failed for good: {}", k.errors);
        }
        if let Some(r) = &self.rolling_restart {
            let _ = writeln!(
                out,
                "\nrolling restart of {} brokers at {:.0} msgs/s of {}: took {:.1} s\n  p50/p99/max ms before {}/{}/{}, during {}/{}/{}, after {}/{}/{}\n  failed records before {}, during {}, after {}",
                r.brokers.len(),
                r.rate_msgs_per_s,
                size_name(r.size),
                r.during_secs,
                fmt_opt(r.before.p50_ms, 1),
                fmt_opt(r.before.p99_ms, 1),
                fmt_opt(r.before.max_ms, 1),
                fmt_opt(r.during.p50_ms, 1),
                fmt_opt(r.during.p99_ms, 1),
                fmt_opt(r.during.max_ms, 1),
                fmt_opt(r.after.p50_ms, 1),
                fmt_opt(r.after.p99_ms, 1),
                fmt_opt(r.after.max_ms, 1),
                r.errors_before,
                r.errors_during,
                r.errors_after
            );
        }
        if !self.goals.is_empty() {
            let _ = writeln!(out, "\ngoals:");
            for g in &self.goals {
                let verdict = match g.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "not measured",
                };
                let _ = writeln!(out, "  [{verdict}] {}: {}", g.goal, g.measured);
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\nsteps that failed:");
            for f in &self.failures {
                let _ = writeln!(out, "  {f}");
            }
        }
        out
    }
}
