//! Logging and tracing: `tracing` to stderr, filtered by `RUST_LOG`, JSON when
//! `TELLER_LOG_FORMAT=json` (for log shippers); OpenTelemetry traces over OTLP
//! (http/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, with nothing installed otherwise. Message
//! text is never logged here; callers log ids, counts and timings.
//!
//! A request's id ([`RequestId`]) is on its `request` span, so every log line of the
//! request carries it, and so does every span of its trace.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// The header a load balancer puts a request's id in, and Teller returns it in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id taken from a client or load balancer.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The id that follows one request from the load balancer through the logs and the trace
/// to the audit record: the load balancer's `x-request-id` when it is sane, else one made
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A request id as received: 1 to 128 characters of letters, digits and `-_.:/+=@`
    /// (UUIDs, ULIDs, W3C trace ids, `Root=1-...` of some load balancers). Anything else
    /// (control characters, spaces, quotes, a 10 kB value) is not copied into logs and the
    /// record; the request gets an id of its own instead.
    pub fn parse(value: &str) -> Option<Self> {
        let sane = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b));
        sane.then(|| Self(value.to_string()))
    }

    /// A new random id (a UUID).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The sane id in a request's `x-request-id` header, if there is one.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<Self> {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `init` installed that must be flushed before the process exits.
#[must_use = "dropping the handle without `shutdown` may lose the last spans"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces {
            // The exporter's client blocks: off the async runtime's threads.
            let flushed = std::thread::spawn(move || provider.shutdown()).join();
            if !matches!(flushed, Ok(Ok(()))) {
                eprintln!("warning: the last traces may not have been exported");
            }
        }
    }
}

/// Whether the environment asks for traces (a non-empty OTLP endpoint).
fn otlp_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// The tracer provider exporting over OTLP http/protobuf, in batches (the batch
/// processor's own `OTEL_BSP_*` variables apply), as service `teller` unless
/// `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names it.
fn otlp_provider() -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    let mut resource = Resource::builder();
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name"));
    if !named {
        resource = resource.with_service_name("teller");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is unset:
/// `info` for the server, `warn` for one-shot commands whose stdout is the product.
/// Traces take Teller's own spans at `info` whatever `RUST_LOG` says (it filters logs).
pub fn init(default_level: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("TELLER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = fmt::layer().with_writer(std::io::stderr);
    let logs = if json { logs.json().boxed() } else { logs.boxed() };
    let traces = if otlp_configured() {
        match otlp_provider() {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("warning: traces are not exported: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let trace_layer = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("teller"))
            .with_filter(Targets::new().with_target("teller", LevelFilter::INFO))
    });
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(trace_layer)
        .try_init();
    Telemetry { traces }
}

/// The span of one HTTP request: method, path (never the query, which may hold a
/// compliance search's words) and request id. A W3C `traceparent` from the caller makes it
/// part of the caller's trace.
pub fn request_span(method: &axum::http::Method, path: &str, headers: &axum::http::HeaderMap) -> tracing::Span {
    let request_id = RequestId::from_headers(headers);
    let span = tracing::info_span!("request", %method, path, request_id = request_id.as_ref().map(RequestId::as_str));
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        // Only fails when no trace layer is installed: nothing to join then.
        let _ = span.set_parent(parent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_taken_only_when_sane() {
        for sane in [
            "3f2c1a9e-5b7d-4c1e-9a2f-0d6b8e4c7a11",
            "01J9ZX3K4V5W6X7Y8Z9A0B1C2D",
            "Root=1-67891233-abcdef012345678912345678",
            "lb-7:42",
        ] {
            assert_eq!(RequestId::parse(sane).unwrap().as_str(), sane);
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for insane in [
            "",
            "two words",
            "line\nbreak",
            "\"quoted\"",
            "<script>",
            "ünïcode",
            long.as_str(),
        ] {
            assert!(RequestId::parse(insane).is_none(), "{insane:?}");
        }
        let made = RequestId::generate();
        assert_eq!(RequestId::parse(made.as_str()), Some(made.clone()));
        assert_ne!(made, RequestId::generate());
    }
}
