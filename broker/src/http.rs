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

/// `/healthz` (the process serves), `/readyz` (registered and not shutting down), `/metrics`.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(broker)
}

async fn readyz(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    if broker.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        let body = json!({ "error": { "code": "UNAVAILABLE", "message": "broker is not registered, or is shutting down" } });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn metrics(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        broker.render_metrics(),
    )
}
