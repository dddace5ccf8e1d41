//! Tags: a producer tags orders by what happened to them, and a consumer reads only the
//! refunds, filtered by the proxy before they are sent.
//!
//! ```sh
//! strata standalone &
//! strata topic create orders --partitions 3
//! cargo run -p strata-client --example tags -- 127.0.0.1:7070 orders
//! ```
//!
//! Prints each refund it read and how many orders it did not have to download.

use std::time::Duration;

use strata_client::{Consumer, Offset, Producer, ProducerRecord};

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: tags SERVER TOPIC");
        std::process::exit(2);
    }
    let (server, topic) = (&args[1], &args[2]);

    let producer = Producer::builder(server).build().await?;
    let events = ["paid", "shipped", "refunded", "paid"];
    for (i, event) in events.iter().cycle().take(100).enumerate() {
        let record = ProducerRecord::new(topic.as_str(), format!("order-{i} {event}"))
            .with_key(format!("order-{i}"))
            .with_tags([*event]);
        producer.send(record).await?;
    }
    producer.close().await?;

    // A group of its own per run, so every run reads from the beginning.
    let group = format!("refunds-{}", std::process::id());
    let mut refunds = Consumer::builder(server)
        .group(group)
        .auto_offset_reset(Offset::Earliest)
        .tags("refunded")
        .build()
        .await?;
    refunds.subscribe(&[topic.as_str()]).await?;
    let mut read = 0;
    for _ in 0..20 {
        for record in refunds.poll(Duration::from_millis(500)).await? {
            read += 1;
            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
            println!(
                "{}/{} offset {}: {value}",
                record.topic, record.partition, record.offset
            );
        }
        if read >= 25 {
            break;
        }
    }
    refunds.commit_sync().await?;
    println!(
        "{read} refunds read; the other {} orders never left the proxy",
        100 - read
    );
    refunds.close().await
}
