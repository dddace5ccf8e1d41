//! How fast a group's consumer can send failed records back for a retry, how soon they come
//! back, and how fast dead letters are written.
//!
//! A `strata standalone`; 4 partitions get `RETRY_RECORDS` (default 20,000) records of 256
//! bytes. One consumer of a group with retries (one retry, after `RETRY_BACKOFF_MS`, default
//! 2,000) reads them all and nacks every one, `RETRY_IN_FLIGHT` (default 64) nacks at a time:
//! the nack rate, its latency and the server's CPU per nack. Every record then comes back
//! from the retry topic: how long until all are back, and each one's lateness (received minus
//! its due time). Nacked again, each goes to the dead-letter topic: the dead-letter rate.
//! Asserts nothing: the figures go to `docs/benchmarks.md`.
//!
//! `cargo bench -p strata-integration-tests --bench retry_throughput` (the release binary;
//! set `STRATA_TEST_BIN` for another).

// A benchmark measures real time against a real server.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures::StreamExt as _;
use strata_client::{
    Admin, Consumer, ConsumerRecord, Nacked, Offset, Producer, ProducerRecord, RetryPolicy,
};
use strata_integration_tests::measure::{cpu_seconds, quantile};
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};

const PARTITIONS: u32 = 4;
const RECORD_BYTES: usize = 256;
const TOPIC: &str = "work";
const GROUP: &str = "workers";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Nacks `records`, `in_flight` at a time: each nack's latency, and the answers.
async fn nack_all(
    consumer: &Consumer,
    records: &[ConsumerRecord],
    in_flight: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Nacked>)> {
    let answers: Vec<anyhow::Result<(Duration, Nacked)>> =
        futures::stream::iter(records.iter().map(|r| async move {
            let started = Instant::now();
            let nacked = consumer.nack(r, "benchmark failure").await?;
            Ok((started.elapsed(), nacked))
        }))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut latencies = Vec::with_capacity(answers.len());
    let mut nacked = Vec::with_capacity(answers.len());
    for answer in answers {
        let (latency, n) = answer?;
        latencies.push(latency);
        nacked.push(n);
    }
    latencies.sort();
    Ok((latencies, nacked))
}

/// Polls until `want` records with `attempt` came back, or `limit` passes.
async fn read_back(
    consumer: &mut Consumer,
    want: usize,
    attempt: u32,
    limit: Duration,
) -> anyhow::Result<(Vec<ConsumerRecord>, Vec<i64>)> {
    let deadline = Instant::now() + limit;
    let mut back = Vec::with_capacity(want);
    let mut received_ms = Vec::with_capacity(want);
    let mut shown = Instant::now();
    while back.len() < want {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {want} records came back in {limit:?}",
            back.len()
        );
        for record in consumer.poll(Duration::from_millis(200)).await? {
            if record.attempt() == attempt {
                received_ms.push(now_ms());
                back.push(record);
            }
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            eprintln!("[retry] {} of {want} back", back.len());
            shown = Instant::now();
        }
    }
    consumer.commit_sync().await?;
    Ok((back, received_ms))
}

fn rate_line(what: &str, count: usize, elapsed: Duration, latencies: &[Duration], cpu: f64) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<22} {count:>8} records  {:>9.0} records/s  {:>6.2} MB/s  latency p50 {:>6.1} ms  p99 {:>6.1} ms  server CPU {:>5.1} s ({:>5.1} µs per record)",
        count as f64 / elapsed.as_secs_f64(),
        (count * RECORD_BYTES) as f64 / elapsed.as_secs_f64() / 1e6,
        ms(quantile(latencies, 0.50)),
        ms(quantile(latencies, 0.99)),
        cpu,
        cpu / count as f64 * 1e6,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records = setting("RETRY_RECORDS", 20_000);
    let backoff = Duration::from_millis(setting("RETRY_BACKOFF_MS", 2_000) as u64);
    let in_flight = setting("RETRY_IN_FLIGHT", 64).max(1);
    let logs = log_dir(&target_tmp_dir()?, "retry-throughput")?;
    let data = tempfile::tempdir()?;
    let binary = strata_binary()?;
    eprintln!("[retry] strata standalone from {}", binary.display());
    let process = StrataServer::standalone_with(&binary, data.path(), &logs, &[])?;
    let grpc = process.addr().to_string();
    let pid = process.pid().context("no server pid")?;
    let admin = Admin::connect(&grpc).await?;
    admin.create_topic(TOPIC, PARTITIONS).await?;

    let producer = Producer::builder(&grpc).build().await?;
    let mut acks = Vec::with_capacity(records);
    for i in 0..records {
        let value = format!("{i:>12}{}", "x".repeat(RECORD_BYTES - 12));
        acks.push(producer.enqueue(ProducerRecord::new(TOPIC, value)).await?);
    }
    for ack in acks {
        ack.await?;
    }
    producer.close().await?;
    eprintln!("[retry] {records} records of {RECORD_BYTES} bytes in {TOPIC}");

    let mut consumer = Consumer::builder(&grpc)
        .group(GROUP)
        .retries(RetryPolicy {
            max_retries: 1,
            backoff: vec![backoff],
        })
        .auto_offset_reset(Offset::Earliest)
        .max_poll_records(records.max(1))
        .build()
        .await?;
    consumer.subscribe(&[TOPIC]).await?;
    let (first, _) = read_back(&mut consumer, records, 0, Duration::from_secs(300)).await?;
    println!(
        "{records} records, {in_flight} nacks in flight, backoff {backoff:?}, one retry, then the dead-letter topic"
    );

    // Every record nacked: each goes to the retry topic, due after the backoff.
    let cpu = cpu_seconds(pid);
    let first_nack = Instant::now();
    let (latencies, nacked) = nack_all(&consumer, &first, in_flight).await?;
    let elapsed = first_nack.elapsed();
    rate_line(
        "nack to retry topic",
        records,
        elapsed,
        &latencies,
        cpu_seconds(pid) - cpu,
    );
    let last_due = nacked.iter().map(|n| n.due_ms).max().unwrap_or(0);

    // Every record comes back.
    let cpu = cpu_seconds(pid);
    let (back, received) = read_back(&mut consumer, records, 1, Duration::from_secs(600)).await?;
    let mut late: Vec<i64> = back
        .iter()
        .zip(&received)
        .map(|(r, at)| at - r.timestamp)
        .collect();
    late.sort_unstable();
    let early = late.iter().filter(|l| **l < 0).count();
    println!(
        "{:<22} {:>8} records  all back {:>6.1} s after the first nack, {:>6.1} s after the last due time  lateness p50 {} ms  p99 {} ms  max {} ms  early {early}  server CPU {:>5.1} s",
        "retries back",
        back.len(),
        first_nack.elapsed().as_secs_f64(),
        (now_ms() - last_due) as f64 / 1e3,
        quantile(&late, 0.50),
        quantile(&late, 0.99),
        late.last().copied().unwrap_or(0),
        cpu_seconds(pid) - cpu,
    );

    // Nacked again: past max_retries, each becomes a dead letter.
    let cpu = cpu_seconds(pid);
    let started = Instant::now();
    let (latencies, nacked) = nack_all(&consumer, &back, in_flight).await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        nacked.iter().all(|n| n.dead_lettered),
        "every second nack must dead-letter"
    );
    rate_line(
        "nack to dead letters",
        records,
        elapsed,
        &latencies,
        cpu_seconds(pid) - cpu,
    );
    consumer.close().await?;
    Ok(())
}
