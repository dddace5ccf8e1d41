//! The REST route of message traces:
//!
//! - `GET /v1/topics/{topic}/partitions/{partition}/messages/{offset}/trace?within_ms=N`:
//!   the message's steps in time order (`strata trace` shows the same).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use strata_proto::{ErrorCode, v1};

use super::{MaybePeer, RecordApi, caller, refusal};

pub(super) fn routes(api: RecordApi) -> Router {
    Router::new()
        .route(
            "/v1/topics/{topic}/partitions/{partition}/messages/{offset}/trace",
            get(trace),
        )
        .with_state(api)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceQuery {
    #[serde(default)]
    within_ms: i64,
}

async fn trace(
    State(api): State<RecordApi>,
    MaybePeer(peer): MaybePeer,
    path: Result<Path<(String, u32, i64)>, PathRejection>,
    query: Result<Query<TraceQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let access = match caller(&api, peer.as_ref(), &headers).await {
        Ok(access) => access,
        Err(refused) => return refused,
    };
    let bad = |e: String| {
        refusal(&v1::Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "{e}; the route is /v1/topics/TOPIC/partitions/PARTITION/messages/OFFSET/trace?within_ms=N"
            ),
        ))
    };
    let Path((topic, partition, offset)) = match path {
        Ok(path) => path,
        Err(e) => return bad(e.body_text()),
    };
    let Query(query) = match query {
        Ok(query) => query,
        Err(e) => return bad(e.body_text()),
    };
    let request = v1::TraceRequest {
        topic,
        partition,
        offset,
        within_ms: query.within_ms,
    };
    match api.service.trace_call(&access, request).await {
        Ok(answer) => Json(trace_json(&answer)).into_response(),
        Err(e) => refusal(&e),
    }
}

/// A message's path as JSON (the REST answer and `strata trace --format json` alike): each
/// step with its time since the first.
pub fn trace_json(t: &v1::TraceResponse) -> serde_json::Value {
    let start = t.steps.first().map_or(0, |s| s.at_us);
    let steps: Vec<_> = t
        .steps
        .iter()
        .map(|s| {
            json!({
                "step": s.step,
                "at_us": s.at_us,
                "since_first_ms": (s.at_us - start) as f64 / 1000.0,
                "by": s.by,
                "detail": s.detail,
            })
        })
        .collect();
    json!({
        "message_id": t.message_id,
        "steps": steps,
        "scanned": t.scanned,
        "truncated": t.truncated,
    })
}
