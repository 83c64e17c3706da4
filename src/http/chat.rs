//! `POST /v1/chat`, `POST /v1/chat/stream`, `GET /v1/conversations/{id}`: thin adapters
//! over the pipeline.

use super::error::ApiError;
use super::extract::AppJson;
use super::{AppState, HttpLimits};
use crate::chat::{ChatError, ChatReply, ChatRequest, Pipeline, StreamEvent, Streamed, UserMessage, WholeReply};
use crate::lang::Lang;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, State};
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

#[derive(Debug, Deserialize)]
pub struct ChatBody {
    conversation_id: Option<Uuid>,
    conversation_token: Option<String>,
    message: String,
    lang: Option<String>,
}

impl ChatBody {
    fn parse(self) -> Result<ChatRequest, ApiError> {
        let message = UserMessage::parse(&self.message)?;
        let lang = self
            .lang
            .map(|l| l.parse::<Lang>().map_err(|e| ApiError::InvalidRequest(e.to_string())))
            .transpose()?;
        let conversation = match (self.conversation_id, self.conversation_token) {
            (Some(id), Some(token)) => Some((id, token)),
            (Some(_), None) => return Err(ChatError::InvalidConversationToken.into()),
            (None, Some(_)) => {
                return Err(ApiError::InvalidRequest(
                    "conversation_token was given without conversation_id".into(),
                ))
            }
            (None, None) => None,
        };
        Ok(ChatRequest {
            conversation,
            message,
            lang,
        })
    }
}

async fn chat(State(pipeline): State<Pipeline>, AppJson(body): AppJson<ChatBody>) -> Result<Json<ChatReply>, ApiError> {
    let request = body.parse()?;
    Ok(Json(pipeline.respond(request, &mut WholeReply).await?))
}

async fn chat_stream(
    State(pipeline): State<Pipeline>,
    AppJson(body): AppJson<ChatBody>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let request = body.parse()?;
    // Authorisation problems are plain HTTP errors, before the stream starts.
    if let Some((id, token)) = &request.conversation {
        pipeline.authorise(*id, token).await?;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    // The turn runs in its own task; dropping the response (client gone) closes the
    // channel, which stops generation at the next token.
    let turn = tokio::spawn(async move { pipeline.respond(request, &mut Streamed(tx)).await });
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

async fn conversation(
    State(pipeline): State<Pipeline>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::Chat(ChatError::ConversationNotFound))?;
    let token = conversation_token(&headers).ok_or(ApiError::TokenRequired)?;
    let messages = pipeline.transcript(id, token).await?;
    Ok(Json(json!({ "conversation_id": id, "messages": messages })))
}

/// `Authorization: Bearer <token>` or `X-Conversation-Token: <token>`.
fn conversation_token(headers: &HeaderMap) -> Option<&str> {
    crate::auth::bearer(headers).or_else(|| {
        headers
            .get("x-conversation-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}
