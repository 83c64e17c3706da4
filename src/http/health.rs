//! Liveness, readiness and Prometheus metrics.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Both stores answer: the audit database and the vector index.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let audit = state.pipeline.audit.ping().await;
    let index = state.pipeline.index.store.count().await;
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

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
