//! The audit store on both databases: SQLite always, PostgreSQL whenever
//! `TEST_DATABASE_URL` is set (CI sets it).

use serde_json::json;
use std::sync::Arc;
use teller::audit::{verify_chain, AuditStore, EventBatch, NewConversation, NewEvent, NewMessage, GENESIS_HASH};
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

async fn postgres_schema(url: &str) -> String {
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
                actor: "customer".into(),
                kind: "message_received".into(),
                conversation_id: Some(conversation),
                payload: json!({ "content": format!("question {n}"), "turn": n }),
            },
            NewEvent {
                actor: "assistant".into(),
                kind: "answer".into(),
                conversation_id: Some(conversation),
                payload: json!({ "answer": format!("answer {n}"), "score": 0.1 + n as f64 }),
            },
        ],
        messages: vec![
            NewMessage {
                id: Uuid::new_v4(),
                conversation_id: conversation,
                turn: n as i64,
                role: "user".into(),
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
                role: "assistant".into(),
                content: format!("answer {n}"),
                mode: Some("extractive".into()),
                citations: Some(json!([])),
                handoff_reason: None,
                event_index: 1,
            },
        ],
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
