//! Proving the log intact. One walk over the log checks, page by page:
//! - the hash chain (every event unchanged, none removed, inserted or reordered);
//! - every erased payload is named by a purge event written after it;
//! - seals (with the key): each one verifies, and the last event carries one, so a forged
//!   tail or a recomputed chain is caught;
//! - the query tables re-derived from the events ([`super::derived`]);
//! - the latest checkpoint of the sink outside the database (a truncated log is caught),
//!   and any checkpoint given by hand.
//!
//! Verifying writes nothing.

use super::chain::{verify_chain, ChainBreak, GENESIS_HASH};
use super::derived::{DerivedCheck, DerivedRows};
use super::records::{EventKind, StoredEvent, EVENT_COLUMNS};
use super::seal::SealKey;
use super::store::{AuditError, AuditStore};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
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
    /// Events whose payload a retention purge erased, each named by that purge's event.
    pub erased_events: i64,
    pub seals: SealCheck,
    /// The query tables, re-derived from the events.
    pub derived: DerivedCheck,
    /// The latest checkpoint of the checkpoint file, found in the log unchanged (none when
    /// no file is configured or it holds none yet).
    pub checkpoint_file: Option<Checkpoint>,
}

/// What the seals proved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SealCheck {
    /// Whether a seal key was configured: without it seals are not checked, and a forged
    /// tail is caught only by a checkpoint.
    pub checked: bool,
    /// Seals found valid.
    pub sealed_events: i64,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.error.is_none()
    }

    fn broken(&mut self, seq: i64, error: String) {
        self.first_bad_seq = Some(seq);
        self.error = Some(error);
    }

    fn head_seq(&self) -> i64 {
        self.head.as_ref().map_or(0, |h| h.seq)
    }
}

/// A purge as its event states it: the seqs it erased (older purges named a time only).
#[derive(Debug)]
struct Purge {
    seq: i64,
    payload: String,
    erased: Erased,
}

#[derive(Debug)]
enum Erased {
    Seqs(Vec<(i64, i64)>),
    /// A purge recorded before purges named their seqs: it covers conversation events
    /// older than `before`.
    Before(String),
}

impl Purge {
    fn parse(seq: i64, payload: String) -> Option<Self> {
        #[derive(Deserialize)]
        struct Stated {
            before: String,
            erased_seqs: Option<Vec<(i64, i64)>>,
        }
        let stated: Stated = serde_json::from_str(&payload).ok()?;
        let erased = match stated.erased_seqs {
            Some(seqs) => Erased::Seqs(seqs),
            None => Erased::Before(stated.before),
        };
        Some(Self { seq, payload, erased })
    }

    fn covers(&self, event: &StoredEvent) -> bool {
        event.seq < self.seq
            && match &self.erased {
                Erased::Seqs(ranges) => ranges
                    .binary_search_by(|(from, to)| {
                        if *to < event.seq {
                            std::cmp::Ordering::Less
                        } else if *from > event.seq {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    })
                    .is_ok(),
                Erased::Before(before) => {
                    event.conversation_id.is_some() && event.occurred_at.as_str() < before.as_str()
                }
            }
    }
}

/// Everything but the chain itself, checked on each page the chain verified.
struct Walk<'k> {
    purges: Vec<Purge>,
    key: Option<&'k SealKey>,
    report: Verification,
    derived: DerivedRows,
    /// Whether the last event seen carries a valid seal.
    last_sealed: bool,
}

