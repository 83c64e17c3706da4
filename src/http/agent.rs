//! The contact centre's API under `/v1/agent`: the queue and its live stream, a
//! conversation with the assistant's evidence, and taking it over. Staff tokens with the
//! `agent` role only; every read and action is recorded (actor: the colleague). Thin
//! adapters over [`crate::handoff::Desk`].

use super::error::ApiError;
use super::extract::{Agent, AppJson, AppPath};
use super::live::{last_event_id, sse};
use super::openapi::ErrorBody;
use super::AppState;
use crate::audit::live::{MessageData, QueueEntry, Status};
use crate::conversation::Outcome;
use crate::handoff::{AgentView, Desk, Draft, HandoffError, SentMessage};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/queue", get(queue))
        .route("/v1/agent/stream", get(stream))
        .route("/v1/agent/conversations/{id}", get(conversation))
        .route("/v1/agent/conversations/{id}/claim", post(claim))
        .route("/v1/agent/conversations/{id}/release", post(release))
        .route("/v1/agent/conversations/{id}/resolve", post(resolve))
        .route("/v1/agent/conversations/{id}/messages", post(message))
        .route("/v1/agent/conversations/{id}/notes", post(note))
        .route("/v1/agent/conversations/{id}/suggest", post(suggest))
        .route("/v1/agent/conversations/{id}/typing", post(typing))
}

impl From<HandoffError> for ApiError {
    fn from(error: HandoffError) -> Self {
        match error {
            HandoffError::Chat(e) => e.into(),
            HandoffError::Audit(e) => e.into(),
        }
    }
}

/// A conversation id in a path: anything but a UUID is a conversation that does not exist.
pub(super) fn conversation_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::Chat(crate::chat::ChatError::ConversationNotFound))
}

/// The queue: waiting conversations by priority and waiting time, then those a colleague
/// holds (recorded as `queue_read`).
#[utoipa::path(
    get, path = "/v1/agent/queue", tag = "agent",
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The queue", body = QueueList),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn queue(State(desk): State<Desk>, Agent(staff): Agent) -> Result<impl IntoResponse, ApiError> {
    let conversations = desk.queue(&staff).await?;
    Ok(Json(json!({ "conversations": conversations })))
}

/// The queue as it changes and what is said in the conversations the colleague holds, as
/// server-sent events: `snapshot` (`{conversations}`, on a fresh connection), `queue` (a
/// queue entry; state `bot` or `closed` when it left the queue), `customer_message`,
/// `agent_message`, `note`. Reconnect with `Last-Event-ID` to get exactly what was missed.
#[utoipa::path(
    get, path = "/v1/agent/stream", tag = "agent",
    params(("Last-Event-ID" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The id of the last event received")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream", body = String),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn stream(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let stream = desk.agent_stream(&staff, last_event_id(&headers)).await?;
    Ok(sse(stream, |mut s| async move { s.next().await.map(|e| (e, s)) }))
}

/// A conversation as a colleague sees it: state, the whole transcript with the
/// assistant's evidence per turn (mode, handoff reason, cited sources with snippets),
/// and the internal notes (recorded as `conversation_read`).
#[utoipa::path(
    get, path = "/v1/agent/conversations/{id}", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The conversation", body = AgentView),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn conversation(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
) -> Result<Json<AgentView>, ApiError> {
    Ok(Json(desk.view(conversation_id(&id)?, &staff).await?))
}

/// Takes the conversation over: the assistant falls silent, the customer is told who
/// joined. Two colleagues at once: one wins, the other gets 409 `already_claimed`.
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/claim", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The conversation's state after it", body = Status),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`already_claimed`, `not_waiting`, `conversation_closed`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn claim(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
) -> Result<Json<Status>, ApiError> {
    Ok(Json(desk.claim(conversation_id(&id)?, &staff).await?))
}

/// Hands the conversation back to the assistant.
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/release", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The conversation's state after it", body = Status),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`not_claimed`, `not_your_conversation`, `conversation_closed`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn release(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
) -> Result<Json<Status>, ApiError> {
    Ok(Json(desk.release(conversation_id(&id)?, &staff).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ResolveBody {
    outcome: Outcome,
}

/// Closes the conversation with an outcome.
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/resolve", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    request_body = ResolveBody,
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The conversation's state after it", body = Status),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`not_waiting`, `not_your_conversation`, `conversation_closed`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_request`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn resolve(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<ResolveBody>,
) -> Result<Json<Status>, ApiError> {
    Ok(Json(desk.resolve(conversation_id(&id)?, &staff, body.outcome).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MessageBody {
    /// At most 4,000 characters; passes the output guard (masking, links only to the
    /// bank's domains, no HTML).
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    text: String,
    /// The suggestion the reply box held, sent unchanged or edited.
    suggestion_id: Option<Uuid>,
}

/// A message to the customer (the colleague must hold the conversation).
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/messages", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    request_body = MessageBody,
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The message as sent", body = SentMessage),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`not_claimed`, `not_your_conversation`, `conversation_closed`, `unknown_suggestion`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`message_empty`, `message_too_long`, `invalid_request`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn message(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<MessageBody>,
) -> Result<Json<SentMessage>, ApiError> {
    super::guard::plain_text(&body.text).map_err(|why| ApiError::InvalidText(format!("text {why}")))?;
    Ok(Json(
        desk.send(conversation_id(&id)?, &staff, &body.text, body.suggestion_id)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NoteBody {
    /// At most 4,000 characters.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    text: String,
}

/// An internal note, shown to colleagues and never to the customer.
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/notes", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    request_body = NoteBody,
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The note", body = MessageData),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`message_empty`, `message_too_long`, `invalid_request`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn note(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<NoteBody>,
) -> Result<Json<MessageData>, ApiError> {
    super::guard::plain_text(&body.text).map_err(|why| ApiError::InvalidText(format!("text {why}")))?;
    Ok(Json(desk.note(conversation_id(&id)?, &staff, &body.text).await?))
}

/// A draft reply to the customer's latest messages, with citations, from the same
/// pipeline core as the assistant's answers; never sent by itself (recorded as
/// `reply_suggested`; what became of it, with the message that used it or as
/// `suggestion_discarded`).
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/suggest", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 200, description = "The draft", body = Draft),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`not_claimed`, `not_your_conversation`, `conversation_closed`", body = ErrorBody),
        (status = 422, description = "`message_empty`: the customer has written nothing yet", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`, `retrieval_unavailable`", body = ErrorBody),
    )
)]
pub async fn suggest(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
) -> Result<Json<Draft>, ApiError> {
    Ok(Json(desk.suggest(conversation_id(&id)?, &staff).await?))
}

/// Tells the customer the colleague is typing (not recorded).
#[utoipa::path(
    post, path = "/v1/agent/conversations/{id}/typing", tag = "agent",
    params(("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id")),
    security(("staff_token" = []), ("console_session" = [])),
    responses(
        (status = 204, description = "Told"),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`; `session_invalid` for the console's cookie", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an agent token; `csrf_token_invalid`: the console's cookie without its X-CSRF-Token", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`not_claimed`, `not_your_conversation`, `conversation_closed`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn typing(
    State(desk): State<Desk>,
    Agent(staff): Agent,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    desk.typing(conversation_id(&id)?, &staff).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The queue, as `GET /v1/agent/queue` returns it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueueList {
    pub conversations: Vec<QueueEntry>,
}
