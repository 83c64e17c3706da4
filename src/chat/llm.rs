//! Chat models behind one trait; the real one speaks the OpenAI chat-completions protocol
//! (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server) through async-openai, streamed.

use async_openai::config::OpenAIConfig;
use async_openai::types::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// A message of a chat prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmMessage {
    System(String),
    User(String),
    Assistant(String),
}

/// What a finished generation produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Completion {
    pub text: String,
    pub model: String,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model request failed: {0}")]
    Request(String),
    #[error("no first token within {0:?}")]
    FirstTokenTimeout(Duration),
    #[error("generation exceeded its time limit")]
    TotalTimeout,
    #[error("the client stopped listening")]
    Cancelled,
}

impl LlmError {
    /// Stable label for metrics and the audit record.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Request(_) => "request_failed",
            LlmError::FirstTokenTimeout(_) => "first_token_timeout",
            LlmError::TotalTimeout => "total_timeout",
            LlmError::Cancelled => "cancelled",
        }
    }
}

/// Time limits for one generation.
#[derive(Debug, Clone, Copy)]
pub struct LlmLimits {
    pub first_token: Duration,
    pub total: Duration,
    /// Attempts after the first, only while no token has arrived.
    pub retries: u32,
}

/// Receives text as it is generated; returning `false` stops generation.
pub type DeltaSink<'a> = &'a mut (dyn FnMut(&str) -> bool + Send);

#[async_trait]
pub trait ChatModel: Send + Sync {
    fn model(&self) -> &str;
    async fn complete(
        &self,
        messages: Vec<LlmMessage>,
        limits: LlmLimits,
        on_delta: DeltaSink<'_>,
    ) -> Result<Completion, LlmError>;
}

/// An OpenAI-compatible chat-completions endpoint.
pub struct OpenAiChat {
    client: Client<OpenAIConfig>,
    model: String,
}

impl OpenAiChat {
    pub fn new(client: Client<OpenAIConfig>, model: String) -> Self {
        Self { client, model }
    }

    fn request(&self, messages: &[LlmMessage]) -> Result<async_openai::types::CreateChatCompletionRequest, LlmError> {
        let messages = messages
            .iter()
            .map(|m| {
                Ok(match m {
                    LlmMessage::System(c) => ChatCompletionRequestSystemMessageArgs::default()
                        .content(c.as_str())
                        .build()?
                        .into(),
                    LlmMessage::User(c) => ChatCompletionRequestUserMessageArgs::default()
                        .content(c.as_str())
                        .build()?
                        .into(),
                    LlmMessage::Assistant(c) => ChatCompletionRequestAssistantMessageArgs::default()
                        .content(c.as_str())
                        .build()?
                        .into(),
                })
            })
            .collect::<Result<Vec<ChatCompletionRequestMessage>, async_openai::error::OpenAIError>>()
            .map_err(|e| LlmError::Request(e.to_string()))?;
        CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .messages(messages)
            .temperature(0.0)
            .stream(true)
            .stream_options(ChatCompletionStreamOptions { include_usage: true })
            .build()
            .map_err(|e| LlmError::Request(e.to_string()))
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn model(&self) -> &str {
        &self.model
    }

    #[tracing::instrument(skip_all, fields(model = %self.model))]
    async fn complete(
        &self,
        messages: Vec<LlmMessage>,
        limits: LlmLimits,
        on_delta: DeltaSink<'_>,
    ) -> Result<Completion, LlmError> {
        let request = self.request(&messages)?;
        // A streamed turn lasts as long as its reply: nothing built for the request is
        // kept past the point where it is needed (the messages now, the request once no
        // retry can follow), so a turn waiting on the model holds one copy of its prompt
        // (the request body, kept by the event source) rather than three.
        drop(messages);
        let deadline = Instant::now() + limits.total;
        // Before the first token nothing has reached the customer, so a failed or silent
        // attempt can be retried; after it, a failure ends the generation.
        let start = || async {
            let first_token_deadline = (Instant::now() + limits.first_token).min(deadline);
            match timeout_at(first_token_deadline, async {
                let mut stream = self.client.chat().create_stream(request.clone()).await?;
                let first = stream.next().await.transpose()?;
                Ok::<_, async_openai::error::OpenAIError>((stream, first))
            })
            .await
            {
                Ok(Ok(started)) => Ok(started),
                Ok(Err(e)) => Err(LlmError::Request(e.to_string())),
                Err(_) => Err(LlmError::FirstTokenTimeout(limits.first_token)),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_millis(6_400))
            .with_max_times(limits.retries as usize);
        let (mut stream, first) = start
            .retry(backoff)
            .sleep(tokio::time::sleep)
            // No retry whose wait would outlast the deadline.
            .adjust(|_, wait| wait.filter(|w| Instant::now() + *w < deadline))
            .notify(|error, _| tracing::warn!(error = %error, "retrying model request"))
            .await?;
        drop(request);
        let mut completion = Completion {
            model: self.model.clone(),
            ..Default::default()
        };
        let mut next = first;
        loop {
            let Some(chunk) = next else {
                return Ok(completion);
            };
            if let Some(usage) = &chunk.usage {
                completion.prompt_tokens = Some(usage.prompt_tokens);
                completion.completion_tokens = Some(usage.completion_tokens);
            }
            if !chunk.model.is_empty() {
                completion.model = chunk.model.clone();
            }
            for choice in &chunk.choices {
                if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                    completion.text.push_str(text);
                    if !on_delta(text) {
                        return Err(LlmError::Cancelled);
                    }
                }
            }
            next = match timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(LlmError::TotalTimeout),
                Ok(item) => item.transpose().map_err(|e| LlmError::Request(e.to_string()))?,
            };
        }
    }
}
