//! Embedded Qdrant Edge backend: a shard in `TELLER_DATA_DIR`, no server to run.
//!
//! Qdrant Edge is synchronous and does file I/O, so every call runs on Tokio's blocking
//! pool, never on an async worker thread, and no more of them at once than there are
//! cores: a search is CPU work, and a burst of thousands of turns must queue for a permit
//! rather than grow the pool to hundreds of threads (each with its own stack and
//! allocator cache).

use super::store::{
    chunk_from_payload, payload_of, IndexedChunk, IndexedSource, SearchFilter, SourceCollector, StoreError, StoreQuery,
    VectorStore, DENSE_VECTOR, INDEXED_FIELDS, RRF_K, SOURCE_FIELDS, SPARSE_VECTOR,
};
use super::Hit;
use async_trait::async_trait;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, Filter, Fusion, JsonPath, Match, Modifier, NamedQuery, PayloadFieldSchema,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStruct, Prefetch, QueryEnum, QueryRequest,
    ScoringQuery, ScrollRequest, UpdateOperation, ValueVariants, VectorInternal, VectorStructInternal, Vectors,
    WithPayloadInterface, WithVector,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// A Qdrant Edge shard holding the knowledge base.
pub struct EdgeStore {
    shard: Arc<FlushOnDrop>,
    /// Edge's `flush` must not run while an update holds the WAL; writers take this.
    writer: Arc<Mutex<()>>,
    /// One permit per core for calls into the shard.
    calls: Arc<Semaphore>,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

impl EdgeStore {
    /// Opens the shard at `path`, creating it (with payload indexes) on first use.
    pub async fn open(path: PathBuf, dense_dim: Option<usize>) -> Result<Self, StoreError> {
        let shard = tokio::task::spawn_blocking(move || open_shard(path, dense_dim))
            .await
            .map_err(unavailable)??;
        Ok(Self {
            shard: Arc::new(FlushOnDrop(Some(shard))),
            writer: Arc::new(Mutex::new(())),
            calls: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shard = Arc::clone(&self.shard);
        let permit = Arc::clone(&self.calls).acquire_owned().await.map_err(unavailable)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(shard.shard())
        })
        .await
        .map_err(unavailable)?
    }

    async fn write(&self, operation: UpdateOperation) -> Result<(), StoreError> {
        let writer = Arc::clone(&self.writer);
        self.blocking(move |shard| {
            let _guard = writer.lock().unwrap_or_else(|e| e.into_inner());
            shard.update(operation).map_err(unavailable)
        })
        .await
    }
}

/// Owns the shard. Qdrant Edge flushes when a shard is dropped and panics if that flush
/// fails (say, the data folder is gone); a panic there would abort the process while it
/// unwinds, so the drop is contained and the failure logged instead.
struct FlushOnDrop(Option<EdgeShard>);

impl FlushOnDrop {
    fn shard(&self) -> &EdgeShard {
        self.0.as_ref().expect("the shard is only taken when dropped")
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        let shard = self.0.take();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(shard))).is_err() {
            tracing::error!(
                "Qdrant Edge could not flush its shard on shutdown; the write-ahead log will replay on next open"
            );
        }
    }
}

/// Visits every point, a page at a time.
fn scroll_all(
    shard: &EdgeShard,
    with_payload: WithPayloadInterface,
    with_vector: WithVector,
    mut visit: impl FnMut(qdrant_edge::Record),
) -> Result<(), StoreError> {
    let mut offset = None;
    loop {
        let (records, next) = shard
            .scroll(ScrollRequest {
                offset,
                limit: Some(2_000),
                filter: None,
                with_payload: Some(with_payload.clone()),
                with_vector: with_vector.clone(),
                order_by: None,
            })
            .map_err(unavailable)?;
        records.into_iter().for_each(&mut visit);
        match next {
            Some(next) => offset = Some(next),
            None => return Ok(()),
        }
    }
}

fn edge_config(dense_dim: Option<usize>) -> EdgeConfig {
    let mut config = EdgeConfig {
        sparse_vectors: HashMap::from([(
            SPARSE_VECTOR.to_string(),
            EdgeSparseVectorParams {
                modifier: Some(Modifier::Idf),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    if let Some(dim) = dense_dim {
        config.vectors.insert(
            DENSE_VECTOR.to_string(),
            qdrant_edge::EdgeVectorParamsBuilder::new(dim, Distance::Cosine).build(),
        );
    }
    config
}

fn open_shard(path: PathBuf, dense_dim: Option<usize>) -> Result<EdgeShard, StoreError> {
    std::fs::create_dir_all(&path).map_err(unavailable)?;
    if path.join("edge_config.json").exists() {
        let shard = EdgeShard::load(&path, None).map_err(unavailable)?;
        check_layout(&shard.config().vectors, dense_dim)?;
        return Ok(shard);
    }
    let shard = EdgeShard::new(&path, edge_config(dense_dim)).map_err(unavailable)?;
    for field in INDEXED_FIELDS {
        shard
            .update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(
                CreateIndex {
                    field_name: json_path(field),
                    field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
                },
            )))
            .map_err(unavailable)?;
    }
    Ok(shard)
}

fn check_layout(vectors: &HashMap<String, EdgeVectorParams>, dense_dim: Option<usize>) -> Result<(), StoreError> {
    let stored = vectors.get(DENSE_VECTOR).map(|v| v.size);
    if stored != dense_dim {
        return Err(StoreError::Layout(format!(
            "the index was built with dense vectors of size {}, but the configuration asks for {}; \
             delete the shard folder (or choose another TELLER_COLLECTION) and ingest again",
            stored.map_or("none".to_string(), |d| d.to_string()),
            dense_dim.map_or("none".to_string(), |d| d.to_string()),
        )));
    }
    Ok(())
}

fn json_path(field: &str) -> JsonPath {
    JsonPath::try_from(field).expect("static field names are valid JSON paths")
}

fn keyword(field: &str, value: String) -> Condition {
    Condition::Field(FieldCondition::new_match(
        json_path(field),
        Match::new_value(ValueVariants::String(value)),
    ))
}

fn edge_filter(filter: &SearchFilter) -> Option<Filter> {
    let conditions: Vec<Condition> = filter
        .conditions()
        .into_iter()
        .map(|(field, value)| keyword(field, value))
        .collect();
    (!conditions.is_empty()).then(|| Filter {
        must: Some(conditions),
        ..Default::default()
    })
}

fn nearest(vector: VectorInternal, using: &str) -> Option<ScoringQuery> {
    Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
        query: vector,
        using: Some(using.to_string()),
    })))
}

