//! Live handoff benchmark (issue #14 targets): customer message → colleague's stream and
//! colleague's message → customer's events stream, p95 ≤ 200 ms on one instance and
//! ≤ 500 ms across two, at 200 concurrent conversations with colleagues; and no message
//! lost or repeated across 100 random disconnect/reconnects of either side.
//!
//! Run: `cargo bench --bench handoff` — spawns release `teller serve` processes on the
//! PostgreSQL database at `TELLER_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, a schema of its own per run).
//! `TELLER_BENCH_CONVERSATIONS` (default 200) pairs of a customer and a colleague each
//! exchange `TELLER_BENCH_ROUNDS` (default 10) messages each way, all at once.
//! `TELLER_BENCH_BIN` runs another build of `teller` (a baseline) instead of this one's.

#[path = "../tests/it/sse.rs"]
mod sse;

use rand::Rng;
use serde_json::{json, Value};
use sse::EventStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use teller::audit::{AuditStore, StaffRole};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Served {
    _child: tokio::process::Child,
    base: String,
    _data: tempfile::TempDir,
}

async fn serve(database_url: &str) -> Served {
    let data = tempfile::TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var("TELLER_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_teller").into());
    let child = tokio::process::Command::new(bin)
        .arg("serve")
        .env("RUST_LOG", "error")
        .env("TELLER_BIND", format!("127.0.0.1:{port}"))
        .env("TELLER_DATA_DIR", data.path())
        .env("TELLER_KB_DIR", root.join("tests/fixtures/kb"))
        .env("TELLER_PROMPTS_DIR", root.join("prompts"))
        .env("DATABASE_URL", database_url)
        .env("TELLER_MAX_CONCURRENT_TURNS", "512")
        // 200 conversations from one address: the abuse limits would refuse most of them.
        .env("TELLER_RATE_LIMIT_PER_MINUTE", "0")
        .env("TELLER_CONVERSATION_RATE_LIMIT_PER_MINUTE", "0")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(120);
    while !reqwest::get(format!("{base}/healthz"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < until, "teller serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Served {
        _child: child,
        base,
        _data: data,
    }
}

