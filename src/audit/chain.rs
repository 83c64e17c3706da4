//! The hash chain: each event's hash is SHA-256 over the previous hash, the event's
//! canonical header and the SHA-256 of its canonical JSON payload (RFC 8785), so
//! changing, removing, inserting or reordering any event breaks every hash after it.
//! Hashing the payload's digest rather than the payload lets a retention purge erase old
//! content while the chain still verifies.

use sha2::{Digest, Sha256};

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 of a canonical payload text.
pub fn payload_hash(payload: &str) -> String {
    hex::encode(Sha256::digest(payload.as_bytes()))
}

/// Hash of one event, chained to `prev_hash`.
pub fn event_hash(
    prev_hash: &str,
    seq: i64,
    occurred_at: &str,
    actor: &str,
    kind: &str,
    conversation_id: Option<&str>,
    payload_hash: &str,
) -> String {
    let header = canonical_header(seq, occurred_at, actor, kind, conversation_id);
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(header.as_bytes());
    hasher.update(b"\n");
    hasher.update(payload_hash.as_bytes());
    hex::encode(hasher.finalize())
}

/// The event header as RFC 8785 JSON, written directly: keys in sorted order, strings
/// escaped as JSON requires (serde_json's string escaping is the RFC's), no whitespace.
/// Verification hashes every event, so this avoids building a JSON tree per event; a test
/// holds it equal to the general canonicaliser.
fn canonical_header(seq: i64, occurred_at: &str, actor: &str, kind: &str, conversation_id: Option<&str>) -> String {
    let text = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let conversation = conversation_id.map_or_else(|| "null".to_string(), text);
    format!(
        "{{\"actor\":{},\"conversation_id\":{conversation},\"kind\":{},\"occurred_at\":{},\"seq\":{seq}}}",
        text(actor),
        text(kind),
        text(occurred_at)
    )
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
        if let Some(payload) = &event.payload {
            if payload_hash(payload) != event.payload_hash {
                return Err(ChainBreak {
                    seq: event.seq,
                    reason: "payload does not match its hash (event altered)".into(),
                });
            }
        }
        let recomputed = event_hash(
            &event.prev_hash,
            event.seq,
            &event.occurred_at,
            &event.actor,
            &event.kind,
            event.conversation_id.as_deref(),
            &event.payload_hash,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_direct_header_is_rfc_8785() {
        for (actor, conversation) in [
            ("customer", Some("c-1")),
            ("staff:ä \"q\" \\ \u{1f} \n 港", None),
            ("x", Some("\t")),
        ] {
            let expected = serde_json_canonicalizer::to_string(&json!({
                "seq": 42, "occurred_at": "2026-11-26T10:00:00.000000Z", "actor": actor, "kind": "answer", "conversation_id": conversation,
            }))
            .unwrap();
            assert_eq!(
                canonical_header(42, "2026-11-26T10:00:00.000000Z", actor, "answer", conversation),
                expected
            );
        }
    }
}
