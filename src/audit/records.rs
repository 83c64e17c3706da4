//! What the log holds: typed events on the way in (kind, actor, payload), the rows the
//! chain is verified on, and the derived conversation and message records.

use crate::conversation::{Citation, HandoffReason, Mode, Speaker};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// What happened. The text form is the `kind` column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::Display, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EventKind {
    // A customer's turn.
    MessageReceived,
    Retrieval,
    Answer,
    RiskAlert,
    ReplyCancelled,
    /// A turn that ended without its answer recorded: what the customer was shown.
    ReplyInterrupted,
    /// An answer committed after the customer was told its record had failed.
    ReplyUndelivered,
    /// Earlier turns recorded for an evaluation question that comes with history.
    HistorySeeded,
    /// A conversation row whose batch had no event of its own about it.
    ConversationOpened,
    // The path to a person (issue #14): state changes and what was said once one owns
    // the conversation.
    /// Bot → waiting: the assistant handed off, or the customer asked for a person.
    HandoffRequested,
    /// Waiting → with an agent.
    ConversationClaimed,
    /// With an agent → back to the assistant.
    ConversationReleased,
    /// Waiting or with an agent → closed, with an outcome.
    ConversationResolved,
    /// A customer message while a person owns the conversation: passed on, not answered.
    MessageRelayed,
    /// A colleague's message to the customer, with where its words came from.
    AgentMessageSent,
    /// An internal note, never shown to the customer.
    NoteAdded,
    /// A draft reply made for a colleague, never sent by itself.
    ReplySuggested,
    /// A draft the colleague did not send.
    SuggestionDiscarded,
    /// A colleague read the queue or opened its live stream.
    QueueRead,
    // What staff and operators did.
    ConversationsSearched,
    ConversationRead,
    AuditExported,
    AuditVerified,
    RetentionPurged,
    LegalHoldPlaced,
    LegalHoldReleased,
    TokenCreated,
    TokenRevoked,
    /// A staff route refused a request (no token, an invalid one, or the wrong role);
    /// rate-limited, with a count of the refusals not recorded one by one.
    StaffAccessRefused,
    /// An agent signed in to the console (a session opened with their token).
    ConsoleSignedIn,
    /// An agent signed out of the console (their session ended).
    ConsoleSignedOut,
    // The customer widget (issue #15).
    /// A customer rated an assistant reply (or changed their rating).
    FeedbackGiven,
    // Knowledge insights (issue #16).
    /// Staff read a knowledge-insights report (gaps, feedback, sources, daily counts).
    InsightsRead,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who did it. The text form is the `actor` column: `customer`, `assistant`, `system`,
/// `evaluation`, `operator` (the command line), or `staff:<token name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    Customer,
    Assistant,
    System,
    Evaluation,
    Operator,
    Staff(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Customer => f.write_str("customer"),
            Actor::Assistant => f.write_str("assistant"),
            Actor::System => f.write_str("system"),
            Actor::Evaluation => f.write_str("evaluation"),
            Actor::Operator => f.write_str("operator"),
            Actor::Staff(name) => write!(f, "staff:{name}"),
        }
    }
}

impl FromStr for Actor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "customer" => Actor::Customer,
            "assistant" => Actor::Assistant,
            "system" => Actor::System,
            "evaluation" => Actor::Evaluation,
            "operator" => Actor::Operator,
            other => match other.strip_prefix("staff:") {
                Some(name) => Actor::Staff(name.to_string()),
                None => return Err(format!("unknown actor {other:?}")),
            },
        })
    }
}

/// A payload type and the kind of event it is the payload of: events built with
/// [`NewEvent::of`] cannot pair a kind with another kind's payload.
pub trait Payload: Serialize {
    const KIND: EventKind;
}

/// An event to append; seq, time and hashes are assigned by the store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: Actor,
    pub kind: EventKind,
    pub conversation_id: Option<Uuid>,
    /// Already masked: nothing personal may reach the log.
    pub payload: serde_json::Value,
}

