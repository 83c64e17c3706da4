//! What compliance does with the record: verify the chain, take a checkpoint, export a
//! period, search and read conversations; and the staff tokens that guard those reads.

use super::chain::{verify_chain, ChainBreak, GENESIS_HASH};
use super::store::{AuditError, AuditStore, EventBatch, NewEvent, StoredEvent, EVENT_COLUMNS};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::fmt;
use std::io::Write;
use std::str::FromStr;

/// Columns of a CSV export.
const EXPORT_COLUMNS: [&str; 9] = [
    "seq",
    "occurred_at",
    "actor",
    "kind",
    "conversation_id",
    "payload",
    "payload_hash",
    "prev_hash",
    "hash",
];

/// Events read per page while walking the log: bounds memory for any log size.
const PAGE: i64 = 5_000;

/// The latest (seq, hash), to be kept outside the database: a later verify against it
/// proves the log was not truncated or rewritten before that point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl FromStr for Checkpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s.split_once(':').ok_or("a checkpoint is SEQ:HASH")?;
        let seq = seq.parse().map_err(|_| format!("invalid seq {seq:?}"))?;
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("the hash must be 64 hex digits".into());
        }
        Ok(Self {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Outcome of a full verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub events: i64,
    pub head: Option<Checkpoint>,
    pub error: Option<String>,
    pub first_bad_seq: Option<i64>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// Staff roles, from least to most privileged in what they may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Compliance,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated member of staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staff {
    pub name: String,
    pub role: Role,
}

/// One row of the conversation search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationSummary {
    pub id: String,
    pub lang: String,
    pub created_at: String,
    pub turns: i64,
    pub last_mode: Option<String>,
    pub handoff_reason: Option<String>,
}

/// What a retention purge did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgeReport {
    pub before: String,
    pub events_erased: u64,
    pub messages_deleted: u64,
    pub conversations_held: i64,
}

/// Filters of the conversation search (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConversationQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub mode: Option<String>,
    pub handoff_reason: Option<String>,
    /// Text searched in the (masked) messages.
    pub q: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn event_json(e: &StoredEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq, "occurred_at": e.occurred_at, "actor": e.actor, "kind": e.kind,
        "conversation_id": e.conversation_id,
        "payload": e.payload.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
        "payload_hash": e.payload_hash, "prev_hash": e.prev_hash, "hash": e.hash,
    })
}

impl AuditStore {
    /// Walks the whole chain from the first event.
    pub async fn verify(&self) -> Result<Verification, AuditError> {
        let mut expected = 1;
        let mut prev = GENESIS_HASH.to_string();
        let mut count = 0;
        let mut page = self.events(expected, PAGE).await?;
        while !page.is_empty() {
            count += page.len() as i64;
            // Hash this page on the blocking pool while the next one is read.
            let next_from = page.last().map_or(expected, |e| e.seq + 1);
            let check = tokio::task::spawn_blocking(move || verify_chain(&page, expected, prev));
            let (checked, next) = tokio::join!(check, self.events(next_from, PAGE));
            match checked.expect("verification does not panic") {
                Ok((last, hash)) => {
                    expected = last + 1;
                    prev = hash;
                }
                Err(ChainBreak { seq, reason }) => {
                    return Ok(Verification {
                        events: count,
                        head: None,
                        error: Some(reason),
                        first_bad_seq: Some(seq),
                    })
                }
            }
            page = next?;
        }
        let head = (expected > 1).then(|| Checkpoint {
            seq: expected - 1,
            hash: prev,
        });
        Ok(Verification {
            events: count,
            head,
            error: None,
            first_bad_seq: None,
        })
    }

