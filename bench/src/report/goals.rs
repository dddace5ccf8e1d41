//! Which goals of issue 8 a run met.

use super::{Goal, Point, Results};
use crate::load::LoadResult;
use crate::stats::{fmt_list, fmt_opt, size_name};

impl Results {
    /// The goals of issue 8 this run can judge.
    pub fn judge(&mut self) {
        let best = self
            .points
            .iter()
            .filter(|p| p.size == 1024 && p.ack == "durable")
            .max_by(|a, b| a.max.mb_per_s.total_cmp(&b.max.mb_per_s));
        let goals = [
            best.and_then(|best| self.ingest_goal(best)),
            best.and_then(|best| self.latency_goal(best)),
            self.scaling_goal(),
            self.move_goal(),
            self.kill_goal(),
        ];
        self.goals = goals.into_iter().flatten().collect();
    }

    fn ingest_goal(&self, best: &Point) -> Option<Goal> {
        let base = self.write_baseline_mb_s?;
        let (target, name) = if self.storage_kind == "s3" {
            (0.70, "parallel PUT throughput of the S3 server")
        } else {
            (0.60, "fsync'd sequential write bandwidth")
        };
        let ratio = best.max.mb_per_s / base;
        Some(Goal {
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
        })
    }

    /// On S3 the ack waits for a PUT, so the limit is the server's own PUT p99 plus 10 ms.
    fn latency_goal(&self, best: &Point) -> Option<Goal> {
        self.write_baseline_mb_s?;
        let at = best.at_load.as_ref()?;
        let p99 = at.ack.p99_ms;
        let (limit, how) = if self.storage_kind == "s3" {
            match self.put_p99_for(at) {
                Some((bytes, put)) => (
                    Some(put + 10.0),
                    format!(
                        "PUT p99 of {} objects {put:.1} ms + 10 ms",
                        size_name(bytes)
                    ),
                ),
                None => (None, "PUT p99 not measured".into()),
            }
        } else {
            (Some(5.0), "5 ms".into())
        };
        Some(Goal {
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
            met: p99.zip(limit).map(|(p99, limit)| p99 <= limit),
        })
    }

    fn scaling_goal(&self) -> Option<Goal> {
        let p10 = self.point(1024, 10, "durable")?;
        let p1000 = self.point(1024, 1000, "durable")?;
        let ratio = p1000.max.mb_per_s / p10.max.mb_per_s.max(1e-9);
        Some(Goal {
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
        })
    }

    fn move_goal(&self) -> Option<Goal> {
        let m = self.partition_move.as_ref()?;
        Some(Goal {
            goal: "partition move ≤ 100 ms (request → first ack by the new owner), 0 bytes copied"
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
        })
    }

    fn kill_goal(&self) -> Option<Goal> {
        let k = self.broker_kill.as_ref()?;
        Some(Goal {
            goal: "writable again ≤ 2 s after a broker kill -9".into(),
            measured: format!("worst partition per trial: {} s", fmt_list(&k.worst_s, 2)),
            met: k.worst_max_s.map(|s| s <= 2.0),
        })
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
}