async fn schema(url: &str) -> String {
    use sqlx::Connection;
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(url).await.expect("the bench database");
    sqlx::query(&format!("CREATE SCHEMA {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{name}")
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let response = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

/// A customer and the colleague who took them over.
struct Pair {
    customer_base: String,
    agent_base: String,
    id: String,
    token: String,
    agent: String,
}

/// Latencies of one direction, and what each side received.
#[derive(Default)]
struct Tally {
    to_agent: Vec<f64>,
    /// Of `to_agent`, the customer's `POST /v1/chat` alone (the relayed turn).
    chat_reply: Vec<f64>,
    to_customer: Vec<f64>,
    sent: usize,
    received: usize,
    lost: usize,
    repeated: usize,
}

/// Waits for `text` on a stream. Every message event is counted: a repeat of one already
/// seen is a duplicate; one that never comes is lost.
async fn await_text(
    stream: &mut EventStream,
    event: &str,
    text: &str,
    seen: &mut Vec<String>,
    tally: &mut Tally,
) -> Option<Instant> {
    let until = Instant::now() + Duration::from_secs(10);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Some(e) = stream.next_named(event, left).await else {
            break;
        };
        // An event seen twice (by its id) is a repeat, whatever its text.
        if seen.contains(&e.id) {
            tally.repeated += 1;
            continue;
        }
        seen.push(e.id.clone());
        tally.received += 1;
        let got = e.data["text"].as_str().unwrap_or_default();
        if got == text {
            return Some(Instant::now());
        }
    }
    tally.lost += 1;
    None
}

async fn exchange(pair: Pair, rounds: usize, disconnects: Arc<AtomicUsize>, client: reqwest::Client) -> Tally {
    let mut tally = Tally::default();
    let customer_url = format!("{}/v1/conversations/{}/events", pair.customer_base, pair.id);
    let agent_url = format!("{}/v1/agent/stream", pair.agent_base);
    let mut customer = EventStream::open(&client, &customer_url, &pair.token, None)
        .await
        .1
        .unwrap();
    let mut agent = EventStream::open(&client, &agent_url, &pair.agent, None)
        .await
        .1
        .unwrap();
    let (mut customer_seen, mut agent_seen) = (Vec::new(), Vec::new());
    for n in 0..rounds {
        // A random disconnect of either side, while nothing is waiting for it: what is
        // sent meanwhile must arrive after the reconnect, once.
        let take = || {
            disconnects
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        };
        if rand::rng().random_bool(0.25) && take() {
            if rand::rng().random_bool(0.5) {
                let last = customer.last_id.clone();
                drop(customer);
                customer = EventStream::open(&client, &customer_url, &pair.token, last.as_deref())
                    .await
                    .1
                    .unwrap();
            } else {
                let last = agent.last_id.clone();
                drop(agent);
                agent = EventStream::open(&client, &agent_url, &pair.agent, last.as_deref())
                    .await
                    .1
                    .unwrap();
            }
        }
        // No conversation id in the text: a UUID's digits can pass for a card number, and
        // the masker would rightly change the text on its way (each stream only sees its
        // own conversation, so the round number is enough).
        let text = format!("the customer says {n}");
        let sent = Instant::now();
        post(
            &client,
            format!("{}/v1/chat", pair.customer_base),
            "",
            json!({ "conversation_id": pair.id, "conversation_token": pair.token, "message": text }),
        )
        .await;
        tally.chat_reply.push(sent.elapsed().as_secs_f64() * 1e3);
        tally.sent += 1;
        if let Some(at) = await_text(&mut agent, "customer_message", &text, &mut agent_seen, &mut tally).await {
            tally.to_agent.push((at - sent).as_secs_f64() * 1e3);
        }
        let text = format!("the colleague says {n}");
        let sent = Instant::now();
        post(
            &client,
            format!("{}/v1/agent/conversations/{}/messages", pair.agent_base, pair.id),
            &pair.agent,
            json!({ "text": text }),
        )
        .await;
        tally.sent += 1;
        if let Some(at) = await_text(&mut customer, "message", &text, &mut customer_seen, &mut tally).await {
            tally.to_customer.push((at - sent).as_secs_f64() * 1e3);
        }
    }
    tally
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(label: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  {label:<28} n={:>5}  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        values.len(),
        percentile(&values, 0.50),
        percentile(&values, 0.95),
        percentile(&values, 0.99),
        values.last().copied().unwrap_or(f64::NAN)
    );
}

/// The sums and counts of the server's stage and route latency histograms, by series
/// (`stage=receive`, `route=/v1/chat`, ...).
async fn histograms(client: &reqwest::Client, base: &str) -> std::collections::HashMap<String, (f64, f64)> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = std::collections::HashMap::<String, (f64, f64)>::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        for (metric, label) in [
            ("teller_stage_seconds", "stage"),
            ("teller_http_request_seconds", "route"),
        ] {
            for (suffix, sum) in [("_sum{", true), ("_count{", false)] {
                let Some(labels) = series.strip_prefix(metric).and_then(|r| r.strip_prefix(suffix)) else {
                    continue;
                };
                let Some(name) = labels
                    .split(',')
                    .find_map(|l| l.trim_end_matches('}').strip_prefix(&format!("{label}=\"")))
                else {
                    continue;
                };
                let entry = out
                    .entry(format!("{label}={}", name.trim_end_matches('"')))
                    .or_default();
                if sum {
                    entry.0 += value;
                } else {
                    entry.1 += value;
                }
            }
        }
    }
    out
}

