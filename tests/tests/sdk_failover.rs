//! A client of two proxies survives the death of the one it uses: a producer and a group
//! consumer sharing one `Connection` to both proxies of a process cluster; the proxy they are
//! on is killed with -9 mid-stream. Every message is acknowledged and stored once, the group
//! consumer reads all of them, and the connection moved exactly once.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use strata_client::{
    Admin, Connection, Consumer, ConsumerConfig, Offset, Producer, ProducerConfig, ProducerRecord,
};
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use tokio::time::Instant;

const MESSAGES: u32 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moves_to_the_other_proxy_when_its_own_is_killed() {
    harness::init_tracing();
    let mut cluster = ProcessCluster::start(Spec::standard("failover"))
        .await
        .unwrap();
    let proxies = cluster.proxies();
    assert_eq!(proxies.len(), 2);
    let connection = Connection::connect(&proxies.join(",")).await.unwrap();
    let on = connection.server();
    let victim = proxies.iter().position(|p| *p == on).unwrap();
    Admin::new(connection.clone())
        .create_topic("failover", 4)
        .await
        .unwrap();

    let producer = Producer::new(connection.clone(), ProducerConfig::default());
    let mut consumer = Consumer::new(
        connection.clone(),
        ConsumerConfig {
            group: Some("failover".into()),
            auto_offset_reset: Offset::Earliest,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    consumer.subscribe(&["failover"]).await.unwrap();

    // value → every (partition, offset) it was read at.
    let mut seen: BTreeMap<u32, BTreeSet<(u32, i64)>> = BTreeMap::new();
    let mut acks = Vec::new();
    for i in 0..MESSAGES {
        let record = ProducerRecord::new("failover", i.to_string());
        acks.push(producer.enqueue(record).await.unwrap());
        if i == MESSAGES / 2 {
            cluster.kill_proxy(victim).await.unwrap();
        }
        if i % 100 == 0 {
            read(&mut consumer, &mut seen).await;
        }
    }
    for ack in acks {
        ack.await
            .expect("every message is acknowledged through the other proxy");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < MESSAGES as usize && Instant::now() < deadline {
        read(&mut consumer, &mut seen).await;
    }

    assert_eq!(
        seen.len(),
        MESSAGES as usize,
        "the group consumer read every message"
    );
    let stored_twice: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(
        stored_twice.is_empty(),
        "stored once each: {stored_twice:?}"
    );
    assert_eq!(connection.moves(), 1, "one move, from {on}");
    assert_ne!(connection.server(), on);
    producer.close().await.unwrap();
    consumer.close().await.unwrap();
}

async fn read(consumer: &mut Consumer, seen: &mut BTreeMap<u32, BTreeSet<(u32, i64)>>) {
    match consumer.poll(Duration::from_millis(100)).await {
        Ok(records) => {
            for r in records {
                let value = std::str::from_utf8(r.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                seen.entry(value)
                    .or_default()
                    .insert((r.partition, r.offset));
            }
        }
        // A poll may fail while the connection moves; the next one goes to the other proxy.
        Err(e) => assert!(e.is_retriable(), "{e}"),
    }
}
