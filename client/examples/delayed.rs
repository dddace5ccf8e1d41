//! Delayed and scheduled messages: reminders sent now for 3, 6 and 9 seconds from now, one
//! at RocketMQ delay level 2 (5 s) and one scheduled for an absolute time; a consumer prints
//! each when it arrives, with how late it was.
//!
//! ```sh
//! strata standalone &
//! strata topic create reminders --partitions 2 --max-delay 1m
//! cargo run -p strata-client --example delayed -- 127.0.0.1:7070 reminders
//! ```

// The example measures real lateness against the wall clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_client::{Consumer, Offset, Producer, ProducerRecord};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: delayed SERVER TOPIC");
        std::process::exit(2);
    }
    let (server, topic) = (&args[1], &args[2]);

    // A group of its own per run, starting at the topic's end, sees only this run's records.
    let mut consumer = Consumer::builder(server)
        .group(format!("reminders-{}", std::process::id()))
        .auto_offset_reset(Offset::Latest)
        .build()
        .await?;
    consumer.subscribe(&[topic.as_str()]).await?;
    // Joined and positioned before anything is sent.
    consumer.poll(Duration::from_millis(500)).await?;

    let producer = Producer::builder(server).build().await?;
    let sent = now_ms();
    for seconds in [9, 3, 6] {
        let record = ProducerRecord::new(topic.as_str(), format!("in {seconds} s"))
            .with_delay(Duration::from_secs(seconds));
        producer.send(record).await?;
    }
    let level = ProducerRecord::new(topic.as_str(), "level 2 (5 s)").with_delay_level(2);
    producer.send(level).await?;
    let at = ProducerRecord::new(topic.as_str(), "at sent + 7.5 s").with_deliver_at(sent + 7_500);
    producer.send(at).await?;
    producer
        .send(ProducerRecord::new(topic.as_str(), "not delayed"))
        .await?;
    producer.close().await?;
    println!("sent 6 records; waiting for them");

    let mut arrived = 0;
    for _ in 0..40 {
        for record in consumer.poll(Duration::from_millis(500)).await? {
            let now = now_ms();
            // A delivered copy is timestamped with its due time.
            println!(
                "{:>6.1} s after sending: {:<16} ({} ms after its time)",
                (now - sent) as f64 / 1000.0,
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()),
                now - record.timestamp
            );
            arrived += 1;
        }
        if arrived >= 6 {
            break;
        }
    }
    consumer.commit_sync().await?;
    consumer.close().await?;
    Ok(())
}