impl NewEvent {
    /// An event of the payload's kind.
    pub fn of<P: Payload>(actor: Actor, conversation_id: Option<Uuid>, payload: &P) -> Self {
        Self {
            actor,
            kind: P::KIND,
            conversation_id,
            payload: serde_json::to_value(payload).expect("payloads serialise"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: Uuid,
    /// SHA-256 of the conversation token ([`crate::auth::hash`]).
    pub token_hash: String,
    pub lang: String,
}

/// A message row derived from the event at `event_index` within the same batch.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub turn: i64,
    pub speaker: Speaker,
    pub content: String,
    pub mode: Option<Mode>,
    pub citations: Option<Vec<Citation>>,
    pub handoff_reason: Option<HandoffReason>,
    pub event_index: usize,
}

impl NewMessage {
    /// A message row of `content` alone: no mode, citations or handoff reason.
    pub fn text(
        id: Uuid,
        conversation_id: Uuid,
        turn: i64,
        speaker: Speaker,
        content: &str,
        event_index: usize,
    ) -> Self {
        Self {
            id,
            conversation_id,
            turn,
            speaker,
            content: content.to_string(),
            mode: None,
            citations: None,
            handoff_reason: None,
            event_index,
        }
    }
}

/// Everything one logical write records, committed together or not at all.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub conversation: Option<NewConversation>,
    pub events: Vec<NewEvent>,
    pub messages: Vec<NewMessage>,
    /// What clients are told of it, each derived from one of the batch's events.
    pub live: Vec<super::live::NewLiveEvent>,
    /// The conversation's new state, set by one of the batch's events.
    pub state: Option<super::live::StateUpdate>,
    /// What must still hold of the conversation when the batch commits (checked in its
    /// transaction, under the append lock).
    pub requires: Option<super::live::Requires>,
    /// A verified customer reference (from a signed identity token) for the conversation:
    /// set on its row unless one is already there.
    pub customer: Option<(Uuid, String)>,
}

impl EventBatch {
    /// A batch of one event.
    pub fn event(event: NewEvent) -> Self {
        Self {
            events: vec![event],
            ..Default::default()
        }
    }
}

/// An event as stored: the columns the chain hashes, exactly as written, so
/// verification checks the text itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<String>,
    /// Canonical JSON; `None` once a retention purge erased it.
    pub payload: Option<String>,
    pub payload_hash: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC of (seq, hash) under the seal key, on the last event of each commit
    /// ([`super::seal`]); not part of the hash.
    pub seal: Option<String>,
}

impl StoredEvent {
    /// The event as the API and JSON Lines exports show it: the payload as JSON rather
    /// than text.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq, "occurred_at": self.occurred_at, "actor": self.actor, "kind": self.kind,
            "conversation_id": self.conversation_id,
            "payload": self.payload.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
            "payload_hash": self.payload_hash, "prev_hash": self.prev_hash, "hash": self.hash,
        })
    }
}

/// The columns of [`StoredEvent`], in its field order.
pub(super) const EVENT_COLUMNS: &str =
    "seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash, seal";

/// A message of a conversation's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredMessage {
    pub id: String,
    pub turn: i64,
    #[serde(rename = "role")]
    pub speaker: Speaker,
    pub content: String,
    pub mode: Option<Mode>,
    /// The citations recorded with an assistant message, as they were given.
    #[schema(value_type = Option<Vec<Citation>>)]
    pub citations: Option<serde_json::Value>,
    pub handoff_reason: Option<HandoffReason>,
    pub created_at: String,
}

/// A `messages` row as the database returns it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct MessageRow {
    id: String,
    turn: i64,
    role: String,
    content: String,
    mode: Option<String>,
    citations: Option<String>,
    handoff_reason: Option<String>,
    created_at: String,
}

/// The columns of [`MessageRow`], in its field order.
pub(super) const MESSAGE_COLUMNS: &str = "id, turn, role, content, mode, citations, handoff_reason, created_at";

impl TryFrom<MessageRow> for StoredMessage {
    type Error = super::AuditError;

    fn try_from(row: MessageRow) -> Result<Self, Self::Error> {
        let invalid =
            |what: &str, value: &str| super::AuditError::InvalidRecord(format!("message {}: {what} {value:?}", row.id));
        Ok(Self {
            speaker: row.role.parse().map_err(|_| invalid("role", &row.role))?,
            mode: row
                .mode
                .as_deref()
                .map(|m| m.parse().map_err(|_| invalid("mode", m)))
                .transpose()?,
            handoff_reason: row
                .handoff_reason
                .as_deref()
                .map(|r| r.parse().map_err(|_| invalid("handoff reason", r)))
                .transpose()?,
            citations: row.citations.as_deref().and_then(|c| serde_json::from_str(c).ok()),
            id: row.id,
            turn: row.turn,
            content: row.content,
            created_at: row.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_and_kinds_read_back_from_their_text() {
        for actor in [Actor::Customer, Actor::Operator, Actor::Staff("carol".into())] {
            assert_eq!(actor.to_string().parse::<Actor>().unwrap(), actor);
        }
        assert_eq!(Actor::Staff("carol".into()).to_string(), "staff:carol");
        assert_eq!(EventKind::MessageReceived.as_str(), "message_received");
        assert_eq!(
            "legal_hold_placed".parse::<EventKind>().unwrap(),
            EventKind::LegalHoldPlaced
        );
    }
}
