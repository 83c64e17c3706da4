//! HTTP: the shared state, one router per feature merged once with the layers, and the
//! error type. Handlers are thin; the work happens in [`crate::chat::Pipeline`] and
//! [`crate::audit::AuditStore`].

pub mod agent;
pub mod audit;
pub mod body;
pub mod chat;
pub mod console;
pub mod customer;
pub mod error;
pub mod extract;
pub mod guard;
pub mod health;
pub mod insights;
pub mod live;
pub mod openapi;
pub mod ratelimit;
pub mod refused;
pub mod request_id;
pub mod widget;

use crate::audit::AuditStore;
use crate::chat::Pipeline;
use crate::retrieval::Index;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use error::ApiError;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (a 2,000-character message in JSON is well below).
pub const BODY_LIMIT_BYTES: usize = 32 * 1024;

/// The services handlers share; a handler asks for the one it needs
/// (`State<Arc<AuditStore>>`, `State<Pipeline>`) and never reaches through another. The
/// pipeline holds the same audit store and index, not copies.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub audit: Arc<AuditStore>,
    pub index: Index,
    pub metrics: PrometheusHandle,
    pub metrics_access: health::MetricsAccess,
    /// The path to a person: queue, take-over, live messages.
    pub desk: crate::handoff::Desk,
    /// Verifies signed-in customers' identity tokens.
    pub identity: customer::Identity,
    /// The public routes' abuse limits.
    pub rate_limits: ratelimit::RateLimits,
    /// Who may frame the customer widget.
    pub widget: widget::WidgetPolicy,
    /// The knowledge insights (over the same audit store and index).
    pub insights: crate::insights::Insights,
}

/// Limits applied to the API.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Chat turns in flight before new ones are shed with 503.
    pub max_concurrent_turns: usize,
    /// Deadline of a JSON request (SSE streams are bounded by the pipeline deadline).
    pub request_timeout: Duration,
    /// Request bodies: read whole, within a size and a time.
    pub body: body::BodyLimits,
}

/// The whole API: each feature's routes, with the layers applied once.
pub fn api_router(state: AppState, limits: HttpLimits) -> Router {
    // One recorder of refused staff attempts per API (per process), for the staff
    // extractors; its rate limit holds across every staff route.
    let refusals = refused::StaffRefusals::new(state.audit.clone());
    // The customer's routes, each request from one client IP counted.
    let public = Router::new()
        .merge(chat::router(limits))
        .merge(customer::router())
        .route_layer(middleware::from_fn_with_state(
            state.rate_limits.clone(),
            ratelimit::per_ip,
        ));
    Router::new()
        .merge(public)
        .merge(widget::router())
        .merge(audit::router())
        .merge(insights::router())
        .merge(agent::router())
        .merge(health::router())
        .merge(console::router())
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(Extension(refusals))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(move |request, next| {
            body::read_whole(limits.body, request, next)
        }))
        // Outside the body reader: an oversized head or bad text is refused before a body
        // byte is read.
        .layer(middleware::from_fn(guard::guard))
        .layer(middleware::from_fn(record_request))
        .layer(
            TraceLayer::new_for_http().make_span_with(|r: &Request<_>| {
                crate::telemetry::request_span(r.method(), r.uri().path(), r.headers())
            }),
        )
        // Outside the trace layer: the request span carries the id.
        .layer(middleware::from_fn(request_id::request_id))
        .layer(SetSensitiveHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderName::from_static("x-conversation-token"),
            // The console's session id and CSRF token.
            axum::http::header::COOKIE,
            axum::http::header::SET_COOKIE,
            axum::http::HeaderName::from_static(console::CSRF_HEADER),
        ]))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
}

/// The method as a metrics label: the standard ones by name, any other as `other`, so
/// invented methods cannot grow `/metrics` without bound.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Request count and latency per route and status.
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("teller_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("teller_http_request_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}
