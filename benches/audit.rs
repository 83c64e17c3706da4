//! Audit-store benchmark (issue targets: append ≥ 5,000 events/s on PostgreSQL with
//! durable commits; verify ≥ 100,000 events/s; export of 100,000 events in bounded
//! memory).
//!
//! Run: `cargo bench --bench audit` — PostgreSQL at `TELLER_BENCH_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`, in a schema of its own), or a
//! `sqlite://` URL. `TELLER_BENCH_EVENTS` (default 100,000) events are appended by
//! `TELLER_BENCH_WRITERS` (default 64) concurrent writers, three events per turn.

use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use teller::audit::{
    new_record_id, verify_chain, Actor, AuditStore, EventBatch, EventKind, ExportFormat, NewConversation, NewEvent,
    NewMessage, SealKey, GENESIS_HASH,
};
use teller::conversation::{Mode, Speaker};
use uuid::Uuid;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What a chat turn writes: three events, the customer's and the assistant's message rows,
/// and the conversation row on its first turn.
fn turn(conversation: Uuid, n: usize, first: bool) -> EventBatch {
    let event = |kind: EventKind, payload: serde_json::Value| NewEvent {
        actor: Actor::Customer,
        kind,
        conversation_id: Some(conversation),
        payload,
    };
    EventBatch {
        events: vec![
            event(
                EventKind::MessageReceived,
                json!({ "turn": n, "content": "What is the annual fee for the Gold card?" }),
            ),
            event(
                EventKind::Retrieval,
                json!({ "hits": [{ "source_id": "faq-cards-001", "score": 12.5 }, { "source_id": "doc-credit-card-terms", "score": 9.1 }] }),
            ),
            event(
                EventKind::Answer,
                json!({ "mode": "approved", "answer": "The Gold Card's annual fee is HVD 600; it is waived in the first year.", "templates": [] }),
            ),
        ],
        conversation: first.then(|| NewConversation {
            id: conversation,
            token_hash: "0".repeat(64),
            lang: "en".into(),
        }),
        messages: [
            (Speaker::Customer, "What is the annual fee for the Gold card?", 0),
            (
                Speaker::Assistant,
                "The Gold Card's annual fee is HVD 600; it is waived in the first year.",
                2,
            ),
        ]
        .into_iter()
        .map(|(speaker, content, event_index)| NewMessage {
            id: new_record_id(),
            conversation_id: conversation,
            turn: n as i64,
            speaker,
            content: content.into(),
            mode: (speaker == Speaker::Assistant).then_some(Mode::Approved),
            citations: None,
            handoff_reason: None,
            event_index,
        })
        .collect(),
        ..Default::default()
    }
}

async fn database_url() -> String {
    let url =
        std::env::var("TELLER_BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if url.starts_with("sqlite") {
        return url;
    }
    use sqlx::Connection;
    let schema = format!("bench_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("database reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::var("TELLER_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let writers: usize = std::env::var("TELLER_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let url = database_url().await;
    let store = Arc::new(AuditStore::connect(&url).await?);
    println!(
        "store: {}",
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres (synchronous_commit as configured)"
        }
    );

    // One writer, one turn at a time: the cost of a durable commit per turn.
    let single = 300;
    let started = Instant::now();
    for n in 0..single {
        store.append(turn(new_record_id(), n, true)).await?;
    }
    let rate = (single * 3) as f64 / started.elapsed().as_secs_f64();
    println!(
        "append, 1 writer: {rate:.0} events/s ({:.2} ms per turn)",
        started.elapsed().as_secs_f64() * 1e3 / single as f64
    );

    // Group commit, with and without seals, alternating so neither gets the smaller table.
    let sealed = Arc::new(
        AuditStore::connect(&url)
            .await?
            .with_seal_key(SealKey::from_hex(&"5e".repeat(32)).unwrap()),
    );
    let turns = events / 3;
    let rounds = 2;
    let mut elapsed = [0.0f64; 2];
    for round in 0..2 * rounds {
        let writer = if round % 2 == 0 { &store } else { &sealed };
        let started = Instant::now();
        let share = turns / (2 * rounds);
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = writer.clone();
                tokio::spawn(async move {
                    let conversation = new_record_id();
                    for n in (w..share).step_by(writers) {
                        store.append(turn(conversation, n, n == w)).await.expect("append");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        elapsed[round % 2] += started.elapsed().as_secs_f64();
    }
    let per_kind = (turns / (2 * rounds)) * rounds * 3;
    for (name, seconds) in ["unsealed", "sealed"].iter().zip(elapsed) {
        println!(
            "append, {writers} writers (group commit), {name}: {per_kind} events in {seconds:.2} s = {:.0} events/s",
            per_kind as f64 / seconds
        );
    }

    // The chain alone (what verify checked before seals and derived rows), then all of it.
    let started = Instant::now();
    let (mut from, mut prev, mut count) = (1, GENESIS_HASH.to_string(), 0);
    loop {
        let page = store.events(from, 5_000).await?;
        if page.is_empty() {
            break;
        }
        count += page.len();
        let (last, hash) = verify_chain(&page, from, prev)?;
        (from, prev) = (last + 1, hash);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "verify, chain only: {count} events in {seconds:.2} s = {:.0} events/s",
        count as f64 / seconds
    );
    let started = Instant::now();
    let report = sealed.verify().await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.error.is_none(), "log not intact: {report:?}");
    println!(
        "verify, all checks (chain, erasures, {} seals, {} messages and {} conversations re-derived): {} events in {seconds:.2} s = {:.0} events/s",
        report.seals.sealed_events,
        report.derived.messages,
        report.derived.conversations,
        report.events,
        report.events as f64 / seconds
    );

    let before = peak_rss_kib();
    let started = Instant::now();
    let exported = store
        .export(
            "2000-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            ExportFormat::Jsonl,
            &mut std::io::sink(),
        )
        .await?;
    println!(
        "export: {exported} events as JSONL in {:.2} s; peak RSS {} MiB before, {} MiB after",
        started.elapsed().as_secs_f64(),
        before / 1024,
        peak_rss_kib() / 1024
    );
    Ok(())
}
