//! The hash chain: each event's hash is SHA-256 over the previous hash and the event's
//! canonical JSON (RFC 8785), so changing, removing, inserting or reordering any event
//! breaks every hash after it.

use serde_json::json;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hash of one event. `payload` is the canonical JSON text stored with the event.
pub fn event_hash(
    prev_hash: &str,
    seq: i64,
    occurred_at: &str,
    actor: &str,
    kind: &str,
    conversation_id: Option<&str>,
    payload: &str,
) -> String {
    let header = json!({
        "seq": seq,
        "occurred_at": occurred_at,
        "actor": actor,
        "kind": kind,
        "conversation_id": conversation_id,
    });
    let header = serde_json_canonicalizer::to_string(&header).expect("headers serialise");
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(header.as_bytes());
    hasher.update(b"\n");
    hasher.update(payload.as_bytes());
    hex::encode(hasher.finalize())
}

/// Canonical JSON text of a payload (what is stored and hashed).
pub fn canonical(payload: &serde_json::Value) -> String {
    serde_json_canonicalizer::to_string(payload).expect("payloads serialise")
}

/// The first place where the chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Checks a run of events in seq order, starting after (`start_seq - 1`, `prev_hash`).
pub fn verify_chain<'a>(
    events: impl IntoIterator<Item = &'a super::StoredEvent>,
    mut expected_seq: i64,
    mut prev_hash: String,
) -> Result<(i64, String), ChainBreak> {
    for event in events {
        if event.seq != expected_seq {
            return Err(ChainBreak {
                seq: expected_seq.min(event.seq),
                reason: format!(
                    "expected seq {expected_seq}, found {} (missing or inserted event)",
                    event.seq
                ),
            });
        }
        if event.prev_hash != prev_hash {
            return Err(ChainBreak {
                seq: event.seq,
                reason: "prev_hash does not match the previous event's hash".into(),
            });
        }
        let recomputed = event_hash(
            &event.prev_hash,
            event.seq,
            &event.occurred_at,
            &event.actor,
            &event.kind,
            event.conversation_id.as_deref(),
            &event.payload,
        );
        if recomputed != event.hash {
            return Err(ChainBreak {
                seq: event.seq,
                reason: "content does not match its hash (event altered)".into(),
            });
        }
        prev_hash = event.hash.clone();
        expected_seq += 1;
    }
    Ok((expected_seq - 1, prev_hash))
}
