//! Swimlanes (BMQ's 泳道) on a process cluster on real etcd (two proxies, brokers, a
//! controller):
//! - a topic declares lanes through the CLI (`topic create --lanes`, `topic alter
//!   --add-lane`), and `topic describe` shows them;
//! - records on lanes from the SDK (`with_lane`), the CLI (`produce --lane`) and a Kafka
//!   producer (kcat setting `strata-lane`) reach only that lane's consumers: main-lane
//!   consumers, a Kafka consumer among them, never see them, and a lane consumer sees the
//!   main lane only when it asks to;
//! - groups end with lag 0, and `group describe` shows each member's lane and the lag per
//!   lane; the proxies count each lane's records, produced and delivered;
//! - bad input gets typed errors naming the problem: an unknown lane from a producer (SDK,
//!   CLI) and a consumer, a lane on a topic without lanes, a malformed lane name, removing a
//!   lane that is not declared.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use strata_client::{
    Admin, Connection, Consumer, Error, ErrorCode, Offset, Producer, ProducerRecord, TopicPartition,
};
use strata_integration_tests::cli::{metrics, samples, strata};
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::selecting::{
    assert_fetch_refused, consume_with_cli, fetch_from_start, raw_fetch, read_values, records_sent,
};
use strata_proto::v1;

const MINUTE: Duration = Duration::from_secs(60);
const MAIN: u32 = 120;
const ALICE: u32 = 40;

fn values(prefix: &str, n: u32) -> BTreeSet<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The sum of a proxy metric's samples whose labels include every one of `labels`, over
/// the proxies at `addrs`.
async fn proxy_metric(addrs: &[SocketAddr], metric: &str, labels: &[&str]) -> f64 {
    let mut total = 0.0;
    for addr in addrs {
        let page = metrics(addr).await.unwrap();
        total += samples(&page, metric, labels).iter().sum::<f64>();
    }
    total
}

