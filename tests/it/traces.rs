//! Traces: `teller serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` exports a turn's spans over
//! OTLP http/protobuf to a receiver here (protocol level: `POST /v1/traces`, the
//! protobuf decoded), and one request id follows the turn from the load balancer's header
//! through the spans to the audit record and back on the response.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use teller::audit::{AuditStore, StaffRole};

/// The stages of an answered turn, each a span under the turn's.
const STAGES: [&str; 6] = ["receive", "gather_evidence", "decide", "answer", "record", "reply"];

/// An OTLP/HTTP trace receiver: every span it was sent, with its service's name.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut spans = receiver.spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| string_value(a.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    let reply = ExportTraceServiceResponse { partial_success: None };
    ([("content-type", "application/x-protobuf")], reply.encode_to_vec())
}

fn string_value(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| string_value(a.value.as_ref()?.value.as_ref()?))
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let app = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, endpoint)
    }

    /// The spans of the trace that holds a `turn` span with `request_id`, once every stage
    /// of it has arrived.
    async fn turn_trace(&self, request_id: &str) -> Vec<(String, Span)> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.spans.lock().unwrap().clone();
            let turn = spans
                .iter()
                .find(|(_, s)| s.name == "turn" && attribute(s, "request_id").as_deref() == Some(request_id));
            if let Some((_, turn)) = turn {
                let trace: Vec<_> = spans
                    .iter()
                    .filter(|(_, s)| s.trace_id == turn.trace_id)
                    .cloned()
                    .collect();
                if STAGES.iter().all(|stage| trace.iter().any(|(_, s)| s.name == *stage)) {
                    return trace;
                }
            }
            let names: Vec<_> = spans.iter().map(|(_, s)| s.name.clone()).collect();
            assert!(
                Instant::now() < until,
                "no complete turn trace for {request_id}: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_turn_is_traced_over_otlp_and_its_request_id_reaches_the_record() {
    let (receiver, endpoint) = Receiver::start().await;
    let data = tempfile::TempDir::new().unwrap();
    let database = format!("sqlite://{}", data.path().join("teller.db").display());
    let token = AuditStore::connect(&database)
        .await
        .unwrap()
        .create_token("carol", StaffRole::Compliance)
        .await
        .unwrap();
    let served = crate::faults::serve(
        data.path(),
        &database,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            // Batches go out every 100 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let request_id = format!("lb-{}", uuid::Uuid::new_v4().simple());
    let response = client
        .post(format!("{}/v1/chat", served.base))
        .header("x-request-id", &request_id)
        .json(&json!({ "message": "How much is the annual fee for the Gold card?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-request-id"],
        request_id.as_str(),
        "returned as received"
    );
    let reply: Value = response.json().await.unwrap();
    let conversation_id = reply["conversation_id"].as_str().unwrap().to_string();

    // The spans: the request, the turn under it, every stage under the turn.
    let trace = receiver.turn_trace(&request_id).await;
    let span = |name: &str| &trace.iter().find(|(_, s)| s.name == name).unwrap().1;
    let (request, turn) = (span("request"), span("turn"));
    assert_eq!(attribute(request, "request_id").as_deref(), Some(request_id.as_str()));
    assert_eq!(attribute(request, "path").as_deref(), Some("/v1/chat"));
    assert_eq!(turn.parent_span_id, request.span_id, "the turn is the request's");
    assert_eq!(attribute(turn, "conversation_id"), Some(conversation_id.clone()));
    assert_eq!(attribute(turn, "mode").as_deref(), reply["mode"].as_str());
    for stage in STAGES {
        assert_eq!(
            span(stage).parent_span_id,
            turn.span_id,
            "{stage} is a stage of the turn"
        );
    }
    assert!(trace.iter().all(|(service, _)| service == "teller"), "service.name");

    // The record: the turn's message carries the same id.
    let (status, record) = get_json(
        &client,
        &format!("{}/v1/audit/conversations/{conversation_id}", served.base),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{record}");
    let received: Vec<_> = record["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message_received")
        .collect();
    assert_eq!(received.len(), 1, "{record}");
    assert_eq!(received[0]["payload"]["request_id"], request_id.as_str(), "{record}");

    // A header that is not a sane id is not copied anywhere: the request gets its own.
    let response = client
        .post(format!("{}/v1/chat", served.base))
        .header("x-request-id", "two words\tand a tab")
        .json(&json!({ "message": "What should I do if my card is stolen?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let made = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "a new id: {made}");
    receiver.turn_trace(&made).await;
    // Every response carries one, errors too.
    let response = client.get(format!("{}/v1/nowhere", served.base)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
