//! Customers' ratings of assistant replies (the widget's thumbs up and down): every rating
//! or change of one is a `feedback_given` event; the `feedback` table keeps the current
//! rating of each message, written in the same transaction as its event.

use super::records::{Actor, EventBatch, EventKind, NewEvent, Payload};
use super::store::{now, AuditError, AuditStore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Thumbs up or down.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Rating {
    Up,
    Down,
}

/// The `feedback_given` event: the rating, the comment already masked, and the rating it
/// replaces (a customer may change their mind; each change is recorded).
#[derive(Serialize)]
struct FeedbackGiven<'a> {
    message_id: Uuid,
    rating: Rating,
    comment: Option<&'a str>,
    previous: Option<Rating>,
}

impl Payload for FeedbackGiven<'_> {
    const KIND: EventKind = EventKind::FeedbackGiven;
}

/// The current rating of one assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredFeedback {
    pub message_id: String,
    pub rating: Rating,
    /// Masked as recorded.
    pub comment: Option<String>,
    /// When this rating was given (RFC 3339 UTC).
    pub created_at: String,
    /// The `feedback_given` event that set it.
    pub event_seq: i64,
}

/// What recording a rating did.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRecorded {
    pub rating: Rating,
    pub previous: Option<Rating>,
    pub event_seq: i64,
}

impl AuditStore {
    /// Records `rating` (and the masked `comment`) for the assistant message `message_id`
    /// of conversation `conversation_id`: the event, then the current row, in one
    /// transaction. [`AuditError::NotFound`] when the message is not an assistant message
    /// of that conversation.
    pub async fn record_feedback(
        &self,
        conversation_id: Uuid,
        message_id: Uuid,
        rating: Rating,
        comment: Option<&str>,
    ) -> Result<FeedbackRecorded, AuditError> {
        let _local = self.exclusive().await;
        let mut tx = self.begin_append().await?;
        let written = async {
            let role: Option<(String,)> =
                sqlx::query_as("SELECT role FROM messages WHERE id = $1 AND conversation_id = $2")
                    .bind(message_id.to_string())
                    .bind(conversation_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if !matches!(role, Some((ref r,)) if r == "assistant") {
                return Err(AuditError::NotFound);
            }
            let previous: Option<(String,)> = sqlx::query_as("SELECT rating FROM feedback WHERE message_id = $1")
                .bind(message_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            let previous = previous.and_then(|(r,)| r.parse::<Rating>().ok());
            let event = FeedbackGiven {
                message_id,
                rating,
                comment,
                previous,
            };
            let batch = EventBatch::event(NewEvent::of(Actor::Customer, Some(conversation_id), &event));
            let seq = self.append_in(&mut tx, batch).await?[0];
            sqlx::query(
                "INSERT INTO feedback (message_id, conversation_id, rating, comment, created_at, event_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (message_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment, \
                 created_at = excluded.created_at, event_seq = excluded.event_seq",
            )
            .bind(message_id.to_string())
            .bind(conversation_id.to_string())
            .bind(<&str>::from(rating))
            .bind(comment)
            .bind(now())
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            Ok(FeedbackRecorded {
                rating,
                previous,
                event_seq: seq,
            })
        }
        .await;
        self.finish(tx, written).await
    }

    /// The current ratings in a conversation, in the order they were last given.
    pub async fn feedback(&self, conversation_id: Uuid) -> Result<Vec<StoredFeedback>, AuditError> {
        let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT message_id, rating, comment, created_at, event_seq FROM feedback \
             WHERE conversation_id = $1 ORDER BY event_seq",
        )
        .bind(conversation_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(message_id, rating, comment, created_at, event_seq)| {
                Ok(StoredFeedback {
                    rating: rating
                        .parse()
                        .map_err(|_| AuditError::InvalidRecord(format!("feedback {message_id}: rating {rating:?}")))?,
                    message_id,
                    comment,
                    created_at,
                    event_seq,
                })
            })
            .collect()
    }
}
