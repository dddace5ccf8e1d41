use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::TopicCommand;

pub(super) async fn call(
    method: reqwest::Method,
    admin: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("http://{admin}{path}");
    let mut request = reqwest::Client::new().request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the admin API at {admin}; is a controller (or `strata standalone`) running? pass --admin")
    })?;
    let status = response.status();
    let text = response.text().await?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let code = value["error"]["code"].as_str().unwrap_or("ERROR");
        let message = value["error"]["message"].as_str().unwrap_or(&text);
        bail!("{code}: {message}");
    }
    Ok(value)
}

pub async fn run(command: TopicCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    match command {
        TopicCommand::Create {
            name,
            partitions,
            retention_ms,
            admin,
        } => {
            let mut body = json!({ "name": name, "partitions": partitions });
            if let Some(ms) = retention_ms {
                body["retention_ms"] = json!(ms);
            }
            let topic = call(Method::POST, &admin.admin, "/v1/topics", Some(body)).await?;
            println!(
                "created topic {name} with {} partitions",
                topic["partitions"]
            );
        }
        TopicCommand::List { admin } => {
            let topics = call(Method::GET, &admin.admin, "/v1/topics", None).await?;
            for topic in topics.as_array().into_iter().flatten() {
                println!(
                    "{}\t{} partitions",
                    topic["name"].as_str().unwrap_or("?"),
                    topic["partitions"]
                );
            }
        }
        TopicCommand::Describe { name, admin } => {
            let topic = call(
                Method::GET,
                &admin.admin,
                &format!("/v1/topics/{name}"),
                None,
            )
            .await?;
            println!(
                "topic {name}: {} partitions, retention_ms {}, segment_bytes {}",
                topic["partitions"], topic["retention_ms"], topic["segment_bytes"]
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
        TopicCommand::Delete { name, admin } => {
            call(
                Method::DELETE,
                &admin.admin,
                &format!("/v1/topics/{name}"),
                None,
            )
            .await?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}
