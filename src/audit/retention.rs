//! Retention: erasing old conversation content in the open, and the legal holds that
//! exempt a conversation from it. Each change is recorded in the same transaction.

use super::records::{Actor, EventBatch, EventKind, NewEvent, Payload};
use super::store::{now, AuditError, AuditStore};
use serde::Serialize;

/// What a retention purge did (also the payload of its event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgeReport {
    pub before: String,
    pub events_erased: u64,
    pub messages_deleted: u64,
    pub conversations_held: i64,
}

impl Payload for PurgeReport {
    const KIND: EventKind = EventKind::RetentionPurged;
}

#[derive(Serialize)]
struct HoldPlaced<'a> {
    conversation_id: &'a str,
    reason: &'a str,
}

impl Payload for HoldPlaced<'_> {
    const KIND: EventKind = EventKind::LegalHoldPlaced;
}

#[derive(Serialize)]
struct HoldReleased<'a> {
    conversation_id: &'a str,
}

impl Payload for HoldReleased<'_> {
    const KIND: EventKind = EventKind::LegalHoldReleased;
}

impl AuditStore {
    /// Erases conversation content that occurred before `before` (RFC 3339 UTC), except
    /// conversations under legal hold. Event payloads are set to NULL — their hashes stay,
    /// so the chain still verifies — and message rows are deleted.
    pub async fn purge(&self, before: &str, actor: Actor) -> Result<PurgeReport, AuditError> {
        self.write_with_record(async |tx| {
            let erased = sqlx::query(
                "UPDATE audit_events SET payload = NULL WHERE occurred_at < $1 AND payload IS NOT NULL \
                 AND conversation_id IS NOT NULL AND conversation_id NOT IN (SELECT conversation_id FROM legal_holds)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let deleted = sqlx::query(
                "DELETE FROM messages WHERE created_at < $1 AND conversation_id NOT IN (SELECT conversation_id FROM legal_holds)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM legal_holds")
                .fetch_one(&mut *tx)
                .await?;
            let report = PurgeReport {
                before: before.to_string(),
                events_erased: erased,
                messages_deleted: deleted,
                conversations_held: held,
            };
            let event = NewEvent::of(actor, None, &report);
            Ok((report, EventBatch::event(event)))
        })
        .await
    }

    /// Puts a conversation under legal hold: purges skip it until the hold is released.
    pub async fn hold(&self, conversation_id: &str, reason: &str, actor: Actor) -> Result<(), AuditError> {
        self.write_with_record(async |tx| {
            sqlx::query("INSERT INTO legal_holds (conversation_id, reason, created_at) VALUES ($1, $2, $3)")
                .bind(conversation_id)
                .bind(reason)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    AuditError::on_unique(e, || format!("conversation {conversation_id} is already on legal hold"))
                })?;
            let placed = HoldPlaced {
                conversation_id,
                reason,
            };
            Ok(((), EventBatch::event(NewEvent::of(actor, None, &placed))))
        })
        .await
    }

    /// Releases a legal hold; false when there was none.
    pub async fn release_hold(&self, conversation_id: &str, actor: Actor) -> Result<bool, AuditError> {
        self.write_with_record(async |tx| {
            let done = sqlx::query("DELETE FROM legal_holds WHERE conversation_id = $1")
                .bind(conversation_id)
                .execute(&mut *tx)
                .await?;
            let released = done.rows_affected() > 0;
            let batch = if released {
                EventBatch::event(NewEvent::of(actor, None, &HoldReleased { conversation_id }))
            } else {
                EventBatch::default()
            };
            Ok((released, batch))
        })
        .await
    }
}
