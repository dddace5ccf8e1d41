//! Tag filtering on a process cluster on real etcd (two proxies, brokers, a controller):
//! - records tagged by the SDK (`with_tags`), by the CLI (`--tag`) and by a Kafka producer
//!   (kcat setting the `strata-tags` header) reach a group consumer subscribed with
//!   `paid || refunded`, and nothing else does; the proxy counts what it left out;
//! - the group's commits move past the records left out, so its lag is 0 once it is through;
//! - `*` and the CLI's `--tags` read what they should;
//! - bad input gets typed errors naming the problem: an expression that does not parse (in
//!   the SDK, the CLI, and sent raw to the proxy), a tag a producer may not send.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use strata_client::{
    Admin, Connection, Consumer, Error, Offset, Producer, ProducerRecord, TopicPartition,
};
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::selecting::{
    assert_fetch_refused, consume_refused_by_cli, consume_with_cli, fetch_from_start, read_records,
    value,
};
use strata_proto::v1;

const MINUTE: Duration = Duration::from_secs(60);
const RECORDS: u32 = 400;

/// Record `i`'s tags: a quarter each paid, refunded, paid and eu, and none.
fn tags_of(i: u32) -> Option<&'static [&'static str]> {
    match i % 4 {
        0 => Some(&["paid"]),
        1 => Some(&["refunded"]),
        2 => Some(&["paid", "eu"]),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_receive_only_the_tags_they_subscribe_to() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("tags") else {
        return;
    };
    let cluster = ProcessCluster::start(Spec::standard("tags")).await.unwrap();
    let proxies = cluster.proxies();
    let server = proxies[0].clone();
    let connection = Connection::connect(&proxies.join(",")).await.unwrap();
    let admin = Admin::new(connection.clone());
    admin.create_topic("orders", 3).await.unwrap();

    // Tagged by the SDK.
    let producer = Producer::new(connection.clone(), Default::default());
    for i in 0..RECORDS {
        let mut record = ProducerRecord::new("orders", format!("sdk-{i}"));
        if let Some(tags) = tags_of(i) {
            record = record.with_tags(tags);
        }
        producer.send(record).await.unwrap();
    }
    // By the CLI and by a Kafka producer.
    strata(
        &[
            "produce", "orders", "--tag", "refunded", "--server", &server,
        ],
        Some(b"cli-0\ncli-1\n"),
        MINUTE,
    )
    .await
    .unwrap();
    let kafka = cluster.kafka_addrs()[0].to_string();
    clients
        .kcat(
            &["-b", &kafka, "-t", "orders", "-P", "-H", "strata-tags=paid"],
            Some(b"kcat-0\n"),
            MINUTE,
        )
        .await
        .unwrap();
    clients
        .kcat(
            &[
                "-b",
                &kafka,
                "-t",
                "orders",
                "-P",
                "-H",
                "strata-tags=shipped",
            ],
            Some(b"kcat-1\n"),
            MINUTE,
        )
        .await
        .unwrap();

    // A group member subscribed to paid or refunded gets exactly those.
    let wanted: BTreeSet<String> = (0..RECORDS)
        .filter(|i| tags_of(*i).is_some())
        .map(|i| format!("sdk-{i}"))
        .chain(["cli-0", "cli-1", "kcat-0"].map(String::from))
        .collect();
    let mut billing = Consumer::builder(&proxies.join(","))
        .group("billing")
        .auto_offset_reset(Offset::Earliest)
        .tags("paid || refunded")
        .build()
        .await
        .unwrap();
    billing.subscribe(&["orders"]).await.unwrap();
    let got = read_records(&mut billing, wanted.len()).await;
    let values: BTreeSet<String> = got.iter().map(value).collect();
    assert_eq!(got.len(), values.len(), "no record twice");
    assert_eq!(values, wanted);
    for record in &got {
        let tags = record
            .headers
            .iter()
            .find(|(k, _)| k == "strata-tags")
            .and_then(|(_, v)| v.clone())
            .unwrap();
        let tags = String::from_utf8(tags.to_vec()).unwrap();
        assert!(
            tags.split(',').any(|t| t == "paid" || t == "refunded"),
            "{tags}"
        );
    }

    // Its commits move past what was left out: nothing is left to consume.
    billing.commit_sync().await.unwrap();
    let described = admin.describe_group("billing").await.unwrap();
    assert_eq!(described.offsets.len(), 3, "{described:?}");
    for lag in &described.offsets {
        assert_eq!(lag.lag, 0, "{lag:?}");
        assert!(lag.committed > 0, "{lag:?}");
    }
    billing.close().await.unwrap();

    // `*` reads every record, untagged ones included.
    let mut everything = Consumer::builder(&server)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    everything
        .assign((0..3).map(|p| TopicPartition::new("orders", p)).collect())
        .await
        .unwrap();
    let all = read_records(&mut everything, RECORDS as usize + 4).await;
    assert_eq!(all.len(), RECORDS as usize + 4);

    // The CLI reads by tag too.
    let refunded = consume_with_cli(&server, "orders", &["--tags", "refunded"]).await;
    let expected = (0..RECORDS).filter(|i| i % 4 == 1).count() + 2;
    assert_eq!(refunded.lines().count(), expected, "{refunded}");

    // Bad input, each with an error naming it.
    let Err(Error::InvalidConfig(message)) =
        Consumer::builder(&server).tags("paid ||").build().await
    else {
        panic!("an expression that does not parse was accepted");
    };
    assert!(message.contains("`paid ||` does not parse"), "{message}");
    let cli_refusal = consume_refused_by_cli(&server, "orders", &["--tags", "paid && eu"]).await;
    assert!(cli_refusal.contains("does not parse"), "{cli_refusal}");
    let bad = v1::FetchRequest {
        tags: "paid | eu".into(),
        ..fetch_from_start("orders")
    };
    assert_fetch_refused(&connection, bad, &["`paid | eu`"]).await;
    let refused = producer
        .send(ProducerRecord::new("orders", "x").with_tags(["no spaces"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidConfig(m) if m.contains("no spaces")),
        "{refused:?}"
    );
}
