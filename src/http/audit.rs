//! The compliance API under `/v1/audit`: search and read conversations with their
//! evidence, export a period, verify the chain. Staff tokens with the `compliance` role
//! only; every read is itself an audit event, recorded before anything is returned.

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, ComplianceOfficer};
use super::openapi::{AuditConversation, ConversationList, ErrorBody, VerifyReport};
use super::AppState;
use crate::audit::{
    AuditExported, AuditStore, AuditVerified, ChainStatus, ConversationQuery, ConversationRead, ExportFormat,
    LegalHold, Timestamp,
};
use crate::chat::ChatError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/conversations", get(search))
        .route("/v1/audit/conversations/{id}", get(conversation))
        .route("/v1/audit/conversations/{id}/hold", put(hold).delete(release))
        .route("/v1/audit/export", get(export))
        .route("/v1/audit/verify", get(verify))
        .route("/v1/audit/chain", get(chain))
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
    let legal_hold = audit.legal_hold(&id.to_string()).await?;
    let events: Vec<serde_json::Value> = events.iter().map(|e| e.to_json()).collect();
    Ok(Json(json!({
        "conversation_id": id, "customer_ref": customer_ref, "messages": messages,
        "feedback": feedback, "legal_hold": legal_hold, "events": events,
    })))
}

/// Why a conversation is put under legal hold.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct HoldRequest {
    /// 1 to 500 characters, no control characters.
    #[schema(min_length = 1, max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    reason: String,
}

/// A conversation's legal hold after the change.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HoldState {
    conversation_id: String,
    /// `null`: not on hold.
    legal_hold: Option<LegalHold>,
}

/// A conversation id of the record (404 `conversation_not_found` for any other).
async fn recorded_conversation(audit: &AuditStore, id: &str) -> Result<String, ApiError> {
    let id: uuid::Uuid = id.parse().map_err(|_| ChatError::ConversationNotFound)?;
    if !audit.conversation_exists(id).await? {
        return Err(ChatError::ConversationNotFound.into());
    }
    Ok(id.to_string())
}

/// Puts a conversation under legal hold: retention purges skip it until it is released
/// (recorded as `legal_hold_placed`).
#[utoipa::path(
    put, path = "/v1/audit/conversations/{id}/hold", tag = "audit",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    request_body = HoldRequest,
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The conversation is on legal hold", body = HoldState),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`, `session_invalid`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token; `csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`already_exists`: it is on hold already", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_request`: no reason, or one too long", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn hold(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(staff): ComplianceOfficer,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<HoldRequest>,
) -> Result<Json<HoldState>, ApiError> {
    // Checked as sent, before trimming: a leading NEL (U+0085) is both a control character
    // and, to `trim`, white space.
    let raw = &body.reason;
    let reason = raw.trim();
    if reason.is_empty() || raw.chars().count() > 500 || raw.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(
            "`reason` must be 1 to 500 characters without control characters".into(),
        ));
    }
    let id = recorded_conversation(&audit, &id).await?;
    audit.hold(&id, reason, staff.actor()).await?;
    let legal_hold = audit.legal_hold(&id).await?;
    Ok(Json(HoldState {
        conversation_id: id,
        legal_hold,
    }))
}

/// Releases a conversation's legal hold, if it has one (recorded as `legal_hold_released`).
#[utoipa::path(
    delete, path = "/v1/audit/conversations/{id}/hold", tag = "audit",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The conversation is not on legal hold (any more)", body = HoldState),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`, `session_invalid`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token; `csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn release(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(staff): ComplianceOfficer,
    AppPath(id): AppPath<String>,
) -> Result<Json<HoldState>, ApiError> {
    let id = recorded_conversation(&audit, &id).await?;
    audit.release_hold(&id, staff.actor()).await?;
    Ok(Json(HoldState {
        conversation_id: id,
        legal_hold: None,
    }))
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

/// The chain at a glance: the head seq, the latest recorded verification (who, when, up to
/// which seq, whether intact) and how many events came after it. Not itself recorded: it
/// shows no conversation content, and each verification is recorded where it runs.
#[utoipa::path(
    get, path = "/v1/audit/chain", tag = "audit",
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The chain's head and last verification", body = ChainStatus),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`, `session_invalid`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance token", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn chain(
    State(audit): State<Arc<AuditStore>>,
    ComplianceOfficer(_): ComplianceOfficer,
) -> Result<Json<ChainStatus>, ApiError> {
    Ok(Json(audit.chain_status().await?))
}
