//! 10,000 failed SASL logins from one peer, and what another client sees meanwhile.
//!
//! A `strata standalone` with SASL (PLAIN and SCRAM-SHA-256) and a user. A well-behaved client
//! on 127.0.0.1 connects, logs in with PLAIN and asks for Metadata, over and over; its round
//! trips (connect, login, Metadata) are timed alone, then while 127.0.0.2 makes 10,000 failed
//! logins (a wrong password for the real user, 256 connections at a time). Prints both
//! distributions, the flood's rate and the listener's failure counters. Asserts nothing: the
//! figures go to `docs/benchmarks.md`.
//!
//! `cargo bench -p strata-integration-tests --bench login_flood` (the release binary; set
//! `STRATA_TEST_BIN` for another). `FLOOD_LOGINS` and `FLOOD_CONCURRENCY` change the flood.

// A benchmark measures real time against a real server.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use strata_integration_tests::cli::strata;
use strata_integration_tests::kafka_wire::KafkaWire;
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};

const PASSWORD: &str = "flood-bench-password";

/// One PLAIN login on a new connection; whether it was accepted.
async fn login(
    from: IpAddr,
    kafka: SocketAddr,
    password: &str,
) -> anyhow::Result<(KafkaWire, bool)> {
    let mut wire = KafkaWire::connect_from(from, kafka).await?;
    let handshake = wire
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await?;
    ensure!(
        handshake.error_code == 0,
        "PLAIN not offered: {handshake:?}"
    );
    let auth = wire
        .call(
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(format!("\0alice\0{password}"))),
        )
        .await?;
    Ok((wire, auth.error_code == 0))
}

/// Connect, log in, one Metadata call: the client's round trip.
async fn round_trip(kafka: SocketAddr) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (mut wire, ok) = login(IpAddr::V4(Ipv4Addr::LOCALHOST), kafka, PASSWORD).await?;
    ensure!(ok, "the good client's login was refused");
    wire.call(12, &MetadataRequest::default()).await?;
    Ok(started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name:<28} {:>6} round trips   p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms",
        times.len(),
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let logins = env_or("FLOOD_LOGINS", 10_000);
    let concurrency = env_or("FLOOD_CONCURRENCY", 256);
    let logs = log_dir(&target_tmp_dir()?, "login-flood")?;
    let data = tempfile::tempdir()?;
    let binary = strata_binary()?;
    eprintln!("[flood] strata standalone from {}", binary.display());
    let server = StrataServer::standalone_with(
        &binary,
        data.path(),
        &logs,
        &[
            "--kafka-sasl-mechanisms".into(),
            "PLAIN,SCRAM-SHA-256".into(),
        ],
    )?;
    let kafka = server.kafka_addr().context("no Kafka listener")?;
    let admin = server
        .listener("--admin-addr")
        .context("no admin listener")?
        .to_string();
    strata(
        &["user", "add", "alice", "--admin", &admin],
        Some(format!("{PASSWORD}\n").as_bytes()),
        Duration::from_secs(60),
    )
    .await?;

    // Alone.
    let mut alone = Vec::new();
    for _ in 0..200 {
        alone.push(round_trip(kafka).await?);
    }

    // During the flood: the good client keeps going until the flood ends.
    let flooding = Arc::new(AtomicBool::new(true));
    // On a thread and runtime of its own, so the flood's tasks in this process do not delay
    // the measuring client: what it sees is the server's doing.
    let good = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut times = Vec::new();
                while flooding.load(Ordering::Relaxed) {
                    times.push(round_trip(kafka).await?);
                }
                anyhow::Ok(times)
            })
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, refused) = (next.clone(), refused.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < logins {
                let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
                if let Ok((_, false)) = login(from, kafka, "wrong").await {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        if started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    while workers.join_next().await.is_some() {}
    let flood_secs = started.elapsed().as_secs_f64();
    flooding.store(false, Ordering::Relaxed);
    let during = good
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring client panicked"))??;

    println!(
        "flood: {logins} failed logins from 127.0.0.2, {concurrency} at a time: {:.1} s, {:.0} logins/s, {} refused as wrong",
        flood_secs,
        logins as f64 / flood_secs,
        refused.load(Ordering::Relaxed)
    );
    summary("good client alone", alone);
    summary("good client during the flood", during);
    let proxy_http = server
        .listener("--proxy-http-addr")
        .context("no proxy HTTP")?;
    let metrics = strata_integration_tests::cli::metrics(proxy_http).await?;
    for line in metrics
        .lines()
        .filter(|l| l.contains("sasl_") && !l.starts_with('#'))
    {
        println!("  {line}");
    }
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    println!(
        "  log lines about failed logins: {}",
        log.matches("failed to authenticate").count()
    );
    Ok(())
}
