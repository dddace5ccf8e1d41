//! Calls of the controllers' admin REST API, with failures classified for the exit code.

use serde_json::Value;
use strata_proto::ErrorCode;

use crate::cli::AdminArgs;
use crate::report::{CliError, Failure};

pub(super) async fn call(
    method: reqwest::Method,
    admin: &AdminArgs,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let (base, client) = admin.http()?;
    let url = format!("{base}{path}");
    let mut request = client.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| {
        CliError::new(
            Failure::Unavailable,
            // With its causes: reqwest keeps the TLS reason in its sources.
            format!(
                "cannot reach the admin API at {base}: {:#}",
                anyhow::Error::new(e)
            ),
        )
        .with_hint(format!(
            "is a controller (or `strata standalone`) running there? pass --admin; {}",
            crate::report::TLS_HINT
        ))
    })?;
    let status = response.status();
    let text = response.text().await?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let code = value["error"]["code"].as_str().unwrap_or("ERROR");
        let message = value["error"]["message"].as_str().unwrap_or(&text);
        let parsed = code.parse::<ErrorCode>().ok();
        let failure = match parsed {
            Some(code) => Failure::of_code(code),
            None if status.is_server_error() => Failure::Unavailable,
            None => Failure::Refused,
        };
        let mut error = CliError::new(failure, format!("{code}: {message}"));
        if let Some(hint) = parsed.and_then(hint_for) {
            error = error.with_hint(hint);
        }
        return Err(error.into());
    }
    Ok(value)
}

/// What to try after the admin API refused a request with `code`.
fn hint_for(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::UnknownTopic => Some("`strata topic list` shows the topics"),
        ErrorCode::UnknownGroup => Some("`strata group list` shows the groups"),
        ErrorCode::UnknownUser => Some("`strata user list` shows the users"),
        ErrorCode::UnknownToken => Some("`strata token list` shows the tokens"),
        ErrorCode::Unauthenticated => Some(
            "pass --token or --token-file (a token from `strata token create`), or a client certificate with --tls-cert and --tls-key",
        ),
        ErrorCode::PermissionDenied => Some(
            "a super user ([security] super_users) can do it, or grant it with `strata acl add`",
        ),
        ErrorCode::UnknownBroker => Some("`strata brokers list` shows the live brokers"),
        ErrorCode::TopicExists => Some("`strata topic describe NAME` shows it"),
        _ => None,
    }
}
