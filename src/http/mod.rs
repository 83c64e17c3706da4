//! HTTP: routers, layers and the shared state. Handlers are thin; the work happens in
//! [`crate::chat::Pipeline`].

pub mod audit;
pub mod chat;
pub mod error;
pub mod health;

use crate::chat::Pipeline;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Router};
use error::ApiError;
use metrics_exporter_prometheus::PrometheusHandle;
use std::time::{Duration, Instant};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (a 2,000-character message in JSON is well below).
pub const BODY_LIMIT_BYTES: usize = 32 * 1024;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub metrics: PrometheusHandle,
}

/// Limits applied to the API.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Chat turns in flight before new ones are shed with 503.
    pub max_concurrent_turns: usize,
    /// Deadline of a JSON request (SSE streams are bounded by the pipeline deadline).
    pub request_timeout: Duration,
}

pub fn router(state: AppState, limits: HttpLimits) -> Router {
    // Load shedding: beyond the limit a turn is refused at once with 503 + Retry-After,
    // instead of queueing until every request misses its deadline.
    // One limit shared by both chat routes (a plain concurrency layer would count each
    // route separately).
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent_turns));
    let chat = Router::new()
        .route(
            "/v1/chat",
            post(chat::chat).layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(overloaded))
                    .timeout(limits.request_timeout),
            ),
        )
        .route("/v1/chat/stream", post(chat::chat_stream))
        .layer(shed)
        .route("/v1/conversations/{id}", get(chat::conversation));
    Router::new()
        .merge(chat)
        .merge(audit::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(record_request))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderName::from_static("x-conversation-token"),
        ]))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
}

async fn overloaded(error: BoxError) -> ApiError {
    if error.is::<tower::load_shed::error::Overloaded>() {
        metrics::counter!("teller_shed_requests_total").increment(1);
        ApiError::Overloaded
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout
    } else {
        ApiError::Internal(anyhow::anyhow!(error))
    }
}

/// Request count and latency per route and status.
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("teller_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("teller_http_request_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}
