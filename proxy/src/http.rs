//! The proxy's HTTP endpoint: liveness, readiness and metrics (default port 7073), and the
//! REST routes that read and write records, which the controllers' admin API cannot (it
//! holds no storage): dead letters ([`dead_letters`]) and message traces ([`trace`]).
//!
//! Callers of the record routes authenticate as on gRPC (a bearer token or a client
//! certificate) and are judged by the same ACLs. With authentication on, the routes need TLS
//! on the endpoint: a token must not travel in the clear.

mod dead_letters;
mod trace;

pub use dead_letters::dead_letter_json;
pub use trace::trace_json;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use strata_catalog::acls::Access;
use strata_catalog::auth::Authenticator;
use strata_log::ReadCache;
use strata_proto::{Coded as _, ErrorCode, v1};
use strata_tls::Peer;

use crate::ProxyService;

use crate::metrics::{MetricsSource, ProxyMetrics};

/// What the endpoint reports on.
#[derive(Debug, Clone)]
pub struct Health {
    /// Routing table loaded and not shutting down.
    pub ready: Arc<AtomicBool>,
    pub metrics: Arc<ProxyMetrics>,
    pub cache: Option<Arc<ReadCache>>,
    /// Other listeners' metrics (the Kafka listener's).
    pub extra: Vec<Arc<dyn MetricsSource>>,
}

/// What the record routes need.
#[derive(Debug, Clone)]
pub struct RecordApi {
    pub service: ProxyService,
    pub auth: Arc<Authenticator>,
}

/// The probes and metrics, and the record routes when `records` is given.
pub fn router_with(health: Health, records: Option<RecordApi>) -> Router {
    let router = router(health);
    match records {
        Some(api) => router
            .merge(dead_letters::routes(api.clone()))
            .merge(trace::routes(api)),
        None => router,
    }
}

/// `/healthz` (the process serves), `/readyz` (can route), `/metrics`.
pub fn router(health: Health) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        let body = json!({ "error": { "code": "UNAVAILABLE", "message": "proxy has no routing table yet, or is shutting down" } });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        health.metrics.render(health.cache.as_ref(), &health.extra),
    )
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

/// A Strata error as a REST answer: its code's HTTP status and a JSON body.
fn refusal(e: &v1::Error) -> Response {
    let code = e.error_code().unwrap_or(ErrorCode::Internal);
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({ "error": { "code": code.as_str(), "message": e.message } });
    (status, Json(body)).into_response()
}

/// The caller of a record route, as the gRPC service would know it.
async fn caller(
    api: &RecordApi,
    peer: Option<&Peer>,
    headers: &HeaderMap,
) -> Result<Access, Response> {
    if api.auth.required() && !peer.is_some_and(|p| p.tls) {
        return Err(refusal(&v1::Error::new(
            ErrorCode::Unauthenticated,
            "the record routes take credentials, which must not travel in the clear: turn TLS on for the HTTP endpoints ([tls] http = true)",
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
