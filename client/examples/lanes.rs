//! Swimlanes: a tester sends test orders on lane `test-alice` of the production topic, and
//! only the tester's consumer sees them; the production consumer on the main lane never does.
//!
//! ```sh
//! strata standalone &
//! strata topic create orders --partitions 3 --lanes test-alice
//! cargo run -p strata-client --example lanes -- 127.0.0.1:7070 orders
//! ```
//!
//! Prints what each consumer read: production orders for the main lane, test orders for the
//! tester's lane.

use std::time::Duration;

use strata_client::{Consumer, Offset, Producer, ProducerRecord};

const ORDERS: usize = 30;
const TEST_ORDERS: usize = 10;

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: lanes SERVER TOPIC");
        std::process::exit(2);
    }
    let (server, topic) = (&args[1], &args[2]);

    let producer = Producer::builder(server).build().await?;
    for i in 0..ORDERS {
        producer
            .send(ProducerRecord::new(topic.as_str(), format!("order-{i}")))
            .await?;
    }
    for i in 0..TEST_ORDERS {
        let record =
            ProducerRecord::new(topic.as_str(), format!("test-order-{i}")).with_lane("test-alice");
        producer.send(record).await?;
    }
    producer.close().await?;

    // Groups of their own per run, so every run reads from the beginning.
    let run = std::process::id();
    for (name, lane, expected) in [
        ("production", None, ORDERS),
        ("tester", Some("test-alice"), TEST_ORDERS),
    ] {
        let mut builder = Consumer::builder(server)
            .group(format!("{name}-{run}"))
            .auto_offset_reset(Offset::Earliest);
        if let Some(lane) = lane {
            builder = builder.lane(lane);
        }
        let mut consumer = builder.build().await?;
        consumer.subscribe(&[topic.as_str()]).await?;
        let mut read = Vec::new();
        for _ in 0..20 {
            for record in consumer.poll(Duration::from_millis(500)).await? {
                read.push(
                    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                        .into_owned(),
                );
            }
            if read.len() >= expected {
                break;
            }
        }
        consumer.commit_sync().await?;
        consumer.close().await?;
        let test_orders = read.iter().filter(|v| v.starts_with("test-")).count();
        println!(
            "{name} ({}): {} records, {test_orders} of them test orders",
            lane.unwrap_or("main lane"),
            read.len()
        );
    }
    Ok(())
}
