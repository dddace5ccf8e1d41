//! The fault scenarios against containers of the local image `strata-test:dev`, driven with
//! `testcontainers`, with network partitions made of docker networks: a broker is cut off
//! etcd by disconnecting it from the `meta` network (storage still reachable), and off
//! storage by disconnecting it from `store` (etcd still reachable). The same checks as the
//! process-mode suite (`tests/faults.rs`).
//!
//! Runs where a Docker engine answers. Without one, or without the image, the tests say why
//! and how to fix it and pass, except under `CI=true`, where either is a failure that names
//! it (`scripts/test.sh` builds the image first; CI machines run Docker).
//!
//! The partition scenarios and kill -9 / pause run by default; the other scenarios are
//! ignored here (their process-mode tests run) and `scripts/faults.sh --containers` runs
//! them all.

#![allow(clippy::unwrap_used)]

use strata_integration_tests::harness;
use strata_integration_tests::harness::containers::{ContainerCluster, Unavailable, docker_status};
use strata_integration_tests::harness::scenarios::{Scenario, run_scenario};
use strata_integration_tests::harness::workload::LoadConfig;
use strata_integration_tests::prerequisite::missing;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether container tests can run; prints why not, or fails under `CI=true`.
async fn docker_or_skip(test: &str) -> bool {
    match docker_status().await {
        Ok(()) => true,
        Err(Unavailable::Engine(why)) => {
            missing(
                test,
                format!("{why}; container tests need a Docker engine"),
                "start Docker (`systemctl start docker`, or dockerd)",
            );
            false
        }
        Err(Unavailable::Image(why)) => {
            missing(
                test,
                why,
                "scripts/test.sh builds the image before the tests (or run scripts/image.sh)",
            );
            false
        }
    }
}

async fn scenario(scenario: Scenario, slug: &str) {
    let _one_at_a_time = SERIAL.lock().await;
    harness::init_tracing();
    if !docker_or_skip(slug).await {
        return;
    }
    let mut cluster = ContainerCluster::start(slug, Vec::new()).await.unwrap();
    let report = run_scenario(&mut cluster, scenario, LoadConfig::standard("faults"))
        .await
        .unwrap();
    report.print_and_check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_broker_cut_from_etcd() {
    scenario(Scenario::CutFromEtcd, "c-cut-etcd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_broker_cut_from_storage() {
    scenario(Scenario::CutFromStorage, "c-cut-storage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_broker_kill_9() {
    scenario(Scenario::Kill9, "c-kill9").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_broker_paused() {
    scenario(Scenario::Zombie, "c-zombie").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_proxy_kill_9() {
    scenario(Scenario::ProxyKill, "c-proxy-kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_proxy_rolling_restart() {
    scenario(Scenario::ProxyRollingRestart, "c-proxy-rolling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the process-mode test covers it in CI; scripts/faults.sh --containers runs it"]
async fn container_rolling_restart() {
    scenario(Scenario::RollingRestart, "c-rolling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the process-mode test covers it in CI; scripts/faults.sh --containers runs it"]
async fn container_scale_out_then_drain() {
    scenario(Scenario::ScaleOutIn, "c-scale").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the process-mode test covers it in CI; scripts/faults.sh --containers runs it"]
async fn container_storage_node_kill_9() {
    scenario(Scenario::StorageNodeKill, "c-storage-kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the process-mode test covers it in CI; scripts/faults.sh --containers runs it"]
async fn container_etcd_restart() {
    scenario(Scenario::EtcdRestart, "c-etcd-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the process-mode test covers it in CI; scripts/faults.sh --containers runs it"]
async fn container_active_controller_kill_9() {
    scenario(Scenario::ControllerKill, "c-controller-kill").await;
}
