//! The fault suite, long form: random faults for `STRATA_FAULT_MINUTES` (default 20) on one
//! cluster under continuous load, then one check of everything and a table of figures.
//! Ignored by `cargo test`; `scripts/faults.sh --long` runs it (`STRATA_TEST_LONG=1
//! scripts/test.sh` too).
//!
//! Environment: `STRATA_FAULT_MINUTES`, `STRATA_FAULT_SEED` (default: random, printed),
//! `STRATA_FAULT_MODE` = `process` (default) or `container`, `STRATA_FAULT_REPORT` = a file
//! to write the table to.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strata_integration_tests::harness::containers::{ContainerCluster, docker_status};
use strata_integration_tests::harness::long::{LongConfig, LongReport, long_run};
use strata_integration_tests::harness::netns::Net;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::harness::scenarios::Scenario;
use strata_integration_tests::harness::workload::LoadConfig;

fn settings() -> (LongConfig, LoadConfig) {
    let minutes: f64 = std::env::var("STRATA_FAULT_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(20.0);
    let seed = std::env::var("STRATA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let long = LongConfig {
        duration: Duration::from_secs_f64(minutes * 60.0),
        seed,
        // Zone outages run where the cluster has zones (process mode).
        scenarios: Scenario::ALL
            .iter()
            .chain(&Scenario::ZONED)
            .copied()
            .collect(),
        pause: (Duration::from_secs(3), Duration::from_secs(10)),
    };
    let mut load = LoadConfig::standard("long");
    load.rate = 100;
    load.linger = Duration::from_millis(20);
    (long, load)
}

/// Extra broker flags for the long run (`STRATA_FAULT_BROKER_ARGS`, split on spaces); by
/// default none: the brokers run on their defaults, as in production.
fn broker_args() -> Vec<String> {
    std::env::var("STRATA_FAULT_BROKER_ARGS")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn finish(report: &LongReport) {
    let table = report.table();
    eprintln!("\n{table}\nlogs: {}", report.logs);
    if let Ok(path) = std::env::var("STRATA_FAULT_REPORT") {
        std::fs::write(&path, &table).unwrap();
        eprintln!("table written to {path}");
    }
    let problems = report.problems();
    assert!(problems.is_empty(), "{problems:#?}\nlogs: {}", report.logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs for STRATA_FAULT_MINUTES (20 by default); scripts/faults.sh --long"]
async fn random_faults_for_minutes() {
    strata_integration_tests::harness::init_tracing();
    let (long, load) = settings();
    eprintln!(
        "long fault run: {:.1} min, seed {} (STRATA_FAULT_SEED={} repeats the fault sequence)",
        long.duration.as_secs_f64() / 60.0,
        long.seed,
        long.seed
    );
    let mode = std::env::var("STRATA_FAULT_MODE").unwrap_or_else(|_| "process".into());
    let report = if mode == "container" {
        if let Err(why) = docker_status().await {
            panic!("STRATA_FAULT_MODE=container but {why}");
        }
        let mut cluster = ContainerCluster::start("long", broker_args())
            .await
            .unwrap();
        long_run(&mut cluster, load, long).await.unwrap()
    } else {
        let mut spec = Spec::zoned("long");
        spec.broker_args = broker_args();
        match Net::available() {
            Ok(()) => spec.isolate_brokers = true,
            Err(why) => eprintln!("partition scenarios left out: {why}"),
        }
        let mut cluster = ProcessCluster::start(spec).await.unwrap();
        long_run(&mut cluster, load, long).await.unwrap()
    };
    finish(&report);
}
