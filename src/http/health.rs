//! Liveness, readiness and Prometheus metrics.

use super::AppState;
use crate::audit::AuditStore;
use crate::retrieval::Index;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Both stores answer: the audit database and the vector index.
async fn readyz(State(audit): State<Arc<AuditStore>>, State(index): State<Index>) -> impl IntoResponse {
    let audit = audit.ping().await;
    let index = index.store.count().await;
    let ready = audit.is_ok() && index.is_ok();
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "audit_store": if audit.is_ok() { "ok" } else { "unavailable" },
        "vector_store": match &index { Ok(_) => "ok", Err(_) => "unavailable" },
        "chunks": index.ok(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics(State(metrics): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
