//! The fault suite, short form, in process mode: every scenario of
//! `strata_integration_tests::harness::scenarios` on a fresh cluster of OS processes (etcd,
//! three `s3s-fs` storage nodes with two copies of every object, two controllers, three
//! brokers, two proxies), under two producers and two group consumers. Each test asserts that
//! no acknowledged message was lost, duplicated or reordered, that every partition was
//! writable again within 30 s, that the group's consumers got everything, and that no move
//! copied data; with delayed messages, that each was delivered once and none early; with
//! consumer retries, that each came back on time and only poison messages were dead-lettered.
//! `docs/reliability.md` explains the harness and the figures.
//!
//! The scenarios run one at a time (2 cores); the partition scenarios need network
//! namespaces (root) and say so when they cannot run. The long form is `scripts/faults.sh`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use strata_integration_tests::harness;
use strata_integration_tests::harness::netns::Net;
use strata_integration_tests::harness::ops::{AdminApi, Cluster};
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::harness::scenarios::{Scenario, run_scenario};
use strata_integration_tests::harness::snapshot::Snapshot;
use strata_integration_tests::harness::workload::LoadConfig;
use strata_storage::NodeId;

/// One scenario at a time: each starts a dozen processes on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `scenario` on a fresh process cluster and fails on any problem the checker found.
async fn scenario(scenario: Scenario, slug: &str) {
    let _one_at_a_time = SERIAL.lock().await;
    run_on(scenario, Spec::standard(slug)).await;
}

