//! The compliance API under `/v1/audit`: search and read conversations with their
//! evidence, export a period, verify the chain. Staff tokens with the `compliance` role
//! only; every read is itself an audit event.

use super::error::ApiError;
use super::AppState;
use crate::audit::{ConversationQuery, ExportFormat, Role, Staff};
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/conversations", get(search))
        .route("/v1/audit/conversations/{id}", get(conversation))
        .route("/v1/audit/export", get(export))
        .route("/v1/audit/verify", get(verify))
}

/// A member of staff holding the `compliance` role, from `Authorization: Bearer <token>`.
pub struct ComplianceOfficer(pub Staff);

impl FromRequestParts<AppState> for ComplianceOfficer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::StaffTokenRequired)?;
        let staff = state
            .pipeline
            .audit
            .authenticate(token.trim())
            .await
            .map_err(|e| ApiError::Chat(crate::chat::ChatError::AuditUnavailable(e)))?
            .ok_or(ApiError::InvalidStaffToken)?;
        if staff.role != Role::Compliance {
            return Err(ApiError::Forbidden);
        }
        Ok(Self(staff))
    }
}

fn unavailable(e: crate::audit::AuditError) -> ApiError {
    ApiError::Chat(crate::chat::ChatError::AuditUnavailable(e))
}

async fn record(state: &AppState, staff: &Staff, kind: &str, payload: serde_json::Value) -> Result<(), ApiError> {
    let actor = format!("staff:{}", staff.name);
    state
        .pipeline
        .audit
        .record_staff_action(&actor, kind, payload)
        .await
        .map_err(unavailable)
}

async fn search(
    State(state): State<AppState>,
    ComplianceOfficer(staff): ComplianceOfficer,
    Query(query): Query<ConversationQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let filters = json!({ "from": query.from, "to": query.to, "mode": query.mode, "handoff_reason": query.handoff_reason, "q": query.q, "page": query.page });
    // The read is recorded before anything is returned.
    record(&state, &staff, "conversations_searched", filters).await?;
    let conversations = state
        .pipeline
        .audit
        .search_conversations(&query)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "conversations": conversations })))
}

async fn conversation(
    State(state): State<AppState>,
    ComplianceOfficer(staff): ComplianceOfficer,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: uuid::Uuid = id
        .parse()
        .map_err(|_| ApiError::Chat(crate::chat::ChatError::ConversationNotFound))?;
    let events = state
        .pipeline
        .audit
        .conversation_events(&id.to_string())
        .await
        .map_err(unavailable)?;
    if events.is_empty() {
        return Err(ApiError::Chat(crate::chat::ChatError::ConversationNotFound));
    }
    record(&state, &staff, "conversation_read", json!({ "conversation_id": id })).await?;
    let messages = state.pipeline.audit.messages(id).await.map_err(unavailable)?;
    Ok(Json(
        json!({ "conversation_id": id, "messages": messages, "events": events }),
    ))
}

#[derive(Deserialize)]
struct ExportQuery {
    from: String,
    to: String,
    #[serde(default = "jsonl")]
    format: ExportFormat,
}

fn jsonl() -> ExportFormat {
    ExportFormat::Jsonl
}

fn utc(value: &str) -> Result<String, ApiError> {
    crate::cli::timestamp(value).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// Streams the export a page at a time: memory stays flat whatever the period holds.
async fn export(
    State(state): State<AppState>,
    ComplianceOfficer(staff): ComplianceOfficer,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = (utc(&query.from)?, utc(&query.to)?);
    record(
        &state,
        &staff,
        "audit_exported",
        json!({ "from": from, "to": to, "format": query.format }),
    )
    .await?;
    let audit = state.pipeline.audit.clone();
    let format = query.format;
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let audit = audit.clone();
        let (from, to) = (from.clone(), to.clone());
        async move {
            let after = after?;
            match audit.export_page(&from, &to, format, after).await {
                Ok(Some((bytes, last, _))) => Some((Ok::<_, std::io::Error>(bytes), Some(last))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "export failed mid-stream");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let content_type = match format {
        ExportFormat::Jsonl => "application/x-ndjson",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(pages),
    )
        .into_response())
}

async fn verify(
    State(state): State<AppState>,
    ComplianceOfficer(staff): ComplianceOfficer,
) -> Result<impl IntoResponse, ApiError> {
    let report = state.pipeline.audit.verify().await.map_err(unavailable)?;
    record(
        &state,
        &staff,
        "audit_verified",
        json!({ "ok": report.error.is_none(), "events": report.events }),
    )
    .await?;
    Ok(Json(json!({ "intact": report.error.is_none(), "report": report })))
}
