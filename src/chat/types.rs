//! Request and reply types of the chat pipeline, parsed at the edge.

use crate::conversation::{Citation, ConversationState, Handoff, Mode};
use crate::lang::Lang;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest customer message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// A customer message that is known to be non-empty and within bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage(String);

impl UserMessage {
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ChatError::EmptyMessage);
        }
        // Counted as sent, as the API's schema states the limit (`maxLength`).
        let chars = raw.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(ChatError::MessageTooLong { chars });
        }
        // Control characters other than newlines and tabs have no place in a chat message.
        let cleaned: String = trimmed
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .collect();
        Ok(Self(cleaned))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One customer turn.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// Continue this conversation; requires its token.
    pub conversation: Option<(Uuid, String)>,
    pub message: UserMessage,
    pub lang: Option<Lang>,
    /// The signed-in customer, verified from the bank's identity token; recorded with the
    /// conversation.
    pub customer: Option<crate::identity::CustomerRef>,
    /// The HTTP request's id (from the load balancer, or made at the edge): on the turn's
    /// span and in its record.
    pub request_id: Option<crate::telemetry::RequestId>,
}

/// The reply object of `POST /v1/chat` and of the SSE `done` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatReply {
    pub conversation_id: Uuid,
    pub conversation_token: String,
    pub message_id: Uuid,
    pub answer: String,
    pub mode: Mode,
    pub citations: Vec<Citation>,
    pub handoff: Option<Handoff>,
    /// Who answers the conversation now: `bot`, or, after a handoff, `waiting` for a
    /// colleague, `with_agent`; `relayed` replies are only ever in those two.
    pub state: ConversationState,
    /// 1-based place in the queue of colleagues, while `waiting`.
    pub queue_position: Option<usize>,
}

/// Everything that can stop a turn, each with a stable code for the API.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message has {chars} characters; the limit is {MAX_MESSAGE_CHARS}")]
    MessageTooLong { chars: usize },
    #[error("conversation not found")]
    ConversationNotFound,
    #[error("a valid conversation token is required to continue or read this conversation")]
    InvalidConversationToken,
    #[error("the conversation has reached its limit of {0} turns; please start a new one")]
    ConversationTooLong(usize),
    /// Another message of the conversation, sent at the same time, was recorded with this
    /// turn's number first; this one was not answered.
    #[error("another message in this conversation is being answered; send yours again")]
    TurnConflict,
    /// The record could not be committed, so no answer may be given.
    #[error("audit store unavailable")]
    AuditUnavailable(#[source] crate::audit::AuditError),
    #[error("knowledge base unavailable")]
    RetrievalUnavailable(#[source] anyhow::Error),
    #[error("the request took too long")]
    Deadline,
    #[error("the client went away")]
    Cancelled,
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::EmptyMessage => "message_empty",
            ChatError::MessageTooLong { .. } => "message_too_long",
            ChatError::ConversationNotFound => "conversation_not_found",
            ChatError::InvalidConversationToken => "invalid_conversation_token",
            ChatError::ConversationTooLong(_) => "conversation_too_long",
            ChatError::TurnConflict => "turn_conflict",
            ChatError::AuditUnavailable(_) => "audit_unavailable",
            ChatError::RetrievalUnavailable(_) => "retrieval_unavailable",
            ChatError::Deadline => "deadline_exceeded",
            ChatError::Cancelled => "client_closed_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_validated() {
        assert!(matches!(UserMessage::parse("  \n"), Err(ChatError::EmptyMessage)));
        assert!(matches!(
            UserMessage::parse(&"费".repeat(2_001)),
            Err(ChatError::MessageTooLong { chars: 2_001 })
        ));
        assert_eq!(
            UserMessage::parse(&"费".repeat(2_000))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            2_000
        );
        assert_eq!(UserMessage::parse(" hi\u{0007} there ").unwrap().as_str(), "hi there");
    }

    #[test]
    fn modes_serialise_in_snake_case() {
        assert_eq!(serde_json::to_string(&Mode::Extractive).unwrap(), "\"extractive\"");
    }
}
