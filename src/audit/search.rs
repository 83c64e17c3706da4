//! Reading conversations back: a customer's transcript, and the compliance search over
//! conversations with every event of one.

use super::records::{EventKind, MessageRow, Payload, StoredEvent, StoredMessage, EVENT_COLUMNS, MESSAGE_COLUMNS};
use super::store::{AuditError, AuditStore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One row of the conversation search.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConversationSummary {
    pub id: String,
    pub lang: String,
    pub created_at: String,
    pub turns: i64,
    pub last_mode: Option<String>,
    pub handoff_reason: Option<String>,
    /// Risk alerts raised in the conversation.
    pub risk_alerts: i64,
    /// Whether the conversation is under legal hold (read as a count of its holds: 0 or 1).
    #[serde(serialize_with = "nonzero")]
    #[schema(value_type = bool)]
    pub legal_hold: i64,
}

fn nonzero<S: serde::Serializer>(count: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(*count > 0)
}

/// Filters of the conversation search (all optional); recorded, but for the page size,
/// as the payload of the search's audit event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub from: Option<String>,
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub to: Option<String>,
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub mode: Option<String>,
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub handoff_reason: Option<String>,
    /// Text searched in the (masked) messages.
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub q: Option<String>,
    /// `true`: only conversations with a risk alert; `false`: only those without.
    pub risk_alert: Option<bool>,
    /// Only conversations with an answer currently rated so.
    #[param(value_type = Option<super::Rating>)]
    pub feedback: Option<super::Rating>,
    pub page: Option<i64>,
    #[serde(skip_serializing)]
    pub per_page: Option<i64>,
}

impl Payload for ConversationQuery {
    const KIND: EventKind = EventKind::ConversationsSearched;
}

/// One of a signed-in customer's recent conversations, as the widget lists them.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CustomerConversation {
    pub conversation_id: String,
    pub created_at: String,
    pub lang: String,
    /// `bot`, `waiting`, `with_agent` or `closed`.
    pub state: String,
    /// The customer's first message, masked as recorded.
    pub first_message: Option<String>,
}

impl AuditStore {
    /// The most recent conversations recorded for a verified customer, newest first.
    pub async fn customer_conversations(
        &self,
        customer_ref: &str,
        limit: i64,
    ) -> Result<Vec<CustomerConversation>, AuditError> {
        let rows = sqlx::query_as(
            "SELECT c.id AS conversation_id, c.created_at, c.lang, c.state, \
             (SELECT m.content FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user' \
              ORDER BY m.event_seq LIMIT 1) AS first_message \
             FROM conversations c WHERE c.customer_ref = $1 ORDER BY c.created_at DESC, c.id DESC LIMIT $2",
        )
        .bind(customer_ref)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Whether the conversation is recorded.
    pub async fn conversation_exists(&self, id: Uuid) -> Result<bool, AuditError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The verified customer reference recorded with a conversation.
    pub async fn conversation_customer(&self, id: Uuid) -> Result<Option<String>, AuditError> {
        let row: Option<(Option<String>,)> = sqlx::query_as("SELECT customer_ref FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|(c,)| c))
    }

    /// A conversation's messages in order (the customer-visible transcript).
    pub async fn messages(&self, conversation_id: Uuid) -> Result<Vec<StoredMessage>, AuditError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY event_seq, id");
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(conversation_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(StoredMessage::try_from).collect()
    }

    /// Conversation search for compliance, newest first.
    pub async fn search_conversations(&self, q: &ConversationQuery) -> Result<Vec<ConversationSummary>, AuditError> {
        let per_page = q.per_page.unwrap_or(50).clamp(1, 500);
        // Saturating: a page number near i64::MAX is an empty page, not an overflow.
        let offset = (q.page.unwrap_or(1).max(1) - 1).saturating_mul(per_page);
        let like =
            q.q.as_ref()
                .map(|t| format!("%{}%", t.to_lowercase().replace('%', "\\%").replace('_', "\\_")));
        Ok(sqlx::query_as(
            "SELECT c.id, c.lang, c.created_at, \
                (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user') AS turns, \
                (SELECT m.mode FROM messages m WHERE m.conversation_id = c.id AND m.role = 'assistant' ORDER BY m.turn DESC LIMIT 1) AS last_mode, \
                (SELECT m.handoff_reason FROM messages m WHERE m.conversation_id = c.id AND m.handoff_reason IS NOT NULL ORDER BY m.turn DESC LIMIT 1) AS handoff_reason, \
                (SELECT COUNT(*) FROM audit_events e WHERE e.conversation_id = c.id AND e.kind = 'risk_alert') AS risk_alerts, \
                (SELECT COUNT(*) FROM legal_holds h WHERE h.conversation_id = c.id) AS legal_hold \
             FROM conversations c \
             WHERE ($1 IS NULL OR c.created_at >= $1) AND ($2 IS NULL OR c.created_at < $2) \
               AND ($3 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.mode = $3)) \
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.handoff_reason = $4)) \
               AND ($5 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND LOWER(m.content) LIKE $5 ESCAPE '\\')) \
               AND ($8 IS NULL OR $8 = (CASE WHEN EXISTS (SELECT 1 FROM audit_events e WHERE e.conversation_id = c.id AND e.kind = 'risk_alert') THEN 1 ELSE 0 END)) \
               AND ($9 IS NULL OR EXISTS (SELECT 1 FROM feedback f WHERE f.conversation_id = c.id AND f.rating = $9)) \
             ORDER BY c.created_at DESC, c.id LIMIT $6 OFFSET $7",
        )
        .bind(q.from.clone())
        .bind(q.to.clone())
        .bind(q.mode.clone())
        .bind(q.handoff_reason.clone())
        .bind(like)
        .bind(per_page)
        .bind(offset)
        .bind(q.risk_alert.map(i64::from))
        .bind(q.feedback.map(|r| r.to_string()))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every event of one conversation (turns, retrievals, answers), in order.
    pub async fn conversation_events(&self, conversation_id: Uuid) -> Result<Vec<StoredEvent>, AuditError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE conversation_id = $1 ORDER BY seq");
        Ok(sqlx::query_as(&sql)
            .bind(conversation_id.to_string())
            .fetch_all(&self.pool)
            .await?)
    }
}
