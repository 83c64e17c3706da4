//! The audit store on both databases: SQLite always, PostgreSQL whenever
//! `TEST_DATABASE_URL` is set (CI sets it).

use serde_json::json;
use std::sync::Arc;
use teller::audit::{
    event_hash, verify_chain, Actor, AuditStore, CheckpointWriter, EventBatch, EventKind, NewConversation, NewEvent,
    NewMessage, SealCheck, SealKey, StoredEvent, GENESIS_HASH,
};
use teller::conversation::{Mode, Speaker};
use uuid::Uuid;

/// A fresh, empty database of each available kind: a SQLite file, and a PostgreSQL schema
/// of its own (dropped with the test's process, named uniquely).
pub async fn databases(test: &str) -> Vec<(String, tempfile::TempDir)> {
    let dir = tempfile::TempDir::new().unwrap();
    let mut out = vec![(format!("sqlite://{}", dir.path().join("audit.db").display()), dir)];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => out.push((postgres_schema(&url).await, tempfile::TempDir::new().unwrap())),
        _ => eprintln!("{test}: postgres audit store skipped (TEST_DATABASE_URL not set)"),
    }
    out
}

pub async fn postgres_schema(url: &str) -> String {
    use sqlx::Connection;
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("TEST_DATABASE_URL reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

fn turn_batch(conversation: Uuid, new: bool, n: usize) -> EventBatch {
    EventBatch {
        conversation: new.then(|| NewConversation {
            id: conversation,
            token_hash: "h".into(),
            lang: "en".into(),
        }),
        events: vec![
            NewEvent {
                actor: Actor::Customer,
                kind: EventKind::MessageReceived,
                conversation_id: Some(conversation),
                payload: json!({ "content": format!("question {n}"), "turn": n }),
            },
            NewEvent {
                actor: Actor::Assistant,
                kind: EventKind::Answer,
                conversation_id: Some(conversation),
                payload: json!({ "answer": format!("answer {n}"), "score": 0.1 + n as f64 }),
            },
        ],
        messages: vec![
            NewMessage {
                id: Uuid::new_v4(),
                conversation_id: conversation,
                turn: n as i64,
                speaker: Speaker::Customer,
                content: format!("question {n}"),
                mode: None,
                citations: None,
                handoff_reason: None,
                event_index: 0,
            },
            NewMessage {
                id: Uuid::new_v4(),
                conversation_id: conversation,
                turn: n as i64,
                speaker: Speaker::Assistant,
                content: format!("answer {n}"),
                mode: Some(Mode::Extractive),
                citations: Some(vec![]),
                handoff_reason: None,
                event_index: 1,
            },
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn appends_form_a_verifiable_chain_and_messages_read_back_in_order() {
    for (url, _dir) in databases("chain").await {
        let store = AuditStore::connect(&url).await.unwrap();
        let conversation = Uuid::new_v4();
        for n in 1..=3 {
            let seqs = store.append(turn_batch(conversation, n == 1, n)).await.unwrap();
            assert_eq!(seqs, [2 * n as i64 - 1, 2 * n as i64], "{url}");
        }
        let events = store.events(1, 100).await.unwrap();
        assert_eq!(events.len(), 6);
        assert_eq!(verify_chain(&events, 1, GENESIS_HASH.to_string()).unwrap().0, 6);
        let messages = store.messages(conversation).await.unwrap();
        let contents: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            contents,
            [
                "question 1",
                "answer 1",
                "question 2",
                "answer 2",
                "question 3",
                "answer 3"
            ]
        );
    }
}

#[tokio::test]
async fn concurrent_writers_get_contiguous_seqs_and_a_valid_chain() {
    for (url, _dir) in databases("concurrent").await {
        let store = Arc::new(AuditStore::connect(&url).await.unwrap());
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let conversation = Uuid::new_v4();
                    for n in 1..=10 {
                        store
                            .append(turn_batch(conversation, n == 1, n + w * 100))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let events = store.events(1, 1_000).await.unwrap();
        assert_eq!(events.len(), 160, "{url}");
        assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1));
        verify_chain(&events, 1, GENESIS_HASH.to_string()).unwrap();
    }
}

#[tokio::test]
async fn a_batch_too_large_for_one_statement_is_committed_whole() {
    for (url, _dir) in databases("large_batch").await {
        let store = AuditStore::connect(&url).await.unwrap();
        let conversation = Uuid::new_v4();
        // 200 turns in one batch: 400 events and 400 messages, more rows than one INSERT
        // takes, so each table is written in pages.
        let mut batch = turn_batch(conversation, true, 0);
        for n in 1..200 {
            let turn = turn_batch(conversation, false, n);
            let offset = batch.events.len();
            batch.events.extend(turn.events);
            batch.messages.extend(turn.messages.into_iter().map(|mut m| {
                m.event_index += offset;
                m
            }));
        }
        let seqs = store.append(batch).await.unwrap();
        assert_eq!(seqs, (1..=400).collect::<Vec<i64>>(), "{url}");
        assert_eq!(store.messages(conversation).await.unwrap().len(), 400, "{url}");
        let events = store.events(1, 1_000).await.unwrap();
        verify_chain(&events, 1, GENESIS_HASH.to_string()).unwrap();
    }
}

#[tokio::test]
async fn a_message_for_an_unknown_conversation_is_rejected_without_a_trace() {
    for (url, _dir) in databases("unknown_conversation").await {
        let store = AuditStore::connect(&url).await.unwrap();
        // Its conversation row is missing: the foreign key refuses the message, and the
        // batch's events are not committed either.
        let orphan = turn_batch(Uuid::new_v4(), false, 1);
        assert!(store.append(orphan).await.is_err(), "{url}");
        assert!(store.events(1, 100).await.unwrap().is_empty(), "{url}");
        let conversation = Uuid::new_v4();
        let seqs = store.append(turn_batch(conversation, true, 1)).await.unwrap();
        assert_eq!(seqs, [1, 2], "{url}");
        assert_eq!(store.messages(conversation).await.unwrap().len(), 2, "{url}");

        // Among concurrent turns, which group commit puts together, the orphan fails
        // alone: every other turn is committed and the chain stays whole.
        let store = Arc::new(store);
        let turns: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                let batch = turn_batch(Uuid::new_v4(), n != 7, n);
                tokio::spawn(async move { store.append(batch).await.is_ok() })
            })
            .collect();
        let mut committed = Vec::new();
        for turn in turns {
            committed.push(turn.await.unwrap());
        }
        assert_eq!(committed.iter().filter(|ok| !**ok).count(), 1, "{url}");
        assert!(!committed[7], "{url}");
        let events = store.events(1, 100).await.unwrap();
        assert_eq!(events.len(), 2 + 15 * 2, "{url}");
        verify_chain(&events, 1, GENESIS_HASH.to_string()).unwrap();
    }
}

#[tokio::test]
async fn the_event_table_rejects_updates_and_deletes() {
    for (url, _dir) in databases("append-only").await {
        let store = AuditStore::connect(&url).await.unwrap();
        store.append(turn_batch(Uuid::new_v4(), true, 1)).await.unwrap();
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        for statement in [
            "UPDATE audit_events SET payload = '{}' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 2",
        ] {
            let err = sqlx::query(statement).execute(&pool).await.expect_err(statement);
            assert!(err.to_string().contains("append-only"), "{url}: {err}");
        }
        assert_eq!(store.events(1, 10).await.unwrap().len(), 2);
    }
}

/// Runs SQL as the database owner would, bypassing the append-only triggers (what an
/// attacker with owner rights could do, and what verify must catch).
async fn tamper(url: &str, statements: &[&str]) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    // One connection, so temporary tables live across the statements.
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let (disable, enable): (Vec<&str>, Vec<&str>) = if url.starts_with("sqlite") {
        (
            vec![
                "DROP TRIGGER audit_events_no_update",
                "DROP TRIGGER audit_events_no_delete",
            ],
            vec![],
        )
    } else {
        (
            vec!["ALTER TABLE audit_events DISABLE TRIGGER USER"],
            vec!["ALTER TABLE audit_events ENABLE TRIGGER USER"],
        )
    };
    for s in disable.iter().chain(statements).chain(enable.iter()) {
        sqlx::query(s)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

async fn store_with_turns(url: &str, turns: usize) -> AuditStore {
    let store = AuditStore::connect(url).await.unwrap();
    let conversation = Uuid::new_v4();
    for n in 1..=turns {
        store.append(turn_batch(conversation, n == 1, n)).await.unwrap();
    }
    store
}

#[tokio::test]
async fn every_kind_of_tampering_is_detected_at_the_first_bad_event() {
    let cases: [(&str, &[&str], i64); 4] = [
        ("update", &["UPDATE audit_events SET payload = '{\"answer\":\"changed\"}' WHERE seq = 4"], 4),
        ("delete", &["DELETE FROM messages WHERE event_seq = 3", "DELETE FROM audit_events WHERE seq = 3"], 3),
        // Two events swap places (every column but seq, which rows keep).
        ("reorder", &[
            "CREATE TEMP TABLE swapped AS SELECT * FROM audit_events WHERE seq IN (5, 6)",
            "UPDATE audit_events SET actor = (SELECT actor FROM swapped WHERE seq = 6), kind = (SELECT kind FROM swapped WHERE seq = 6), payload = (SELECT payload FROM swapped WHERE seq = 6), prev_hash = (SELECT prev_hash FROM swapped WHERE seq = 6), hash = (SELECT hash FROM swapped WHERE seq = 6) WHERE seq = 5",
            "UPDATE audit_events SET actor = (SELECT actor FROM swapped WHERE seq = 5), kind = (SELECT kind FROM swapped WHERE seq = 5), payload = (SELECT payload FROM swapped WHERE seq = 5), prev_hash = (SELECT prev_hash FROM swapped WHERE seq = 5), hash = (SELECT hash FROM swapped WHERE seq = 5) WHERE seq = 6",
        ], 5),
        ("insert", &["INSERT INTO audit_events (seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash) VALUES (7, '2026-01-01T00:00:00Z', 'x', 'answer', NULL, '{}', 'ef', 'ab', 'cd')"], 7),
    ];
    for (name, statements, bad_seq) in cases {
        for (url, _dir) in databases(&format!("tamper-{name}")).await {
            let store = store_with_turns(&url, 3).await;
            assert_eq!(store.verify().await.unwrap().error, None);
            tamper(&url, statements).await;
            let report = store.verify().await.unwrap();
            assert_eq!(report.first_bad_seq, Some(bad_seq), "{name} on {url}: {report:?}");
        }
    }
}

#[tokio::test]
async fn truncating_the_tail_is_caught_by_a_checkpoint() {
    for (url, _dir) in databases("truncate").await {
        let store = store_with_turns(&url, 3).await;
        let checkpoint = store.checkpoint().await.unwrap().unwrap();
        assert_eq!(checkpoint.seq, 6);
        assert_eq!(
            checkpoint.to_string().parse::<teller::audit::Checkpoint>().unwrap(),
            checkpoint
        );
        tamper(
            &url,
            &[
                "DELETE FROM messages WHERE event_seq >= 5",
                "DELETE FROM audit_events WHERE seq >= 5",
            ],
        )
        .await;
        // The shortened chain is internally consistent...
        assert_eq!(store.verify().await.unwrap().error, None);
        // ...but not with the checkpoint kept outside the database.
        let report = store.verify_from_checkpoint(&checkpoint).await.unwrap();
        assert_eq!(report.first_bad_seq, Some(5), "{report:?}");
    }
}

#[tokio::test]
async fn exports_stream_every_event_of_the_period_as_jsonl_or_csv() {
    for (url, _dir) in databases("export").await {
        let store = store_with_turns(&url, 3).await;
        let (from, to) = ("2000-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z");
        let mut jsonl = Vec::new();
        assert_eq!(
            store
                .export(from, to, teller::audit::ExportFormat::Jsonl, &mut jsonl)
                .await
                .unwrap(),
            6
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[1]["payload"]["answer"], "answer 1");
        let mut csv = Vec::new();
        store
            .export(from, to, teller::audit::ExportFormat::Csv, &mut csv)
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            [
                "seq",
                "occurred_at",
                "actor",
                "kind",
                "conversation_id",
                "payload",
                "payload_hash",
                "prev_hash",
                "hash"
            ]
        );
        assert_eq!(reader.records().count(), 6);
        let mut none = Vec::new();
        assert_eq!(
            store
                .export(
                    "2999-01-01T00:00:00Z",
                    "2999-02-01T00:00:00Z",
                    teller::audit::ExportFormat::Jsonl,
                    &mut none
                )
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn staff_tokens_authenticate_until_revoked() {
    for (url, _dir) in databases("tokens").await {
        let store = AuditStore::connect(&url).await.unwrap();
        let token = store
            .create_token("alice", teller::audit::StaffRole::Compliance)
            .await
            .unwrap();
        let staff = store.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(
            (staff.name.as_str(), staff.role),
            ("alice", teller::audit::StaffRole::Compliance)
        );
        assert!(
            store
                .create_token("alice", teller::audit::StaffRole::Agent)
                .await
                .is_err(),
            "names are unique"
        );
        assert!(store.authenticate("tlr_guess").await.unwrap().is_none());
        assert!(store.revoke_token("alice").await.unwrap());
        assert!(store.authenticate(&token).await.unwrap().is_none());
        assert!(!store.revoke_token("alice").await.unwrap());
        let kinds: Vec<String> = store.events(1, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["token_created", "token_revoked"]);
    }
}

#[tokio::test]
async fn purge_erases_old_content_keeps_held_conversations_and_the_chain_verifies() {
    for (url, _dir) in databases("purge").await {
        let store = AuditStore::connect(&url).await.unwrap();
        let (old, held) = (Uuid::new_v4(), Uuid::new_v4());
        store.append(turn_batch(old, true, 1)).await.unwrap();
        store.append(turn_batch(held, true, 1)).await.unwrap();
        store
            .hold(&held.to_string(), "complaint under investigation", Actor::Operator)
            .await
            .unwrap();
        let future = "2999-01-01T00:00:00.000000Z";
        let report = store.purge(future, Actor::Operator).await.unwrap();
        assert_eq!(
            (report.events_erased, report.messages_deleted, report.conversations_held),
            (2, 2, 1),
            "{url}"
        );
        assert!(store.messages(old).await.unwrap().is_empty());
        assert_eq!(store.messages(held).await.unwrap().len(), 2);
        let events = store.events(1, 100).await.unwrap();
        assert!(events
            .iter()
            .filter(|e| e.conversation_id.as_deref() == Some(&old.to_string()))
            .all(|e| e.payload.is_none()));
        assert_eq!(events.last().unwrap().kind, "retention_purged");
        let verification = store.verify().await.unwrap();
        assert_eq!(verification.error, None, "{url}");
        // The purge path erases; it cannot rewrite.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let err = sqlx::query("UPDATE audit_events SET payload = '{\"answer\":\"rewritten\"}' WHERE seq = 5")
            .execute(&pool)
            .await;
        assert!(
            err.unwrap_err().to_string().contains("append-only"),
            "{url}: rewriting a payload must be rejected"
        );
    }
}

/// A seal key for tests (a real key is read from `TELLER_AUDIT_SEAL_KEY_FILE`).
fn seal_key() -> SealKey {
    SealKey::from_hex(&"5e".repeat(32)).unwrap()
}

async fn sealed_store_with_turns(url: &str, turns: usize) -> AuditStore {
    let store = AuditStore::connect(url).await.unwrap().with_seal_key(seal_key());
    let conversation = Uuid::new_v4();
    for n in 1..=turns {
        store.append(turn_batch(conversation, n == 1, n)).await.unwrap();
    }
    store
}

#[tokio::test]
async fn a_payload_is_erased_only_when_a_purge_event_names_its_seq() {
    for (url, _dir) in databases("erase-named").await {
        let store = store_with_turns(&url, 2).await;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let err = sqlx::query("UPDATE audit_events SET payload = NULL WHERE seq = 2")
            .execute(&pool)
            .await
            .expect_err("an erasure no purge names");
        assert!(err.to_string().contains("append-only"), "{url}: {err}");
        // An owner who drops the trigger can erase, but verify names the seq.
        tamper(&url, &["UPDATE audit_events SET payload = NULL"]).await;
        let report = store.verify().await.unwrap();
        assert_eq!(report.first_bad_seq, Some(1), "{url}: {report:?}");
        assert!(report.error.unwrap().contains("no purge event names"));
    }
}

#[tokio::test]
async fn a_purge_names_what_it_erases_first_and_nothing_else_can_be_erased() {
    for (url, _dir) in databases("purge-named").await {
        let store = AuditStore::connect(&url).await.unwrap();
        let (old, held) = (Uuid::new_v4(), Uuid::new_v4());
        store.append(turn_batch(old, true, 1)).await.unwrap(); // seqs 1, 2
        store.append(turn_batch(held, true, 1)).await.unwrap(); // seqs 3, 4
        store
            .hold(&held.to_string(), "complaint", Actor::Operator)
            .await
            .unwrap(); // 5
        let report = store
            .purge("2999-01-01T00:00:00.000000Z", Actor::Operator)
            .await
            .unwrap(); // 6
        assert_eq!(report.erased_seqs, [(1, 2)], "{url}");
        let purge = store.events(6, 1).await.unwrap().remove(0);
        assert_eq!(purge.kind, "retention_purged");
        assert!(purge.payload.unwrap().contains("\"erased_seqs\":[[1,2]]"));
        let verification = store.verify().await.unwrap();
        assert_eq!(verification.error, None, "{url}");
        assert_eq!(verification.erased_events, 2);
        assert_eq!(
            verification.derived.messages, 2,
            "the held conversation's rows are proven"
        );
        assert_eq!(verification.derived.conversations_purged, 1);
        // The held conversation's events were not named: the trigger refuses them...
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let err = sqlx::query("UPDATE audit_events SET payload = NULL WHERE seq = 3")
            .execute(&pool)
            .await
            .expect_err("a held event");
        assert!(err.to_string().contains("append-only"), "{url}: {err}");
        // ...and the record of the ranges is append-only too.
        let err = sqlx::query("UPDATE audit_purges SET to_seq = 4")
            .execute(&pool)
            .await
            .expect_err("widening a purge");
        assert!(err.to_string().contains("append-only"), "{url}: {err}");
        // Erasing it anyway, past the trigger, is caught.
        tamper(
            &url,
            &[
                "DELETE FROM messages WHERE event_seq = 3",
                "UPDATE audit_events SET payload = NULL WHERE seq = 3",
            ],
        )
        .await;
        let report = store.verify().await.unwrap();
        assert_eq!(report.first_bad_seq, Some(3), "{url}: {report:?}");
    }
}

#[tokio::test]
async fn rewritten_deleted_or_inserted_transcript_rows_are_caught() {
    let cases: [(&str, &[&str], i64, &str); 6] = [
        ("message text", &["UPDATE messages SET content = 'call 0800 000 000' WHERE event_seq = 4"], 4, "rewritten"),
        ("message turn", &["UPDATE messages SET turn = 7 WHERE event_seq = 3"], 3, "rewritten"),
        ("message deleted", &["DELETE FROM messages WHERE event_seq = 6"], 6, "deleted"),
        (
            "message inserted",
            &["INSERT INTO messages (id, conversation_id, turn, role, content, created_at, event_seq) \
               SELECT 'forged', conversation_id, 9, 'assistant', 'forged', created_at, 5 FROM messages WHERE event_seq = 4"],
            5,
            "inserted",
        ),
        ("token hash swapped", &["UPDATE conversations SET token_hash = 'attacker'"], 1, "rewritten"),
        (
            "conversation inserted",
            &["INSERT INTO conversations (id, token_hash, lang, created_at) VALUES ('c-forged', 'h', 'en', '2026-01-01T00:00:00Z')"],
            0,
            "opened by no event",
        ),
    ];
    for (name, statements, bad_seq, why) in cases {
        for (url, _dir) in databases(&format!("derived-{name}")).await {
            let store = store_with_turns(&url, 3).await;
            let intact = store.verify().await.unwrap();
            assert_eq!(intact.error, None, "{name} on {url}");
            assert_eq!((intact.derived.messages, intact.derived.conversations), (6, 1));
            // Derived rows have no trigger: plain SQL changes them.
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            for s in statements {
                sqlx::query(s)
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            let report = store.verify().await.unwrap();
            assert_eq!(report.first_bad_seq, Some(bad_seq), "{name} on {url}: {report:?}");
            assert!(
                report.error.as_deref().unwrap_or("").contains(why),
                "{name}: {report:?}"
            );
        }
    }
}

/// Appends an event after the head with a correctly computed hash: what someone with SQL
/// but without the seal key can do.
fn forged_tail(head: &StoredEvent) -> String {
    let payload = r#"{"answer":"your refund is approved"}"#;
    let digest = teller::audit::chain::payload_hash(payload);
    let seq = head.seq + 1;
    let at = "2026-12-01T00:00:00.000000Z";
    let hash = event_hash(
        &head.hash,
        seq,
        at,
        "assistant",
        "answer",
        head.conversation_id.as_deref(),
        &digest,
    );
    format!(
        "INSERT INTO audit_events (seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash) \
         VALUES ({seq}, '{at}', 'assistant', 'answer', '{}', '{payload}', '{digest}', '{}', '{hash}')",
        head.conversation_id.as_deref().unwrap(),
        head.hash
    )
}

#[tokio::test]
async fn a_forged_tail_passes_the_chain_but_not_the_seal() {
    for (url, _dir) in databases("forged-tail").await {
        let store = sealed_store_with_turns(&url, 3).await;
        let intact = store.verify().await.unwrap();
        assert_eq!(intact.error, None, "{url}");
        assert_eq!(
            intact.seals,
            SealCheck {
                checked: true,
                sealed_events: 3
            },
            "one seal per commit"
        );
        let head = store.events(6, 1).await.unwrap().remove(0);
        tamper(&url, &[&forged_tail(&head)]).await;
        // Without the key, the forged event chains perfectly...
        let unkeyed = AuditStore::connect(&url).await.unwrap().verify().await.unwrap();
        assert_eq!(
            (unkeyed.error.as_deref(), unkeyed.seals.checked),
            (None, false),
            "{url}"
        );
        // ...with it, the head carries no seal.
        let report = store.verify().await.unwrap();
        assert_eq!(report.first_bad_seq, Some(7), "{url}: {report:?}");
        assert!(report.error.unwrap().contains("no seal"));
    }
}

#[tokio::test]
async fn a_chain_recomputed_from_an_altered_event_breaks_the_next_seal() {
    for (url, _dir) in databases("rechained").await {
        let store = sealed_store_with_turns(&url, 3).await;
        let mut events = store.events(1, 100).await.unwrap();
        // Alter event 3 (turn 2's question) and recompute every hash from there.
        events[2].payload = Some(r#"{"content":"rewritten","turn":2}"#.into());
        events[2].payload_hash = teller::audit::chain::payload_hash(events[2].payload.as_deref().unwrap());
        let mut statements = Vec::new();
        for i in 2..events.len() {
            let prev = events[i - 1].hash.clone();
            let e = &mut events[i];
            e.prev_hash = prev;
            e.hash = event_hash(
                &e.prev_hash,
                e.seq,
                &e.occurred_at,
                &e.actor,
                &e.kind,
                e.conversation_id.as_deref(),
                &e.payload_hash,
            );
            statements.push(format!(
                "UPDATE audit_events SET payload = '{}', payload_hash = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
                e.payload.as_deref().unwrap(),
                e.payload_hash,
                e.prev_hash,
                e.hash,
                e.seq
            ));
        }
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        tamper(&url, &statements).await;
        assert_eq!(
            verify_chain(&store.events(1, 100).await.unwrap(), 1, GENESIS_HASH.into()).map(|r| r.0),
            Ok(6)
        );
        let report = store.verify().await.unwrap();
        // Turn 2's commit (seqs 3–4) is sealed at 4.
        assert_eq!(report.first_bad_seq, Some(4), "{url}: {report:?}");
        assert!(report.error.unwrap().contains("seal does not verify"));
    }
}

#[tokio::test]
async fn a_cut_tail_is_caught_by_the_checkpoint_file_the_server_writes() {
    for (url, dir) in databases("cut-tail").await {
        let file = dir.path().join("checkpoints.jsonl");
        let store = Arc::new(
            sealed_store_with_turns(&url, 2)
                .await
                .with_checkpoint_file(file.clone()),
        );
        let writer = CheckpointWriter::new(store.clone(), file.clone(), std::time::Duration::from_secs(60));
        assert_eq!(writer.write_once().await.unwrap().map(|c| c.seq), Some(4));
        assert_eq!(writer.write_once().await.unwrap(), None, "the head has not moved");
        store.append(turn_batch(Uuid::new_v4(), true, 1)).await.unwrap();
        assert_eq!(writer.write_once().await.unwrap().map(|c| c.seq), Some(6));
        let intact = store.verify().await.unwrap();
        assert_eq!(intact.error, None, "{url}");
        assert_eq!(intact.checkpoint_file.map(|c| c.seq), Some(6));
        // Cut back to the previous commit: the head at 4 is sealed and chains...
        tamper(
            &url,
            &[
                "DELETE FROM messages WHERE event_seq >= 5",
                "DELETE FROM conversations WHERE id NOT IN (SELECT conversation_id FROM messages)",
                "DELETE FROM audit_events WHERE seq >= 5",
            ],
        )
        .await;
        let no_file = AuditStore::connect(&url).await.unwrap().with_seal_key(seal_key());
        assert_eq!(no_file.verify().await.unwrap().error, None, "{url}");
        // ...but the checkpoint file says the log reached 6.
        let report = store.verify().await.unwrap();
        assert_eq!(report.first_bad_seq, Some(5), "{url}: {report:?}");
        // A checkpoint line forged without the key is refused.
        std::fs::write(
            &file,
            format!(
                "{{\"seq\":4,\"hash\":\"{}\",\"at\":\"x\",\"seal\":null}}\n",
                "0".repeat(64)
            ),
        )
        .unwrap();
        let report = store.verify().await.unwrap();
        assert!(report.error.unwrap().contains("not sealed by the key"), "{url}");
    }
}
