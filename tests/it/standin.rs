//! An OpenAI-compatible chat-completions stand-in, at the protocol level: it streams
//! `chat.completion.chunk` events like a real server, records every request body, and
//! counts the tokens it managed to send (to observe cancellation).
//!
//! Shared with `examples/openai_standin.rs`, which the load benchmarks run.

#![allow(
    dead_code,
    reason = "shared with examples/openai_standin.rs, which uses only part of it"
)]

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the stand-in answers and how fast.
#[derive(Clone)]
pub struct Script {
    /// The reply, streamed one whitespace-separated token at a time.
    pub reply: String,
    /// Pause before the first token.
    pub first_token_delay: Duration,
    /// Pause between tokens.
    pub token_interval: Duration,
    /// Answer every request with this HTTP status instead (e.g. 500, 429).
    pub fail_status: Option<u16>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            reply: "The answer is in the passages [1].".into(),
            first_token_delay: Duration::ZERO,
            token_interval: Duration::ZERO,
            fail_status: None,
        }
    }
}

#[derive(Clone, Default)]
pub struct Recorder {
    pub requests: Arc<Mutex<Vec<serde_json::Value>>>,
    pub tokens_sent: Arc<AtomicUsize>,
    /// Embedding requests still to fail with HTTP 500 before answering.
    pub embedding_failures: Arc<AtomicUsize>,
}

impl Recorder {
    /// Keeps the most recent requests only, so a long load run stays small.
    fn record(&self, body: serde_json::Value) {
        let mut requests = self.requests.lock().unwrap();
        if requests.len() == 1_000 {
            requests.remove(0);
        }
        requests.push(body);
    }

    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.requests.lock().unwrap().clone()
    }

    pub fn tokens_sent(&self) -> usize {
        self.tokens_sent.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct StandIn {
    script: Arc<Mutex<Script>>,
    recorder: Recorder,
}

/// A running stand-in.
pub struct StandInServer {
    pub base_url: String,
    pub recorder: Recorder,
    script: Arc<Mutex<Script>>,
}

impl StandInServer {
    pub async fn start(script: Script) -> Self {
        Self::start_on("127.0.0.1:0", script).await
    }

    pub async fn start_on(addr: &str, script: Script) -> Self {
        let script = Arc::new(Mutex::new(script));
        let recorder = Recorder::default();
        let state = StandIn {
            script: script.clone(),
            recorder: recorder.clone(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .route("/v1/embeddings", post(embeddings))
            .with_state(state);
        // As real model servers do: tokens are small writes, and Nagle's algorithm would
        // hold each one back until the previous is acknowledged (up to 40 ms).
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base_url,
            recorder,
            script,
        }
    }

    pub fn set_script(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }
}

/// Dimension of the stand-in's embeddings.
pub const EMBEDDING_DIM: usize = 64;

/// A deterministic bag-of-words embedding: each lower-cased word (or Han character)
/// adds to one of `EMBEDDING_DIM` buckets; the vector is L2-normalised. Texts sharing
/// words point the same way, which is all a retrieval test needs from a dense model.
pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    let lower = text.to_lowercase();
    let words = lower
        .split(|c: char| !c.is_alphanumeric())
        .flat_map(|w| {
            if w.chars().any(|c| c as u32 >= 0x4E00) {
                w.chars().map(String::from).collect()
            } else {
                vec![w.to_string()]
            }
        })
        .filter(|w| w.len() > 2 || w.chars().any(|c| c as u32 >= 0x4E00));
    for word in words {
        let h = word.bytes().fold(1469598103934665603u64, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        });
        v[(h % dim as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

async fn embeddings(State(state): State<StandIn>, Json(body): Json<serde_json::Value>) -> Response {
    state.recorder.record(body.clone());
    let failures = &state.recorder.embedding_failures;
    if failures.load(Ordering::SeqCst) > 0 {
        failures.fetch_sub(1, Ordering::SeqCst);
        let error = serde_json::json!({ "error": { "message": "overloaded", "type": "server_error" } });
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(error)).into_response();
    }
    let inputs: Vec<String> = match &body["input"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        _ => vec![],
    };
    // A model called "wrong-dim" answers with the wrong dimension.
    let dim = if body["model"] == "wrong-dim" {
        EMBEDDING_DIM / 2
    } else {
        EMBEDDING_DIM
    };
    let data: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| serde_json::json!({ "object": "embedding", "index": i, "embedding": embed(text, dim) }))
        .collect();
    Json(serde_json::json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": { "prompt_tokens": 1, "total_tokens": 1 },
    }))
    .into_response()
}

fn chunk(model: &str, content: Option<&str>, usage: Option<(usize, usize)>) -> serde_json::Value {
    let choices = match content {
        Some(text) => {
            serde_json::json!([{ "index": 0, "delta": { "role": "assistant", "content": text }, "finish_reason": null }])
        }
        None => serde_json::json!([]),
    };
    let mut value = serde_json::json!({
        "id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 1_700_000_000u64,
        "model": model, "choices": choices,
    });
    if let Some((prompt, completion)) = usage {
        value["usage"] = serde_json::json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion });
    }
    value
}

async fn completions(State(state): State<StandIn>, Json(body): Json<serde_json::Value>) -> Response {
    state.recorder.record(body.clone());
    let script = state.script.lock().unwrap().clone();
    if let Some(status) = script.fail_status {
        let status = axum::http::StatusCode::from_u16(status).unwrap();
        return (
            status,
            Json(serde_json::json!({ "error": { "message": "stand-in failure", "type": "server_error" } })),
        )
            .into_response();
    }
    let model = body["model"].as_str().unwrap_or("stand-in").to_string();
    let prompt_chars: usize = body["messages"]
        .as_array()
        .map_or(0, |m| m.iter().map(|m| m["content"].as_str().map_or(0, str::len)).sum());
    let tokens: Vec<String> = script.reply.split_inclusive(' ').map(str::to_string).collect();
    let sent = state.recorder.tokens_sent.clone();
    let stream = async_stream(move |tx| async move {
        if !script.first_token_delay.is_zero() {
            tokio::time::sleep(script.first_token_delay).await;
        }
        let count = tokens.len();
        for (i, token) in tokens.into_iter().enumerate() {
            // tokio's timer ticks in milliseconds: even a zero sleep would wait for the next
            // tick, so an "instant" model would take a millisecond per token.
            if i > 0 && !script.token_interval.is_zero() {
                tokio::time::sleep(script.token_interval).await;
            }
            if tx
                .send(Event::default().data(chunk(&model, Some(&token), None).to_string()))
                .await
                .is_err()
            {
                return;
            }
            sent.fetch_add(1, Ordering::SeqCst);
        }
        let _ = tx
            .send(Event::default().data(chunk(&model, None, Some((prompt_chars / 4, count))).to_string()))
            .await;
        let _ = tx.send(Event::default().data("[DONE]")).await;
    });
    Sse::new(stream).into_response()
}

fn async_stream<F, Fut>(producer: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(producer(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}
