//! The write-ahead spool: what a turn must record when the audit store cannot take it.
//!
//! A streamed answer reaches the customer before its record commits (streaming first is
//! kept for latency). When that commit fails, or does not finish within its budget, the
//! customer has seen text the log does not hold, and a turn told 503 may still be
//! committed later by a transaction that was only slow. Either way the turn's outcome is
//! written here first — one JSON line per entry, checksummed and flushed to disk — and
//! appended to the log, in order, once the store is back:
//!
//! - if the turn's answer did commit after all (the entry names its reply's message id),
//!   `reply_undelivered` is appended instead, so the record never calls a turn answered
//!   that the customer was told had failed;
//! - otherwise the entry's own batch: the customer's message and `reply_interrupted`
//!   (or `reply_cancelled`) with the text they were shown.
//!
//! An entry whose first commit is still in flight in this process waits for it, so the
//! check above is never made while the answer could still land.

use super::records::{Actor, EventBatch, EventKind, NewConversation, NewEvent};
use super::store::{AuditError, AuditStore};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How often the replayer retries while entries are waiting for the store.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// An append still running in its own task.
pub type InFlight = JoinHandle<Result<Vec<i64>, AuditError>>;

/// A turn's outcome waiting to be appended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deferred {
    pub id: Uuid,
    pub deferred_at: DateTime<Utc>,
    /// What to append.
    pub batch: SpooledBatch,
    /// How the first, failed attempt decides what is appended.
    pub resolution: Resolution,
}

impl Deferred {
    pub fn new(batch: &EventBatch, resolution: Resolution) -> Self {
        Self {
            id: Uuid::now_v7(),
            deferred_at: Utc::now(),
            batch: SpooledBatch::of(batch),
            resolution,
        }
    }
}

/// What the first attempt to record a turn was, and so what its entry appends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "first_attempt")]
pub enum Resolution {
    /// The first attempt appended this very batch: if it went through after all (seen
    /// when it runs in this process), nothing more is appended.
    SameBatch,
    /// The first attempt appended the turn's answer, whose reply has `message_id`: the
    /// entry's batch is appended unless that message is in the store, and `instead`
    /// if it is.
    Answer { message_id: Uuid, instead: SpooledBatch },
}