/// `strata_proxy_lane_records_total` of a lane and direction, over every proxy.
async fn lane_records(cluster: &ProcessCluster, lane: &str, direction: &str) -> f64 {
    let lane = format!("lane=\"{lane}\"");
    let direction = format!("direction=\"{direction}\"");
    let addrs = cluster.proxy_http_addrs();
    proxy_metric(
        &addrs,
        "strata_proxy_lane_records_total",
        &[&lane, &direction],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_keep_test_traffic_apart_on_a_production_topic() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("lanes") else {
        return;
    };
    let cluster = ProcessCluster::start(Spec::standard("lanes"))
        .await
        .unwrap();
    let proxies = cluster.proxies();
    let server = proxies[0].clone();
    let admin_addr = cluster.admin_urls()[0].clone();
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--admin".to_owned(), admin_addr.clone()]);
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            strata(&refs, None, MINUTE).await
        }
    };

    // Lanes are declared on the topic, at creation and later.
    cli(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "2",
        "--lanes",
        "test-alice",
    ])
    .await
    .unwrap();
    cli(&["topic", "alter", "orders", "--add-lane", "test-bob"])
        .await
        .unwrap();
    let described = cli(&["topic", "describe", "orders"]).await.unwrap();
    assert!(
        described.contains("lanes test-alice,test-bob"),
        "{described}"
    );
    cli(&["topic", "create", "plain", "--partitions", "1"])
        .await
        .unwrap();

    // The SDK on the main lane and on test-alice; the CLI on test-bob; kcat on both.
    let connection = Connection::connect(&proxies.join(",")).await.unwrap();
    let admin = Admin::new(connection.clone());
    let producer = Producer::new(connection.clone(), Default::default());
    for i in 0..MAIN {
        producer
            .send(ProducerRecord::new("orders", format!("main-{i}")))
            .await
            .unwrap();
    }
    for i in 0..ALICE {
        let record = ProducerRecord::new("orders", format!("alice-{i}")).with_lane("test-alice");
        producer.send(record).await.unwrap();
    }
    strata(
        &[
            "produce", "orders", "--lane", "test-bob", "--server", &server,
        ],
        Some(b"bob-0\nbob-1\n"),
        MINUTE,
    )
    .await
    .unwrap();
    let kafka = cluster.kafka_addrs()[0].to_string();
    for (value, headers) in [
        ("kafka-alice", &["-H", "strata-lane=test-alice"][..]),
        ("kafka-main", &[][..]),
    ] {
        let mut args = vec!["-b", kafka.as_str(), "-t", "orders", "-P"];
        args.extend(headers);
        clients
            .kcat(&args, Some(format!("{value}\n").as_bytes()), MINUTE)
            .await
            .unwrap();
    }
    let mut main = values("main", MAIN);
    main.insert("kafka-main".into());
    let mut alice = values("alice", ALICE);
    alice.insert("kafka-alice".into());

    // A main-lane group never sees lane records, and its commits move past them.
    let mut billing = Consumer::builder(&proxies.join(","))
        .group("billing")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    billing.subscribe(&["orders"]).await.unwrap();
    assert_eq!(read_values(&mut billing, main.len()).await, main);
    billing.commit_sync().await.unwrap();
    for lag in admin.describe_group("billing").await.unwrap().offsets {
        assert_eq!(lag.lag, 0, "{lag:?}");
    }

    // test-alice's group sees only its lane, and stays in its lane in `group describe`.
    let mut billing_alice = Consumer::builder(&proxies.join(","))
        .group("billing-alice")
        .lane("test-alice")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    billing_alice.subscribe(&["orders"]).await.unwrap();
    assert_eq!(read_values(&mut billing_alice, alice.len()).await, alice);
    billing_alice.commit_sync().await.unwrap();
    let group = strata(
        &["group", "describe", "billing-alice", "--server", &server],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    assert!(group.contains("lane test-alice:"), "{group}");
    assert!(
        group.contains("total lag 0 (lane test-alice: 0)"),
        "{group}"
    );
    let described = admin.describe_group("billing-alice").await.unwrap();
    assert!(described.members.iter().all(|m| m.lane == "test-alice"));
    // A member of another lane cannot join it: the group's positions are test-alice's.
    let mut intruder = Consumer::builder(&server)
        .group("billing-alice")
        .lane("test-bob")
        .build()
        .await
        .unwrap();
    intruder.subscribe(&["orders"]).await.unwrap();
    let refused = intruder.poll(Duration::from_secs(10)).await.unwrap_err();
    assert!(
        refused.to_string().contains("use a group per lane"),
        "{refused}"
    );
    billing_alice.close().await.unwrap();
    // The lane's lag shows in the proxies' metrics: a read of partition 0 that stops after
    // one batch leaves some, and a read to its end takes it away.
    let first_proxy = Connection::connect(&server).await.unwrap();
    let first_http = cluster.proxy_http_addrs()[..1].to_vec();
    let alice_lag = || async {
        let labels = ["topic=\"orders\"", "lane=\"test-alice\""];
        proxy_metric(&first_http, "strata_proxy_lane_lag_records", &labels).await
    };
    let read_alice = |max_bytes| v1::FetchRequest {
        max_bytes,
        lane: "test-alice".into(),
        ..fetch_from_start("orders")
    };
    let early = raw_fetch(&first_proxy, read_alice(1)).await;
    assert!(early.error.is_none() && early.next_offset < early.high_watermark);
    let stopped_early = alice_lag().await;
    raw_fetch(&first_proxy, read_alice(64 << 20)).await;
    let read_to_end = alice_lag().await;
    assert!(
        stopped_early > read_to_end && stopped_early > 0.0,
        "lag {stopped_early} after one batch, {read_to_end} after all"
    );

    // The proxy itself leaves the other lanes out (the SDK checks again, so only a raw fetch
    // shows what the proxy sent).
    for (lane, wanted) in [("test-alice", Some("test-alice")), ("", None)] {
        for partition in 0..2 {
            let request = v1::FetchRequest {
                partition,
                lane: lane.into(),
                ..fetch_from_start("orders")
            };
            for record in records_sent(&connection, request).await {
                let got = record.headers.iter().find(|(k, _)| k == "strata-lane");
                let got = got.and_then(|(_, v)| v.as_deref()).map(|v| v.to_vec());
                assert_eq!(got.as_deref(), wanted.map(str::as_bytes), "lane {lane:?}");
            }
        }
    }

    // With the main lane too, by assignment.
    let mut alice_and_main = Consumer::builder(&server)
        .lane("test-alice")
        .lane_with_main(true)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    alice_and_main
        .assign((0..2).map(|p| TopicPartition::new("orders", p)).collect())
        .await
        .unwrap();
    let both: BTreeSet<String> = alice.union(&main).cloned().collect();
    assert_eq!(read_values(&mut alice_and_main, both.len()).await, both);

    // The CLI reads a lane; a Kafka consumer reads the main lane, through the gaps lane
    // records leave in its batches.
    let bob = consume_with_cli(&server, "orders", &["--lane", "test-bob"]).await;
    assert_eq!(
        bob.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from(["bob-0", "bob-1"])
    );
    let kafka_read = clients
        .kcat(
            &[
                "-b",
                &kafka,
                "-C",
                "-t",
                "orders",
                "-o",
                "beginning",
                "-e",
                "-q",
            ],
            None,
            MINUTE,
        )
        .await
        .unwrap();
    let kafka_values: BTreeSet<String> = kafka_read.lines().map(str::to_owned).collect();
    assert_eq!(kafka_values, main);

    // The proxies count each lane's traffic.
    assert!(lane_records(&cluster, "test-alice", "produced").await >= f64::from(ALICE + 1));
    assert!(lane_records(&cluster, "test-alice", "delivered").await >= f64::from(ALICE + 1));
    assert!(lane_records(&cluster, "(main)", "produced").await >= f64::from(MAIN + 1));

    // Bad input, each with an error naming it.
    let refused = producer
        .send(ProducerRecord::new("orders", "x").with_lane("test-carol"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Server { code: ErrorCode::InvalidArgument, message }
            if message.contains("`test-carol`") && message.contains("--add-lane test-carol")),
        "{refused:?}"
    );
    let cli_refusal = strata(
        &[
            "produce",
            "orders",
            "--lane",
            "test carol",
            "--server",
            &server,
        ],
        Some(b"x\n"),
        MINUTE,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{cli_refusal:#}").contains("holds ` `"),
        "{cli_refusal:#}"
    );
    for (topic, lane, says) in [
        (
            "orders",
            "test-carol",
            "it has lanes `test-alice`, `test-bob`",
        ),
        ("plain", "test-alice", "it declares no lanes"),
    ] {
        let request = v1::FetchRequest {
            lane: lane.into(),
            ..fetch_from_start(topic)
        };
        let add = format!("--add-lane {lane}");
        assert_fetch_refused(&connection, request, &[says, &add]).await;
    }
    let not_declared = cli(&["topic", "alter", "orders", "--remove-lane", "test-carol"])
        .await
        .unwrap_err();
    assert!(
        format!("{not_declared:#}").contains("`test-carol` is not a lane"),
        "{not_declared:#}"
    );
    let malformed = cli(&["topic", "create", "bad", "--lanes", "a b"])
        .await
        .unwrap_err();
    assert!(
        format!("{malformed:#}").contains("holds ` `"),
        "{malformed:#}"
    );
    let Err(Error::InvalidConfig(message)) = Consumer::builder(&server)
        .lane_with_main(true)
        .build()
        .await
    else {
        panic!("lane_with_main without a lane was accepted");
    };
    assert!(message.contains("without a lane"), "{message}");

    // Without its lanes the topic still keeps its lane records from main-lane consumers.
    cli(&[
        "topic",
        "alter",
        "orders",
        "--remove-lane",
        "test-alice",
        "--remove-lane",
        "test-bob",
    ])
    .await
    .unwrap();
    let described = cli(&["topic", "describe", "orders"]).await.unwrap();
    assert!(described.contains("lanes -"), "{described}");
    let mut after = Consumer::builder(&server)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    after
        .assign((0..2).map(|p| TopicPartition::new("orders", p)).collect())
        .await
        .unwrap();
    assert_eq!(read_values(&mut after, main.len()).await, main);
    let request = v1::FetchRequest {
        lane: "test-alice".into(),
        ..fetch_from_start("orders")
    };
    assert_fetch_refused(&connection, request, &["it declares no lanes"]).await;
}
