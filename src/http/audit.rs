//! The compliance API under `/v1/audit`: search and read conversations with their
//! evidence, export a period, verify the chain. Staff tokens with the `compliance` role
//! only; every read is itself an audit event, recorded before anything is returned.

use super::error::ApiError;
use super::extract::{AppPath, AppQuery, ComplianceOfficer};
use super::openapi::{AuditConversation, ConversationList, ErrorBody, VerifyReport};
use super::AppState;
use crate::audit::{
    AuditExported, AuditStore, AuditVerified, ConversationQuery, ConversationRead, ExportFormat, Timestamp,
};
use crate::chat::ChatError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/conversations", get(search))
        .route("/v1/audit/conversations/{id}", get(conversation))
        .route("/v1/audit/export", get(export))
        .route("/v1/audit/verify", get(verify))
}

/// Conversations matching the filters, newest first (recorded as `conversations_searched`).
#[utoipa::path(
    get, path = "/v1/audit/conversations", tag = "audit",
    params(ConversationQuery),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "One page of conversations", body = ConversationList),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn search(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(staff): ComplianceOfficer,
    AppQuery(query): AppQuery<ConversationQuery>,
) -> Result<impl IntoResponse, ApiError> {
    audit.record_staff_action(staff.actor(), &query).await?;
    let conversations = audit.search_conversations(&query).await?;
    Ok(Json(json!({ "conversations": conversations })))
}

/// One conversation with every event (recorded as `conversation_read`).
#[utoipa::path(
    get, path = "/v1/audit/conversations/{id}", tag = "audit",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id (a UUID; anything else is `conversation_not_found`)")),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "Messages and events", body = AuditConversation),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn conversation(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(staff): ComplianceOfficer,
    AppPath(id): AppPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: uuid::Uuid = id.parse().map_err(|_| ChatError::ConversationNotFound)?;
    let events = audit.conversation_events(id).await?;
    if events.is_empty() {
        return Err(ChatError::ConversationNotFound.into());
    }
    audit
        .record_staff_action(staff.actor(), &ConversationRead { conversation_id: id })
        .await?;
    let messages = audit.messages(id).await?;
    let feedback = audit.feedback(id).await?;
    let customer_ref = audit.conversation_customer(id).await?;
    let events: Vec<serde_json::Value> = events.iter().map(|e| e.to_json()).collect();
    Ok(Json(json!({
        "conversation_id": id, "customer_ref": customer_ref, "messages": messages,
        "feedback": feedback, "events": events,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Start of the period, inclusive (RFC 3339; a date `YYYY-MM-DD` is also read).
    #[param(format = DateTime)]
    from: String,
    /// End of the period, exclusive (RFC 3339; a date `YYYY-MM-DD` is also read).
    #[param(format = DateTime)]
    to: String,
    /// `jsonl` (default) or `csv`.
    #[serde(default = "jsonl")]
    #[param(value_type = Option<ExportFormat>)]
    format: ExportFormat,
}

fn jsonl() -> ExportFormat {
    ExportFormat::Jsonl
}

/// Streams the export a page at a time: memory stays flat whatever the period holds.
#[utoipa::path(
    get, path = "/v1/audit/export", tag = "audit",
    params(ExportQuery),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "Every event of the period, a line or row each", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a time that cannot be read", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn export(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(staff): ComplianceOfficer,
    AppQuery(query): AppQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let time = |value: &str| {
        value
            .parse::<Timestamp>()
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))
    };
    let (from, to) = (time(&query.from)?, time(&query.to)?);
    let format = query.format;
    let exported = AuditExported {
        from: from.to_string(),
        to: to.to_string(),
        format,
        events: None,
    };
    audit.record_staff_action(staff.actor(), &exported).await?;
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let audit = audit.clone();
        let (from, to) = (from.clone(), to.clone());
        async move {
            let after = after?;
            match audit.export_page(from.as_str(), to.as_str(), format, after).await {
                Ok(Some(page)) => Some((Ok::<_, std::io::Error>(page.bytes), Some(page.last_seq))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "export failed mid-stream");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(pages),
    )
        .into_response())
}

/// Checks the hash chain of the whole log (recorded as `audit_verified`).
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit",
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "Whether the chain is intact", body = VerifyReport),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn verify(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(staff): ComplianceOfficer,
) -> Result<impl IntoResponse, ApiError> {
    let report = audit.verify().await?;
    let verified = AuditVerified {
        ok: report.intact(),
        events: report.events,
    };
    audit.record_staff_action(staff.actor(), &verified).await?;
    Ok(Json(json!({ "intact": report.intact(), "report": report })))
}
