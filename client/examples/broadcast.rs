//! Broadcast consumption: every node of a cache cluster must see every invalidation, so
//! each reads the topic as a member of a broadcast group, with positions of its own. Run it
//! twice with different member names: each run prints every message sent so far that its
//! member has not read yet; run it again under the same name and it prints only what came
//! since.
//!
//! ```sh
//! strata standalone &
//! strata topic create invalidations --partitions 3
//! cargo run -p strata-client --example broadcast -- 127.0.0.1:7070 invalidations node-1
//! cargo run -p strata-client --example broadcast -- 127.0.0.1:7070 invalidations node-2
//! cargo run -p strata-client --example broadcast -- 127.0.0.1:7070 invalidations node-1
//! ```

use std::time::Duration;

use strata_client::{Consumer, Offset, Producer, ProducerRecord};

const KEYS: usize = 12;

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: broadcast SERVER TOPIC MEMBER");
        std::process::exit(2);
    }
    let (server, topic, member) = (&args[1], &args[2], &args[3]);

    // Each run invalidates a few keys, spread over the partitions.
    let producer = Producer::builder(server).build().await?;
    let run = std::process::id();
    for i in 0..KEYS {
        let record = ProducerRecord::new(topic.as_str(), format!("invalidate key-{i} (run {run})"))
            .with_key(format!("key-{i}"));
        producer.send(record).await?;
    }
    producer.close().await?;

    let mut consumer = Consumer::builder(server)
        .group("cache-nodes")
        .broadcast(member.as_str())
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await?;
    consumer.subscribe(&[topic.as_str()]).await?;
    let mut read = 0;
    loop {
        let records = consumer.poll(Duration::from_secs(2)).await?;
        if records.is_empty() {
            break;
        }
        for record in records {
            read += 1;
            println!(
                "{member}: {}/{}@{}: {}",
                record.topic,
                record.partition,
                record.offset,
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
            );
        }
    }
    // Positions of this member's own: its next run starts after what it read here.
    consumer.commit_sync().await?;
    consumer.close().await?;
    println!("{member} read {read} messages");
    Ok(())
}
