//! A constant-rate (open-loop) HTTP load generator for the "Chat under load" benchmark in
//! BENCHMARKS.md: sends `POST` requests with a JSON body at a fixed arrival rate for a
//! fixed time and reports throughput and latency percentiles.
//!
//! Latency is measured from each request's *scheduled* send time (`start + i / rate`),
//! not from when it was actually sent, so a server (or a load generator starved of CPU)
//! that falls behind is charged for the queue it causes, as `wrk2` and `oha
//! --latency-correction` do. Requests beyond `CONNECTIONS` in flight wait for one to
//! finish, and that wait counts too; those still waiting when the time is up are not sent
//! (`unsent`), so offering more than the server can take measures its throughput.
//!
//! `cargo run --release --example rate_load -- URL RATE SECONDS [CONNECTIONS] [BODY]`
//! e.g. `rate_load http://127.0.0.1:8080/v1/chat 1000 15 200 '{"message":"How much is the annual fee for the Gold card?"}'`
//! (defaults: 200 connections, that question). One result line, `key=value` pairs.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

const DEFAULT_BODY: &str = r#"{"message":"How much is the annual fee for the Gold card?"}"#;

/// How one request ended.
enum Outcome {
    Ok(Duration),
    Status(u16),
    Failed,
    /// Still waiting for a connection when the run's time was up: never sent, so an
    /// offered rate above what the server sustains measures its throughput in `SECONDS`.
    Unsent,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rate_load URL RATE SECONDS [CONNECTIONS] [BODY]";
    let url = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let rate: f64 = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let seconds: f64 = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let connections: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(200);
    let body = args.next().unwrap_or_else(|| DEFAULT_BODY.to_string());
    anyhow::ensure!(rate > 0.0 && seconds > 0.0 && connections > 0, "{usage}");
    serde_json::from_str::<serde_json::Value>(&body).map_err(|e| anyhow::anyhow!("BODY is not JSON: {e}"))?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let slots = Arc::new(Semaphore::new(connections));
    let total = (rate * seconds).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let (client, slots, url, body) = (client.clone(), Arc::clone(&slots), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            // A request that finds every connection busy waits for one, unless the run's
            // time is up by then.
            let _slot = match Arc::clone(&slots).try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => match slots.acquire_owned().await {
                    Ok(_) if Instant::now() > end => return Outcome::Unsent,
                    Ok(slot) => slot,
                    Err(_) => return Outcome::Failed,
                },
            };
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(_) => Outcome::Ok(scheduled.elapsed()),
                    Err(_) => Outcome::Failed,
                },
                Ok(response) => Outcome::Status(response.status().as_u16()),
                Err(_) => Outcome::Failed,
            }
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let (mut statuses, mut failed, mut unsent) = (std::collections::BTreeMap::<u16, u64>::new(), 0u64, 0u64);
    for task in tasks {
        match task.await? {
            Outcome::Ok(took) => latencies.push(took),
            Outcome::Status(code) => *statuses.entry(code).or_default() += 1,
            Outcome::Failed => failed += 1,
            Outcome::Unsent => unsent += 1,
        }
    }
    let wall = start.elapsed().as_secs_f64();
    latencies.sort();
    let ms = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let statuses: Vec<String> = statuses.iter().map(|(code, n)| format!("{code}:{n}")).collect();
    println!(
        "offered={rate}/s scheduled={total} ok={} non_2xx=[{}] failed={failed} unsent={unsent} wall={wall:.1}s achieved={:.0}/s \
         p50={:.2}ms p90={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
        latencies.len(),
        statuses.join(","),
        latencies.len() as f64 / wall,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        ms(1.0),
    );
    Ok(())
}
