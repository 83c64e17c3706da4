//! Guardrail throughput (issue target: masking ≥ 50 MB/s).
//!
//! Masks customer-sized messages (the labelled personal-data and escalation phrasings of
//! tests/fixtures/guard, which are dense with numbers, codes and keywords — harder than
//! typical chat) and long passages (the sample knowledge base, as model output would look),
//! and reports MB/s of input for masking alone and for the whole inbound screen (masking,
//! escalation, advice and injection checks). Run: `cargo bench --bench guard`.

use serde_json::Value;
use std::path::Path;
use std::time::Instant;
use teller::config::Settings;

fn repo(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn messages() -> Vec<String> {
    let mut out = Vec::new();
    for file in ["pii.jsonl", "escalation.jsonl", "injection.jsonl"] {
        let text = std::fs::read_to_string(repo("tests/fixtures/guard").join(file)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let item: Value = serde_json::from_str(line).unwrap();
            out.push(item["text"].as_str().unwrap().to_string());
        }
    }
    out
}

fn passages() -> Vec<String> {
    let report = teller::knowledge::load_dir(&repo("knowledge_base")).unwrap();
    report.sources.iter().map(|s| s.plain_text()).collect()
}

/// Runs `f` over `texts` until at least `min_bytes` went through; returns MB/s.
fn throughput(texts: &[String], min_bytes: usize, mut f: impl FnMut(&str) -> usize) -> (f64, usize) {
    let per_round: usize = texts.iter().map(String::len).sum();
    let rounds = min_bytes.div_ceil(per_round).max(1);
    let mut sink = 0;
    let started = Instant::now();
    for _ in 0..rounds {
        for t in texts {
            sink += f(t);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    ((rounds * per_round) as f64 / seconds / 1e6, sink)
}

fn main() {
    let mut settings = Settings::for_data_dir(Path::new("unused"));
    settings.kb_dir = repo("knowledge_base");
    let guard = teller::startup::build_guard(&settings).unwrap();
    let messages = messages();
    let passages = passages();
    let avg = messages.iter().map(String::len).sum::<usize>() / messages.len();
    println!(
        "{} messages (mean {} bytes), {} knowledge-base passages",
        messages.len(),
        avg,
        passages.len()
    );
    let megabytes: usize = std::env::var("TELLER_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let target = megabytes * 1024 * 1024;
    // Warm the lazily compiled patterns.
    let _ = guard.screen("warm up 4111 1111 1111 1111");
    let (mask_msgs, a) = throughput(&messages, target, |t| guard.masker.mask(t).text.len());
    let (screen_msgs, b) = throughput(&messages, target, |t| guard.screen(t).masked.text.len());
    let (mask_long, c) = throughput(&passages, target, |t| guard.masker.mask(t).text.len());
    let (sanitise_long, d) = throughput(&passages, target, |t| guard.output.sanitise(&guard.masker, t).len());
    println!("mask, messages:          {mask_msgs:>8.1} MB/s");
    println!("full screen, messages:   {screen_msgs:>8.1} MB/s");
    println!("mask, passages:          {mask_long:>8.1} MB/s");
    println!("output sanitise, passages: {sanitise_long:>6.1} MB/s");
    // Keep the results alive so the work is not optimised away.
    assert!(a + b + c + d > 0);
}
