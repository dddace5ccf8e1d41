//! The run as text: the header with the machine and the baselines, then one table or a few
//! lines per measurement.

use std::fmt::Write as _;

use super::{Point, Results};
use crate::baseline::Baselines;
use crate::load::LoadResult;
use crate::stats::{Percentiles, fmt_list, fmt_opt, size_name};

impl Results {
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
        write_baselines(&mut out, &self.baselines);
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
        self.write_produce(&mut out);
        self.write_consume(&mut out);
        self.write_elasticity(&mut out);
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

    fn write_produce(&self, out: &mut String) {
        if self.points.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nproduce (MB = 10^6 B of values; latency = enqueue → ack; 'at N%' rows send at N% of the max row's rate)"
        );
        let _ = writeln!(
            out,
            "{:>7} {:>5} {:>8} {:>8} | {:>9} {:>8} {:>6} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7} {:>7} {:>8} {:>6} | {:>5} {:>5} {:>6}",
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
            "hedge%",
            "cpu",
            "other",
            "errors"
        );
        for p in &self.points {
            write_produce_row(out, p, "max", &p.max, p.write_ratio);
            if let Some(at) = &p.at_load {
                let ratio = self.write_baseline_mb_s.map(|b| at.mb_per_s / b);
                let run = format!("at {:.0}%", self.settings.latency_load * 100.0);
                write_produce_row(out, p, &run, at, ratio);
            }
        }
    }

    fn write_consume(&self, out: &mut String) {
        if self.consume.is_empty() {
            return;
        }
        let tcp = self.baselines.loopback_tcp_mb_s;
        let get = self.baselines.storage.as_ref().map(|s| s.parallel_get_mb_s);
        let _ = writeln!(
            out,
            "\nconsume (raw fetches from offset 0, 32 partitions at a time; cold = first read through the proxy, cached = the same again)"
        );
        let _ = writeln!(
            out,
            "{:>7} {:>5} | {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7} | {:>6}",
            "size", "parts", "cold MB/s", "msgs", "÷GET", "cache MB/s", "fetches", "÷TCP", "errors"
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
        let waits: Vec<String> = self
            .consume
            .iter()
            .map(|c| match (c.settle_measured, c.settled) {
                (false, _) => format!("{}p not measured (no broker metrics)", c.partitions),
                (true, true) => format!("{}p {:.0} s", c.partitions, c.settle_secs),
                (true, false) => format!("{}p {:.0} s, still writing", c.partitions, c.settle_secs),
            })
            .collect();
        let _ = writeln!(
            out,
            "waited for the brokers' compaction before each cold pass: {}",
            waits.join("; ")
        );
    }

    fn write_elasticity(&self, out: &mut String) {
        let or_dash = |x: Option<u64>| x.map_or("-".into(), |b| b.to_string());
        if let Some(m) = &self.partition_move {
            let _ = writeln!(
                out,
                "\npartition move (admin API → first produce acknowledged by the new owner): {} ms; admin API answered in {} ms; objects before {} ({} bytes), bytes copied {}, broker segment bytes written during the quiet move {}; errors {}",
                fmt_list(&m.move_ms, 1),
                fmt_list(&m.api_ms, 1),
                m.objects_before,
                m.bytes_before,
                or_dash(m.bytes_copied),
                or_dash(m.broker_segment_bytes_during_move),
                m.errors
            );
        }
        if let Some(k) = &self.broker_kill {
            let _ = writeln!(
                out,
                "\nbroker kill -9 → first produce acknowledged by the new owner, per partition of the killed broker:"
            );
            for (i, t) in k.unwritable_s.iter().enumerate() {
                let _ = writeln!(out, "  trial {}: {} s", i + 1, fmt_list(t, 2));
            }
            let _ = writeln!(out, "  records that failed for good: {}", k.errors);
        }
        if let Some(r) = &self.rolling_restart {
            let p50_p99_max = |p: &Percentiles| {
                format!(
                    "{}/{}/{}",
                    fmt_opt(p.p50_ms, 1),
                    fmt_opt(p.p99_ms, 1),
                    fmt_opt(p.max_ms, 1)
                )
            };
            let _ = writeln!(
                out,
                "\nrolling restart of {} brokers at {:.0} msgs/s of {}: took {:.1} s\n  p50/p99/max ms before {}, during {}, after {}\n  failed records before {}, during {}, after {}",
                r.brokers.len(),
                r.rate_msgs_per_s,
                size_name(r.size),
                r.during_secs,
                p50_p99_max(&r.before),
                p50_p99_max(&r.during),
                p50_p99_max(&r.after),
                r.errors_before,
                r.errors_during,
                r.errors_after
            );
        }
    }
}

fn write_produce_row(out: &mut String, p: &Point, run: &str, r: &LoadResult, ratio: Option<f64>) {
    let broker = |rate: fn(&crate::load::BrokerRates) -> f64| r.broker.as_ref().map(rate);
    let _ = writeln!(
        out,
        "{:>7} {:>5} {:>8} {:>8} | {:>9.0} {:>8.1} {:>6} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7} {:>7} {:>8} {:>6} | {:>5} {:>5} {:>6}",
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
        fmt_opt(broker(|b| b.flushes_per_s), 0),
        fmt_opt(broker(|b| b.puts_per_s), 0),
        fmt_opt(broker(|b| b.txns_per_s), 0),
        fmt_opt(broker(|b| b.bytes_per_put / 1e3), 1),
        fmt_opt(broker(|b| b.hedged_put_pct), 2),
        fmt_opt(r.cpu.bench_cores, 2),
        fmt_opt(r.cpu.others_cores, 2),
        r.errors,
    );
}

fn write_baselines(out: &mut String, b: &Baselines) {
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
        let p50_p99 = |p: &Percentiles| {
            format!(
                "p50 {} / p99 {} ms",
                fmt_opt(p.p50_ms, 2),
                fmt_opt(p.p99_ms, 2)
            )
        };
        let sequential: Vec<String> = s
            .sequential
            .iter()
            .map(|p| format!("{} {}", size_name(p.bytes), p50_p99(&p.put)))
            .collect();
        let _ = writeln!(
            out,
            "  storage {}: PUT one at a time: {}",
            s.node,
            sequential.join(", ")
        );
        let _ = writeln!(
            out,
            "  storage: {} PUTs of {} at a time: {:.1} MB/s ({:.0} PUTs/s, {}); GETs {} at a time {:.1} MB/s",
            s.parallel,
            size_name(s.parallel_object_bytes),
            s.parallel_put_mb_s,
            s.parallel_puts_per_s,
            p50_p99(&s.parallel_put),
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
}
