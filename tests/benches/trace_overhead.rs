//! What message trace costs: produce and consume throughput of a topic that traces
//! `TRACE_PPM` parts per million of its messages (default 10,000: 1%) against the same
//! traffic on a topic that traces none.
//!
//! A `strata standalone`; two topics of 4 partitions. Each round writes `TRACE_RECORDS`
//! (default 200,000) records of 256 bytes to one topic, pipelined, then a consumer group reads
//! them all back and commits — so produce, delivery and group-commit events are all written.
//! Each round (`TRACE_ROUNDS`, default 3) runs both topics on a fresh standalone, in
//! alternating order, so drift of the machine and compaction of earlier rounds fall on both
//! alike. Prints each round and the median overhead; asserts nothing:
//! the figures go to `docs/benchmarks.md`.
//!
//! `cargo bench -p strata-integration-tests --bench trace_overhead` (the release binary;
//! set `STRATA_TEST_BIN` for another).

// A benchmark measures real time against a real server.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use strata_client::admin::TopicSettings;
use strata_client::{Admin, Consumer, Offset, Producer, ProducerRecord};
use strata_integration_tests::measure::cpu_seconds;
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};

const PARTITIONS: u32 = 4;
const RECORD_BYTES: usize = 256;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One round's figures: records per second produced and consumed, server CPU seconds.
struct Round {
    produce: f64,
    consume: f64,
    cpu: f64,
}

async fn round(
    grpc: &str,
    topic: &str,
    group: &str,
    records: usize,
    pid: u32,
) -> anyhow::Result<Round> {
    let cpu = cpu_seconds(pid);
    let producer = Producer::builder(grpc).build().await?;
    let started = Instant::now();
    let mut acks = Vec::with_capacity(records);
    for i in 0..records {
        let value = format!("{i:>12}{}", "x".repeat(RECORD_BYTES - 12));
        acks.push(producer.enqueue(ProducerRecord::new(topic, value)).await?);
    }
    for ack in acks {
        ack.await?;
    }
    let produced = started.elapsed();
    producer.close().await?;

    let mut consumer = Consumer::builder(grpc)
        .group(group)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await?;
    consumer.subscribe(&[topic]).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let mut read = 0;
    while read < records {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic}: only {read} of {records} read back"
        );
        read += consumer.poll(Duration::from_millis(500)).await?.len();
        consumer.commit_sync().await?;
    }
    let consumed = started.elapsed();
    consumer.close().await?;
    Ok(Round {
        produce: records as f64 / produced.as_secs_f64(),
        consume: records as f64 / consumed.as_secs_f64(),
        cpu: cpu_seconds(pid) - cpu,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A fresh standalone with both topics: its process, gRPC address and proxy HTTP address.
async fn server(
    ppm: u32,
    round: usize,
) -> anyhow::Result<(StrataServer, tempfile::TempDir, String, String)> {
    let logs = log_dir(&target_tmp_dir()?, &format!("trace-overhead-{round}"))?;
    let data = tempfile::tempdir()?;
    let process = StrataServer::standalone_with(&strata_binary()?, data.path(), &logs, &[])?;
    let grpc = process.addr().to_string();
    let http = process
        .listener("--proxy-http-addr")
        .context("no proxy HTTP endpoint")?
        .to_string();
    let admin = Admin::connect(&grpc).await?;
    admin.create_topic("plain", PARTITIONS).await?;
    let traced = TopicSettings {
        trace_sample_ppm: Some(ppm),
        ..TopicSettings::default()
    };
    admin
        .create_topic_with("traced", PARTITIONS, traced)
        .await?;
    Ok((process, data, grpc, http))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records = setting("TRACE_RECORDS", 200_000);
    let rounds = setting("TRACE_ROUNDS", 3).max(1);
    let ppm = setting("TRACE_PPM", 10_000) as u32;
    eprintln!(
        "[trace] strata standalone from {}",
        strata_binary()?.display()
    );
    println!(
        "{rounds} rounds per topic of {records} records of {RECORD_BYTES} bytes over {PARTITIONS} partitions, each round on a fresh standalone; the traced topic samples {ppm} per million"
    );
    let mut figures: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        // A fresh server per round, so compaction of earlier rounds' data falls on none; the
        // order alternates, so what the first run warms up favours each topic alike.
        let (process, _data, grpc, http) = server(ppm, r).await?;
        let pid = process.pid().context("no server pid")?;
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let topic = ["plain", "traced"][i];
            let f = round(&grpc, topic, "readers", records, pid).await?;
            println!(
                "round {} {topic:<7} produce {:>8.0} records/s ({:>6.2} MB/s)  consume {:>8.0} records/s  server CPU {:>5.1} s",
                r + 1,
                f.produce,
                f.produce * RECORD_BYTES as f64 / 1e6,
                f.consume,
                f.cpu
            );
            figures[i].push(f);
        }
        let page = strata_integration_tests::cli::metrics(&http)
            .await
            .unwrap_or_default();
        for line in page
            .lines()
            .filter(|l| l.starts_with("strata_proxy_trace_events_total"))
        {
            println!("round {} {line}", r + 1);
        }
    }
    let [plain, traced] = figures;
    let summary = |what: &str, pick: fn(&Round) -> f64, higher_is_better: bool| {
        let base = median(plain.iter().map(pick).collect());
        let with = median(traced.iter().map(pick).collect());
        let cost = if higher_is_better {
            (base - with) / base * 100.0
        } else {
            (with - base) / base * 100.0
        };
        println!("{what:<28} plain {base:>10.1}  traced {with:>10.1}  overhead {cost:>5.1}%");
    };
    summary("produce records/s (median)", |f| f.produce, true);
    summary("consume records/s (median)", |f| f.consume, true);
    summary("server CPU s (median)", |f| f.cpu, false);
    Ok(())
}
