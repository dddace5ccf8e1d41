//! The monitoring the Helm chart ships, against a live process cluster on real etcd (two
//! controllers, two brokers, a proxy):
//! - every metric the Grafana dashboards (`helm/strata/dashboards/`) and the alert rules
//!   (`helm/strata/rules/`) name is one the servers export on `/metrics`;
//! - the figures behind them are true: a group's lag after a known produce and commit, on
//!   the active controller only; each partition's high watermark, on its owner only; the
//!   partition count; storage nodes in use.
//!
//! A family with no sample yet is not on the page at all, so the test makes each one appear:
//! enough writes for the storage nodes' p99, a lane's records and its consumer's lag, a call
//! that fails (a topic created twice).
//!
//! `promtool` checks and unit-tests the rules themselves (`scripts/test-deploy.sh`).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use strata_client::admin::TopicSettings;
use strata_client::{
    Admin, Connection, Consumer, Offset, Producer, ProducerRecord, TopicPartition,
};
use strata_integration_tests::cli::{metrics, samples};
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/strata")
}

/// The `strata_*` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("strata_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every query of the dashboards, by dashboard file and panel title.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let dir = chart().join("dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the dashboards in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{} has panels", file.display());
        for panel in panels {
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "panel {} has queries", panel["title"]);
            for target in targets {
                let place = format!(
                    "{}, panel {}",
                    file.file_name().unwrap().to_string_lossy(),
                    panel["title"]
                );
                queries.push((place, target["expr"].as_str().unwrap().to_owned()));
            }
        }
    }
    queries
}

/// The alert rules' expressions, by alert (the `expr:` lines and the lines folded into them).
fn alert_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(chart().join("rules/strata-alerts.yaml")).unwrap();
    let mut queries: Vec<(String, String)> = Vec::new();
    let mut in_expr = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert: ") {
            queries.push((format!("alert {name}"), String::new()));
            in_expr = false;
        } else if let Some(expr) = trimmed.strip_prefix("expr:") {
            in_expr = true;
            queries.last_mut().unwrap().1.push_str(expr);
        } else if in_expr && line.starts_with("          ") && !trimmed.contains(':') {
            // Folded lines join with a space, as YAML joins them.
            let expr = &mut queries.last_mut().unwrap().1;
            expr.push(' ');
            expr.push_str(trimmed);
        } else {
            in_expr = false;
        }
    }
    assert!(queries.len() >= 6, "the alerts: {queries:?}");
    for (alert, expr) in &queries {
        assert!(
            expr.contains("strata_"),
            "{alert} has an expression: {expr:?}"
        );
    }
    queries
}

/// The sample names a `/metrics` page offers, and those its families' types promise (a
/// counter family with no child yet has its `# TYPE` line only).
fn exported(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#')
            && let Some(name) = line.split(['{', ' ']).next().filter(|n| !n.is_empty())
        {
            names.insert(name.to_owned());
        }
    }
    names
}