fn sparse_vector(v: super::store::SparseVec) -> Result<qdrant_edge::SparseVector, StoreError> {
    qdrant_edge::SparseVector::new(v.indices, v.values).map_err(|e| StoreError::Payload(e.to_string()))
}

#[async_trait]
impl VectorStore for EdgeStore {
    fn backend(&self) -> &'static str {
        "qdrant-edge"
    }

    async fn upsert(&self, chunks: Vec<IndexedChunk>) -> Result<(), StoreError> {
        let points = chunks
            .into_iter()
            .map(|c| {
                let mut vectors = vec![(SPARSE_VECTOR, qdrant_edge::Vector::from(sparse_vector(c.sparse)?))];
                if let Some(dense) = c.dense {
                    vectors.push((DENSE_VECTOR, qdrant_edge::Vector::new_dense(dense)));
                }
                Ok(PointStruct::new(
                    PointId::Uuid(c.chunk.id),
                    Vectors::new_named(vectors),
                    payload_of(&c.chunk),
                )
                .into())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(UpdateOperation::PointOperation(PointOperations::UpsertPoints(
            PointInsertOperations::PointsList(points),
        )))
        .await
    }

    async fn delete_source(&self, source_id: &str, keep_source_hash: Option<&str>) -> Result<(), StoreError> {
        let filter = Filter {
            must: Some(vec![keyword("source_id", source_id.to_string())]),
            must_not: keep_source_hash.map(|h| vec![keyword("source_hash", h.to_string())]),
            ..Default::default()
        };
        self.write(UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(
            filter,
        )))
        .await
    }

    async fn sources(&self) -> Result<Vec<IndexedSource>, StoreError> {
        self.blocking(|shard| {
            let mut sources = SourceCollector::default();
            let fields = SOURCE_FIELDS.into_iter().map(json_path).collect();
            scroll_all(
                shard,
                WithPayloadInterface::Fields(fields),
                WithVector::Bool(false),
                |record| {
                    sources.add(serde_json::Value::Object(
                        record.payload.map(|p| p.0).unwrap_or_default(),
                    ))
                },
            )?;
            Ok(sources.finish())
        })
        .await
    }

    async fn sparse_terms(&self) -> Result<Vec<Vec<u32>>, StoreError> {
        self.blocking(|shard| {
            let mut documents = Vec::new();
            let selector = WithVector::Selector(vec![SPARSE_VECTOR.to_string()]);
            scroll_all(shard, WithPayloadInterface::Bool(false), selector, |record| {
                if let Some(VectorStructInternal::Named(mut vectors)) = record.vector {
                    if let Some(VectorInternal::Sparse(sparse)) = vectors.remove(SPARSE_VECTOR) {
                        documents.push(sparse.indices);
                    }
                }
            })?;
            Ok(documents)
        })
        .await
    }

    async fn query(&self, query: StoreQuery) -> Result<Vec<Hit>, StoreError> {
        let sparse = VectorInternal::from(sparse_vector(query.sparse)?);
        let filter = edge_filter(&query.filter);
        let (prefetches, scoring) = match query.dense {
            None => (vec![], nearest(sparse, SPARSE_VECTOR)),
            Some(dense) => {
                let prefetch = |q| Prefetch {
                    prefetches: vec![],
                    query: q,
                    limit: query.limit,
                    params: None,
                    filter: filter.clone(),
                    score_threshold: None,
                };
                (
                    vec![
                        prefetch(nearest(sparse, SPARSE_VECTOR)),
                        prefetch(nearest(VectorInternal::from(dense), DENSE_VECTOR)),
                    ],
                    Some(ScoringQuery::Fusion(Fusion::Rrf {
                        k: RRF_K,
                        weights: None,
                    })),
                )
            }
        };
        let request = QueryRequest {
            prefetches,
            query: scoring,
            filter,
            score_threshold: None,
            limit: query.limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        let points = self
            .blocking(move |shard| shard.query(request).map_err(unavailable))
            .await?;
        points
            .into_iter()
            .map(|p| {
                let payload = serde_json::Value::Object(p.payload.map(|p| p.0).unwrap_or_default());
                Ok(Hit {
                    score: p.score,
                    chunk: chunk_from_payload(payload)?,
                })
            })
            .collect()
    }

    async fn count(&self) -> Result<usize, StoreError> {
        // Exact: `info()` is approximate and still counts points deleted since the last
        // optimisation.
        self.blocking(|shard| {
            shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(unavailable)
        })
        .await
    }

    async fn finish_writes(&self) -> Result<(), StoreError> {
        let writer = Arc::clone(&self.writer);
        self.blocking(move |shard| {
            let _guard = writer.lock().unwrap_or_else(|e| e.into_inner());
            shard.optimize().map_err(unavailable)?;
            shard.flush();
            Ok(())
        })
        .await
    }
}
