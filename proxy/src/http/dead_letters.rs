//! The REST routes of a group's dead letters:
//!
//! - `GET /v1/groups/{group}/dead-letters?from=N&max=N`: the dead letters, oldest first;
//! - `POST /v1/groups/{group}/dead-letters/replay` with `{"offsets": [..]}` or `{"from": N}`:
//!   sends them back to where they came from.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use strata_proto::{ErrorCode, v1};

use super::{MaybePeer, RecordApi, caller, refusal};

pub(super) fn routes(api: RecordApi) -> Router {
    Router::new()
        .route("/v1/groups/{group}/dead-letters", get(list))
        .route("/v1/groups/{group}/dead-letters/replay", post(replay))
        .with_state(api)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    from: i64,
    #[serde(default)]
    max: u32,
}

async fn list(
    State(api): State<RecordApi>,
    MaybePeer(peer): MaybePeer,
    Path(group): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let access = match caller(&api, peer.as_ref(), &headers).await {
        Ok(access) => access,
        Err(refused) => return refused,
    };
    let request = v1::ListDeadLettersRequest {
        group,
        from_offset: query.from,
        max: query.max,
    };
    match api.service.list_dead_letters_call(&access, request).await {
        Ok(answer) => Json(json!({
            "letters": answer.letters.iter().map(dead_letter_json).collect::<Vec<_>>(),
            "next_offset": answer.next_offset,
        }))
        .into_response(),
        Err(e) => refusal(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    offsets: Vec<i64>,
    #[serde(default)]
    from: i64,
}

async fn replay(
    State(api): State<RecordApi>,
    MaybePeer(peer): MaybePeer,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let access = match caller(&api, peer.as_ref(), &headers).await {
        Ok(access) => access,
        Err(refused) => return refused,
    };
    let body: ReplayBody = if body.is_empty() {
        ReplayBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return refusal(&v1::Error::new(
                    ErrorCode::InvalidArgument,
                    format!("the body must be {{\"offsets\": [..]}} or {{\"from\": N}}: {e}"),
                ));
            }
        }
    };
    let request = v1::ReplayDeadLettersRequest {
        group,
        offsets: body.offsets,
        from_offset: body.from,
    };
    match api.service.replay_dead_letters_call(&access, request).await {
        Ok(answer) => {
            let replayed: Vec<_> = answer
                .replayed
                .iter()
                .map(|r| {
                    json!({
                        "dead_letter_offset": r.dead_letter_offset,
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                    })
                })
                .collect();
            Json(json!({ "replayed": replayed })).into_response()
        }
        Err(e) => refusal(&e),
    }
}

/// A dead letter as JSON (the REST answer and `strata dlq --format json` alike): text fields
/// as UTF-8, lossily.
pub fn dead_letter_json(l: &v1::DeadLetter) -> serde_json::Value {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let headers: serde_json::Map<String, serde_json::Value> = l
        .headers
        .iter()
        .map(|h| (h.key.clone(), json!(text(h.value.as_deref()))))
        .collect();
    json!({
        "offset": l.offset,
        "timestamp": l.timestamp,
        "topic": l.origin_topic,
        "partition": l.origin_partition,
        "origin_offset": l.origin_offset,
        "attempts": l.attempts,
        "last_error": l.last_error,
        "key": text(l.key.as_deref()),
        "value": text(l.value.as_deref()),
        "headers": headers,
    })
}
