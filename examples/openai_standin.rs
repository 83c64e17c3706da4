//! An OpenAI-compatible chat-completions and embeddings stand-in for load benchmarks
//! (the same one the integration tests use). No model runs: it streams a fixed reply.
//!
//! `cargo run --release --example openai_standin -- [ADDR] [TOKEN_INTERVAL_MS] [TOKENS] [FIRST_TOKEN_DELAY_MS]`
//! (defaults 127.0.0.1:8090, 0 ms, 12 tokens, 0 ms). Point Teller at it with
//! `OPENAI_BASE_URL=http://ADDR/v1 OPENAI_API_KEY=x TELLER_CHAT_MODEL=stand-in`.

#[path = "../tests/it/standin.rs"]
mod standin;

use standin::{Script, StandInServer};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let interval: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let tokens: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(12);
    let first_token_delay: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let reply = (0..tokens)
        .map(|i| {
            if i == 0 {
                "According to the passages [1]".to_string()
            } else {
                format!("word{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let server = StandInServer::start_on(
        &addr,
        Script {
            reply,
            token_interval: Duration::from_millis(interval),
            first_token_delay: Duration::from_millis(first_token_delay),
            ..Default::default()
        },
    )
    .await;
    println!(
        "stand-in listening on {} ({interval} ms between tokens, {tokens} tokens)",
        server.base_url
    );
    std::future::pending::<()>().await;
}
