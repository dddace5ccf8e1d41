//! `strata bench` runs against a Strata in this process and writes JSON with the expected
//! fields. Figures are not checked: they belong in docs/benchmarks.md, not in tests.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use strata::cli::{Cli, Command, StandaloneArgs};
use strata_testkit::free_port;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bench_writes_results_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = StandaloneArgs {
        data_dir: Some(dir.path().join("data")),
        proxy_addr: Some(loopback()),
        proxy_http_addr: Some(loopback()),
        admin_addr: Some(loopback()),
        broker_addr: Some(loopback()),
        broker_http_addr: Some(loopback()),
        kafka: strata::cli::KafkaArgs {
            kafka_addr: Some(loopback()),
            ..Default::default()
        },
        ..StandaloneArgs::default()
    };
    let config = strata::config::resolve(None, &args).expect("standalone settings");
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    strata::commands::standalone::spawn(&mut tasks, &cancel, &config)
        .await
        .expect("standalone starts");

    let json = dir.path().join("out.json");
    let chart = dir.path().join("chart.svg");
    let data = config.standalone.data_dir.join("data");
    let cli = Cli::try_parse_from([
        "strata".to_owned(),
        "bench".into(),
        "--quick".into(),
        "--server".into(),
        config.proxy.listen.to_string(),
        "--admin".into(),
        config.controller.admin_addr.to_string(),
        "--sizes".into(),
        "1024".into(),
        "--partitions".into(),
        "2".into(),
        "--acks".into(),
        "durable".into(),
        "--warmup-secs".into(),
        "0.2".into(),
        "--measure-secs".into(),
        "0.5".into(),
        "--consume-mb".into(),
        "2".into(),
        "--storage-dir".into(),
        data.display().to_string(),
        "--storage-node".into(),
        format!("file://{}", data.display()),
        "--broker-http".into(),
        config.broker.http_addr.to_string(),
        "--json".into(),
        json.display().to_string(),
        "--chart".into(),
        chart.display().to_string(),
    ])
    .expect("bench flags parse");
    let Command::Bench(bench) = cli.command else {
        panic!("parsed as another command");
    };
    tokio::time::timeout(Duration::from_secs(60), strata_bench::run(*bench))
        .await
        .expect("the quick bench finishes")
        .expect("the quick bench succeeds");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    let baselines = &results["baselines"];
    for field in ["loopback_tcp_mb_s", "crc32c_mb_s"] {
        assert!(
            baselines[field].as_f64().is_some(),
            "{field} in {baselines}"
        );
    }
    assert!(baselines["disk_before"]["fsync_mb_s"].as_f64().is_some());
    assert!(baselines["storage"]["parallel_put_mb_s"].as_f64().is_some());
    let points = results["points"].as_array().expect("points");
    assert_eq!(points.len(), 1, "one size × one partition count × one ack");
    let point = &points[0];
    assert_eq!(point["ack"], "durable");
    assert_eq!(point["partitions"], 2);
    for field in ["msgs_per_s", "mb_per_s"] {
        assert!(point["max"][field].as_f64().is_some(), "{field} in {point}");
    }
    for field in ["p50_ms", "p99_ms", "p999_ms"] {
        assert!(
            point["max"]["ack"].get(field).is_some(),
            "{field} in {point}"
        );
    }
    assert!(
        point["at_load"]["e2e"].is_object(),
        "end-to-end latency in {point}"
    );
    let consume = results["consume"].as_array().expect("consume");
    assert!(consume[0]["cold"]["mb_per_s"].as_f64().is_some());
    assert!(consume[0]["cached"]["mb_per_s"].as_f64().is_some());
    assert!(results["goals"].is_array());
    assert!(
        std::fs::read_to_string(&chart)
            .expect("chart written")
            .starts_with("<svg")
    );

    cancel.cancel();
    while tasks.join_next().await.is_some() {}
}
