//! Reads a topic as a member of a consumer group and prints what it got.
//!
//! ```sh
//! cargo run -p strata-client --example consume -- 127.0.0.1:7070 orders billing [MAX]
//! ```
//!
//! Start several with the same group: they share the partitions, and when one stops the
//! others take its share. Prints a line per 1,000 records and a summary at the end.

// An example program measures its own real elapsed time.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use strata_client::{Consumer, Offset};

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: consume SERVER TOPIC GROUP [MAX_RECORDS]");
        std::process::exit(2);
    }
    let (server, topic, group) = (&args[1], &args[2], &args[3]);
    let max: u64 = args.get(4).and_then(|m| m.parse().ok()).unwrap_or(u64::MAX);
    let mut consumer = Consumer::builder(server)
        .group(group.as_str())
        .client_id("example-consumer")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await?;
    consumer.subscribe(&[topic.as_str()]).await?;
    let started = Instant::now();
    let (mut records, mut bytes, mut idle) = (0u64, 0u64, Instant::now());
    while records < max && idle.elapsed() < Duration::from_secs(10) {
        let batch = consumer.poll(Duration::from_millis(500)).await?;
        if !batch.is_empty() {
            idle = Instant::now();
        }
        for record in batch {
            records += 1;
            bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
            if records % 1000 == 0 {
                println!(
                    "{records} records; last {}/{} offset {}; partitions {:?}",
                    record.topic,
                    record.partition,
                    record.offset,
                    consumer
                        .assignment()
                        .iter()
                        .map(|tp| tp.partition)
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    consumer.commit_sync().await?;
    consumer.close().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{records} records, {:.2} MB in {secs:.1} s ({:.0} records/s)",
        bytes as f64 / 1e6,
        records as f64 / secs
    );
    Ok(())
}