/// An [`EventBatch`] without derived message rows, in a form that survives a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpooledBatch {
    pub conversation: Option<SpooledConversation>,
    pub events: Vec<SpooledEvent>,
    /// The verified customer of the conversation, if the turn had one.
    #[serde(default)]
    pub customer: Option<(Uuid, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpooledConversation {
    pub id: Uuid,
    pub token_hash: String,
    pub lang: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpooledEvent {
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<Uuid>,
    pub payload: serde_json::Value,
}

impl SpooledBatch {
    /// The batch to spool; derived message rows are not spooled (a deferred turn has none).
    pub fn of(batch: &EventBatch) -> Self {
        debug_assert!(batch.messages.is_empty(), "deferred batches carry no message rows");
        Self {
            conversation: batch.conversation.as_ref().map(|c| SpooledConversation {
                id: c.id,
                token_hash: c.token_hash.clone(),
                lang: c.lang.clone(),
            }),
            events: batch
                .events
                .iter()
                .map(|e| SpooledEvent {
                    actor: e.actor.to_string(),
                    kind: e.kind.to_string(),
                    conversation_id: e.conversation_id,
                    payload: e.payload.clone(),
                })
                .collect(),
            customer: batch.customer.clone(),
        }
    }

    fn to_batch(&self) -> Result<EventBatch, String> {
        let events = self
            .events
            .iter()
            .map(|e| {
                Ok(NewEvent {
                    actor: e.actor.parse::<Actor>()?,
                    kind: e
                        .kind
                        .parse::<EventKind>()
                        .map_err(|_| format!("unknown kind {:?}", e.kind))?,
                    conversation_id: e.conversation_id,
                    payload: e.payload.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(EventBatch {
            conversation: self.conversation.as_ref().map(|c| NewConversation {
                id: c.id,
                token_hash: c.token_hash.clone(),
                lang: c.lang.clone(),
            }),
            events,
            customer: self.customer.clone(),
            ..Default::default()
        })
    }
}

/// One line of the spool file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// An entry, with the SHA-256 of its JSON.
    Entry { entry: Box<Deferred>, sha256: String },
    /// The entry with this id is in the log.
    Done { id: Uuid },
}

/// What one replay pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Entries appended as their own batch (`reply_interrupted`).
    pub recorded: usize,
    /// Entries whose answer had committed after all (`reply_undelivered`).
    pub undelivered: usize,
    /// Entries whose first attempt had gone through after all: nothing appended.
    pub already_recorded: usize,
    /// Entries still waiting (store unavailable, or a first commit still in flight).
    pub waiting: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstAttempt {
    Committed,
    Failed,
    /// It ran in an earlier process.
    Unknown,
}

enum Outcome {
    Recorded,
    Undelivered,
    AlreadyRecorded,
}

/// The spool file and the entries not yet in the log.
pub struct Spool {
    path: PathBuf,
    store: Arc<AuditStore>,
    state: Mutex<State>,
    /// Replays one at a time, in order.
    replaying: tokio::sync::Mutex<()>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    pending: Vec<Deferred>,
    /// First commits still running in this process, by entry id.
    in_flight: HashMap<Uuid, InFlight>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and reads the entries a previous run left.
    /// A torn last line (a crash mid-write) is skipped; a line whose checksum does not
    /// match is an error: the spool was altered.
    pub fn open(dir: &Path, store: Arc<AuditStore>) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("audit-spool.jsonl");
        let pending = read_pending(&path)?;
        if !pending.is_empty() {
            tracing::warn!(entries = pending.len(), path = %path.display(), "audit spool holds entries from an earlier run; replaying");
        }
        metrics::gauge!("teller_audit_spool_pending").set(pending.len() as f64);
        Ok(Arc::new(Self {
            path,
            store,
            state: Mutex::new(State {
                pending,
                in_flight: HashMap::new(),
            }),
            replaying: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        }))
    }

    pub fn store(&self) -> &Arc<AuditStore> {
        &self.store
    }

    /// Entries not yet in the log.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Appends `batch` in a task of its own (never abandoned half-way) and waits for it
    /// for at most `budget`. On failure or timeout the still-running append, if any, is
    /// returned for [`Spool::defer`] to wait on.
    pub async fn append_within(
        &self,
        batch: EventBatch,
        budget: Duration,
    ) -> Result<Vec<i64>, (AuditError, Option<InFlight>)> {
        let store = self.store.clone();
        let mut task = tokio::spawn(async move { store.append(batch).await });
        match tokio::time::timeout(budget, &mut task).await {
            Ok(Ok(Ok(seqs))) => Ok(seqs),
            Ok(Ok(Err(e))) => Err((e, None)),
            Ok(Err(join)) => Err((AuditError::Unavailable(sqlx::Error::WorkerCrashed), {
                tracing::error!(error = %join, "audit append task failed");
                None
            })),
            Err(_) => {
                metrics::counter!("teller_audit_commit_timeouts_total").increment(1);
                Err((AuditError::Unavailable(sqlx::Error::PoolTimedOut), Some(task)))
            }
        }
    }

    /// Writes an entry to disk (flushed before this returns) for the replayer. `in_flight`
    /// is the entry's first commit, still running: the entry waits for it.
    pub fn defer(&self, entry: Deferred, in_flight: Option<InFlight>) -> std::io::Result<()> {
        let sha256 = entry_digest(&entry);
        let line = Line::Entry {
            entry: Box::new(entry.clone()),
            sha256,
        };
        {
            let mut state = self.lock();
            self.write_line(&line)?;
            if let Some(task) = in_flight {
                state.in_flight.insert(entry.id, task);
            }
            state.pending.push(entry);
            metrics::gauge!("teller_audit_spool_pending").set(state.pending.len() as f64);
        }
        metrics::counter!("teller_audit_spooled_total").increment(1);
        self.wake.notify_one();
        Ok(())
    }

    /// Appends waiting entries in order until one cannot be appended yet.
    pub async fn replay(&self) -> Replayed {
        let _one = self.replaying.lock().await;
        let mut done = Replayed::default();
        loop {
            let Some(entry) = self.lock().pending.first().cloned() else {
                break;
            };
            let Some(first) = self.first_attempt(entry.id).await else {
                break;
            };
            match self.replay_one(&entry, first).await {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Recorded => done.recorded += 1,
                        Outcome::Undelivered => done.undelivered += 1,
                        Outcome::AlreadyRecorded => done.already_recorded += 1,
                    }
                    if let Err(e) = self.settle(entry.id) {
                        // In the log but not marked: a restart would append it twice, so
                        // say so loudly; the log itself is intact.
                        tracing::error!(error = %e, id = %entry.id, "audit spool entry replayed but not marked done");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit store still unavailable; spool entries wait");
                    break;
                }
            }
        }
        done.waiting = self.pending();
        done
    }

    /// Replays in the background: when an entry arrives, and every second while any wait.
    pub fn spawn_replayer(self: &Arc<Self>) -> JoinHandle<()> {
        let spool = self.clone();
        tokio::spawn(async move {
            loop {
                if spool.pending() == 0 {
                    spool.wake.notified().await;
                }
                let replayed = spool.replay().await;
                if replayed.recorded + replayed.undelivered > 0 {
                    tracing::info!(?replayed, "audit spool replayed");
                }
                if replayed.waiting > 0 {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
        })
    }

    /// How the entry's first attempt ended: `None` while it still runs in this process;
    /// `Some(None)` when it did not run here (an entry from an earlier run).
    async fn first_attempt(&self, id: Uuid) -> Option<FirstAttempt> {
        let task = self.lock().in_flight.remove(&id);
        let Some(mut task) = task else {
            return Some(FirstAttempt::Unknown);
        };
        match tokio::time::timeout(Duration::from_millis(10), &mut task).await {
            Ok(Ok(Ok(_))) => Some(FirstAttempt::Committed),
            Ok(_) => Some(FirstAttempt::Failed),
            Err(_) => {
                self.lock().in_flight.insert(id, task);
                None
            }
        }
    }

    /// Appends what the entry's resolution calls for.
    async fn replay_one(&self, entry: &Deferred, first: FirstAttempt) -> Result<Outcome, AuditError> {
        let (spooled, outcome) = match &entry.resolution {
            Resolution::SameBatch if first == FirstAttempt::Committed => return Ok(Outcome::AlreadyRecorded),
            Resolution::SameBatch => (&entry.batch, Outcome::Recorded),
            // Even a failed first attempt may have committed (an error on COMMIT itself),
            // so the store is asked.
            Resolution::Answer { message_id, instead } => {
                if self.store.has_message(*message_id).await? {
                    (instead, Outcome::Undelivered)
                } else {
                    (&entry.batch, Outcome::Recorded)
                }
            }
        };
        let batch = spooled.to_batch().map_err(AuditError::InvalidRecord)?;
        self.store.append(batch).await?;
        Ok(outcome)
    }

    /// Marks an entry done on disk and forgets it; an empty spool is truncated.
    fn settle(&self, id: Uuid) -> std::io::Result<()> {
        let mut state = self.lock();
        state.pending.retain(|e| e.id != id);
        metrics::gauge!("teller_audit_spool_pending").set(state.pending.len() as f64);
        if state.pending.is_empty() {
            let file = File::create(&self.path)?;
            file.sync_all()
        } else {
            self.write_line(&Line::Done { id })
        }
    }

    fn write_line(&self, line: &Line) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry_digest(entry: &Deferred) -> String {
    let json = serde_json::to_string(entry).expect("spool entries serialise");
    hex::encode(Sha256::digest(json.as_bytes()))
}

/// The entries of a spool file that no `done` line settles, in order.
fn read_pending(path: &Path) -> anyhow::Result<Vec<Deferred>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>()?;
    let mut pending: Vec<Deferred> = Vec::new();
    let last = lines.len().saturating_sub(1);
    for (n, text) in lines.iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(text) {
            Ok(Line::Entry { entry, sha256 }) => {
                if entry_digest(&entry) != sha256 {
                    anyhow::bail!(
                        "{} line {}: checksum mismatch, the spool was altered",
                        path.display(),
                        n + 1
                    );
                }
                pending.push(*entry);
            }
            Ok(Line::Done { id }) => pending.retain(|e| e.id != id),
            Err(e) if n == last => {
                tracing::warn!(error = %e, "audit spool: the last line is torn (a crash mid-write); skipped");
            }
            Err(e) => anyhow::bail!("{} line {}: {e}", path.display(), n + 1),
        }
    }
    Ok(pending)
}

impl AuditStore {
    /// Whether a transcript row with this id was committed.
    pub async fn has_message(&self, id: Uuid) -> Result<bool, AuditError> {
        let (found,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(found > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Deferred {
        Deferred {
            id: Uuid::from_bytes([n; 16]),
            deferred_at: Utc::now(),
            batch: SpooledBatch {
                conversation: None,
                events: vec![SpooledEvent {
                    actor: "customer".into(),
                    kind: "reply_interrupted".into(),
                    conversation_id: None,
                    payload: serde_json::json!({ "n": n }),
                }],
                customer: None,
            },
            resolution: Resolution::SameBatch,
        }
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn line(entry: &Deferred) -> String {
        serde_json::to_string(&Line::Entry {
            entry: Box::new(entry.clone()),
            sha256: entry_digest(entry),
        })
        .unwrap()
    }

    #[test]
    fn settled_entries_are_not_read_back_and_order_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let done = serde_json::to_string(&Line::Done { id: entry(2).id }).unwrap();
        write(&path, &[line(&entry(1)), line(&entry(2)), line(&entry(3)), done]);
        let ids: Vec<Uuid> = read_pending(&path).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![entry(1).id, entry(3).id]);
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_an_altered_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let torn = line(&entry(2))[..40].to_string();
        write(&path, &[line(&entry(1)), torn]);
        assert_eq!(read_pending(&path).unwrap().len(), 1);

        let altered = line(&entry(1)).replace("\"n\":1", "\"n\":9");
        write(&path, &[altered, line(&entry(2))]);
        let error = read_pending(&path).unwrap_err().to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
    }
}
