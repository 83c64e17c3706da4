//! `POST /v1/chat`, `POST /v1/chat/stream`, `GET /v1/conversations/{id}`: thin adapters
//! over the pipeline.

use super::customer::Identity;
use super::error::ApiError;
use super::extract::{AppJson, AppPath};
use super::guard::plain_text;
use super::live::{last_event_id, sse};
use super::openapi::{ErrorBody, SseEvent, Transcript};
use super::ratelimit::RateLimits;
use super::{AppState, HttpLimits};
use crate::chat::{ChatError, ChatReply, ChatRequest, Pipeline, StreamEvent, Streamed, UserMessage, WholeReply};
use crate::handoff::{CustomerStatus, Desk};
use crate::lang::Lang;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use futures::stream::Stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::mpsc;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tracing::Instrument;
use uuid::Uuid;

/// The chat routes. Beyond `max_concurrent_turns` a turn is refused at once with 503 +
/// Retry-After instead of queueing until every request misses its deadline; the limit is
/// shared by both chat routes (a plain concurrency layer would count each separately).
pub fn router(limits: HttpLimits) -> Router<AppState> {
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent_turns));
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .timeout(limits.request_timeout);
    Router::new()
        .route("/v1/chat", post(chat).layer(timeout))
        .route("/v1/chat/stream", post(chat_stream))
        .layer(shed)
        .route("/v1/conversations/{id}", get(conversation))
        .route("/v1/conversations/{id}/handoff", post(handoff))
        .route("/v1/conversations/{id}/events", get(events))
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

/// A customer turn: a new conversation, or a follow-up with the conversation's id and
/// token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatBody {
    /// The conversation to continue (with its token); absent for a new one.
    #[schema(value_type = Option<String>, format = Uuid, pattern = r"^(urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")]
    conversation_id: Option<Uuid>,
    /// The token handed out with the conversation's first reply; only with
    /// `conversation_id`.
    #[schema(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    conversation_token: Option<String>,
    /// The customer's message: at most 2,000 characters, some of them not whitespace;
    /// no control characters but tab, line feed and carriage return.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    message: String,
    /// `en` or `zh-CN` (also `zh`, `zh-Hans`, `en-GB`..., in any case); detected from the
    /// message when absent.
    #[schema(schema_with = super::openapi::lang)]
    lang: Option<String>,
}

impl ChatBody {
    /// The request, for the customer `customer` verified from the identity header.
    fn parse(self, customer: Option<crate::identity::CustomerRef>) -> Result<ChatRequest, ApiError> {
        let fields = [
            ("message", Some(&self.message)),
            ("conversation_token", self.conversation_token.as_ref()),
            ("lang", self.lang.as_ref()),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                plain_text(value).map_err(|why| ApiError::InvalidText(format!("{name} {why}")))?;
            }
        }
        let message = UserMessage::parse(&self.message)?;
        let lang = self
            .lang
            .map(|l| l.parse::<Lang>().map_err(|e| ApiError::InvalidRequest(e.to_string())))
            .transpose()?;
        let conversation = match (self.conversation_id, self.conversation_token) {
            (Some(id), Some(token)) => Some((id, token)),
            (Some(_), None) => return Err(ChatError::InvalidConversationToken.into()),
            // A token without the conversation it belongs to proves nothing.
            (None, Some(_)) => return Err(ChatError::InvalidConversationToken.into()),
            (None, None) => None,
        };
        Ok(ChatRequest {
            conversation,
            message,
            lang,
            customer,
            request_id: None,
        })
    }
}

