use reqwest::Method;

use super::admin_api::call;
use super::print_json;
use crate::cli::{BrokersCommand, Format};

pub async fn run(command: BrokersCommand) -> anyhow::Result<()> {
    match command {
        BrokersCommand::List { admin, format } => {
            let brokers = call(Method::GET, &admin, "/v1/brokers", None).await?;
            if format.format == Format::Json {
                return print_json(&brokers);
            }
            println!(
                "{:<20} {:<24} {:<12} {:>10}  state",
                "broker", "address", "zone", "partitions"
            );
            let list = brokers.as_array().cloned().unwrap_or_default();
            for b in &list {
                let zone = b["zone"].as_str().filter(|z| !z.is_empty());
                println!(
                    "{:<20} {:<24} {:<12} {:>10}  {}",
                    b["id"].as_str().unwrap_or("?"),
                    b["addr"].as_str().unwrap_or("?"),
                    zone.unwrap_or("-"),
                    b["partitions"].to_string(),
                    if b["draining"].as_bool() == Some(true) {
                        "draining"
                    } else {
                        "serving"
                    }
                );
            }
            eprintln!("{} brokers", list.len());
        }
        BrokersCommand::Drain { broker, admin } => {
            let path = format!("/v1/brokers/{broker}/drain");
            let answer = call(Method::POST, &admin, &path, None).await?;
            print_moves(&broker, "drained", &answer);
        }
        BrokersCommand::Undrain { broker, admin } => {
            let path = format!("/v1/brokers/{broker}/drain");
            let answer = call(Method::DELETE, &admin, &path, None).await?;
            print_moves(&broker, "undrained", &answer);
        }
    }
    Ok(())
}

/// The partitions a drain or undrain moved, one per line.
fn print_moves(broker: &str, done: &str, answer: &serde_json::Value) {
    let moves = answer["moves"].as_array().cloned().unwrap_or_default();
    println!("{done} {broker}: {} partitions moved", moves.len());
    for m in &moves {
        println!(
            "  {}/{} -> {}",
            m["topic"].as_str().unwrap_or("?"),
            m["partition"],
            m["to"].as_str().unwrap_or("?")
        );
    }
}
