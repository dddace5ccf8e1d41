//! The REST routes of a group's dead letters, on the proxy's HTTP endpoint: the proxy reads
//! and writes records, which the controllers' admin API cannot (it holds no storage).
//!
//! - `GET /v1/groups/{group}/dead-letters?from=N&max=N`: the dead letters, oldest first;
//! - `POST /v1/groups/{group}/dead-letters/replay` with `{"offsets": [..]}` or `{"from": N}`:
//!   sends them back to where they came from.
//!
//! Callers authenticate as on gRPC (a bearer token or a client certificate) and are judged
//! by the same ACLs. With authentication on, the routes need TLS on the endpoint: a token must
//! not travel in the clear.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use strata_catalog::acls::Access;
use strata_catalog::auth::Authenticator;
use strata_proto::{Coded as _, ErrorCode, v1};
use strata_tls::Peer;

use crate::ProxyService;

/// What the dead-letter routes need.
#[derive(Debug, Clone)]
pub struct DeadLetterApi {
    pub service: ProxyService,
    pub auth: Arc<Authenticator>,
}

pub(super) fn routes(api: DeadLetterApi) -> Router {
    Router::new()
        .route("/v1/groups/{group}/dead-letters", get(list))
        .route("/v1/groups/{group}/dead-letters/replay", post(replay))
        .with_state(api)
}

/// The TLS peer, when the endpoint knows it (served with connection info).
struct MaybePeer(Option<Peer>);

impl<S: Send + Sync> FromRequestParts<S> for MaybePeer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<Peer>>()
                .map(|c| c.0.clone()),
        ))
    }
}

fn refusal(e: &v1::Error) -> Response {
    let code = e.error_code().unwrap_or(ErrorCode::Internal);
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({ "error": { "code": code.as_str(), "message": e.message } });
    (status, Json(body)).into_response()
}

/// The caller, as the gRPC service would know it.
async fn caller(
    api: &DeadLetterApi,
    peer: Option<&Peer>,
    headers: &HeaderMap,
) -> Result<Access, Response> {
    if api.auth.required() && !peer.is_some_and(|p| p.tls) {
        return Err(refusal(&v1::Error::new(
            ErrorCode::Unauthenticated,
            "the dead-letter routes take credentials, which must not travel in the clear: turn TLS on for the HTTP endpoints ([tls] http = true)",
        )));
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    match api
        .auth
        .authenticate(
            peer.map(|p| p.addr),
            peer.and_then(|p| p.principal.as_deref()),
            authorization.as_deref(),
        )
        .await
    {
        Ok(principal) => Ok(api.service.access_for(principal)),
        Err(e) => Err(refusal(&e.to_wire())),
    }
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
    State(api): State<DeadLetterApi>,
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
    State(api): State<DeadLetterApi>,
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
