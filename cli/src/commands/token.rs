use reqwest::Method;
use serde_json::json;
use strata_clock::Clock as _;

use super::admin_api::call;
use super::print_json;
use crate::cli::{Format, TokenCommand};

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            principal,
            description,
            expires_in_secs,
            admin,
        } => {
            let mut body = json!({ "principal": principal, "description": description });
            if let Some(secs) = expires_in_secs {
                body["expires_in_secs"] = json!(secs);
            }
            let token = call(Method::POST, &admin, "/v1/tokens", Some(body)).await?;
            // The token alone on standard output, so `$(strata token create ...)` captures it.
            println!("{}", token["token"].as_str().unwrap_or_default());
            eprintln!(
                "token {} for {}: keep it now, it is not shown again",
                token["id"].as_str().unwrap_or("?"),
                token["principal"].as_str().unwrap_or("?")
            );
        }
        TokenCommand::List { admin, format } => {
            let tokens = call(Method::GET, &admin, "/v1/tokens", None).await?;
            if format.format == Format::Json {
                return print_json(&tokens);
            }
            let list = tokens.as_array().cloned().unwrap_or_default();
            let now = strata_clock::SystemClock.unix_millis();
            println!(
                "{:<18} {:<28} {:<15} description",
                "id", "principal", "expires"
            );
            for t in &list {
                let expires = t["expires_ms"]
                    .as_i64()
                    .map_or_else(|| "never".to_owned(), |at| expires_in(at - now));
                println!(
                    "{:<18} {:<28} {:<15} {}",
                    t["id"].as_str().unwrap_or("?"),
                    t["principal"].as_str().unwrap_or("?"),
                    expires,
                    t["description"].as_str().unwrap_or("")
                );
            }
            eprintln!("{} tokens", list.len());
        }
        TokenCommand::Revoke { id, admin } => {
            call(Method::DELETE, &admin, &format!("/v1/tokens/{id}"), None).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

/// `in 3d 4h`, `in 12m`, `expired`: when a token stops working, for people.
fn expires_in(ms: i64) -> String {
    if ms <= 0 {
        return "expired".into();
    }
    let secs = ms / 1000;
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("in {secs}s"),
        (0, 0, m) => format!("in {m}m"),
        (0, h, m) => format!("in {h}h {m}m"),
        (d, h, _) => format!("in {d}d {h}h"),
    }
}
