//! One customer turn as its stages: receive (screen, authorise, load history) → gather
//! evidence (standalone query, retrieve, read) → decide → answer → record → reply.

use super::answer::Answer;
use super::answerability::Model as AnswerabilityModel;
use super::inbound::Inbound;
use super::llm::{ChatModel, LlmLimits};
use super::metrics;
use super::policy::{decide, PolicyConfig};
use super::prompts::Prompts;
use super::record::Latency;
use super::sink::{split_for_stream, ReplySink};
use super::types::{ChatError, ChatReply, ChatRequest};
use crate::audit::{AuditStore, StoredMessage};
use crate::guard::Guard;
use crate::knowledge::Chunker;
use crate::retrieval::passages::PassageCache;
use crate::retrieval::Index;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Passages retrieved per turn (distinct sources).
pub const RETRIEVED_SOURCES: usize = 5;
/// Customer turns per conversation.
pub const MAX_TURNS: usize = 50;

/// Tunables of the pipeline; [`crate::config::Settings::pipeline_options`] gives the
/// configured ones.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Passages retrieved (distinct sources).
    pub k: usize,
    /// Tokens of earlier turns given to the model.
    pub history_tokens: usize,
    /// Customer turns per conversation.
    pub max_turns: usize,
    /// The whole turn, retrieval to commit.
    pub deadline: Duration,
    pub llm: LlmLimits,
    pub policy: PolicyConfig,
}

/// The services a pipeline works with.
pub struct PipelineParts {
    pub index: Index,
    pub audit: Arc<AuditStore>,
    /// `None`: answers are extracted from the passages.
    pub llm: Option<Arc<dyn ChatModel>>,
    pub prompts: Arc<Prompts>,
    pub guard: Arc<Guard>,
    /// Counts the tokens of history given to the model.
    pub chunker: Chunker,
    /// Decides whether the passages answer a question.
    pub answerability: Arc<AnswerabilityModel>,
    /// The bank's own name: its words are in every passage and say nothing of a match.
    pub bank_name: String,
}

/// Everything a turn needs; cheap to clone into request handlers.
#[derive(Clone)]
pub struct Pipeline {
    pub(super) index: Index,
    pub(super) audit: Arc<AuditStore>,
    pub(super) llm: Option<Arc<dyn ChatModel>>,
    pub(super) prompts: Arc<Prompts>,
    pub(super) chunker: Chunker,
    pub(super) guard: Arc<Guard>,
    /// Passages already split and tokenised, for the grounding measure and extractive
    /// answers.
    pub(super) passages: Arc<PassageCache>,
    pub(super) answerability: Arc<AnswerabilityModel>,
    /// Terms that count for nothing in the answerability signals.
    pub(super) discounted: Arc<HashSet<u32>>,
    pub(super) options: PipelineOptions,
}

impl Pipeline {
    pub fn new(parts: PipelineParts, options: PipelineOptions) -> Self {
        let discounted = super::answerability::discounted_terms(&parts.index.bm25, &parts.bank_name);
        Self {
            answerability: parts.answerability,
            discounted: Arc::new(discounted),
            index: parts.index,
            audit: parts.audit,
            llm: parts.llm,
            prompts: parts.prompts,
            chunker: parts.chunker,
            guard: parts.guard,
            // A few thousand passages read into sentences and terms: a few MB, the
            // passages customers actually hit.
            passages: Arc::new(PassageCache::default()),
            options,
        }
    }

    /// Answers one customer turn. A live sink gets `meta`, then the text; the returned
    /// reply (the SSE `done` payload) is only produced after the audit commit, and text
    /// that was not generated live reaches the sink only then.
    #[tracing::instrument(skip_all, fields(conversation_id))]
    pub async fn respond(&self, request: ChatRequest, sink: &mut dyn ReplySink) -> Result<ChatReply, ChatError> {
        let started = Instant::now();
        let turn = self.receive(request, started + self.options.deadline).await?;
        let evidence = self.gather_evidence(&turn).await?;
        let decision = decide(
            &turn.screened,
            &evidence.retrieved.sources,
            &evidence.grounding,
            &evidence.answerability,
            &self.options.policy,
        );
        let stage = Instant::now();
        let answer = self.answer(decision, &turn, &evidence, sink).await;
        let answer_ms = stage.elapsed().as_secs_f64() * 1e3;
        metrics::stage("answer", answer_ms / 1e3);
        let mut answer = match answer {
            Ok(answer) => answer,
            Err(ChatError::Cancelled) => {
                self.record_cancelled(&turn).await;
                return Err(ChatError::Cancelled);
            }
            Err(e) => return Err(e),
        };
        if let Some(t) = evidence.query.template.clone() {
            answer.templates.insert(0, t);
        }
        let latency = Latency {
            condense: evidence.condense_ms,
            retrieval: evidence.retrieval_ms,
            answer: answer_ms,
        };
        let reply = self.commit(&turn, &evidence, &answer, latency).await?;
        // Answers that were not shown as they were produced go out only now, after the
        // commit, so a customer never sees an unrecorded answer.
        if sink.is_live() && !answer.streamed {
            for piece in split_for_stream(&reply.answer) {
                if !sink.text(&piece) {
                    break;
                }
            }
        }
        metrics::stage("total", started.elapsed().as_secs_f64());
        Ok(reply)
    }

    /// Records the turn; the reply exists only once the record is committed.
    async fn commit(
        &self,
        turn: &Inbound,
        evidence: &super::evidence::Evidence<'_>,
        answer: &Answer,
        latency: Latency,
    ) -> Result<ChatReply, ChatError> {
        let reply = ChatReply {
            conversation_id: turn.conversation.id,
            conversation_token: turn.conversation.token.clone(),
            message_id: turn.message_id,
            answer: answer.text.clone(),
            mode: answer.mode,
            citations: answer.citations.clone(),
            handoff: answer.handoff,
        };
        let stage = Instant::now();
        let batch = self.turn_record(turn, evidence, &reply, answer, latency);
        // No deadline here: an append abandoned half-way could still be committed by the
        // group it joined, recording an answer the customer never got. The pool's acquire
        // timeout bounds a dead database instead.
        self.audit.append(batch).await.map_err(ChatError::AuditUnavailable)?;
        metrics::stage("audit", stage.elapsed().as_secs_f64());
        metrics::turn_recorded(&turn.screened, answer);
        Ok(reply)
    }

    /// Checks a conversation token and returns the transcript (for `GET /v1/conversations`).
    pub async fn transcript(&self, id: Uuid, token: &str) -> Result<Vec<StoredMessage>, ChatError> {
        self.authorise(id, token).await?;
        self.audit.messages(id).await.map_err(ChatError::AuditUnavailable)
    }
}