/// The mean of each series between two scrapes, in ms: where the server spent a turn.
fn report_server(
    name: &str,
    before: &std::collections::HashMap<String, (f64, f64)>,
    after: &std::collections::HashMap<String, (f64, f64)>,
) {
    let mut series: Vec<_> = after
        .iter()
        .filter_map(|(k, (sum, count))| {
            let (s0, c0) = before.get(k).copied().unwrap_or_default();
            let n = count - c0;
            (n > 0.0).then(|| (k.clone(), (sum - s0) / n * 1e3, n))
        })
        .filter(|(k, ..)| {
            [
                "stage=receive",
                "stage=audit",
                "route=/v1/chat",
                "route=/v1/agent/conversations/{id}/messages",
            ]
            .contains(&k.as_str())
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = series
        .iter()
        .map(|(k, mean, n)| format!("{k} {mean:.1} ms (n={n})"))
        .collect();
    println!("  server {name}, means: {}", parts.join("; "));
}

/// Sets up `conversations` pairs (customer on `customers`, colleague on `agents`), runs the
/// exchange and prints the figures.
async fn scenario(
    label: &str,
    url: &str,
    customers: &Served,
    agents: &Served,
    conversations: usize,
    rounds: usize,
    disconnects: usize,
) {
    // Idle connections are dropped before the server's 10 s keep-alive limit closes them,
    // so a request never goes out on a connection the server is closing.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let store = AuditStore::connect(url).await.unwrap();
    let mut pairs = Vec::new();
    for i in 0..conversations {
        let agent = store
            .create_token(&format!("{label}-agent-{i}"), StaffRole::Agent)
            .await
            .unwrap();
        let reply = post(
            &client,
            format!("{}/v1/chat", customers.base),
            "",
            json!({ "message": "What is the annual fee for the Gold card?" }),
        )
        .await;
        let (id, token) = (
            reply["conversation_id"].as_str().unwrap().to_string(),
            reply["conversation_token"].as_str().unwrap().to_string(),
        );
        post(
            &client,
            format!("{}/v1/conversations/{id}/handoff", customers.base),
            &token,
            json!({}),
        )
        .await;
        post(
            &client,
            format!("{}/v1/agent/conversations/{id}/claim", agents.base),
            &agent,
            json!({}),
        )
        .await;
        pairs.push(Pair {
            customer_base: customers.base.clone(),
            agent_base: agents.base.clone(),
            id,
            token,
            agent,
        });
    }
    let planned = disconnects;
    let disconnects = Arc::new(AtomicUsize::new(disconnects));
    let before = (
        histograms(&client, &customers.base).await,
        histograms(&client, &agents.base).await,
    );
    let started = Instant::now();
    let tallies = futures::future::join_all(
        pairs
            .into_iter()
            .map(|p| tokio::spawn(exchange(p, rounds, disconnects.clone(), client.clone()))),
    )
    .await;
    let elapsed = started.elapsed();
    let after = (
        histograms(&client, &customers.base).await,
        histograms(&client, &agents.base).await,
    );
    let mut all = Tally::default();
    for t in tallies {
        let t = t.unwrap();
        all.to_agent.extend(t.to_agent);
        all.chat_reply.extend(t.chat_reply);
        all.to_customer.extend(t.to_customer);
        all.sent += t.sent;
        all.received += t.received;
        all.lost += t.lost;
        all.repeated += t.repeated;
    }
    println!(
        "{label}: {conversations} conversations x {rounds} rounds each way, {:.1} s",
        elapsed.as_secs_f64()
    );
    report("customer -> colleague", all.to_agent);
    report("  of which the chat reply", all.chat_reply);
    report("colleague -> customer", all.to_customer);
    if customers.base == agents.base {
        report_server("(both sides)", &before.0, &after.0);
    } else {
        report_server("A (customers)", &before.0, &after.0);
        report_server("B (colleagues)", &before.1, &after.1);
    }
    println!(
        "  messages sent {}, received {}, lost {}, repeated {}, disconnects made {}",
        all.sent,
        all.received,
        all.lost,
        all.repeated,
        planned - disconnects.load(Ordering::Relaxed).min(planned)
    );
}

#[tokio::main]
async fn main() {
    let base =
        std::env::var("TELLER_BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let conversations = env("TELLER_BENCH_CONVERSATIONS", 200);
    let rounds = env("TELLER_BENCH_ROUNDS", 10);
    println!(
        "handoff bench: {conversations} conversations, {rounds} rounds, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let url = schema(&base).await;
    let one = serve(&url).await;
    scenario("one instance", &url, &one, &one, conversations, rounds, 0).await;
    drop(one);

    let url = schema(&base).await;
    let (a, b) = (serve(&url).await, serve(&url).await);
    scenario(
        "two instances (customer on A, colleague on B)",
        &url,
        &a,
        &b,
        conversations,
        rounds,
        0,
    )
    .await;
    scenario(
        "two instances, 100 random disconnects",
        &url,
        &a,
        &b,
        conversations / 2,
        rounds,
        100,
    )
    .await;
}
