//! Broadcast consumption on a process cluster on real etcd (two proxies, three brokers, two
//! controllers):
//! - every member of a broadcast group, SDK and CLI alike, receives every message of every
//!   partition;
//! - a member that restarts under its name resumes from its own committed positions, not
//!   another member's, and receives what was sent meanwhile and nothing twice;
//! - `strata group describe` and `group list` show the group in broadcast mode, each member
//!   with its own lag;
//! - bad input gets typed errors naming the problem: broadcast without a group, a malformed
//!   member name, a clustering member joining a broadcast group, a broadcast member committing
//!   into a clustering group.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use strata_client::{
    Admin, Connection, Consumer, Error, ErrorCode, Offset, Producer, ProducerRecord,
};
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::selecting::read_values;

const MINUTE: Duration = Duration::from_secs(60);

fn values(prefix: &str, range: std::ops::Range<u32>) -> BTreeSet<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

async fn member(server: &str, group: &str, name: &str) -> Consumer {
    let mut consumer = Consumer::builder(server)
        .group(group)
        .broadcast(name)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&["events"]).await.unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broadcast_member_gets_every_message_and_keeps_its_own_positions() {
    harness::init_tracing();
    let cluster = ProcessCluster::start(Spec::standard("broadcast"))
        .await
        .unwrap();
    let proxies = cluster.proxies();
    let server = proxies[0].clone();
    let all_proxies = proxies.join(",");
    let admin_url = cluster.admin_urls()[0].clone();
    strata(
        &[
            "topic",
            "create",
            "events",
            "--partitions",
            "3",
            "--admin",
            &admin_url,
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    let connection = Connection::connect(&all_proxies).await.unwrap();
    let admin = Admin::new(connection.clone());
    let producer = Producer::new(connection.clone(), Default::default());
    let send = |range: std::ops::Range<u32>| {
        let producer = &producer;
        async move {
            for i in range {
                producer
                    .send(ProducerRecord::new("events", format!("e-{i}")).with_key(format!("k{i}")))
                    .await
                    .unwrap();
            }
        }
    };
    send(0..60).await;

    // Two SDK members and a CLI member each read all 60, across the 3 partitions.
    let mut first = member(&all_proxies, "cache", "node-1").await;
    let mut second = member(&proxies[1], "cache", "node-2").await;
    assert_eq!(read_values(&mut first, 60).await, values("e", 0..60));
    assert_eq!(read_values(&mut second, 60).await, values("e", 0..60));
    first.commit_sync().await.unwrap();
    second.commit_sync().await.unwrap();
    let cli = strata(
        &[
            "consume",
            "events",
            "--group",
            "cache",
            "--broadcast",
            "node-3",
            "--from-beginning",
            "--timeout-ms",
            "3000",
            "--server",
            &server,
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    let read: BTreeSet<String> = cli.lines().map(str::to_owned).collect();
    assert_eq!(read, values("e", 0..60));
    assert_eq!(cli.lines().count(), 60, "no message twice");

    // node-1 restarts: it resumes at its own positions, while node-2 has not moved on.
    first.close().await.unwrap();
    send(60..80).await;
    let mut first = member(&server, "cache", "node-1").await;
    assert_eq!(read_values(&mut first, 20).await, values("e", 60..80));
    let more = first.poll(Duration::from_secs(1)).await.unwrap();
    assert!(more.is_empty(), "nothing twice after a restart: {more:?}");
    first.commit_sync().await.unwrap();

    // Each member's lag is its own: node-1 read everything, node-2 the first 60.
    let group = admin.describe_group("cache").await.unwrap();
    assert_eq!(group.state, "Broadcast");
    let lag_of = |name: &str| -> i64 {
        let m = group
            .broadcast_members
            .iter()
            .find(|m| m.member == name)
            .unwrap_or_else(|| panic!("{name} in {group:?}"));
        assert_eq!(m.offsets.len(), 3, "every partition: {m:?}");
        m.offsets.iter().map(|o| o.lag).sum()
    };
    assert_eq!(lag_of("node-1"), 0);
    assert_eq!(lag_of("node-2"), 20);
    assert_eq!(lag_of("node-3"), 20);
    let described = strata(
        &["group", "describe", "cache", "--server", &server],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    assert!(described.contains("Broadcast, 3 members"), "{described}");
    assert!(described.contains("member node-2 lag 20"), "{described}");
    let listed = strata(&["group", "list", "--server", &server], None, MINUTE)
        .await
        .unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("cache") && l.contains("Broadcast")),
        "{listed}"
    );
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("cache ")).count(),
        1,
        "listed once: {listed}"
    );
    // A reset from outside the group would move offsets no member reads: refused.
    let reset = admin
        .alter_group_offsets(
            "cache",
            &std::collections::BTreeMap::from([(
                strata_client::TopicPartition::new("events", 0),
                0,
            )]),
        )
        .await
        .unwrap_err();
    assert!(reset.to_string().contains("broadcast mode"), "{reset}");

    // Bad input, each refused with the reason.
    let no_group = Consumer::builder(&server).broadcast("node-9").build().await;
    let Err(Error::InvalidConfig(message)) = no_group else {
        panic!("broadcast without a group must be refused");
    };
    assert!(message.contains("needs a group"), "{message}");
    let bad_name = Consumer::builder(&server)
        .group("cache")
        .broadcast("node 9")
        .build()
        .await;
    let Err(Error::InvalidConfig(message)) = bad_name else {
        panic!("a malformed member name must be refused");
    };
    assert!(message.contains("holds ` `"), "{message}");
    let mut clustering = Consumer::builder(&server)
        .group("cache")
        .build()
        .await
        .unwrap();
    clustering.subscribe(&["events"]).await.unwrap();
    match clustering.poll(Duration::from_secs(5)).await {
        Err(Error::Server { code, message }) => {
            assert_eq!(code, ErrorCode::InvalidArgument, "{message}");
            assert!(message.contains("broadcast mode"), "{message}");
        }
        other => panic!("a clustering member must be refused: {other:?}"),
    }
    let mut members = Consumer::builder(&server)
        .group("billing")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    members.subscribe(&["events"]).await.unwrap();
    assert!(
        !members
            .poll(Duration::from_secs(10))
            .await
            .unwrap()
            .is_empty()
    );
    let mut intruder = member(&server, "billing", "node-1").await;
    intruder.poll(Duration::from_secs(2)).await.unwrap();
    match intruder.commit_sync().await {
        Err(Error::Server { code, message }) => {
            assert_eq!(code, ErrorCode::InvalidArgument, "{message}");
            assert!(message.contains("clustering mode"), "{message}");
        }
        other => panic!("a broadcast commit into a clustering group must be refused: {other:?}"),
    }
    // Once its members stopped, a broadcast group is deleted like any other, positions and
    // all.
    first.close().await.unwrap();
    second.close().await.unwrap();
    admin.delete_group("cache").await.unwrap();
    let gone = admin.describe_group("cache").await.unwrap_err();
    assert!(
        matches!(
            gone,
            Error::Server {
                code: ErrorCode::UnknownGroup,
                ..
            }
        ),
        "{gone:?}"
    );
}
