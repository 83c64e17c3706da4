//! The bare baseline of the load benchmark (BENCHMARKS.md, "Chat under load"): a minimal
//! axum server whose `POST /v1/chat` does only what every answered turn of Teller cannot
//! do without, so Teller's throughput and tail are read as ratios to it rather than as
//! absolutes on a shared box:
//!
//! - the same BM25 query on the same index (Qdrant Edge, or a Qdrant server with
//!   `QDRANT_URL`), through the same [`Index::search_chunks`] with the pipeline's `k`;
//! - the same audit commit: a turn's batch (a new conversation, the three hash-chained
//!   events `message_received`, `retrieval`, `answer`, and the two message rows) through
//!   the same [`AuditStore::append`] and its group commit, before the reply is sent.
//!
//! Nothing else: no screening, no answer policy, no passage reading, no spool, no
//! metrics, no middleware. The answer is the best passage's text (what an approved FAQ
//! answer returns verbatim).
//!
//! It reads the same settings as `teller serve` (`TELLER_DATA_DIR`, `DATABASE_URL`, ...)
//! and serves an index `teller serve` or `teller ingest` has already filled; run it
//! while Teller is stopped (one process at a time opens a Qdrant Edge directory).
//!
//! `cargo run --release --example baseline -- [ADDR]` (default 127.0.0.1:8081)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use teller::audit::{new_record_id, Actor, AuditStore, EventBatch, EventKind, NewConversation, NewEvent, NewMessage};
use teller::config::Settings;
use teller::conversation::{Citation, Mode, Speaker};
use teller::lang::Lang;
use teller::retrieval::{distinct_sources, Index, SearchOptions};
use uuid::Uuid;

#[derive(Clone)]
struct Baseline {
    index: Index,
    audit: Arc<AuditStore>,
    k: usize,
}

#[derive(Deserialize)]
struct Turn {
    message: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".into());
    let settings = Settings::load()?;
    let index = Index::open(&settings).await?;
    anyhow::ensure!(
        index.store.count().await? > 0,
        "the index in {} is empty: start `teller serve` once (or run `teller ingest`) first",
        settings.data_dir.display()
    );
    let audit = Arc::new(teller::startup::open_audit(&settings).await?);
    let state = Baseline {
        index,
        audit,
        k: settings.pipeline_options().k,
    };
    let app = Router::new().route("/v1/chat", post(chat)).with_state(state);
    let listener = teller::server::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("baseline listening on http://{addr}");
    // As Teller does: streamed or not, replies are small writes.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn chat(
    State(baseline): State<Baseline>,
    turn: Result<Json<Turn>, JsonRejection>,
) -> Result<Json<serde_json::Value>, (StatusCode, Json<serde_json::Value>)> {
    let Json(turn) = turn.map_err(|e| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": { "code": "invalid_request", "message": e.body_text() } })),
        )
    })?;
    let started = std::time::Instant::now();
    let lang = Lang::detect(&turn.message);
    let options = SearchOptions {
        k: baseline.k,
        lang: Some(lang),
        ..Default::default()
    };
    let hits = baseline
        .index
        .search_chunks(&turn.message, &options)
        .await
        .map_err(|e| unavailable("retrieval_unavailable", e))?;
    let retrieval_ms = started.elapsed().as_secs_f64() * 1e3;
    let sources = distinct_sources(hits, baseline.k);
    let answer = sources.first().map_or_else(String::new, |h| h.chunk.body().to_string());
    let citations: Vec<Citation> = sources
        .iter()
        .take(1)
        .map(|h| Citation {
            source_id: h.chunk.source_id.clone(),
            title: h.chunk.title.clone(),
            snippet: h.chunk.body().chars().take(240).collect(),
            score: h.score,
        })
        .collect();
    let conversation_id = new_record_id();
    let message_id = new_record_id();
    let batch = turn_batch(
        &turn.message,
        lang,
        conversation_id,
        message_id,
        &sources,
        &answer,
        &citations,
        retrieval_ms,
    );
    baseline
        .audit
        .append(batch)
        .await
        .map_err(|e| unavailable("audit_unavailable", e.into()))?;
    Ok(Json(json!({
        "conversation_id": conversation_id,
        "message_id": message_id,
        "answer": answer,
        "mode": Mode::Approved,
        "citations": citations,
    })))
}

/// An approved turn's record, in the shape the pipeline writes (`chat::record`): the
/// conversation, three events and two messages.
#[allow(clippy::too_many_arguments)]
fn turn_batch(
    message: &str,
    lang: Lang,
    conversation_id: Uuid,
    message_id: Uuid,
    sources: &[teller::retrieval::Hit],
    answer: &str,
    citations: &[Citation],
    retrieval_ms: f64,
) -> EventBatch {
    let id = Some(conversation_id);
    let user_message_id = new_record_id();
    let event = |actor, kind, payload| NewEvent {
        actor,
        kind,
        conversation_id: id,
        payload,
    };
    let hits: Vec<_> = sources
        .iter()
        .map(|h| json!({ "source_id": h.chunk.source_id, "chunk_id": h.chunk.id, "score": h.score }))
        .collect();
    let events = vec![
        event(
            Actor::Customer,
            EventKind::MessageReceived,
            json!({ "message_id": user_message_id, "turn": 1, "lang": lang, "content": message, "masked": [],
                    "screen": { "escalation": null, "injection": false, "advice": false, "signals": {} } }),
        ),
        event(
            Actor::Customer,
            EventKind::Retrieval,
            json!({ "query": message, "backend": "bm25", "hits": hits }),
        ),
        event(
            Actor::Assistant,
            EventKind::Answer,
            json!({ "message_id": message_id, "turn": 1, "mode": Mode::Approved, "answer": answer,
                    "citations": citations, "handoff": null, "templates": [], "model": null, "usage": null,
                    "fallback": null, "flags": [], "latency_ms": { "condense": 0.0, "retrieval": retrieval_ms, "answer": 0.0 } }),
        ),
    ];
    let row = |id, speaker, content: &str, event_index| {
        NewMessage::text(id, conversation_id, 1, speaker, content, event_index)
    };
    EventBatch {
        conversation: Some(NewConversation {
            id: conversation_id,
            token_hash: teller::auth::hash(&teller::auth::new_conversation_token()),
            lang: lang.to_string(),
        }),
        events,
        messages: vec![
            row(user_message_id, Speaker::Customer, message, 0),
            NewMessage {
                mode: Some(Mode::Approved),
                citations: Some(citations.to_vec()),
                ..row(message_id, Speaker::Assistant, answer, 2)
            },
        ],
        ..Default::default()
    }
}

fn unavailable(code: &str, error: anyhow::Error) -> (StatusCode, Json<serde_json::Value>) {
    eprintln!("{code}: {error:#}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": { "code": code, "message": "try again later" } })),
    )
}