async fn pages(urls: &[String]) -> Vec<String> {
    let mut pages = Vec::new();
    for url in urls {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        pages.push(metrics(addr).await.unwrap());
    }
    pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_name_only_exported_metrics_whose_figures_are_true() {
    let spec = Spec {
        brokers: 2,
        proxies: 1,
        storage_nodes: 1,
        replicas: 1,
        ..Spec::standard("monitoring")
    };
    let cluster = ProcessCluster::start(spec).await.unwrap();
    let server = cluster.proxies().join(",");
    let connection = Connection::connect(&server).await.unwrap();
    let admin = Admin::new(connection.clone());
    admin.create_topic("orders", 2).await.unwrap();
    let lanes = TopicSettings {
        lanes: vec!["test-alice".to_owned()],
        ..TopicSettings::default()
    };
    admin.create_topic_with("checkout", 1, lanes).await.unwrap();
    let producer = Producer::new(connection.clone(), Default::default());
    // One durable write at a time: a PUT each, over 20 per broker (the storage nodes' p99
    // needs 20 samples).
    for (partition, count) in [(0, 40), (1, 25)] {
        for i in 0..count {
            let record =
                ProducerRecord::new("orders", format!("{partition}-{i}")).with_partition(partition);
            producer.send(record).await.unwrap();
        }
    }
    let alice = ProducerRecord::new("checkout", "a-1").with_lane("test-alice");
    producer.send(alice).await.unwrap();
    let refused = admin.create_topic("orders", 2).await;
    assert!(refused.is_err(), "a topic that exists already: {refused:?}");
    let mut alice = Consumer::builder(&server)
        .lane("test-alice")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    alice
        .assign(vec![TopicPartition::new("checkout", 0)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while alice
        .poll(Duration::from_millis(500))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the lane's consumer read nothing"
        );
    }
    let mut billing = Consumer::builder(&server)
        .group("billing")
        .auto_offset_reset(Offset::Earliest)
        .enable_auto_commit(false)
        .build()
        .await
        .unwrap();
    billing.subscribe(&["orders"]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while billing.assignment().is_empty() {
        assert!(Instant::now() < deadline, "billing never got partitions");
        billing.poll(Duration::from_millis(500)).await.unwrap();
    }
    let committed = BTreeMap::from([
        (TopicPartition::new("orders", 0), 30),
        (TopicPartition::new("orders", 1), 25),
    ]);
    billing.commit_offsets(&committed).await.unwrap();

    // The lag metric is read every 10 s by the active controller: 10 behind on partition 0,
    // none on partition 1.
    let controllers = cluster.admin_urls();
    let lag_label = ["group=\"billing\"", "topic=\"orders\""];
    let deadline = Instant::now() + Duration::from_secs(60);
    let controller_pages = loop {
        let pages = pages(&controllers).await;
        let lags: Vec<f64> = pages
            .iter()
            .flat_map(|p| samples(p, "strata_controller_group_lag_records", &lag_label))
            .collect();
        if lags == [10.0] {
            break pages;
        }
        assert!(
            Instant::now() < deadline,
            "the group's lag never showed as 10 on exactly one controller: {lags:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let leaders: Vec<&String> = controller_pages
        .iter()
        .filter(|p| samples(p, "strata_controller_is_leader", &[]) == [1.0])
        .collect();
    assert_eq!(leaders.len(), 1, "one active controller");
    let leader = leaders[0];
    assert!(
        !samples(leader, "strata_controller_group_lag_records", &lag_label).is_empty(),
        "the active controller is the one exporting the lag"
    );
    assert_eq!(
        samples(leader, "strata_controller_partitions", &[]),
        [3.0],
        "orders and checkout"
    );
    assert_eq!(
        samples(leader, "strata_controller_homeless_partitions", &[]),
        [0.0]
    );

    // Each partition's high watermark, exported by its owner only.
    let broker_pages = pages(&cluster.broker_http_urls()).await;
    for (partition, end) in [(0, 40.0), (1, 25.0)] {
        let label = format!("partition=\"{partition}\"");
        let seen: Vec<f64> = broker_pages
            .iter()
            .flat_map(|p| {
                samples(
                    p,
                    "strata_broker_partition_high_watermark",
                    &["topic=\"orders\"", &label],
                )
            })
            .collect();
        assert_eq!(seen, [end], "orders/{partition} on exactly its owner");
    }
    for page in &broker_pages {
        assert_eq!(
            samples(page, "strata_broker_storage_node_healthy", &[]),
            [1.0],
            "the one storage node is in use"
        );
        assert_eq!(
            samples(page, "strata_broker_flush_errors_total", &[]),
            [0.0, 0.0],
            "no flush failed, and both stages show it"
        );
    }

    // Every metric a dashboard or an alert names is exported by some server.
    let proxy_pages = pages(
        &cluster
            .proxy_http_addrs()
            .iter()
            .map(|a| format!("http://{a}"))
            .collect::<Vec<_>>(),
    )
    .await;
    let all: BTreeSet<String> = controller_pages
        .iter()
        .chain(&broker_pages)
        .chain(&proxy_pages)
        .flat_map(|p| exported(p))
        .collect();
    let mut unknown = Vec::new();
    let mut named = 0;
    for (place, expr) in dashboard_queries().into_iter().chain(alert_queries()) {
        for name in metric_names(&expr) {
            named += 1;
            if !all.contains(&name) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(named >= 40, "the queries name metrics ({named})");
    assert!(
        unknown.is_empty(),
        "metrics no server exports:\n{}",
        unknown.join("\n")
    );
}
