//! Retention: erasing old conversation content in the open, and the legal holds that
//! exempt a conversation from it. Each change is recorded in the same transaction.

use super::append::numbered_for;
use super::records::{Actor, EventBatch, EventKind, NewEvent, Payload};
use super::store::{now, AuditError, AuditStore};
use serde::Serialize;
use sqlx::{Any, AnyConnection, Execute, QueryBuilder};

/// What a retention purge did (also the payload of its event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgeReport {
    pub before: String,
    pub events_erased: u64,
    pub messages_deleted: u64,
    pub conversations_held: i64,
    /// The seqs whose payloads it erased, as inclusive ranges. The event naming them is
    /// written before any payload is erased, and only seqs it names can be (the table's
    /// trigger checks; `verify` checks every erased payload against these events).
    pub erased_seqs: Vec<(i64, i64)>,
}

impl Payload for PurgeReport {
    const KIND: EventKind = EventKind::RetentionPurged;
}

/// What a purge may erase: old conversation content not under legal hold.
const ERASABLE_EVENTS: &str = "occurred_at < $1 AND payload IS NOT NULL AND conversation_id IS NOT NULL \
     AND conversation_id NOT IN (SELECT conversation_id FROM legal_holds)";
const ERASABLE_MESSAGES: &str = "created_at < $1 AND conversation_id NOT IN (SELECT conversation_id FROM legal_holds)";

/// Ranges per INSERT into `audit_purges`.
const RANGES_PER_INSERT: usize = 300;

/// Sorted seqs as inclusive ranges of consecutive seqs.
fn ranges(seqs: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for seq in seqs {
        match out.last_mut() {
            Some((_, to)) if *to + 1 == seq => *to = seq,
            _ => out.push((seq, seq)),
        }
    }
    out
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

/// A conversation's legal hold: why, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LegalHold {
    pub reason: String,
    pub created_at: String,
}

impl AuditStore {
    /// Erases conversation content that occurred before `before` (RFC 3339 UTC), except
    /// conversations under legal hold, in one transaction: first the purge's event, naming
    /// every seq it erases, then the erasure. Event payloads are set to NULL — their hashes
    /// stay, so the chain still verifies — and message rows are deleted.
    pub async fn purge(&self, before: &str, actor: Actor) -> Result<PurgeReport, AuditError> {
        let _local = self.exclusive().await;
        let mut tx = self.begin_append().await?;
        let purged = self.purge_in(&mut tx, before, actor).await;
        self.finish(tx, purged).await
    }

    async fn purge_in(&self, tx: &mut AnyConnection, before: &str, actor: Actor) -> Result<PurgeReport, AuditError> {
        let seqs: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT seq FROM audit_events WHERE {ERASABLE_EVENTS} ORDER BY seq"
        ))
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let (messages,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM messages WHERE {ERASABLE_MESSAGES}"))
            .bind(before)
            .fetch_one(&mut *tx)
            .await?;
        let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM legal_holds")
            .fetch_one(&mut *tx)
            .await?;
        let report = PurgeReport {
            before: before.to_string(),
            events_erased: seqs.len() as u64,
            messages_deleted: messages as u64,
            conversations_held: held,
            erased_seqs: ranges(seqs.iter().map(|(seq,)| *seq)),
        };
        let purge_seq = self
            .append_in(&mut *tx, EventBatch::event(NewEvent::of(actor, None, &report)))
            .await?[0];
        for chunk in report.erased_seqs.chunks(RANGES_PER_INSERT) {
            let mut qb = QueryBuilder::<Any>::new("INSERT INTO audit_purges (from_seq, to_seq, purge_seq) ");
            qb.push_values(chunk, |mut row, (from, to)| {
                row.push_bind(*from).push_bind(*to).push_bind(purge_seq);
            });
            let sql = numbered_for(self.kind, qb.sql());
            let arguments = qb
                .build()
                .take_arguments()
                .map_err(sqlx::Error::Encode)?
                .unwrap_or_default();
            sqlx::query_with(&sql, arguments).execute(&mut *tx).await?;
        }
        let erased = sqlx::query(&format!(
            "UPDATE audit_events SET payload = NULL WHERE {ERASABLE_EVENTS} AND seq < $2"
        ))
        .bind(before)
        .bind(purge_seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deleted = sqlx::query(&format!("DELETE FROM messages WHERE {ERASABLE_MESSAGES}"))
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // What clients were told live (message texts, notes), drafts and ratings (their
        // comments) go with them.
        for table in ["live_events", "suggestions", "feedback"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE {ERASABLE_MESSAGES}"))
                .bind(before)
                .execute(&mut *tx)
                .await?;
        }
        if (erased, deleted) != (report.events_erased, report.messages_deleted) {
            // The append lock holds every other writer off, so this cannot happen; if it
            // did, the event would misstate the purge: roll it all back.
            return Err(AuditError::InvalidRecord(format!(
                "purge erased {erased} events and {deleted} messages, but named {} and {}",
                report.events_erased, report.messages_deleted
            )));
        }
        Ok(report)
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

    /// The legal hold on a conversation, if there is one.
    pub async fn legal_hold(&self, conversation_id: &str) -> Result<Option<LegalHold>, AuditError> {
        Ok(
            sqlx::query_as("SELECT reason, created_at FROM legal_holds WHERE conversation_id = $1")
                .bind(conversation_id)
                .fetch_optional(&self.pool)
                .await?,
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_named_as_ranges_of_consecutive_seqs() {
        assert_eq!(ranges([1, 2, 3, 5, 7, 8]), [(1, 3), (5, 5), (7, 8)]);
        assert!(ranges([]).is_empty());
    }
}
