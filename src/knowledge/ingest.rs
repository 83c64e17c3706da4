//! Incremental ingestion: load → compare source hashes with the index → chunk, encode
//! and write only what changed → optionally prune sources that disappeared.

use super::chunk::{Chunker, PreparedChunk};
use super::load::{load_dir, LoadError, Source};
use crate::retrieval::store::IndexedChunk;
use crate::retrieval::Index;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// Chunks per write: large enough to amortise a round trip, small enough to bound memory.
const WRITE_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub kb_dir: PathBuf,
    /// Delete indexed sources that are no longer in the knowledge base.
    pub prune: bool,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
}

/// What an ingest run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IngestSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Sources present in the index but not on disk, kept because `--prune` was not given
    /// (or because some files failed to load, so their sources cannot be told apart).
    pub stale: usize,
    pub chunks_written: usize,
    /// Sources added or changed in this run whose text reads like instructions to an AI
    /// (possible prompt injection planted in a document): still indexed, always given to
    /// the model as data, and listed here for a person to review.
    pub flagged: Vec<String>,
    pub seconds: f64,
    #[serde(skip)]
    pub errors: Vec<LoadError>,
}

impl std::fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sources: {} added, {} updated, {} unchanged, {} removed; {} chunks written in {:.2}s",
            self.added, self.updated, self.unchanged, self.removed, self.chunks_written, self.seconds
        )?;
        if !self.flagged.is_empty() {
            write!(
                f,
                "; {} sources flagged for instruction-like text (review them): {}",
                self.flagged.len(),
                self.flagged.join(", ")
            )?;
        }
        if self.stale > 0 {
            write!(f, "; {} stale sources kept (use --prune to remove)", self.stale)?;
        }
        if !self.errors.is_empty() {
            write!(f, "; {} files failed to load", self.errors.len())?;
        }
        Ok(())
    }
}

/// Brings the index in line with the knowledge base folder.
///
/// Load errors do not stop the run: every good file is ingested and the errors are
/// returned in the summary for the caller to report (the CLI exits non-zero).
#[tracing::instrument(skip_all, fields(kb = %options.kb_dir.display()))]
pub async fn ingest(index: &Index, chunker: &Chunker, options: &IngestOptions) -> anyhow::Result<IngestSummary> {
    let started = Instant::now();
    let kb_dir = options.kb_dir.clone();
    let report = tokio::task::spawn_blocking(move || load_dir(&kb_dir))
        .await
        .context("loader task failed")??;
    let indexed = index
        .store
        .source_hashes()
        .await
        .context("cannot list indexed sources")?;

    let mut summary = IngestSummary {
        errors: report.errors,
        ..Default::default()
    };
    let on_disk: HashSet<String> = report.sources.iter().map(|s| s.id.clone()).collect();
    let mut to_write: Vec<(Source, String, bool)> = Vec::new();
    for source in report.sources {
        let hash = chunker.source_hash(&source);
        match indexed.get(&source.id) {
            Some(old) if *old == hash => summary.unchanged += 1,
            Some(_) => to_write.push((source, hash, true)),
            None => to_write.push((source, hash, false)),
        }
    }
    let progress = progress_bar(options.progress, to_write.len());
    let mut batch: Vec<PreparedChunk> = Vec::new();
    let mut replaced: Vec<(String, String)> = Vec::new();
    for (source, hash, existed) in &to_write {
        // Screened when written, so an unchanged knowledge base re-ingests without reading
        // every document again.
        if crate::guard::injection::is_injection(&source.plain_text()) {
            tracing::warn!(source = %source.id, origin = %source.origin.display(), "instruction-like text in a knowledge-base document");
            summary.flagged.push(source.id.clone());
        }
        batch.extend(chunker.chunk(source));
        if *existed {
            summary.updated += 1;
            replaced.push((source.id.clone(), hash.clone()));
        } else {
            summary.added += 1;
        }
        if batch.len() >= WRITE_BATCH {
            summary.chunks_written += write_batch(index, std::mem::take(&mut batch)).await?;
        }
        progress.inc(1);
    }
    summary.chunks_written += write_batch(index, batch).await?;
    // New chunks are in place; now drop what the old versions left behind (chunks whose
    // index no longer exists in the new version).
    for (source_id, hash) in &replaced {
        index.store.delete_source(source_id, Some(hash)).await?;
    }
    progress.finish_and_clear();

    let stale: Vec<&String> = indexed.keys().filter(|id| !on_disk.contains(*id)).collect();
    if options.prune && summary.errors.is_empty() {
        for source_id in &stale {
            index.store.delete_source(source_id, None).await?;
            summary.removed += 1;
        }
    } else {
        if options.prune {
            tracing::warn!(
                stale = stale.len(),
                "not pruning: some files failed to load, and their sources must not be deleted"
            );
        }
        summary.stale = stale.len();
    }
    if summary.chunks_written > 0 || summary.removed > 0 || summary.updated > 0 {
        index.store.finish_writes().await?;
    }
    index.refresh_vocabulary().await?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

async fn write_batch(index: &Index, batch: Vec<PreparedChunk>) -> anyhow::Result<usize> {
    if batch.is_empty() {
        return Ok(0);
    }
    let count = batch.len();
    let bm25 = index.bm25.clone();
    let (chunks, texts): (Vec<_>, Vec<_>) = tokio::task::spawn_blocking(move || {
        batch
            .into_iter()
            .map(|p| {
                let sparse = bm25.embed_document(&p.index_text, p.chunk.lang);
                ((p.chunk, sparse), p.index_text)
            })
            .unzip()
    })
    .await
    .context("BM25 encoding task failed")?;
    let dense = match &index.embedder {
        Some(embedder) => Some(embedder.embed_passages(texts).await?),
        None => None,
    };
    let mut dense = dense.map(Vec::into_iter);
    let points = chunks
        .into_iter()
        .map(|(chunk, sparse)| IndexedChunk {
            chunk,
            sparse,
            dense: dense.as_mut().and_then(Iterator::next),
        })
        .collect();
    index.store.upsert(points).await?;
    Ok(count)
}

fn progress_bar(enabled: bool, len: usize) -> ProgressBar {
    if !enabled || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} ingesting [{bar:40}] {pos}/{len} sources ({eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}