/// One customer turn, answered whole.
#[utoipa::path(
    post, path = "/v1/chat", tag = "chat",
    request_body = ChatBody,
    params(("X-Teller-Identity" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "A signed-in customer's identity token, minted by the bank's server")),
    responses(
        (status = 200, description = "The reply, recorded before it was sent", body = ChatReply),
        (status = 401, description = "`invalid_conversation_token`, `invalid_identity_token`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`conversation_too_long`, `turn_conflict`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`message_empty`, `message_too_long`, `invalid_request`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`, `retrieval_unavailable`, `overloaded`", body = ErrorBody),
        (status = 504, description = "`deadline_exceeded`", body = ErrorBody),
    )
)]
pub async fn chat(
    State(pipeline): State<Pipeline>,
    State(identity): State<Identity>,
    State(limits): State<RateLimits>,
    headers: HeaderMap,
    AppJson(body): AppJson<ChatBody>,
) -> Result<Json<ChatReply>, ApiError> {
    let request = turn_request(body, &identity, &limits, &headers)?;
    Ok(Json(pipeline.respond(request, &mut WholeReply).await?))
}

/// One customer turn, streamed as server-sent events: `meta`, `delta`s, then `done` (the
/// reply of `POST /v1/chat`) or `error` (`{"error": {...}}`).
#[utoipa::path(
    post, path = "/v1/chat/stream", tag = "chat",
    request_body = ChatBody,
    params(("X-Teller-Identity" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "A signed-in customer's identity token, minted by the bank's server")),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream", body = SseEvent),
        (status = 401, description = "`invalid_conversation_token`, `invalid_identity_token`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`conversation_too_long`, `turn_conflict`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`message_empty`, `message_too_long`, `invalid_request`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`, `retrieval_unavailable`, `overloaded`", body = ErrorBody),
    )
)]
pub async fn chat_stream(
    State(pipeline): State<Pipeline>,
    State(identity): State<Identity>,
    State(limits): State<RateLimits>,
    headers: HeaderMap,
    AppJson(body): AppJson<ChatBody>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let request = turn_request(body, &identity, &limits, &headers)?;
    // Authorisation problems are plain HTTP errors, before the stream starts.
    if let Some((id, token)) = &request.conversation {
        pipeline.authorise(*id, token).await?;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    // The turn runs in its own task; dropping the response (client gone) closes the
    // channel, which stops generation at the next token.
    // In the request's span, so the turn's spans join the request's trace.
    let turn = tokio::spawn(
        async move { pipeline.respond(request, &mut Streamed(tx)).await }.instrument(tracing::Span::current()),
    );
    let stream = futures::stream::unfold(Some((rx, turn)), |state| async move {
        let (mut rx, turn) = state?;
        match rx.recv().await {
            Some(event) => Some((Ok(sse_event(event)), Some((rx, turn)))),
            // The pipeline dropped its sender: the turn is over (and recorded).
            None => Some((Ok(final_event(turn.await)), None)),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A turn's request: the body parsed, the identity header verified, and the turn counted
/// against its conversation's rate limit.
fn turn_request(
    body: ChatBody,
    identity: &Identity,
    limits: &RateLimits,
    headers: &HeaderMap,
) -> Result<ChatRequest, ApiError> {
    let customer = identity.customer(headers)?;
    let mut request = body.parse(customer)?;
    request.request_id = crate::telemetry::RequestId::from_headers(headers);
    if let Some((id, _)) = &request.conversation {
        limits.check_conversation(*id)?;
    }
    Ok(request)
}

fn sse_event(event: StreamEvent) -> Event {
    let event = match event {
        StreamEvent::Meta { conversation_id, message_id, mode, citations } => Event::default()
            .event("meta")
            .json_data(json!({ "conversation_id": conversation_id, "message_id": message_id, "mode": mode, "citations": citations })),
        StreamEvent::Delta(text) => Event::default().event("delta").json_data(json!({ "text": text })),
    };
    event.expect("events serialise")
}

fn final_event(outcome: Result<Result<ChatReply, ChatError>, tokio::task::JoinError>) -> Event {
    let event = match outcome {
        Ok(Ok(reply)) => Event::default().event("done").json_data(&reply),
        Ok(Err(error)) => Event::default().event("error").json_data(ApiError::from(error).body()),
        Err(join) => {
            tracing::error!(error = %join, "chat task failed");
            Event::default()
                .event("error")
                .json_data(ApiError::Internal(anyhow::anyhow!("chat task failed")).body())
        }
    };
    event.expect("events serialise")
}

/// A conversation's transcript, for the customer holding its token.
#[utoipa::path(
    get, path = "/v1/conversations/{id}", tag = "chat",
    params(
        ("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id (a UUID; anything else is `conversation_not_found`)"),
        ("X-Conversation-Token" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The conversation token, when not given as `Authorization: Bearer`"),
    ),
    security((), ("conversation_token" = [])),
    responses(
        (status = 200, description = "The transcript", body = Transcript),
        (status = 401, description = "`conversation_token_required`, `invalid_conversation_token`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn conversation(
    State(pipeline): State<Pipeline>,
    State(limits): State<RateLimits>,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let (id, token) = customer_conversation(&id, &headers)?;
    limits.check_conversation(id)?;
    let messages = pipeline.transcript(id, token).await?;
    Ok(Json(json!({ "conversation_id": id, "messages": messages })))
}

/// The conversation a customer route names and the token that must open it: an id that
/// is not a UUID is a conversation that does not exist.
fn customer_conversation<'h>(id: &str, headers: &'h HeaderMap) -> Result<(Uuid, &'h str), ApiError> {
    let id = super::agent::conversation_id(id)?;
    let token = conversation_token(headers).ok_or(ApiError::TokenRequired)?;
    Ok((id, token))
}

/// `Authorization: Bearer <token>` or `X-Conversation-Token: <token>`.
pub(super) fn conversation_token(headers: &HeaderMap) -> Option<&str> {
    crate::auth::bearer(headers).or_else(|| {
        headers
            .get("x-conversation-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

/// The customer asks for a person (the widget's "Talk to a person"): the conversation
/// joins the queue of colleagues and the assistant falls silent. Asking again changes
/// nothing.
#[utoipa::path(
    post, path = "/v1/conversations/{id}/handoff", tag = "chat",
    params(
        ("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id"),
        ("X-Conversation-Token" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The conversation token, when not given as `Authorization: Bearer`"),
    ),
    security((), ("conversation_token" = [])),
    responses(
        (status = 200, description = "The conversation's state: `waiting`, with the place in the queue, or `with_agent`", body = CustomerStatus),
        (status = 401, description = "`conversation_token_required`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn handoff(
    State(desk): State<Desk>,
    State(limits): State<RateLimits>,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Json<CustomerStatus>, ApiError> {
    let (id, token) = customer_conversation(&id, &headers)?;
    limits.check_conversation(id)?;
    Ok(Json(desk.request(id, token).await?))
}

/// What happens in the conversation after a reply, as server-sent events: `state`
/// (`{state, queue_position, reason}`), `agent_joined` (`{name}`), `message` (a
/// colleague's: `{id, text, created_at, name}`), `typing`. Every event has an id; a client
/// that reconnects with `Last-Event-ID` gets exactly the events it missed. Without it, the
/// stream starts at the conversation's first such event.
#[utoipa::path(
    get, path = "/v1/conversations/{id}/events", tag = "chat",
    params(
        ("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id"),
        ("X-Conversation-Token" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The conversation token, when not given as `Authorization: Bearer`"),
        ("Last-Event-ID" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The id of the last event received"),
    ),
    security((), ("conversation_token" = [])),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream", body = String),
        (status = 401, description = "`conversation_token_required`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn events(
    State(desk): State<Desk>,
    State(limits): State<RateLimits>,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let (id, token) = customer_conversation(&id, &headers)?;
    limits.check_conversation(id)?;
    let stream = desk.customer_stream(id, token, last_event_id(&headers)).await?;
    Ok(sse(stream, |mut s| async move { s.next().await.map(|e| (e, s)) }))
}
