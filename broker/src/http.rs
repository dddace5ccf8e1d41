//! The broker's HTTP endpoint: liveness, readiness and metrics (default port 7072).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::broker::Broker;

/// What the endpoint reports on: the broker, and its listeners' TLS when it has any.
#[derive(Debug, Clone)]
struct Endpoint {
    broker: Arc<Broker>,
    tls: Option<Arc<strata_tls::ServerTls>>,
}

/// `/healthz` (the process serves), `/readyz` (registered and not shutting down), `/metrics`
/// (with `strata_broker_tls_*` when `tls` is given).
pub fn router(broker: Arc<Broker>, tls: Option<Arc<strata_tls::ServerTls>>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoint { broker, tls })
}

async fn readyz(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    if endpoint.broker.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        let body = json!({ "error": { "code": "UNAVAILABLE", "message": "broker is not registered, or is shutting down" } });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        endpoint.broker.render_metrics_with(endpoint.tls.as_deref()),
    )
}
