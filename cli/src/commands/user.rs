use std::io::BufRead as _;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::admin_api::call;
use super::print_json;
use crate::cli::{Format, UserCommand};

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_file,
            mechanisms,
            iterations,
            admin,
        } => {
            let password = match &password_file {
                Some(path) => first_line(std::fs::File::open(path).with_context(|| {
                    format!("cannot read the password file {}", path.display())
                })?)?,
                None => first_line(std::io::stdin().lock())?,
            };
            anyhow::ensure!(
                !password.is_empty(),
                "the password is empty: give it on the first line of standard input or of --password-file"
            );
            let mut body = json!({ "password": password });
            if !mechanisms.is_empty() {
                body["mechanisms"] = json!(mechanisms);
            }
            if let Some(iterations) = iterations {
                body["iterations"] = json!(iterations);
            }
            let user = call(
                Method::PUT,
                &admin,
                &format!("/v1/users/{name}"),
                Some(body),
            )
            .await?;
            println!("user {name}: {}", mechanisms_of(&user));
        }
        UserCommand::List { admin, format } => {
            let users = call(Method::GET, &admin, "/v1/users", None).await?;
            if format.format == Format::Json {
                return print_json(&users);
            }
            let list = users.as_array().cloned().unwrap_or_default();
            println!("{:<32} mechanisms", "user");
            for u in &list {
                println!(
                    "{:<32} {}",
                    u["name"].as_str().unwrap_or("?"),
                    mechanisms_of(u)
                );
            }
            eprintln!("{} users", list.len());
        }
        UserCommand::Remove { name, admin } => {
            call(Method::DELETE, &admin, &format!("/v1/users/{name}"), None).await?;
            println!("removed user {name}");
        }
    }
    Ok(())
}

/// The first line, without its line ending.
fn first_line(reader: impl std::io::Read) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::BufReader::new(reader)
        .read_line(&mut line)
        .context("cannot read the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn mechanisms_of(user: &Value) -> String {
    user["mechanisms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{} ({} iterations)",
                m["mechanism"].as_str().unwrap_or("?"),
                m["iterations"]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
