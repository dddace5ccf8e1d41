//! The produce and consume suites: for every (partitions, message size) cell a fresh topic,
//! and for every ack mode a run at the maximum rate, then one at a fraction of it for latency.
//! The topic's first maximum run also gives the consume suite its data.

use std::time::Duration;

use strata_client::Ack;

use crate::admin::AdminApi;
use crate::args::{BenchArgs, Suite};
use crate::consume;
use crate::load::{self, LoadResult, LoadSpec};
use crate::plan::{Plan, ack_name};
use crate::report::{Point, Results, or_failure};
use crate::stats::{Progress, fmt_opt};

/// Before the consume suite reads a topic, the brokers must have written nothing to storage
/// for this long: their compaction of what was just produced has finished.
const CONSUME_QUIET: Duration = Duration::from_secs(3);
/// Longest wait for that; a read that starts anyway says so.
const CONSUME_SETTLE_LIMIT: Duration = Duration::from_secs(180);

pub(crate) async fn run(
    args: &BenchArgs,
    plan: &Plan,
    admin: &AdminApi,
    progress: &mut Progress,
    results: &mut Results,
) {
    let total = plan.partitions.len() * plan.sizes.len();
    let nonce = rand::random::<u32>() >> 8;
    let cells = plan
        .partitions
        .iter()
        .flat_map(|&partitions| plan.sizes.iter().map(move |&size| (partitions, size)));
    for (i, (partitions, size)) in cells.enumerate() {
        let cell = Cell {
            args,
            plan,
            topic: format!("{}-{size}b-{partitions}p-{nonce:06x}", args.topic_prefix),
            partitions,
            size,
            name: format!("[{}/{total}] {size} B × {partitions}p", i + 1),
        };
        progress.update(&format!("[{}/{total}] creating {}", i + 1, cell.topic));
        let created = admin
            .create_ready_topic(
                &args.server,
                &cell.topic,
                partitions,
                Duration::from_secs(120),
            )
            .await;
        if or_failure(
            &mut results.failures,
            &format!("topic {}", cell.topic),
            created,
        )
        .is_some()
        {
            cell.measure(progress, results).await;
        }
    }
}

/// One topic: a partition count and a message size.
struct Cell<'a> {
    args: &'a BenchArgs,
    plan: &'a Plan,
    topic: String,
    partitions: u32,
    size: usize,
    /// How progress lines and failures name the cell.
    name: String,
}

impl Cell<'_> {
    async fn measure(&self, progress: &mut Progress, results: &mut Results) {
        let produce = self.args.what.contains(&Suite::Produce);
        let consume = self.args.what.contains(&Suite::Consume);
        let mut points = Vec::new();
        for (i, &ack) in self.plan.acks.iter().enumerate() {
            // Without the produce suite, one maximum run is only there to give consume data.
            if !produce && i > 0 {
                break;
            }
            let max = self.max_run(ack, progress).await;
            if let Some(max) = or_failure(&mut results.failures, &self.run_name(ack, "max"), max) {
                points.push((ack, max));
            }
            if consume && i == 0 {
                let read = self.consume(progress).await;
                let what = format!("consume {}", self.topic);
                results
                    .consume
                    .extend(or_failure(&mut results.failures, &what, read));
            }
        }
        if !produce {
            return;
        }
        for (ack, max) in points {
            let mut point = Point {
                size: self.size,
                partitions: self.partitions,
                ack: ack_name(ack).to_owned(),
                at_load: None,
                write_ratio: None,
                max,
            };
            if point.max.msgs_per_s > 0.0 {
                let at_load = self.latency_run(ack, point.max.msgs_per_s, progress).await;
                let what = self.run_name(ack, &self.latency_load_name());
                point.at_load = or_failure(&mut results.failures, &what, at_load);
            }
            results.points.push(point);
        }
    }

    /// As fast as the producer takes records.
    async fn max_run(&self, ack: Ack, progress: &mut Progress) -> anyhow::Result<LoadResult> {
        let spec = self.spec(ack, None, self.args.linger_ms, self.run_name(ack, "max"));
        let r = load::run(&spec, &self.args.broker_http, progress).await?;
        progress.done(&format!(
            "{} {}: max {:.1} MB/s ({:.0} msgs/s), p99 {} ms, errors {}",
            self.name,
            ack_name(ack),
            r.mb_per_s,
            r.msgs_per_s,
            fmt_opt(r.ack.p99_ms, 1),
            r.errors
        ));
        Ok(r)
    }

    /// At `--latency-load` × the maximum, with end-to-end latency for durable acks.
    async fn latency_run(
        &self,
        ack: Ack,
        max_msgs_per_s: f64,
        progress: &mut Progress,
    ) -> anyhow::Result<LoadResult> {
        let rate = max_msgs_per_s * self.args.latency_load;
        let label = self.run_name(ack, &self.latency_load_name());
        let mut spec = self.spec(ack, Some(rate), self.args.latency_linger_ms, label);
        spec.e2e = ack == Ack::Durable;
        let r = load::run(&spec, &self.args.broker_http, progress).await?;
        let e2e = r.e2e.map_or(String::new(), |e| {
            format!(
                ", end-to-end p50 {} p99 {} ms",
                fmt_opt(e.p50_ms, 2),
                fmt_opt(e.p99_ms, 2)
            )
        });
        progress.done(&format!(
            "{}: {:.1} MB/s, ack p50 {} p99 {} ms{e2e}",
            spec.label,
            r.mb_per_s,
            fmt_opt(r.ack.p50_ms, 2),
            fmt_opt(r.ack.p99_ms, 2),
        ));
        Ok(r)
    }

    async fn consume(&self, progress: &mut Progress) -> anyhow::Result<consume::ConsumeResult> {
        progress.update(&format!(
            "consume {}: waiting for the brokers' compaction",
            self.topic
        ));
        let http = reqwest::Client::new();
        let settled = load::wait_for_quiet_storage(
            &http,
            &self.args.broker_http,
            CONSUME_QUIET,
            CONSUME_SETTLE_LIMIT,
        )
        .await;
        let mut c = consume::consume(
            &self.args.server,
            &self.topic,
            self.partitions,
            self.size,
            self.plan.consume_bytes,
            progress,
        )
        .await?;
        if let Some((waited, quiet)) = settled {
            c.settle_secs = waited.as_secs_f64();
            c.settled = quiet;
            c.settle_measured = true;
        }
        let overlap = match settled {
            Some((_, false)) => " (the brokers were still writing: compaction overlapped)",
            _ => "",
        };
        progress.done(&format!(
            "{} consume: cold {:.1} MB/s, cached {:.1} MB/s{overlap}",
            self.name, c.cold.mb_per_s, c.cached.mb_per_s
        ));
        Ok(c)
    }

    fn spec(&self, ack: Ack, rate: Option<f64>, linger_ms: u64, label: String) -> LoadSpec {
        LoadSpec {
            server: self.args.server.clone(),
            topic: self.topic.clone(),
            partitions: self.partitions,
            size: self.size,
            ack,
            rate,
            warmup: self.plan.warmup,
            measure: self.plan.measure,
            linger: Duration::from_millis(linger_ms),
            partitioner: self.plan.partitioner,
            e2e: false,
            label,
        }
    }

    fn run_name(&self, ack: Ack, run: &str) -> String {
        format!("{} {} {run}", self.name, ack_name(ack))
    }

    fn latency_load_name(&self) -> String {
        format!("at {:.0}%", self.args.latency_load * 100.0)
    }
}
