use tokio::time::Instant;

use serde_json::json;

use crate::cli::ReassignArgs;

pub async fn run(args: ReassignArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let body = json!({
        "topic": args.topic,
        "partition": args.partition,
        "broker": args.broker,
    });
    let answer = super::admin_api::call(
        reqwest::Method::POST,
        &args.admin,
        "/v1/reassignments",
        Some(body),
    )
    .await?;
    for m in answer["moves"].as_array().into_iter().flatten() {
        println!(
            "{}/{}: {} -> {} at epoch {} ({} ms, 0 bytes copied)",
            m["topic"].as_str().unwrap_or("?"),
            m["partition"],
            m["from"].as_str().unwrap_or("-"),
            m["to"].as_str().unwrap_or("?"),
            m["epoch"],
            started.elapsed().as_millis()
        );
    }
    Ok(())
}
