//! Property filters: a producer sends payments with `region` and `amount` headers, and an
//! auditor reads only the large European ones, selected by a SQL-92 condition that the proxy
//! applies before sending.
//!
//! ```sh
//! strata standalone &
//! strata topic create payments --partitions 3
//! cargo run -p strata-client --example property_filter -- 127.0.0.1:7070 payments
//! ```
//!
//! Prints each payment it read and how many it did not have to download.

use std::time::Duration;

use strata_client::{Consumer, Offset, Producer, ProducerRecord};

const PAYMENTS: u32 = 120;
const CONDITION: &str = "region IN ('eu', 'uk') AND amount >= 100";

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: property_filter SERVER TOPIC");
        std::process::exit(2);
    }
    let (server, topic) = (&args[1], &args[2]);

    let producer = Producer::builder(server).build().await?;
    let regions = ["eu", "us", "uk", "jp"];
    let mut wanted = 0;
    for i in 0..PAYMENTS {
        let region = regions[i as usize % regions.len()];
        let amount = (i * 37) % 200;
        wanted += u32::from(matches!(region, "eu" | "uk") && amount >= 100);
        let record = ProducerRecord::new(topic.as_str(), format!("payment-{i} {amount} {region}"))
            .with_key(format!("payment-{i}"))
            .with_header("region", region)
            .with_header("amount", amount.to_string());
        producer.send(record).await?;
    }
    producer.close().await?;

    // A group of its own per run, so every run reads from the beginning.
    let group = format!("audit-{}", std::process::id());
    let mut audit = Consumer::builder(server)
        .group(group)
        .auto_offset_reset(Offset::Earliest)
        .filter(CONDITION)
        .build()
        .await?;
    audit.subscribe(&[topic.as_str()]).await?;
    let mut read = 0;
    for _ in 0..20 {
        for record in audit.poll(Duration::from_millis(500)).await? {
            read += 1;
            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
            println!(
                "{}/{} offset {}: {value}",
                record.topic, record.partition, record.offset
            );
        }
        if read >= wanted {
            break;
        }
    }
    audit.commit_sync().await?;
    println!(
        "{read} of {wanted} payments matching `{CONDITION}` read; the other {} never left the proxy",
        PAYMENTS - read
    );
    audit.close().await
}
