use serde_json::json;

use super::admin_api::call;
use super::print_json;
use crate::cli::{Format, TopicCommand};

pub async fn run(command: TopicCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    match command {
        TopicCommand::Create {
            name,
            partitions,
            retention_ms,
            lanes,
            admin,
        } => {
            let mut body = json!({ "name": name, "partitions": partitions });
            if let Some(ms) = retention_ms {
                body["retention_ms"] = json!(ms);
            }
            if !lanes.is_empty() {
                body["lanes"] = json!(lanes);
            }
            let topic = call(Method::POST, &admin, "/v1/topics", Some(body)).await?;
            println!(
                "created topic {name} with {} partitions",
                topic["partitions"]
            );
        }
        TopicCommand::List { admin, format } => {
            let topics = call(Method::GET, &admin, "/v1/topics", None).await?;
            if format.format == Format::Json {
                return print_json(&topics);
            }
            for topic in topics.as_array().into_iter().flatten() {
                println!(
                    "{}\t{} partitions",
                    topic["name"].as_str().unwrap_or("?"),
                    topic["partitions"]
                );
            }
        }
        TopicCommand::Describe {
            name,
            admin,
            format,
        } => {
            let topic = call(Method::GET, &admin, &format!("/v1/topics/{name}"), None).await?;
            if format.format == Format::Json {
                return print_json(&topic);
            }
            println!(
                "topic {name}: {} partitions, retention_ms {}, segment_bytes {}, lanes {}",
                topic["partitions"],
                topic["retention_ms"],
                topic["segment_bytes"],
                lanes_of(&topic)
            );
            println!(
                "{:>9}  {:<16} {:>6}  {:<10} {:>14}",
                "partition", "broker", "epoch", "state", "high watermark"
            );
            for p in topic["partitions_detail"].as_array().into_iter().flatten() {
                println!(
                    "{:>9}  {:<16} {:>6}  {:<10} {:>14}",
                    p["partition"].to_string(),
                    p["broker"].as_str().unwrap_or("-"),
                    p["epoch"].to_string(),
                    p["state"].as_str().unwrap_or("?"),
                    p["high_watermark"].to_string()
                );
            }
        }
        TopicCommand::Alter {
            name,
            retention_ms,
            partitions,
            add_lanes,
            remove_lanes,
            admin,
        } => {
            if retention_ms.is_some() || !add_lanes.is_empty() || !remove_lanes.is_empty() {
                let path = format!("/v1/topics/{name}");
                let mut body = json!({});
                if let Some(ms) = retention_ms {
                    body["retention_ms"] = json!(ms);
                }
                if !add_lanes.is_empty() {
                    body["add_lanes"] = json!(add_lanes);
                }
                if !remove_lanes.is_empty() {
                    body["remove_lanes"] = json!(remove_lanes);
                }
                let topic = call(Method::PATCH, &admin, &path, Some(body)).await?;
                println!(
                    "topic {name}: retention_ms {}, lanes {}",
                    topic["retention_ms"],
                    lanes_of(&topic)
                );
            }
            if let Some(total) = partitions {
                let path = format!("/v1/topics/{name}/partitions");
                let body = json!({ "partitions": total });
                let topic = call(Method::POST, &admin, &path, Some(body)).await?;
                println!("topic {name}: {} partitions", topic["partitions"]);
            }
        }
        TopicCommand::Delete { name, admin } => {
            call(Method::DELETE, &admin, &format!("/v1/topics/{name}"), None).await?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}

/// A topic's lanes as `a,b`, or `-` for none.
fn lanes_of(topic: &serde_json::Value) -> String {
    let lanes: Vec<&str> = topic["lanes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .collect();
    if lanes.is_empty() {
        "-".into()
    } else {
        lanes.join(",")
    }
}
