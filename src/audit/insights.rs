//! What the knowledge-gap report reads from the record: the questions refused for missing
//! knowledge or handed over (with what retrieval found for them), the answers rated down,
//! the sources answers cited, and the day-by-day counts. Read-only; the report itself is
//! computed in [`crate::insights`].

use super::records::{EventKind, Payload};
use super::store::{AuditError, AuditStore};
use super::Timestamp;
use serde::Serialize;

/// A customer question whose turn ended in a refusal for missing knowledge or a handoff.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GapQuestion {
    pub conversation_id: String,
    pub turn: i64,
    /// The question as recorded (masked).
    pub question: String,
    /// `refusal` or `handoff`.
    pub mode: String,
    pub handoff_reason: Option<String>,
    pub created_at: String,
    /// The turn's `retrieval` payload (canonical JSON), if it has one.
    pub retrieval: Option<String>,
}

/// An answer whose current rating is "not helpful".
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RatedDown {
    pub message_id: String,
    pub conversation_id: String,
    /// The citations recorded with the answer (JSON).
    pub citations: Option<String>,
    /// The customer's comment, masked.
    pub comment: Option<String>,
    /// The question the answer replied to (masked).
    pub question: Option<String>,
    pub created_at: String,
}

/// How many events of a kind-specific label fell on one day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub label: String,
    pub count: i64,
}

/// The payload of a staff read of the insights (`insights_read`): which report, which period.
#[derive(Debug, Clone, Serialize)]
pub struct InsightsRead {
    pub report: &'static str,
    pub from: String,
    pub to: String,
}

impl Payload for InsightsRead {
    const KIND: EventKind = EventKind::InsightsRead;
}

impl AuditStore {
    /// The questions of the period whose turn was refused for missing knowledge or handed
    /// over, oldest first. A handoff that only accepts the offer of a colleague made by a
    /// refusal in the turn before is left out: its question is that refusal's.
    pub async fn gap_questions(&self, from: &Timestamp, to: &Timestamp) -> Result<Vec<GapQuestion>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT a.conversation_id, a.turn, u.content AS question, a.mode, a.handoff_reason, a.created_at, \
                (SELECT e.payload FROM audit_events e WHERE e.conversation_id = a.conversation_id \
                   AND e.kind = 'retrieval' AND e.seq > u.event_seq AND e.seq < a.event_seq \
                   ORDER BY e.seq DESC LIMIT 1) AS retrieval \
             FROM messages a \
             JOIN messages u ON u.conversation_id = a.conversation_id AND u.turn = a.turn AND u.role = 'user' \
             WHERE a.role = 'assistant' AND a.created_at >= $1 AND a.created_at < $2 \
               AND ((a.mode = 'refusal' AND a.handoff_reason = 'missing_knowledge') \
                 OR (a.mode = 'handoff' AND NOT EXISTS (SELECT 1 FROM messages p \
                      WHERE p.conversation_id = a.conversation_id AND p.turn = a.turn - 1 \
                        AND p.role = 'assistant' AND p.mode = 'refusal'))) \
             ORDER BY a.created_at, a.conversation_id, a.turn",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Answers rated "not helpful" in the period (by when the rating was given).
    pub async fn rated_down(&self, from: &Timestamp, to: &Timestamp) -> Result<Vec<RatedDown>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT f.message_id, f.conversation_id, m.citations, f.comment, f.created_at, \
                (SELECT u.content FROM messages u WHERE u.conversation_id = m.conversation_id \
                   AND u.turn = m.turn AND u.role = 'user' LIMIT 1) AS question \
             FROM feedback f JOIN messages m ON m.id = f.message_id \
             WHERE f.rating = 'down' AND f.created_at >= $1 AND f.created_at < $2 \
             ORDER BY f.created_at, f.message_id",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The distinct citation lists (JSON) of the period's answers: answers citing the same
    /// passages share one row, so a month of answers reads as a few thousand rows.
    pub async fn cited_lists(&self, from: &Timestamp, to: &Timestamp) -> Result<Vec<String>, AuditError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT citations FROM messages \
             WHERE role = 'assistant' AND created_at >= $1 AND created_at < $2 \
               AND citations IS NOT NULL AND citations <> '[]'",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// Assistant replies per day and mode.
    pub async fn modes_per_day(&self, from: &Timestamp, to: &Timestamp) -> Result<Vec<DayCount>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT SUBSTR(created_at, 1, 10) AS day, mode AS label, COUNT(*) AS count FROM messages \
             WHERE role = 'assistant' AND mode IS NOT NULL AND created_at >= $1 AND created_at < $2 \
             GROUP BY SUBSTR(created_at, 1, 10), mode ORDER BY day, label",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The time and payload of every event of `kind` in the period, oldest first (for the
    /// handoffs and risk alerts, counted per day by their reason).
    pub async fn kind_payloads(
        &self,
        kind: EventKind,
        from: &Timestamp,
        to: &Timestamp,
    ) -> Result<Vec<(String, Option<String>)>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT occurred_at, payload FROM audit_events \
             WHERE kind = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY seq",
        )
        .bind(kind.as_str())
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The chain at a glance: its head, and the latest recorded verification.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChainStatus {
    /// The last event's seq (0 for an empty log).
    pub head_seq: i64,
    pub last_verification: Option<LastVerification>,
    /// Events appended after the last verification's range (the whole log without one).
    pub events_since_verified: i64,
}

/// The latest `audit_verified` event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LastVerification {
    /// The verification event's own seq.
    pub seq: i64,
    pub at: String,
    pub by: String,
    pub intact: bool,
    /// The chain was checked from seq 1 to this one.
    pub verified_seq: i64,
}

/// The part of an `audit_verified` payload read back.
#[derive(serde::Deserialize)]
struct Verified {
    ok: bool,
    events: i64,
}

impl AuditStore {
    /// The head of the log and its latest recorded verification.
    pub async fn chain_status(&self) -> Result<ChainStatus, AuditError> {
        let (head,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM audit_events")
            .fetch_one(&self.pool)
            .await?;
        let head_seq = head.unwrap_or(0);
        let last: Option<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT seq, occurred_at, actor, payload FROM audit_events WHERE kind = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(EventKind::AuditVerified.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let last_verification = last.and_then(|(seq, at, by, payload)| {
            let verified: Verified = serde_json::from_str(payload.as_deref()?).ok()?;
            Some(LastVerification {
                seq,
                at,
                by,
                intact: verified.ok,
                verified_seq: verified.events,
            })
        });
        let verified = last_verification.as_ref().map_or(0, |v| v.verified_seq);
        Ok(ChainStatus {
            head_seq,
            events_since_verified: (head_seq - verified).max(0),
            last_verification,
        })
    }
}
