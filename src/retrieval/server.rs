//! Qdrant server backend (a single node or a cluster) through qdrant-client over gRPC,
//! used when `QDRANT_URL` is set. Same collection layout as the Edge backend.

use super::store::{
    chunk_from_payload, payload_of, IndexedChunk, IndexedSource, SearchFilter, SourceCollector, StoreError, StoreQuery,
    VectorStore, DENSE_VECTOR, INDEXED_FIELDS, RRF_K, SOURCE_FIELDS, SPARSE_VECTOR,
};
use super::Hit;
use async_trait::async_trait;
use qdrant_client::qdrant::vector_output;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::vectors_output::VectorsOptions;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, Modifier, NamedVectors, PayloadIncludeSelector, PointStruct, PrefetchQueryBuilder,
    Query, QueryPointsBuilder, RrfBuilder, ScrollPointsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
    UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder, VectorsConfigBuilder, VectorsSelector,
};
use qdrant_client::{Payload, Qdrant};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;

/// A collection on a Qdrant server.
pub struct ServerStore {
    client: Qdrant,
    collection: String,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

impl ServerStore {
    /// Connects and creates the collection and payload indexes if they do not exist.
    pub async fn connect(
        url: &str,
        api_key: Option<SecretString>,
        collection: &str,
        dense_dim: Option<usize>,
    ) -> Result<Self, StoreError> {
        let mut builder = Qdrant::from_url(url).skip_compatibility_check();
        if let Some(key) = api_key {
            builder = builder.api_key(key.expose_secret().to_string());
        }
        let client = builder.build().map_err(unavailable)?;
        let store = Self {
            client,
            collection: collection.to_string(),
        };
        store.ensure_collection(dense_dim).await?;
        Ok(store)
    }

    async fn ensure_collection(&self, dense_dim: Option<usize>) -> Result<(), StoreError> {
        if self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(unavailable)?
        {
            return self.check_layout(dense_dim).await;
        }
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(
            SPARSE_VECTOR,
            SparseVectorParamsBuilder::default().modifier(Modifier::Idf as i32),
        );
        let mut create = CreateCollectionBuilder::new(&self.collection).sparse_vectors_config(sparse);
        if let Some(dim) = dense_dim {
            let mut vectors = VectorsConfigBuilder::default();
            vectors.add_named_vector_params(DENSE_VECTOR, VectorParamsBuilder::new(dim as u64, Distance::Cosine));
            create = create.vectors_config(vectors);
        }
        self.client.create_collection(create).await.map_err(unavailable)?;
        for field in INDEXED_FIELDS {
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(&self.collection, field, FieldType::Keyword).wait(true),
                )
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn check_layout(&self, dense_dim: Option<usize>) -> Result<(), StoreError> {
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(unavailable)?;
        let stored = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config)
            .and_then(|config| match config {
                VectorsConfigKind::ParamsMap(map) => map.map.get(DENSE_VECTOR).map(|p| p.size as usize),
                VectorsConfigKind::Params(_) => None,
            });
        if stored != dense_dim {
            return Err(StoreError::Layout(format!(
                "collection {:?} has dense vectors of size {:?}, the configuration asks for {:?}; \
                 choose another TELLER_COLLECTION or delete the collection and ingest again",
                self.collection, stored, dense_dim
            )));
        }
        Ok(())
    }
}

impl ServerStore {
    /// Visits every point, a page at a time.
    async fn scroll_all(
        &self,
        payload: qdrant_client::qdrant::with_payload_selector::SelectorOptions,
        vectors: qdrant_client::qdrant::with_vectors_selector::SelectorOptions,
        mut visit: impl FnMut(qdrant_client::qdrant::RetrievedPoint),
    ) -> Result<(), StoreError> {
        let mut offset = None;
        loop {
            let mut scroll = ScrollPointsBuilder::new(&self.collection)
                .limit(2_000)
                .with_payload(payload.clone())
                .with_vectors(vectors.clone());
            if let Some(offset) = offset.take() {
                scroll = scroll.offset(offset);
            }
            let page = self.client.scroll(scroll).await.map_err(unavailable)?;
            page.result.into_iter().for_each(&mut visit);
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(()),
            }
        }
    }
}

fn keyword(field: &str, value: String) -> Condition {
    Condition::matches(field, value)
}

fn server_filter(filter: &SearchFilter) -> Option<Filter> {
    let conditions: Vec<Condition> = filter
        .conditions()
        .into_iter()
        .map(|(field, value)| keyword(field, value))
        .collect();
    (!conditions.is_empty()).then(|| Filter::must(conditions))
}

