//! Dense embeddings over the OpenAI protocol and hybrid (dense + BM25, RRF) search, on
//! every available backend.

use crate::helpers::{chunker, fixture, indexes_with, ingest_dir};
use crate::standin::{Script, StandInServer, EMBEDDING_DIM};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use teller::config::Settings;
use teller::knowledge::{ingest, IngestOptions};
use teller::retrieval::edge::EdgeStore;
use teller::retrieval::embed::{Embedder, OpenAiEmbedder};
use teller::retrieval::{Index, SearchOptions};
use tempfile::TempDir;

fn embedder(standin: &StandInServer, model: &str) -> Arc<dyn Embedder> {
    let mut settings = Settings::for_data_dir(std::path::Path::new("/nonexistent"));
    settings.openai_base_url = Some(standin.base_url.clone());
    settings.embedding_model = Some(model.into());
    settings.embedding_query_model = Some(format!("{model}-query"));
    settings.embedding_dim = Some(EMBEDDING_DIM);
    settings.embedding_batch = 4;
    Arc::new(OpenAiEmbedder::from_settings(&settings).unwrap().unwrap())
}

#[tokio::test]
async fn hybrid_search_embeds_passages_and_queries_with_their_models() {
    let standin = StandInServer::start(Script::default()).await;
    for backend in indexes_with("hybrid", Some(embedder(&standin, "passage"))).await {
        let index = &backend.index;
        // Each backend's requests on their own: the previous backend's queries are not
        // this one's.
        standin.recorder.requests.lock().unwrap().clear();
        ingest_dir(index, &fixture("kb"), false).await;
        let requests = standin.recorder.requests();
        assert!(requests.iter().all(|r| r["model"] == "passage"));
        // Batched: no request carries more than the batch size.
        assert!(requests.iter().all(|r| r["input"].as_array().unwrap().len() <= 4));
        let hits = index
            .search(
                "safe deposit box key lost lock drilled",
                &SearchOptions {
                    k: 3,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(hits[0].chunk.source_id, "doc-guide", "{}", index.store.backend());
        let last = standin.recorder.requests().pop().unwrap();
        assert_eq!(last["model"], "passage-query");
        // Fused scores are rank-based: at most 1/k (k = 2) from each of the two lists.
        assert!(hits[0].score > 0.0 && hits[0].score <= 1.0, "{}", hits[0].score);
    }
}

#[tokio::test]
async fn embedding_server_errors_are_retried() {
    let standin = StandInServer::start(Script::default()).await;
    standin.recorder.embedding_failures.store(2, Ordering::SeqCst);
    let vectors = embedder(&standin, "passage")
        .embed_passages(vec!["a card".into(), "a loan".into()])
        .await
        .unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].len(), EMBEDDING_DIM);
    assert_eq!(standin.recorder.requests().len(), 3, "two failures, then success");
}

#[tokio::test]
async fn a_wrong_embedding_dimension_fails_ingest_with_a_clear_message() {
    let standin = StandInServer::start(Script::default()).await;
    let data = TempDir::new().unwrap();
    let edge = EdgeStore::open(data.path().join("edge"), Some(EMBEDDING_DIM))
        .await
        .unwrap();
    let index = Index::new(Arc::new(edge), Some(embedder(&standin, "wrong-dim")));
    let options = IngestOptions {
        kb_dir: fixture("kb"),
        prune: false,
        progress: false,
    };
    let err = ingest(&index, &chunker(), &options).await.unwrap_err();
    assert!(format!("{err:#}").contains("TELLER_EMBEDDING_DIM"), "{err:#}");
}

#[tokio::test]
async fn an_index_built_without_dense_vectors_refuses_an_embedder() {
    let data = TempDir::new().unwrap();
    drop(EdgeStore::open(data.path().join("edge"), None).await.unwrap());
    let err = EdgeStore::open(data.path().join("edge"), Some(EMBEDDING_DIM))
        .await
        .err()
        .expect("layout mismatch");
    assert!(err.to_string().contains("dense vectors"), "{err}");
}