/// Runs `scenario` on a fresh cluster of `spec` and returns the cluster for more checks;
/// `None` when a prerequisite is missing outside CI (reported as skipped).
async fn run_on(scenario: Scenario, mut spec: Spec) -> Option<ProcessCluster> {
    harness::init_tracing();
    if scenario.needs_cut() {
        if let Err(why) = Net::available() {
            strata_integration_tests::prerequisite::missing(
                scenario.name(),
                why,
                "run as root (network namespaces); the container-mode test of the same \
                 partition is in tests/containers.rs",
            );
            return None;
        }
        spec.isolate_brokers = true;
    }
    let mut cluster = ProcessCluster::start(spec).await.unwrap();
    let report = run_scenario(&mut cluster, scenario, LoadConfig::standard("faults"))
        .await
        .unwrap();
    report.print_and_check();
    Some(cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_kill_9() {
    scenario(Scenario::Kill9, "kill9").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_paused_past_its_lease() {
    scenario(Scenario::Zombie, "zombie").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_broker() {
    scenario(Scenario::RollingRestart, "rolling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_then_drain() {
    scenario(Scenario::ScaleOutIn, "scale").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_node_kill_9() {
    scenario(Scenario::StorageNodeKill, "storage-kill").await;
}

/// Brokers lose their leases while etcd is down and reopen their partitions at the same
/// epoch; this once left a partition unserved (one trial in three) or committed offsets twice
/// (docs/reliability.md, "Bugs found"). `STRATA_FAULT_TRIALS` repeats it (default 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart() {
    let trials: u32 = std::env::var("STRATA_FAULT_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    for trial in 0..trials {
        scenario(Scenario::EtcdRestart, &format!("etcd-restart-{trial}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_controller_kill_9() {
    scenario(Scenario::ControllerKill, "controller-kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_cut_from_etcd() {
    scenario(Scenario::CutFromEtcd, "cut-etcd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_cut_from_storage() {
    scenario(Scenario::CutFromStorage, "cut-storage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kill_9() {
    scenario(Scenario::ProxyKill, "proxy-kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_proxy() {
    scenario(Scenario::ProxyRollingRestart, "proxy-rolling").await;
}

/// Three zones of two storage nodes, a broker and (in two of them) a proxy each; two copies of
/// every object. One zone goes dark under load. Besides the scenario's checks: every broker
/// registered its zone, and every committed object has its copies in two zones, those
/// written during the outage included, unless its broker said otherwise when it placed it: a
/// placement prefers healthy nodes over spread, so one made while the other zones' nodes were
/// failing or stuck (a slow first request under load) is short, and logged as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_outage() {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = run_on(Scenario::ZoneOutage, Spec::zoned("zones"))
        .await
        .expect("needs nothing the other scenarios do not");
    let admin = AdminApi::new(cluster.admin_urls());
    let brokers = admin.brokers().await.unwrap();
    let zones: BTreeSet<&str> = brokers.iter().map(|b| b.zone.as_str()).collect();
    assert_eq!(
        zones,
        BTreeSet::from(["zone-a", "zone-b", "zone-c"]),
        "{brokers:?}"
    );
    let snapshot = Snapshot::take(cluster.meta().as_ref(), &cluster.keys(), None)
        .await
        .unwrap();
    let pool = cluster.storage();
    assert!(!snapshot.segments.is_empty());
    let broker_logs: String = (1..=3)
        .map(|b| std::fs::read_to_string(cluster.log_of(&format!("b{b}"))).unwrap_or_default())
        .collect();
    let mut reported_short = 0;
    for segment in snapshot.segments.values() {
        let zones: BTreeSet<&str> = segment
            .nodes
            .iter()
            .map(|n| {
                pool.zone_of(&NodeId(n.clone()))
                    .expect("every node has a zone")
            })
            .collect();
        if zones.len() == 2 {
            continue;
        }
        let said = broker_logs
            .lines()
            .any(|l| l.contains("placed in fewer zones") && l.contains(segment.path.as_str()));
        assert!(said, "short of zones and never reported: {segment:?}");
        reported_short += 1;
    }
    assert!(
        reported_short * 10 <= snapshot.segments.len(),
        "{reported_short} of {} segments short of zones",
        snapshot.segments.len()
    );
    eprintln!(
        "{} committed segment records with copies in 2 zones, {reported_short} more placed in one zone and reported",
        snapshot.segments.len() - reported_short
    );
}

/// The checker has teeth: with `buffered` acks (acknowledged from the owner's memory, which a
/// crash loses; documented) and brokers that flush only every 1.5 s, killing the owner of
/// partition 0 with -9 loses acknowledged messages, and the checker must count them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_sees_acknowledged_writes_lost_by_buffered_acks() {
    let _one_at_a_time = SERIAL.lock().await;
    harness::init_tracing();
    let mut spec = Spec::standard("teeth");
    spec.broker_args = vec!["--linger-ms".into(), "1500".into()];
    let mut cluster = ProcessCluster::start(spec).await.unwrap();
    let mut load = LoadConfig::standard("faults");
    load.acks = strata_client::Ack::Buffered;
    let report = run_scenario(&mut cluster, Scenario::Kill9, load)
        .await
        .unwrap();
    report.print();
    assert!(
        report.verdict.lost > 0,
        "a broker killed with up to 1.5 s of buffered, acknowledged messages lost none: \
         either buffered acks became durable or the checker is blind ({:?})",
        report.verdict
    );
}

/// Delayed messages across a kill -9 of a partition's owner and a partition move: a third of
/// the load is delayed 3 to 6 s, the owner of partition 0 is killed and another partition
/// moved to the third broker while hundreds are pending. The checker, which reads the
/// originals from storage too, must find a copy of each acknowledged one, once, none
/// timestamped or handed to the group before its time. Then its teeth, on this run's own
/// input: a copy dropped must count as `delay lost`, a copy timestamped a millisecond before
/// its time as `delay early`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_across_a_kill_9_and_a_move() {
    let _one_at_a_time = SERIAL.lock().await;
    harness::init_tracing();
    let mut cluster = ProcessCluster::start(Spec::standard("delayed"))
        .await
        .unwrap();
    let report = run_scenario(
        &mut cluster,
        Scenario::KillAndMove,
        LoadConfig::delayed("faults"),
    )
    .await
    .unwrap();
    report.print_and_check();
    let v = &report.verdict;
    assert!(
        v.delayed > 300 && v.delay_copies >= v.delayed,
        "too few delayed messages to mean anything: {v:?}"
    );
    assert_eq!(
        [
            v.delay_lost,
            v.delay_duplicated,
            v.delay_early,
            v.delay_stray,
            v.delay_hiding
        ],
        [0; 5],
        "{v:?}"
    );

    let mut injected = (*report.evidence).clone();
    let dropped = injected.drop_a_copy().unwrap();
    let early = injected.make_a_copy_early().unwrap();
    let caught = injected.judge().unwrap();
    assert_eq!(
        (caught.delay_lost, caught.delay_early),
        (1, 1),
        "the copy at {dropped:?} dropped and the one at {early:?} made early: {caught:?}"
    );
    assert_eq!(
        (caught.lost, caught.delay_duplicated, caught.delay_stray),
        (0, 0, 0),
        "{caught:?}"
    );
}

/// Consumer retries across a kill -9 of the retry topic's owner and a partition move: the
/// group's consumers fail every 7th message once or twice and every 41st always (at most 2
/// retries, 1 s then 2 s apart); the owner of the group's retry topic is killed and a
/// partition of the load's topic moved while retries are in flight (at least 10; some 20 to
/// 30 in practice). The checker must find every message processed but the poison ones, each
/// of those dead-lettered once with its origin, attempts and last error, no other message
/// dead-lettered, and every answered retry back, none before its due time. First its teeth, on
/// this run's own input: a retry's return dropped must count as one more `retry lost`, a
/// return noted before its due time as one more `retry early`, a dead letter dropped as one
/// more `dead letter missing`, every other count unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_across_a_kill_9_of_the_retry_topic_owner_and_a_move() {
    let _one_at_a_time = SERIAL.lock().await;
    harness::init_tracing();
    let mut cluster = ProcessCluster::start(Spec::standard("retried"))
        .await
        .unwrap();
    let report = run_scenario(
        &mut cluster,
        Scenario::RetryKillAndMove,
        LoadConfig::retried("faults"),
    )
    .await
    .unwrap();
    report.print();
    let v = &report.verdict;

    let mut injected = (*report.evidence).clone();
    let dropped = injected.drop_a_retry_return().unwrap();
    let early = injected.make_a_return_early().unwrap();
    let letter = injected.drop_a_dead_letter().unwrap();
    let caught = injected.judge().unwrap();
    let mut expected = v.clone();
    expected.retry_lost += 1;
    expected.retry_early += 1;
    expected.dead_letter_missing += 1;
    assert_eq!(
        caught.violations(),
        expected.violations(),
        "the retry at {dropped} dropped, the one at {early} made early, the dead letter at \
         {letter} dropped: {caught:?}"
    );

    report.print_and_check();
    assert!(
        v.transient > 100 && v.poison > 20 && v.dead_letters >= v.poison,
        "too few failed messages to mean anything: {v:?}"
    );
    assert_eq!(
        [
            v.retry_lost,
            v.retry_early,
            v.retry_stray,
            v.retry_duplicated,
            v.retry_unprocessed,
            v.dead_letter_missing,
            v.dead_lettered_wrongly,
            v.dead_letter_duplicated,
            v.dead_letter_wrong,
        ],
        [0; 9],
        "{v:?}"
    );
}