impl Walk<'_> {
    /// Erased payloads, purge events and seals of one page.
    async fn check_events(
        &mut self,
        store: &AuditStore,
        page: &[StoredEvent],
    ) -> Result<Result<(), (i64, String)>, AuditError> {
        for event in page {
            if event.kind == EventKind::RetentionPurged.as_str() {
                let stated = self.purges.iter().find(|p| p.seq == event.seq);
                match (&event.payload, stated) {
                    (None, _) => return Ok(Err((event.seq, "the record of a purge was erased".into()))),
                    (Some(payload), Some(p)) if *payload == p.payload => {}
                    (Some(_), _) => {
                        // Appended since the purges were read, or unreadable.
                        self.purges = store.purges().await?;
                        if !self.purges.iter().any(|p| p.seq == event.seq) {
                            return Ok(Err((event.seq, "a purge event states no purge".into())));
                        }
                    }
                }
            }
            if event.payload.is_none() {
                if !self.purges.iter().any(|p| p.covers(event)) {
                    return Ok(Err((
                        event.seq,
                        "payload erased, but no purge event names this seq (erased outside a purge)".into(),
                    )));
                }
                self.report.erased_events += 1;
            }
            self.last_sealed = false;
            if let (Some(key), Some(seal)) = (self.key, &event.seal) {
                if !key.verifies(event.seq, &event.hash, seal) {
                    return Ok(Err((
                        event.seq,
                        "seal does not verify: the chain was recomputed from here or this event forged".into(),
                    )));
                }
                self.report.seals.sealed_events += 1;
                self.last_sealed = true;
            }
        }
        Ok(Ok(()))
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

    /// Every purge event, as stated.
    async fn purges(&self) -> Result<Vec<Purge>, AuditError> {
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT seq, payload FROM audit_events WHERE kind = 'retention_purged' ORDER BY seq")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, payload)| Purge::parse(seq, payload?))
            .collect())
    }

    /// Walks the whole log: chain, erasures, seals, derived rows, then the checkpoint file.
    pub async fn verify(&self) -> Result<Verification, AuditError> {
        let mut walk = Walk {
            purges: self.purges().await?,
            key: self.seal_key.as_ref(),
            report: Verification {
                events: 0,
                head: None,
                error: None,
                first_bad_seq: None,
                erased_events: 0,
                seals: SealCheck {
                    checked: self.seal_key.is_some(),
                    sealed_events: 0,
                },
                derived: DerivedCheck::default(),
                checkpoint_file: None,
            },
            derived: DerivedRows::default(),
            last_sealed: false,
        };
        let mut expected = 1;
        let mut prev = GENESIS_HASH.to_string();
        let mut page = self.events(expected, PAGE).await?;
        while !page.is_empty() {
            walk.report.events += page.len() as i64;
            // Hash this page on the blocking pool while the next one is read.
            let next_from = page.last().map_or(expected, |e| e.seq + 1);
            let check = tokio::task::spawn_blocking(move || {
                let checked = verify_chain(&page, expected, prev);
                (page, checked)
            });
            let (checked, next) = tokio::join!(check, self.events(next_from, PAGE));
            let (checked_page, checked) = checked.expect("verification does not panic");
            match checked {
                Ok((last, hash)) => {
                    expected = last + 1;
                    prev = hash;
                }
                Err(ChainBreak { seq, reason }) => return Ok(walk.broken(seq, reason)),
            }
            if let Err((seq, reason)) = walk.check_events(self, &checked_page).await? {
                return Ok(walk.broken(seq, reason));
            }
            if let Err((seq, reason)) = walk.derived.check_page(self, &checked_page).await? {
                return Ok(walk.broken(seq, reason));
            }
            page = next?;
        }
        if let Err((seq, reason)) = walk.derived.check_unopened(self).await? {
            return Ok(walk.broken(seq, reason));
        }
        walk.report.derived = walk.derived.report.clone();
        walk.report.head = (expected > 1).then(|| Checkpoint {
            seq: expected - 1,
            hash: prev,
        });
        let mut report = walk.report;
        if report.seals.checked && report.head.is_some() && !walk.last_sealed {
            let seq = report.head_seq();
            report.broken(
                seq,
                "the last event carries no seal from the key: events were appended without it (forged tail), \
                 or the log was cut back to an unsealed event"
                    .into(),
            );
            return Ok(report);
        }
        if let Some(path) = &self.checkpoint_file {
            match latest_checkpoint(path, self.seal_key.as_ref()) {
                Ok(Some(checkpoint)) => {
                    self.check_against(&mut report, &checkpoint).await?;
                    report.checkpoint_file = Some(checkpoint);
                }
                Ok(None) => {}
                Err(why) => {
                    let seq = report.head_seq();
                    report.broken(seq, why);
                }
            }
        }
        Ok(report)
    }

    /// Verifies the log and that it still contains `checkpoint` unchanged.
    pub async fn verify_from_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Verification, AuditError> {
        let mut report = self.verify().await?;
        if report.intact() {
            self.check_against(&mut report, checkpoint).await?;
        }
        Ok(report)
    }

    /// Whether the verified log still ends at or after `checkpoint` and holds it unchanged.
    async fn check_against(&self, report: &mut Verification, checkpoint: &Checkpoint) -> Result<(), AuditError> {
        let head_seq = report.head_seq();
        if head_seq < checkpoint.seq {
            report.broken(
                head_seq + 1,
                format!(
                    "the log ends at seq {head_seq} but the checkpoint is at seq {} (events were removed from the tail)",
                    checkpoint.seq
                ),
            );
            return Ok(());
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
        Ok(())
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

impl Walk<'_> {
    fn broken(mut self, seq: i64, reason: String) -> Verification {
        self.report.derived = self.derived.report.clone();
        self.report.broken(seq, reason);
        self.report
    }
}

/// The last checkpoint of a checkpoint file, its seal checked with `key`. A file that is
/// missing, unreadable or whose last line is not sealed by the key is an error: the file
/// is what proves the log's tail.
fn latest_checkpoint(path: &Path, key: Option<&SealKey>) -> Result<Option<Checkpoint>, String> {
    let line = super::checkpoints::last_line(path).map_err(|e| format!("checkpoint file {}: {e}", path.display()))?;
    let Some(line) = line else {
        return Ok(None);
    };
    let sealed: super::checkpoints::SealedCheckpoint = serde_json::from_str(&line)
        .map_err(|e| format!("checkpoint file {}: unreadable last line ({e})", path.display()))?;
    if let Some(key) = key {
        if !sealed
            .seal
            .as_deref()
            .is_some_and(|s| key.verifies(sealed.seq, &sealed.hash, s))
        {
            return Err(format!(
                "checkpoint file {}: the last checkpoint is not sealed by the key (file altered)",
                path.display()
            ));
        }
    }
    Ok(Some(Checkpoint {
        seq: sealed.seq,
        hash: sealed.hash,
    }))
}
