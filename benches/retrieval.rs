//! Retrieval benchmark (issue targets: ingest ≥ 2,000 chunks/s BM25-only on ≥ 20,000
//! chunks; re-ingest of an unchanged knowledge base < 1 s; search p95 ≤ 5 ms at 20,000
//! chunks on Qdrant Edge).
//!
//! The eval corpus is replicated with suffixed ids until it holds at least
//! `TELLER_BENCH_CHUNKS` chunks (default 20,000), then ingested into a fresh Qdrant Edge
//! shard. Run: `cargo bench --bench retrieval` (reads ../shared/eval by default; set
//! `TELLER_BENCH_CORPUS` and `TELLER_BENCH_QUESTIONS` to use other files).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use teller::eval::{load_questions, percentile};
use teller::knowledge::{ingest, load_dir, Chunker, IngestOptions};
use teller::retrieval::edge::EdgeStore;
use teller::retrieval::query::retrieval_query;
use teller::retrieval::{Index, SearchOptions};

fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(default))
}

/// Writes `copies` copies of the corpus, ids suffixed `-rN`, into `out`.
fn replicate(corpus: &Path, out: &Path, copies: usize) {
    for entry in walkdir::WalkDir::new(corpus)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let relative = entry.path().strip_prefix(corpus).unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for copy in 0..copies {
            let replica = text
                .lines()
                .map(|line| {
                    match line
                        .trim_start()
                        .strip_prefix("- id: ")
                        .or_else(|| line.strip_prefix("id: "))
                    {
                        Some(id) => line.replace(id, &format!("{id}-r{copy}")),
                        None => line.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let target = out.join(format!("r{copy}")).join(relative);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, replica).unwrap();
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let corpus = env_path("TELLER_BENCH_CORPUS", "../shared/eval/corpus");
    let questions = env_path("TELLER_BENCH_QUESTIONS", "../shared/eval/dev-questions.jsonl");
    let target_chunks: usize = std::env::var("TELLER_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let chunker = Chunker::new(300, 40);

    let report = load_dir(&corpus)?;
    let per_copy: usize = report.sources.iter().map(|s| chunker.chunk(s).len()).sum();
    let copies = target_chunks.div_ceil(per_copy);
    let work = tempfile::TempDir::new()?;
    let kb = work.path().join("kb");
    replicate(&corpus, &kb, copies);
    println!(
        "corpus: {} sources, {per_copy} chunks per copy, {copies} copies",
        report.sources.len()
    );

    let store = EdgeStore::open(work.path().join("edge"), None).await?;
    let index = Index::new(Arc::new(store), None);
    let options = IngestOptions {
        kb_dir: kb.clone(),
        prune: false,
        progress: false,
    };

    let started = Instant::now();
    let first = ingest(&index, &chunker, &options).await?;
    let seconds = started.elapsed().as_secs_f64();
    let chunks = index.store.count().await?;
    println!(
        "ingest: {} sources, {chunks} chunks in {seconds:.2} s = {:.0} chunks/s ({} load errors)",
        first.added,
        chunks as f64 / seconds,
        first.errors.len()
    );

    let started = Instant::now();
    let again = ingest(&index, &chunker, &options).await?;
    println!(
        "re-ingest unchanged: {} unchanged, {} written in {:.3} s",
        again.unchanged,
        again.chunks_written,
        started.elapsed().as_secs_f64()
    );

    let questions = load_questions(&questions)?;
    let queries: Vec<(String, teller::lang::Lang)> = questions
        .iter()
        .map(|q| (retrieval_query(&q.history, &q.question), q.lang()))
        .collect();
    // Warm-up (first Chinese query loads the segmentation dictionary).
    for (query, lang) in &queries {
        index
            .search(
                query,
                &SearchOptions {
                    k: 5,
                    lang: Some(*lang),
                    ..Default::default()
                },
            )
            .await?;
    }
    let mut latencies = Vec::new();
    for _ in 0..5 {
        for (query, lang) in &queries {
            let started = Instant::now();
            index
                .search(
                    query,
                    &SearchOptions {
                        k: 5,
                        lang: Some(*lang),
                        ..Default::default()
                    },
                )
                .await?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "search over {chunks} chunks: {} queries, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99)
    );
    Ok(())
}
