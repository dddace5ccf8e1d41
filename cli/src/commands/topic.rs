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
            max_delay_ms,
            trace_sample_ppm,
            admin,
        } => {
            let mut body = json!({ "name": name, "partitions": partitions });
            if let Some(ms) = retention_ms {
                body["retention_ms"] = json!(ms);
            }
            if !lanes.is_empty() {
                body["lanes"] = json!(lanes);
            }
            if let Some(ms) = max_delay_ms {
                body["max_delay_ms"] = json!(ms);
            }
            if let Some(ppm) = trace_sample_ppm {
                body["trace_sample_ppm"] = json!(ppm);
            }
            let topic = call(Method::POST, &admin, "/v1/topics", Some(body)).await?;
            println!(
                "created topic {name} with {} partitions, max_delay {}, trace {}",
                topic["partitions"],
                max_delay_of(&topic),
                trace_sample_of(&topic)
            );
        }
        TopicCommand::List { admin, format } => {
            let topics = call(Method::GET, &admin, "/v1/topics", None).await?;
            if format.format == Format::Json {
                return print_json(&topics);
            }
            for topic in topics.as_array().into_iter().flatten() {
                println!(
                    "{}\t{} partitions\tmax_delay {}",
                    topic["name"].as_str().unwrap_or("?"),
                    topic["partitions"],
                    max_delay_of(topic)
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
                "topic {name}: {} partitions, retention_ms {}, segment_bytes {}, lanes {}, max_delay {}, trace {}",
                topic["partitions"],
                topic["retention_ms"],
                topic["segment_bytes"],
                lanes_of(&topic),
                max_delay_of(&topic),
                trace_sample_of(&topic)
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
            max_delay_ms,
            trace_sample_ppm,
            admin,
        } => {
            if retention_ms.is_some()
                || !add_lanes.is_empty()
                || !remove_lanes.is_empty()
                || max_delay_ms.is_some()
                || trace_sample_ppm.is_some()
            {
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
                if let Some(ms) = max_delay_ms {
                    body["max_delay_ms"] = json!(ms);
                }
                if let Some(ppm) = trace_sample_ppm {
                    body["trace_sample_ppm"] = json!(ppm);
                }
                let topic = call(Method::PATCH, &admin, &path, Some(body)).await?;
                println!(
                    "topic {name}: retention_ms {}, lanes {}, max_delay {}, trace {}",
                    topic["retention_ms"],
                    lanes_of(&topic),
                    max_delay_of(&topic),
                    trace_sample_of(&topic)
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

/// A topic's longest delay as `1h 30m` (its milliseconds when not whole seconds), or `off`
/// when it refuses delayed messages (the API leaves a 0 out).
fn max_delay_of(topic: &serde_json::Value) -> String {
    match topic["max_delay_ms"].as_i64().unwrap_or(0) {
        ms if ms <= 0 => "off".into(),
        ms if ms % 1000 != 0 => format!("{ms}ms"),
        ms => humantime::format_duration(std::time::Duration::from_millis(ms.unsigned_abs()))
            .to_string(),
    }
}

/// The share of a topic's messages whose path is traced, as a percent (`1%`, `0.05%`,
/// `100%`), or `off` (the API leaves a 0 out).
fn trace_sample_of(topic: &serde_json::Value) -> String {
    match topic["trace_sample_ppm"].as_u64().unwrap_or(0) {
        0 => "off".into(),
        ppm => {
            // A percent is 10_000 parts per million: its fraction has at most 4 digits.
            let fraction = format!("{:04}", ppm % 10_000);
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{}%", ppm / 10_000)
            } else {
                format!("{}.{fraction}%", ppm / 10_000)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{max_delay_of, trace_sample_of};

    #[test]
    fn trace_sample_is_shown_as_a_percent_or_off() {
        assert_eq!(trace_sample_of(&json!({ "name": "t" })), "off");
        assert_eq!(trace_sample_of(&json!({ "trace_sample_ppm": 0 })), "off");
        for (ppm, shown) in [
            (10_000, "1%"),
            (5_000, "0.5%"),
            (1, "0.0001%"),
            (12_345, "1.2345%"),
            (250_000, "25%"),
            (1_000_000, "100%"),
        ] {
            assert_eq!(
                trace_sample_of(&json!({ "trace_sample_ppm": ppm })),
                shown,
                "{ppm}"
            );
        }
    }

    #[test]
    fn max_delay_is_shown_as_a_duration_or_off() {
        assert_eq!(max_delay_of(&json!({ "name": "t" })), "off");
        assert_eq!(max_delay_of(&json!({ "max_delay_ms": 0 })), "off");
        assert_eq!(
            max_delay_of(&json!({ "max_delay_ms": 5_400_000 })),
            "1h 30m"
        );
        assert_eq!(max_delay_of(&json!({ "max_delay_ms": 1250 })), "1250ms");
    }
}
