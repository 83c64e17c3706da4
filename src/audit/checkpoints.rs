//! The checkpoint sink: the chain's head, sealed, appended to a file outside the database
//! at a fixed interval. Deleting the log's last events leaves an earlier head that is
//! still sealed and still chains; only a record kept elsewhere shows that the log once
//! went further. `verify` checks the file's latest checkpoint against the log.
//!
//! The file is JSON Lines, one checkpoint per line. Keep it where the database's
//! administrators cannot rewrite it (another host, WORM storage, a log shipper).

use super::seal::SealKey;
use super::store::{now, AuditStore};
use super::verify::Checkpoint;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    /// The head's seal under the seal key, when one is configured.
    pub seal: Option<String>,
}

/// Longest line the file holds (a 64-digit hash, a seal, a time and a seq).
const MAX_LINE: u64 = 512;

/// The last line of the file, read from its end (the file grows for years).
pub(super) fn last_line(path: &Path) -> std::io::Result<Option<String>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(2 * MAX_LINE)))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail)?;
    Ok(tail.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
}

/// Appends `checkpoint` to the file and flushes it to disk.
fn append(path: &Path, line: &SealedCheckpoint) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = serde_json::to_string(line).expect("checkpoints serialise");
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Writes the head to the file every `interval` while it advances.
pub struct CheckpointWriter {
    store: Arc<AuditStore>,
    path: PathBuf,
    interval: Duration,
}

impl CheckpointWriter {
    pub fn new(store: Arc<AuditStore>, path: PathBuf, interval: Duration) -> Self {
        Self { store, path, interval }
    }

    /// Writes one checkpoint if the head moved past the file's last one; returns it.
    pub async fn write_once(&self) -> anyhow::Result<Option<SealedCheckpoint>> {
        let Some(Checkpoint { seq, hash }) = self.store.checkpoint().await? else {
            return Ok(None);
        };
        let path = self.path.clone();
        let last_seq = tokio::task::spawn_blocking(move || last_line(&path))
            .await?
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            })?
            .and_then(|l| serde_json::from_str::<SealedCheckpoint>(&l).ok())
            .map(|c| c.seq);
        if last_seq.is_some_and(|last| last >= seq) {
            return Ok(None);
        }
        let line = SealedCheckpoint {
            seal: self.store.seal_key.as_ref().map(|k: &SealKey| k.seal(seq, &hash)),
            seq,
            hash,
            at: now(),
        };
        let (path, written) = (self.path.clone(), line.clone());
        tokio::task::spawn_blocking(move || append(&path, &written)).await??;
        Ok(Some(line))
    }

    /// Runs until the process ends. A failed write is logged and counted, and retried at
    /// the next tick: the log itself is unaffected.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.write_once().await {
                    Ok(Some(c)) => tracing::debug!(seq = c.seq, "checkpoint written"),
                    Ok(None) => {}
                    Err(error) => {
                        metrics::counter!("teller_checkpoint_failures_total").increment(1);
                        tracing::warn!(%error, path = %self.path.display(), "cannot write the audit checkpoint");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_is_read_from_the_end_of_a_long_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("checkpoints.jsonl");
        for seq in 1..=2_000 {
            let line = SealedCheckpoint {
                seq,
                hash: "ab".repeat(32),
                at: now(),
                seal: Some("cd".repeat(32)),
            };
            append(&path, &line).unwrap();
        }
        let last: SealedCheckpoint = serde_json::from_str(&last_line(&path).unwrap().unwrap()).unwrap();
        assert_eq!(last.seq, 2_000);
    }
}
