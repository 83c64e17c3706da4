//! Proving the log intact: walking the whole chain, and checking it against a checkpoint
//! kept outside the database.

use super::chain::{verify_chain, ChainBreak, GENESIS_HASH};
use super::records::{StoredEvent, EVENT_COLUMNS};
use super::store::{AuditError, AuditStore};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Events read per page while walking the log: bounds memory for any log size.
pub(super) const PAGE: i64 = 5_000;

/// The latest (seq, hash), to be kept outside the database: a later verify against it
/// proves the log was not truncated or rewritten before that point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub events: i64,
    pub head: Option<Checkpoint>,
    pub error: Option<String>,
    pub first_bad_seq: Option<i64>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.error.is_none()
    }

    fn broken(&mut self, seq: i64, error: String) {
        self.first_bad_seq = Some(seq);
        self.error = Some(error);
    }
}

impl AuditStore {
    /// Events with `seq >= from`, in order, up to `limit`.
    pub async fn events(&self, from: i64, limit: i64) -> Result<Vec<StoredEvent>, AuditError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2");
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

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
        if !report.intact() {
            return Ok(report);
        }
        let head_seq = report.head.as_ref().map_or(0, |h| h.seq);
        if head_seq < checkpoint.seq {
            report.broken(
                head_seq + 1,
                format!(
                    "the log ends at seq {head_seq} but the checkpoint is at seq {} (events were removed from the tail)",
                    checkpoint.seq
                ),
            );
            return Ok(report);
        }
        let at = self.events(checkpoint.seq, 1).await?;
        if at.first().map(|e| e.hash.as_str()) != Some(checkpoint.hash.as_str()) {
            report.broken(
                checkpoint.seq,
                format!(
                    "event {} does not have the checkpoint's hash (the log was rewritten)",
                    checkpoint.seq
                ),
            );
        }
        Ok(report)
    }

    /// The chain's head now.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(head.map(|(seq, hash)| Checkpoint { seq, hash }))
    }
}