    /// Verifies the chain and that it still contains `checkpoint` unchanged.
    pub async fn verify_from_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Verification, AuditError> {
        let mut report = self.verify().await?;
        if report.error.is_some() {
            return Ok(report);
        }
        let head_seq = report.head.as_ref().map_or(0, |h| h.seq);
        if head_seq < checkpoint.seq {
            report.error = Some(format!(
                "the log ends at seq {head_seq} but the checkpoint is at seq {} (events were removed from the tail)",
                checkpoint.seq
            ));
            report.first_bad_seq = Some(head_seq + 1);
            return Ok(report);
        }
        let at = self.events(checkpoint.seq, 1).await?;
        if at.first().map(|e| e.hash.as_str()) != Some(checkpoint.hash.as_str()) {
            report.error = Some(format!(
                "event {} does not have the checkpoint's hash (the log was rewritten)",
                checkpoint.seq
            ));
            report.first_bad_seq = Some(checkpoint.seq);
        }
        Ok(report)
    }

    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| {
                Ok::<_, sqlx::Error>(Checkpoint {
                    seq: r.try_get(0)?,
                    hash: r.try_get(1)?,
                })
            })
            .transpose()?)
    }

    /// One page of an export: the events after `after_seq` that occurred in [from, to)
    /// (RFC 3339 UTC), rendered in `format` (the CSV header comes with the first page).
    /// Returns the bytes and the last seq written, or `None` when the period is done.
    /// Callers loop over pages, so memory stays flat whatever the period holds.
    pub async fn export_page(
        &self,
        from: &str,
        to: &str,
        format: ExportFormat,
        after_seq: i64,
    ) -> anyhow::Result<Option<(Vec<u8>, i64, u64)>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY seq LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(after_seq)
            .bind(from)
            .bind(to)
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut csv = (format == ExportFormat::Csv).then(|| csv::Writer::from_writer(Vec::new()));
        if let (Some(w), 0) = (csv.as_mut(), after_seq) {
            w.write_record(EXPORT_COLUMNS)?;
        }
        let mut last = after_seq;
        let mut count = 0;
        for r in rows {
            let e = StoredEvent::from_row(&r)?;
            last = e.seq;
            count += 1;
            match csv.as_mut() {
                Some(w) => {
                    let seq = e.seq.to_string();
                    let conversation = e.conversation_id.as_deref().unwrap_or("");
                    let payload = e.payload.as_deref().unwrap_or("");
                    w.write_record([
                        seq.as_str(),
                        &e.occurred_at,
                        &e.actor,
                        &e.kind,
                        conversation,
                        payload,
                        &e.payload_hash,
                        &e.prev_hash,
                        &e.hash,
                    ])?;
                }
                None => {
                    serde_json::to_writer(&mut out, &event_json(&e))?;
                    out.push(b'\n');
                }
            }
        }
        if let Some(w) = csv {
            out = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
        }
        Ok(Some((out, last, count)))
    }

    /// Writes a whole period to `out`; returns the number of events.
    pub async fn export(
        &self,
        from: &str,
        to: &str,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> anyhow::Result<u64> {
        let mut after = 0;
        let mut total = 0;
        let mut first = true;
        loop {
            // The CSV header is keyed to the first page (after_seq = 0); later pages
            // continue after the last seq written.
            let page = self
                .export_page(from, to, format, if first { 0 } else { after })
                .await?;
            let Some((bytes, last, count)) = page else { break };
            out.write_all(&bytes)?;
            first = false;
            after = last;
            total += count;
        }
        out.flush()?;
        Ok(total)
    }

    /// Retention: erases conversation content that occurred before `before` (RFC 3339
    /// UTC), except conversations under legal hold. Event payloads are set to NULL —
    /// their hashes stay, so the chain still verifies — and message rows are deleted.
    /// The purge is itself an event, written in the same transaction.
    pub async fn purge(&self, before: &str, actor: &str) -> Result<PurgeReport, AuditError> {
        self.with_append_lock(self.purge_locked(before, actor)).await
    }

    async fn purge_locked(&self, before: &str, actor: &str) -> Result<PurgeReport, AuditError> {
        let mut tx = self.begin_append().await?;
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
        let held: i64 = sqlx::query("SELECT COUNT(*) FROM legal_holds")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let report = PurgeReport {
            before: before.to_string(),
            events_erased: erased,
            messages_deleted: deleted,
            conversations_held: held,
        };
        let event = NewEvent {
            actor: actor.to_string(),
            kind: "retention_purged".into(),
            conversation_id: None,
            payload: serde_json::to_value(&report).expect("reports serialise"),
        };
        self.write_batch(
            &mut tx,
            EventBatch {
                events: vec![event],
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Puts a conversation under legal hold: purges skip it until the hold is released.
    pub async fn hold(&self, conversation_id: &str, reason: &str, actor: &str) -> Result<(), AuditError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        sqlx::query("INSERT INTO legal_holds (conversation_id, reason, created_at) VALUES ($1, $2, $3)")
            .bind(conversation_id)
            .bind(reason)
            .bind(now)
            .execute(self.pool())
            .await?;
        self.record_staff_action(
            actor,
            "legal_hold_placed",
            serde_json::json!({ "conversation_id": conversation_id, "reason": reason }),
        )
        .await
    }

    /// Releases a legal hold; false when there was none.
    pub async fn release_hold(&self, conversation_id: &str, actor: &str) -> Result<bool, AuditError> {
        let done = sqlx::query("DELETE FROM legal_holds WHERE conversation_id = $1")
            .bind(conversation_id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.record_staff_action(
            actor,
            "legal_hold_released",
            serde_json::json!({ "conversation_id": conversation_id }),
        )
        .await?;
        Ok(true)
    }

    /// Records an action of staff or an operator (reads, exports, token changes).
    pub async fn record_staff_action(
        &self,
        actor: &str,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<(), AuditError> {
        let event = NewEvent {
            actor: actor.to_string(),
            kind: kind.to_string(),
            conversation_id: None,
            payload,
        };
        self.append(EventBatch {
            events: vec![event],
            ..Default::default()
        })
        .await
        .map(|_| ())
    }

    /// Creates a staff token and returns it; only its hash is stored.
    pub async fn create_token(&self, name: &str, role: Role) -> anyhow::Result<String> {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        let token = format!("tlr_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let inserted = sqlx::query(
            "INSERT INTO staff_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash(&token))
        .bind(&now)
        .execute(self.pool())
        .await;
        if let Err(sqlx::Error::Database(e)) = &inserted {
            if e.is_unique_violation() {
                anyhow::bail!("a token named {name:?} already exists; revoke it or choose another name");
            }
        }
        inserted?;
        self.record_staff_action(
            "operator",
            "token_created",
            serde_json::json!({ "name": name, "role": role }),
        )
        .await?;
        Ok(token)
    }

    /// Revokes a token by name; false when there was no active token of that name.
    pub async fn revoke_token(&self, name: &str) -> anyhow::Result<bool> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let done = sqlx::query("UPDATE staff_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(name)
            .execute(self.pool())
            .await?;
        let revoked = done.rows_affected() > 0;
        if revoked {
            self.record_staff_action("operator", "token_revoked", serde_json::json!({ "name": name }))
                .await?;
        }
        Ok(revoked)
    }

    /// The member of staff a bearer token belongs to, if it is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Staff>, AuditError> {
        let row = sqlx::query("SELECT name, role FROM staff_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash(token))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|r| {
            let name: String = r.try_get(0).ok()?;
            let role: String = r.try_get(1).ok()?;
            let role = match role.as_str() {
                "agent" => Role::Agent,
                "compliance" => Role::Compliance,
                "admin" => Role::Admin,
                _ => return None,
            };
            Some(Staff { name, role })
        }))
    }

    /// Conversation search for compliance, newest first.
    pub async fn search_conversations(&self, q: &ConversationQuery) -> Result<Vec<ConversationSummary>, AuditError> {
        let per_page = q.per_page.unwrap_or(50).clamp(1, 500);
        let offset = (q.page.unwrap_or(1).max(1) - 1) * per_page;
        let like =
            q.q.as_ref()
                .map(|t| format!("%{}%", t.to_lowercase().replace('%', "\\%").replace('_', "\\_")));
        let rows = sqlx::query(
            "SELECT c.id, c.lang, c.created_at, \
                (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user') AS turns, \
                (SELECT m.mode FROM messages m WHERE m.conversation_id = c.id AND m.role = 'assistant' ORDER BY m.turn DESC LIMIT 1) AS last_mode, \
                (SELECT m.handoff_reason FROM messages m WHERE m.conversation_id = c.id AND m.handoff_reason IS NOT NULL ORDER BY m.turn DESC LIMIT 1) AS handoff_reason \
             FROM conversations c \
             WHERE ($1 IS NULL OR c.created_at >= $1) AND ($2 IS NULL OR c.created_at < $2) \
               AND ($3 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.mode = $3)) \
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.handoff_reason = $4)) \
               AND ($5 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND LOWER(m.content) LIKE $5 ESCAPE '\\')) \
             ORDER BY c.created_at DESC, c.id LIMIT $6 OFFSET $7",
        )
        .bind(q.from.clone())
        .bind(q.to.clone())
        .bind(q.mode.clone())
        .bind(q.handoff_reason.clone())
        .bind(like)
        .bind(per_page)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ConversationSummary {
                    id: r.try_get(0)?,
                    lang: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    turns: r.try_get(3)?,
                    last_mode: r.try_get(4)?,
                    handoff_reason: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Every event of one conversation (turns, retrievals, answers), in order.
    pub async fn conversation_events(&self, conversation_id: &str) -> Result<Vec<serde_json::Value>, AuditError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE conversation_id = $1 ORDER BY seq");
        let rows = sqlx::query(&sql).bind(conversation_id).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok(event_json(&StoredEvent::from_row(r)?)))
            .collect()
    }
}
