//! The proxy's HTTP endpoint: liveness, readiness and metrics (default port 7073), and the
//! REST routes of dead letters ([`dead_letters`]).

mod dead_letters;

pub use dead_letters::{DeadLetterApi, dead_letter_json};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use strata_log::ReadCache;

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

/// The probes and metrics, and the dead-letter routes when `dead_letters` is given.
pub fn router_with(health: Health, dead_letters: Option<DeadLetterApi>) -> Router {
    let router = router(health);
    match dead_letters {
        Some(api) => router.merge(dead_letters::routes(api)),
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
