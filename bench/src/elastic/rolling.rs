//! Every broker restarted in turn under a steady load: what an application sees before,
//! during and after.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use strata_client::{Ack, DeliveryFuture, Partitioner, Producer, ProducerRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ElasticSettings, SIZE, hook};
use crate::load::{self, AckLog};
use crate::stats::{Percentiles, Progress, fmt_opt};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollingResult {
    pub brokers: Vec<String>,
    pub rate_msgs_per_s: f64,
    pub size: usize,
    pub before: Percentiles,
    pub during: Percentiles,
    pub after: Percentiles,
    pub during_secs: f64,
    /// Records whose delivery failed for good (what an application sees).
    pub errors_before: u64,
    pub errors_during: u64,
    pub errors_after: u64,
    pub first_error: Option<String>,
}

/// Steady load before the first restart and after the last.
const BEFORE: Duration = Duration::from_secs(5);
const AFTER: Duration = Duration::from_secs(3);

/// Every broker stopped (SIGTERM: flush, commit, leave) and started again, one after the
/// other, while a producer sends at a fixed rate; latency and failed records before, during
/// and after.
pub async fn rolling_restart(
    s: &ElasticSettings<'_>,
    progress: &mut Progress,
) -> anyhow::Result<RollingResult> {
    let brokers = s.brokers_for("a rolling restart").await?;
    let n = brokers.len();
    let (topic, _) = s.new_topic("rolling", (n * 4) as u32).await?;
    let producer = load::producer(
        &s.args.server,
        Ack::Durable,
        Duration::ZERO,
        Partitioner::RoundRobin,
    )
    .await?;
    let started = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(load::collect(started, rx));
    let cancel = CancellationToken::new();
    let record = ProducerRecord::new(topic.clone(), load::template(SIZE));
    let sender = tokio::spawn(send_at_rate(
        producer.clone(),
        record,
        s.args.rolling_rate,
        tx,
        cancel.clone(),
    ));
    progress.update("rolling restart: steady load before");
    tokio::time::sleep(BEFORE).await;
    let during_start = started.elapsed();
    for (i, broker) in brokers.iter().enumerate() {
        let step = format!("rolling restart: {}/{n}", i + 1);
        progress.update(&format!("{step}: stopping {broker}"));
        hook(&s.args.stop_command, "stop", broker).await?;
        progress.update(&format!("{step}: starting {broker}"));
        hook(&s.args.start_command, "start", broker).await?;
        s.admin.wait_for_brokers(n, Duration::from_secs(30)).await?;
        s.admin
            .wait_balanced(&topic, n, Duration::from_secs(60))
            .await?;
    }
    let during_end = started.elapsed();
    progress.update("rolling restart: steady load after");
    tokio::time::sleep(AFTER).await;
    cancel.cancel();
    let _ = sender.await;
    let _ = tokio::time::timeout(Duration::from_secs(30), producer.flush()).await;
    let _ = producer.close().await;
    let log: AckLog = collector.await?;
    let (before, during, after) = (
        Duration::ZERO..during_start,
        during_start..during_end,
        during_end..Duration::MAX,
    );
    let result = RollingResult {
        brokers,
        rate_msgs_per_s: s.args.rolling_rate,
        size: SIZE,
        before: log.latency_within(before.clone()),
        during: log.latency_within(during.clone()),
        after: log.latency_within(after.clone()),
        during_secs: (during_end - during_start).as_secs_f64(),
        errors_before: log.errors_within(before),
        errors_during: log.errors_within(during),
        errors_after: log.errors_within(after),
        first_error: log.first_error,
    };
    progress.done(&format!(
        "rolling restart of {n} brokers in {:.1} s: p99 {} ms before, {} ms during (max {} ms); {} records failed",
        result.during_secs,
        fmt_opt(result.before.p99_ms, 1),
        fmt_opt(result.during.p99_ms, 1),
        fmt_opt(result.during.max_ms, 1),
        log.errors
    ));
    let _ = s.admin.delete_topic(&topic).await;
    Ok(result)
}

/// Enqueues `record` `rate` times a second on an open-loop schedule until cancelled, handing
/// each acknowledgement to `acks`. A failed enqueue is only logged: the failures that count
/// are the deliveries, which the collector sees.
async fn send_at_rate(
    producer: Producer,
    record: ProducerRecord,
    rate: f64,
    acks: mpsc::UnboundedSender<(Instant, DeliveryFuture)>,
    cancel: CancellationToken,
) {
    let started = Instant::now();
    let mut sent = 0u64;
    while !cancel.is_cancelled() {
        let due = started + Duration::from_secs_f64(sent as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
            continue;
        }
        let at = Instant::now();
        match producer.enqueue(record.clone()).await {
            Ok(ack) => {
                if acks.send((at, ack)).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "enqueue failed during the rolling restart"),
        }
        sent += 1;
    }
}
