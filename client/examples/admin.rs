//! Creates a topic if it is missing, then lists topics and consumer groups with their lag.
//!
//! ```sh
//! cargo run -p strata-client --example admin -- 127.0.0.1:7070 orders 12
//! ```

use strata_client::{Admin, ErrorCode};

#[tokio::main]
async fn main() -> strata_client::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let server = args.get(1).map_or("127.0.0.1:7070", String::as_str);
    let admin = Admin::connect(server).await?;
    if let Some(topic) = args.get(2) {
        let partitions = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(4);
        match admin.create_topic(topic, partitions).await {
            Ok(t) => println!("created {} with {} partitions", t.name, t.partitions.len()),
            Err(e) if e.code() == Some(ErrorCode::TopicExists) => println!("{topic} exists"),
            Err(e) => return Err(e),
        }
    }
    for topic in admin.list_topics().await? {
        let owners: Vec<String> = topic
            .partitions
            .iter()
            .map(|p| p.broker.clone().unwrap_or_else(|| "-".into()))
            .collect();
        println!(
            "topic {}: {} partitions on {:?}",
            topic.name,
            owners.len(),
            owners
        );
    }
    for group in admin.list_groups().await? {
        let described = admin.describe_group(&group.group).await?;
        let lag: i64 = described.offsets.iter().map(|o| o.lag).sum();
        println!(
            "group {}: {} with {} members, total lag {lag}",
            group.group, group.state, group.members
        );
    }
    Ok(())
}
