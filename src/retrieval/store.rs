//! The vector-store interface. Two real implementations share one collection layout:
//! embedded Qdrant Edge ([`super::edge`]) and a Qdrant server ([`super::server`]).
//!
//! Layout: named dense vector `dense` (cosine, only when an embedder is configured),
//! sparse vector `bm25` with the IDF modifier, the chunk as payload, keyword payload
//! indexes on `lang`, `product` and `source_id`.

use super::Hit;
use crate::knowledge::Chunk;
use crate::lang::Lang;
use async_trait::async_trait;
use std::collections::HashMap;

pub const DENSE_VECTOR: &str = "dense";
pub const SPARSE_VECTOR: &str = "bm25";
pub const INDEXED_FIELDS: [&str; 3] = ["lang", "product", "source_id"];
/// Qdrant's default RRF constant, used by both backends so they rank alike.
pub const RRF_K: usize = 2;

/// A sparse vector as parallel index/value lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl From<qdrant_edge::SparseVector> for SparseVec {
    fn from(v: qdrant_edge::SparseVector) -> Self {
        Self {
            indices: v.indices,
            values: v.values,
        }
    }
}

/// A chunk with its vectors, ready to be written.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub chunk: Chunk,
    pub sparse: SparseVec,
    pub dense: Option<Vec<f32>>,
}

/// Payload filters a search may apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchFilter {
    pub lang: Option<Lang>,
    pub product: Option<String>,
}

impl SearchFilter {
    /// (field, value) pairs that must all match.
    pub fn conditions(&self) -> Vec<(&'static str, String)> {
        let mut conditions = Vec::new();
        if let Some(lang) = self.lang {
            conditions.push(("lang", lang.as_str().to_string()));
        }
        if let Some(product) = &self.product {
            conditions.push(("product", product.clone()));
        }
        conditions
    }
}

#[derive(Debug, Clone)]
pub struct StoreQuery {
    pub sparse: SparseVec,
    /// With a dense vector the two are fused with RRF; without, BM25 ranks alone.
    pub dense: Option<Vec<f32>>,
    pub filter: SearchFilter,
    pub limit: usize,
}

/// Errors from a vector store, kept apart from the caller's own errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    #[error("collection layout mismatch: {0}")]
    Layout(String),
    #[error("stored payload is not a Teller chunk: {0}")]
    Payload(String),
}

/// Where chunks live and how they are found.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// `"qdrant-edge"` or `"qdrant-server"`, for logs and reports.
    fn backend(&self) -> &'static str;
    /// Inserts or replaces chunks by point id.
    async fn upsert(&self, chunks: Vec<IndexedChunk>) -> Result<(), StoreError>;
    /// Deletes the chunks of `source_id`, except those written from `keep_source_hash`
    /// (the current version), so replacing a source never leaves a gap.
    async fn delete_source(&self, source_id: &str, keep_source_hash: Option<&str>) -> Result<(), StoreError>;
    /// Every indexed source, once (read from its chunks' payloads), in source id order.
    async fn sources(&self) -> Result<Vec<IndexedSource>, StoreError>;
    /// Source id → source hash of every indexed source.
    async fn source_hashes(&self) -> Result<HashMap<String, String>, StoreError> {
        Ok(self
            .sources()
            .await?
            .into_iter()
            .map(|s| (s.source_id, s.source_hash))
            .collect())
    }
    async fn query(&self, query: StoreQuery) -> Result<Vec<Hit>, StoreError>;
    async fn count(&self) -> Result<usize, StoreError>;
    /// The BM25 term ids of every chunk (for document frequencies).
    async fn sparse_terms(&self) -> Result<Vec<Vec<u32>>, StoreError>;
    /// Makes writes durable and indexes ready for search.
    async fn finish_writes(&self) -> Result<(), StoreError>;
}

/// What the index knows of one source: what its chunks' payloads say about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IndexedSource {
    pub source_id: String,
    #[serde(skip_serializing)]
    pub source_hash: String,
    pub title: String,
    #[schema(value_type = String)]
    pub lang: Lang,
    /// As the document states it (`YYYY-MM-DD` by convention), if it does.
    pub effective_date: Option<String>,
}

/// The payload fields [`IndexedSource`] is read from.
pub const SOURCE_FIELDS: [&str; 5] = ["source_id", "source_hash", "title", "lang", "effective_date"];

/// Collects sources from chunk payloads (several chunks of one source count once).
#[derive(Default)]
pub struct SourceCollector(std::collections::BTreeMap<String, IndexedSource>);

impl SourceCollector {
    /// Adds the source a chunk's payload (with at least [`SOURCE_FIELDS`]) belongs to.
    pub fn add(&mut self, payload: serde_json::Value) {
        if let Ok(source) = serde_json::from_value::<IndexedSource>(payload) {
            self.0.entry(source.source_id.clone()).or_insert(source);
        }
    }

    pub fn finish(self) -> Vec<IndexedSource> {
        self.0.into_values().collect()
    }
}

/// Converts a stored payload back into a chunk.
pub fn chunk_from_payload(payload: serde_json::Value) -> Result<Chunk, StoreError> {
    serde_json::from_value(payload).map_err(|e| StoreError::Payload(e.to_string()))
}

/// The payload written for a chunk (the chunk itself, as JSON).
pub fn payload_of(chunk: &Chunk) -> serde_json::Value {
    serde_json::to_value(chunk).expect("chunks serialise")
}
