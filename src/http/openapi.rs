//! The OpenAPI 3.1 contract of the API, served at `GET /openapi.json`: every route, its
//! parameters, bodies and replies, errors included. Built from the handlers' own
//! annotations and the types they return; the errors every route can answer with (bad
//! text, an unknown method, body and head limits) are added to each operation here.
//! `tests/it/contract.rs` fuzzes a running server against it with schemathesis.

use super::error::ERROR_CODES;
use super::{agent, audit, chat, console, customer, health, insights, widget};
use crate::audit::{ConversationSummary, ExportFormat, StoredMessage, Verification};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// Errors any route can answer with, besides those its annotation lists.
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "`invalid_text`, `invalid_query`, `invalid_path`, `invalid_json`"),
    ("405", "`method_not_allowed`"),
    ("408", "`body_timeout`"),
    ("413", "`payload_too_large`"),
    ("414", "`uri_too_long`"),
    ("431", "`headers_too_large`"),
    ("500", "`internal_error`"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Teller",
        description = "Retrieval-augmented customer-service backend for retail banks. Every error is \
                       `{\"error\": {\"code\", \"message\"}}` with a stable code.",
    ),
    paths(
        chat::chat,
        chat::chat_stream,
        chat::conversation,
        chat::handoff,
        chat::events,
        customer::feedback,
        customer::customer_conversations,
        agent::queue,
        agent::stream,
        agent::conversation,
        agent::claim,
        agent::release,
        agent::resolve,
        agent::message,
        agent::note,
        agent::suggest,
        agent::typing,
        audit::search,
        audit::conversation,
        audit::export,
        audit::verify,
        audit::chain,
        audit::hold,
        audit::release,
        insights::gaps,
        insights::feedback,
        insights::sources,
        insights::daily,
        health::healthz,
        health::readyz,
        health::metrics,
        console::page,
        console::script,
        console::style,
        console::sign_in,
        console::current,
        console::sign_out,
        widget::loader,
        widget::frame,
        widget::frame_script,
        widget::frame_style,
        widget::demo,
        widget::demo_style,
        openapi_json,
    ),
    components(schemas(ErrorBody, ErrorDetail, ExportFormat)),
    modifiers(&Contract),
    tags(
        (name = "chat", description = "Customer conversations"),
        (name = "agent", description = "The contact centre: staff tokens with the `agent` role"),
        (name = "audit", description = "The compliance API: staff tokens with the `compliance` role"),
        (name = "insights", description = "Knowledge insights: staff tokens with the `compliance` or `admin` role"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "console", description = "The agent console: its page and its cookie sessions"),
        (name = "widget", description = "The customer chat widget: loader, frame and demo page"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| document().to_json().expect("the document serialises"));
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

/// Security schemes, and the common errors on every operation.
struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "staff_token",
            bearer("A staff token (`tlr_...`) from `teller staff create`"),
        );
        components.add_security_scheme(
            "console_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::console::COOKIE,
                "The agent console's session, from POST /console/session; every request but GET \
                 and HEAD also needs its X-CSRF-Token",
            ))),
        );
        components.add_security_scheme(
            "conversation_token",
            bearer("The conversation token handed out with the conversation's first reply"),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_errors(operation);
            }
        }
    }
}

fn add_common_errors(operation: &mut Operation) {
    for (status, codes) in COMMON_ERRORS {
        if operation.responses.responses.contains_key(*status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(*codes)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_string(), response.into());
    }
}

/// `{"error": {"code": ..., "message": ...}}`: every error the API answers with.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable; the README lists each with its status.
    #[schema(schema_with = error_code)]
    pub code: String,
    /// Safe to show; generic for 5xx.
    pub message: String,
}

fn error_code() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ERROR_CODES.iter().map(|(code, _, _)| *code)))
        .build()
}

/// The `lang` of a chat turn: what [`crate::lang::Lang`] reads, ASCII letters in any
/// case, or `null`.
pub fn lang() -> utoipa::openapi::schema::Object {
    let any_case = |tag: &str| -> String {
        tag.chars()
            .map(|c| match c {
                c if c.is_ascii_alphabetic() => format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()),
                '-' => "-".to_string(),
                other => other.to_string(),
            })
            .collect()
    };
    let tags: Vec<String> = crate::lang::ACCEPTED_TAGS.iter().map(|t| any_case(t)).collect();
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some(format!("^({})$", tags.join("|"))))
        .build()
}

/// One server-sent event of `POST /v1/chat/stream`.
#[derive(Serialize, ToSchema)]
pub struct SseEvent {
    /// `meta` (`{conversation_id, message_id, mode, citations}`), `delta` (`{text}`),
    /// then `done` (the reply of `POST /v1/chat`) or `error` (`{"error": {...}}`).
    #[schema(schema_with = sse_event_name)]
    pub event: String,
    /// The event's JSON.
    pub data: String,
}

fn sse_event_name() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["meta", "delta", "done", "error"]))
        .build()
}

/// A customer's transcript.
#[derive(Serialize, ToSchema)]
pub struct Transcript {
    pub conversation_id: Uuid,
    pub messages: Vec<StoredMessage>,
}

/// One page of the compliance search.
#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
}

/// An audit event as the compliance API and the JSON Lines export show it.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<String>,
    /// The event's data; `null` once a retention purge erased it.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    pub payload_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A conversation as compliance reads it: the transcript and every event.
#[derive(Serialize, ToSchema)]
pub struct AuditConversation {
    pub conversation_id: Uuid,
    /// The verified customer reference (signed-in customers only).
    pub customer_ref: Option<String>,
    pub messages: Vec<StoredMessage>,
    /// The current rating of each rated assistant message (every change is an event).
    pub feedback: Vec<crate::audit::StoredFeedback>,
    pub events: Vec<AuditEvent>,
}

/// The outcome of `GET /v1/audit/verify`.
#[derive(Serialize, ToSchema)]
pub struct VerifyReport {
    pub intact: bool,
    pub report: Verification,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok`, `unavailable` or `timeout`.
    pub audit_store: String,
    /// `ok`, `unavailable` or `timeout`.
    pub vector_store: String,
    /// Chunks in the index, when it answered.
    pub chunks: Option<u64>,
    /// The parts that failed: `audit_store`, `vector_store`.
    pub failing: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(METHOD, path)` of every route the routers register, read from their source: the
    /// document must list exactly these (the running server answers each documented
    /// operation, which `tests/it/contract.rs` checks).
    fn routes_in_source() -> BTreeSet<(String, String)> {
        let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)",\s*([^\n]+)"#).unwrap();
        let method = regex::Regex::new(r"\b(get|post|put|patch|delete|head|options|trace)\(").unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut routes = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for found in route.captures_iter(&source) {
                let methods: Vec<_> = method.captures_iter(&found[2]).collect();
                assert!(!methods.is_empty(), "no method found for route {}", &found[1]);
                for m in methods {
                    routes.insert((m[1].to_uppercase(), found[1].to_string()));
                }
            }
        }
        routes
    }

    pub fn routes_in_document() -> BTreeSet<(String, String)> {
        let json = serde_json::to_value(document()).unwrap();
        let mut routes = BTreeSet::new();
        for (path, item) in json["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
        routes
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let source = routes_in_source();
        let document = routes_in_document();
        assert!(source.len() >= 11, "{source:?}");
        assert_eq!(source, document, "routes in the routers vs in /openapi.json");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_error_code() {
        let json = serde_json::to_value(document()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let codes = &json["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
        assert_eq!(codes.as_array().unwrap().len(), ERROR_CODES.len());
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in ["400", "405", "414", "431"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}
