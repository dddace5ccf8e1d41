//! Retries and dead letters: a payment service fails some payments. A flaky one fails once
//! and succeeds when it comes back from the group's retry topic; a malformed one fails every
//! time and ends in the group's dead-letter topic. Nothing waits behind either: the group's
//! positions move on at once.
//!
//! ```sh
//! strata standalone &
//! strata topic create payments --partitions 2
//! cargo run -p strata-client --example retries -- 127.0.0.1:7070 payments
//! strata dlq list payments-<pid>      # the group name the example prints
//! ```

use std::time::Duration;

use strata_client::{Consumer, Offset, Producer, ProducerRecord, RetryPolicy};

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: retries SERVER TOPIC");
        std::process::exit(2);
    }
    let (server, topic) = (&args[1], &args[2]);
    let group = format!("payments-{}", std::process::id());

    let producer = Producer::builder(server).build().await?;
    for payment in [
        "pay-1",
        "pay-2 (flaky)",
        "pay-3",
        "pay-4 (malformed)",
        "pay-5",
    ] {
        producer
            .send(ProducerRecord::new(topic.as_str(), payment))
            .await?;
    }
    producer.close().await?;

    // Quick retries for the example; the default is RocketMQ's 16, from 10 s to 2 h.
    let policy = RetryPolicy {
        max_retries: 2,
        backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
    };
    let mut consumer = Consumer::builder(server)
        .group(group.as_str())
        .retries(policy)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await?;
    consumer.subscribe(&[topic.as_str()]).await?;
    let (mut paid, mut dead) = (0, 0);
    for _ in 0..40 {
        for record in consumer.poll(Duration::from_millis(500)).await? {
            let payment =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            let fails = payment.contains("malformed")
                || (payment.contains("flaky") && record.attempt() == 0);
            if !fails {
                println!("paid {payment} (attempt {})", record.attempt());
                paid += 1;
                continue;
            }
            let nacked = consumer.nack(&record, "payment gateway refused").await?;
            if nacked.dead_lettered {
                println!("{payment}: dead-lettered after {} retries", nacked.attempt);
                dead += 1;
            } else {
                println!("{payment}: failed, retry {} soon", nacked.attempt);
            }
        }
        consumer.commit_sync().await?;
        if paid == 4 && dead == 1 {
            break;
        }
    }
    consumer.close().await?;
    println!("group {group}: {paid} paid, {dead} dead-lettered; see `strata dlq list {group}`");
    Ok(())
}
