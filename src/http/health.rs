//! Liveness, readiness and Prometheus metrics.

use super::error::ApiError;
use super::openapi::{ErrorBody, Health, Readiness};
use super::AppState;
use crate::audit::AuditStore;
use crate::retrieval::Index;
use axum::extract::{FromRef, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long each readiness probe may take: `/readyz` answers within about this, whatever
/// a store does (a database that is down used to hold it 5 s, the pool's acquire timeout).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// Whether `/metrics` asks for a staff token (`TELLER_METRICS_TOKEN_REQUIRED`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsAccess {
    pub token_required: bool,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Always, while the process runs", body = Health)))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// What one probe found.
fn probe<T, E: std::fmt::Display>(
    part: &str,
    outcome: Result<Result<T, E>, tokio::time::error::Elapsed>,
) -> Result<T, String> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!(part, error = %e, "readiness probe failed");
            Err("unavailable".into())
        }
        Err(_) => {
            tracing::warn!(
                part,
                timeout_ms = PROBE_TIMEOUT.as_millis() as u64,
                "readiness probe timed out"
            );
            Err("timeout".into())
        }
    }
}

/// Both stores answer: the audit database and the vector index, each probed at once and
/// within [`PROBE_TIMEOUT`]; 503 names the part that failed.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Both stores answer", body = Readiness),
        (status = 503, description = "A store failed or timed out; `failing` names it", body = Readiness),
    ))]
pub async fn readyz(State(audit): State<Arc<AuditStore>>, State(index): State<Index>) -> impl IntoResponse {
    let (audit, chunks) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, audit.ping()),
        tokio::time::timeout(PROBE_TIMEOUT, index.store.count()),
    );
    let audit = probe("audit_store", audit);
    let chunks = probe("vector_store", chunks);
    let failing: Vec<&str> = [("audit_store", audit.is_err()), ("vector_store", chunks.is_err())]
        .into_iter()
        .filter_map(|(part, failed)| failed.then_some(part))
        .collect();
    let ready = failing.is_empty();
    let part = |outcome: Result<(), &String>| outcome.map_or_else(Clone::clone, |()| "ok".to_string());
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "audit_store": part(audit.as_ref().map(|_| ())),
        "vector_store": part(chunks.as_ref().map(|_| ())),
        "chunks": chunks.ok(),
        "failing": failing,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics; behind any valid staff token when `TELLER_METRICS_TOKEN_REQUIRED`
/// is set (a refused token is recorded as on the staff routes). Labels are bounded: route templates, a fixed set of methods, statuses.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("staff_token" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token` (only when a token is required)", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`: the token could not be checked", body = ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    if MetricsAccess::from_ref(&state).token_required {
        super::extract::staff(&parts, &state).await?;
    }
    let metrics = PrometheusHandle::from_ref(&state);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
        .into_response())
}
