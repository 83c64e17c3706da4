//! What the widget needs besides chat turns: feedback on an assistant reply, and a
//! signed-in customer's recent conversations.

use super::chat::conversation_token;
use super::error::ApiError;
use super::extract::{AppJson, AppPath};
use super::guard::plain_text;
use super::openapi::ErrorBody;
use super::ratelimit::RateLimits;
use super::AppState;
use crate::audit::{AuditError, AuditStore, CustomerConversation, Rating};
use crate::chat::{ChatError, Pipeline};
use crate::identity::{CustomerRef, IdentityVerifier};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// Longest feedback comment accepted, in characters.
pub const MAX_COMMENT_CHARS: usize = 1_000;

/// Recent conversations listed for a signed-in customer.
const RECENT_CONVERSATIONS: i64 = 10;

/// The identity verifier, when `TELLER_IDENTITY_SECRET` is set.
#[derive(Clone, Debug, Default)]
pub struct Identity(pub Option<IdentityVerifier>);

impl Identity {
    /// The verified customer of a request: `None` without `X-Teller-Identity`; refused
    /// when the token does not verify, or when no secret is configured to verify it with.
    pub fn customer(&self, headers: &HeaderMap) -> Result<Option<CustomerRef>, ApiError> {
        let Some(value) = headers.get(crate::identity::HEADER) else {
            return Ok(None);
        };
        let token = value
            .to_str()
            .map_err(|_| ApiError::InvalidIdentity(crate::identity::IdentityError::Malformed))?;
        if token.trim().is_empty() {
            return Ok(None);
        }
        let verifier = self
            .0
            .as_ref()
            .ok_or(ApiError::InvalidIdentity(crate::identity::IdentityError::NotConfigured))?;
        let verified = verifier.verify(token);
        if let Err(why) = &verified {
            tracing::info!(reason = %why, "identity token refused");
        }
        Ok(Some(verified?))
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/conversations/{id}/messages/{message_id}/feedback", post(feedback))
        .route("/v1/customer/conversations", get(customer_conversations))
}

/// A rating of one assistant reply, with an optional comment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    rating: Rating,
    /// At most 1,000 characters; personal data in it is masked before it is recorded.
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    comment: Option<String>,
}

/// The rating as recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedbackReply {
    conversation_id: Uuid,
    message_id: Uuid,
    rating: Rating,
    /// The rating this one replaced, if the customer changed their mind.
    previous: Option<Rating>,
    /// The comment as recorded (masked).
    comment: Option<String>,
}

/// The customer rates an assistant reply (thumbs up or down, optionally a comment): one
/// current rating per message, changeable; each rating is a `feedback_given` audit event.
#[utoipa::path(
    post, path = "/v1/conversations/{id}/messages/{message_id}/feedback", tag = "chat",
    params(
        ("id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The conversation id"),
        ("message_id" = String, Path, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$", description = "The assistant message's id (`message_id` of the reply)"),
        ("X-Conversation-Token" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The conversation token, when not given as `Authorization: Bearer`"),
    ),
    request_body = FeedbackBody,
    security((), ("conversation_token" = [])),
    responses(
        (status = 200, description = "The rating, recorded", body = FeedbackReply),
        (status = 401, description = "`conversation_token_required`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`, `message_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_request`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn feedback(
    State(pipeline): State<Pipeline>,
    State(audit): State<Arc<AuditStore>>,
    State(limits): State<RateLimits>,
    AppPath((id, message_id)): AppPath<(String, String)>,
    headers: HeaderMap,
    AppJson(body): AppJson<FeedbackBody>,
) -> Result<Json<FeedbackReply>, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ChatError::ConversationNotFound)?;
    let token = conversation_token(&headers).ok_or(ApiError::TokenRequired)?;
    limits.check_conversation(id)?;
    let comment = match body.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) => {
            plain_text(comment).map_err(|why| ApiError::InvalidText(format!("comment {why}")))?;
            let chars = comment.chars().count();
            if chars > MAX_COMMENT_CHARS {
                return Err(ApiError::InvalidRequest(format!(
                    "the comment has {chars} characters; the limit is {MAX_COMMENT_CHARS}"
                )));
            }
            Some(pipeline.mask(comment))
        }
        None => None,
    };
    pipeline.authorise(id, token).await?;
    let message_id: Uuid = message_id.parse().map_err(|_| ApiError::MessageNotFound)?;
    let recorded = audit
        .record_feedback(id, message_id, body.rating, comment.as_deref())
        .await
        .map_err(|e| match e {
            AuditError::NotFound => ApiError::MessageNotFound,
            other => other.into(),
        })?;
    metrics::counter!("teller_feedback_total", "rating" => <&'static str>::from(recorded.rating)).increment(1);
    Ok(Json(FeedbackReply {
        conversation_id: id,
        message_id,
        rating: recorded.rating,
        previous: recorded.previous,
        comment,
    }))
}

/// A signed-in customer's recent conversations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerConversations {
    conversations: Vec<CustomerConversation>,
}

/// The signed-in customer's most recent conversations (at most 10, newest first), for the
/// widget's list; the customer is the one the `X-Teller-Identity` token vouches for.
#[utoipa::path(
    get, path = "/v1/customer/conversations", tag = "chat",
    params(
        ("X-Teller-Identity" = String, Header, pattern = r"^[\x20-\x7E]*$", description = "An identity token minted by the bank's server"),
    ),
    responses(
        (status = 200, description = "The conversations", body = CustomerConversations),
        (status = 401, description = "`identity_required`, `invalid_identity_token`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn customer_conversations(
    State(audit): State<Arc<AuditStore>>,
    State(identity): State<Identity>,
    headers: HeaderMap,
) -> Result<Json<CustomerConversations>, ApiError> {
    let customer = identity.customer(&headers)?.ok_or(ApiError::IdentityRequired)?;
    let conversations = audit
        .customer_conversations(customer.as_str(), RECENT_CONVERSATIONS)
        .await?;
    Ok(Json(CustomerConversations { conversations }))
}