fn json_payload(payload: HashMap<String, qdrant_client::qdrant::Value>) -> serde_json::Value {
    serde_json::Value::from(Payload::from(payload))
}

#[async_trait]
impl VectorStore for ServerStore {
    fn backend(&self) -> &'static str {
        "qdrant-server"
    }

    async fn upsert(&self, chunks: Vec<IndexedChunk>) -> Result<(), StoreError> {
        let points = chunks
            .into_iter()
            .map(|c| {
                let mut vectors = NamedVectors::default()
                    .add_vector(SPARSE_VECTOR, Vector::new_sparse(c.sparse.indices, c.sparse.values));
                if let Some(dense) = c.dense {
                    vectors = vectors.add_vector(DENSE_VECTOR, Vector::new_dense(dense));
                }
                let payload =
                    Payload::try_from(payload_of(&c.chunk)).map_err(|e| StoreError::Payload(e.to_string()))?;
                Ok(PointStruct::new(c.chunk.id.to_string(), vectors, payload))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_source(&self, source_id: &str, keep_source_hash: Option<&str>) -> Result<(), StoreError> {
        let mut filter = Filter::must([keyword("source_id", source_id.to_string())]);
        if let Some(hash) = keep_source_hash {
            filter.must_not = vec![keyword("source_hash", hash.to_string())];
        }
        self.client
            .delete_points(DeletePointsBuilder::new(&self.collection).points(filter).wait(true))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn sources(&self) -> Result<Vec<IndexedSource>, StoreError> {
        let mut sources = SourceCollector::default();
        let fields = PayloadIncludeSelector::new(SOURCE_FIELDS.map(String::from).to_vec());
        self.scroll_all(fields.into(), false.into(), |point| {
            sources.add(json_payload(point.payload))
        })
        .await?;
        Ok(sources.finish())
    }

    async fn sparse_terms(&self) -> Result<Vec<Vec<u32>>, StoreError> {
        let mut documents = Vec::new();
        let vectors = VectorsSelector {
            names: vec![SPARSE_VECTOR.to_string()],
        };
        self.scroll_all(false.into(), vectors.into(), |point| {
            let Some(VectorsOptions::Vectors(mut named)) = point.vectors.and_then(|v| v.vectors_options) else {
                return;
            };
            if let Some(output) = named.vectors.remove(SPARSE_VECTOR) {
                #[expect(
                    deprecated,
                    reason = "older servers still send sparse vectors in the deprecated fields"
                )]
                let indices = match output.vector {
                    Some(vector_output::Vector::Sparse(sparse)) => sparse.indices,
                    _ => output.indices.map(|i| i.data).unwrap_or_default(),
                };
                documents.push(indices);
            }
        })
        .await?;
        Ok(documents)
    }

    async fn query(&self, query: StoreQuery) -> Result<Vec<Hit>, StoreError> {
        let filter = server_filter(&query.filter);
        let sparse = VectorInput::new_sparse(query.sparse.indices, query.sparse.values);
        let limit = query.limit as u64;
        let mut request = QueryPointsBuilder::new(&self.collection)
            .limit(limit)
            .with_payload(true);
        if let Some(filter) = filter.clone() {
            request = request.filter(filter);
        }
        request = match query.dense {
            None => request.query(Query::new_nearest(sparse)).using(SPARSE_VECTOR),
            Some(dense) => {
                let prefetch = |input: VectorInput, using: &str| {
                    let mut p = PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(input))
                        .using(using)
                        .limit(limit);
                    if let Some(filter) = filter.clone() {
                        p = p.filter(filter);
                    }
                    p
                };
                request
                    .add_prefetch(prefetch(sparse, SPARSE_VECTOR))
                    .add_prefetch(prefetch(VectorInput::new_dense(dense), DENSE_VECTOR))
                    .query(Query::new_rrf(RrfBuilder::with_k(RRF_K as u32)))
            }
        };
        let response = self.client.query(request).await.map_err(unavailable)?;
        response
            .result
            .into_iter()
            .map(|point| {
                Ok(Hit {
                    score: point.score,
                    chunk: chunk_from_payload(json_payload(point.payload))?,
                })
            })
            .collect()
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let response = self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
            .map_err(unavailable)?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }

    async fn finish_writes(&self) -> Result<(), StoreError> {
        // Upserts and deletes are sent with `wait(true)`: nothing is pending.
        Ok(())
    }
}
