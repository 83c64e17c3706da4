//! Retrieval: the vector-store abstraction with its two Qdrant backends, BM25 and dense
//! encoders, and [`Index`], which turns a customer's question into ranked passages.

pub mod bm25;
pub mod edge;
pub mod embed;
pub mod passages;
pub mod query;
pub mod sentences;
pub mod server;
pub mod store;
pub mod vocabulary;

use crate::config::Settings;
use crate::knowledge::Chunk;
use crate::lang::Lang;
use anyhow::Context;
use bm25::Bm25Encoder;
use embed::{Embedder, OpenAiEmbedder};
use std::sync::Arc;
use std::sync::RwLock;
use store::{SearchFilter, StoreQuery, VectorStore};
use vocabulary::Vocabulary;

/// A passage found for a query, with its retrieval score (BM25, or RRF when fused).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub score: f32,
    pub chunk: Chunk,
}

/// What to search for, beyond the text.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// Number of distinct sources wanted.
    pub k: usize,
    /// The query's language; detected from the text when absent.
    pub lang: Option<Lang>,
    pub filter: SearchFilter,
}

/// The searchable knowledge base: a vector store plus the encoders that fill it.
#[derive(Clone)]
pub struct Index {
    pub store: Arc<dyn VectorStore>,
    pub bm25: Arc<Bm25Encoder>,
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Document frequencies of the indexed terms, refreshed after every ingest.
    vocabulary: Arc<RwLock<Arc<Vocabulary>>>,
}

impl Index {
    /// Opens the configured backend (Qdrant server when `QDRANT_URL` is set, embedded
    /// Qdrant Edge otherwise) and makes sure the collection exists with the right layout.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let embedder: Option<Arc<dyn Embedder>> = match OpenAiEmbedder::from_settings(settings) {
            Some(e) => Some(Arc::new(e?)),
            None => None,
        };
        let dense_dim = embedder.as_ref().map(|e| e.dim());
        let store: Arc<dyn VectorStore> = match &settings.qdrant_url {
            Some(url) => Arc::new(
                server::ServerStore::connect(url, settings.qdrant_api_key.clone(), &settings.collection, dense_dim)
                    .await
                    .with_context(|| format!("cannot use Qdrant server at {url}"))?,
            ),
            None => {
                let path = settings.edge_path();
                Arc::new(
                    edge::EdgeStore::open(path.clone(), dense_dim)
                        .await
                        .with_context(|| format!("cannot open Qdrant Edge shard in {}", path.display()))?,
                )
            }
        };
        let index = Self::new(store, embedder);
        index.refresh_vocabulary().await?;
        Ok(index)
    }

    /// Recomputes document frequencies from the store (after the index changed).
    pub async fn refresh_vocabulary(&self) -> anyhow::Result<()> {
        let documents = self.store.sparse_terms().await?;
        let vocabulary = Vocabulary::from_documents(documents.iter().map(Vec::as_slice));
        *self.vocabulary.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(vocabulary);
        Ok(())
    }

    pub fn vocabulary(&self) -> Arc<Vocabulary> {
        self.vocabulary.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn new(store: Arc<dyn VectorStore>, embedder: Option<Arc<dyn Embedder>>) -> Self {
        Self {
            store,
            bm25: Arc::new(Bm25Encoder::new()),
            embedder,
            vocabulary: Arc::default(),
        }
    }

    /// Hybrid search (dense + BM25 fused with RRF; BM25 alone without an embedder),
    /// returning up to `k` hits from distinct sources, best first.
    #[tracing::instrument(skip_all, fields(k = opts.k, backend = self.store.backend()))]
    pub async fn search(&self, query: &str, opts: &SearchOptions) -> anyhow::Result<Vec<Hit>> {
        Ok(distinct_sources(self.search_chunks(query, opts).await?, opts.k))
    }

    /// The chunk-level candidates behind [`Index::search`]: several chunks per source, best
    /// first (the extractive answerer looks for a fact in every chunk of a source).
    pub async fn search_chunks(&self, query: &str, opts: &SearchOptions) -> anyhow::Result<Vec<Hit>> {
        let lang = opts.lang.unwrap_or_else(|| Lang::detect(query));
        let sparse = self.bm25.embed_query(query, lang);
        let dense = match &self.embedder {
            Some(embedder) => Some(embedder.embed_query(query).await?),
            None => None,
        };
        // Several chunks of one document often rank together; fetch enough candidates
        // that `k` distinct sources survive de-duplication.
        let candidates = (opts.k * 4).max(20);
        let mut hits = self
            .store
            .query(StoreQuery {
                sparse,
                dense,
                filter: opts.filter.clone(),
                limit: candidates,
            })
            .await?;
        // The same index can score a passage a few units in the seventh digit apart from
        // one build to the next (float sums in another order), which reorders near ties:
        // scores are kept to five significant digits and ties broken by chunk id, so the
        // same question gets the same ranking, and evaluation and calibration repeat.
        for hit in &mut hits {
            hit.score = significant(hit.score, 5);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk.id.cmp(&b.chunk.id)));
        Ok(hits)
    }
}

/// `x` rounded to `digits` significant digits.
fn significant(x: f32, digits: i32) -> f32 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - (x.abs() as f64).log10().floor() as i32);
    ((x as f64 * scale).round() / scale) as f32
}

/// Keeps the best-scoring chunk of each source, in rank order, up to `k` sources.
pub fn distinct_sources(hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut seen = std::collections::HashSet::new();
    hits.into_iter()
        .filter(|hit| seen.insert(hit.chunk.source_id.clone()))
        .take(k)
        .collect()
}
