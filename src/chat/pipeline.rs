//! One customer turn as its stages: receive (screen, authorise, load history) → gather
//! evidence (standalone query, retrieve, read) → decide → answer → record → reply.

use super::answer::Answer;
use super::answerability::Model as AnswerabilityModel;
use super::inbound::Inbound;
use super::llm::{ChatModel, LlmLimits};
use super::metrics;
use super::policy::{decide, PolicyConfig};
use super::prompts::Prompts;
use super::record::{Latency, Unanswered};
use super::sink::{split_for_stream, ReplySink, Watched};
use super::types::{ChatError, ChatReply, ChatRequest};
use crate::audit::spool::{Deferred, InFlight, Resolution, Spool, SpooledBatch};
use crate::audit::{AuditError, AuditStore, StoredMessage};
use crate::conversation::{ConversationState, HandoffReason, Mode};
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
    /// Each call to the audit store, the commit included (taken from the turn's deadline).
    pub audit_budget: Duration,
    /// Condensing a follow-up into a standalone query; past it, the deterministic query.
    pub condense_budget: Duration,
    pub llm: LlmLimits,
    pub policy: PolicyConfig,
}

/// The services a pipeline works with.
pub struct PipelineParts {
    pub index: Index,
    pub audit: Arc<AuditStore>,
    /// Where turns go that the audit store cannot take in time.
    pub spool: Arc<Spool>,
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
    pub(super) spool: Arc<Spool>,
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
            spool: parts.spool,
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

    /// `text` with personal data masked, as the guard masks customer messages: for other
    /// customer text bound for the record (feedback comments).
    pub fn mask(&self, text: &str) -> String {
        self.guard.masker.mask(text).text
    }

    /// Answers one customer turn. A live sink gets `meta`, then the text; the returned
    /// reply (the SSE `done` payload) is only produced after the audit commit, and text
    /// that was not generated live reaches the sink only then. Every message accepted
    /// into a conversation is recorded, whatever fails after: with its answer, or with
    /// why there is none and what the customer was shown.
    #[tracing::instrument(
        name = "turn",
        skip_all,
        fields(request_id = request.request_id.as_ref().map(|r| r.as_str()), conversation_id, mode)
    )]
    pub async fn respond(&self, request: ChatRequest, sink: &mut dyn ReplySink) -> Result<ChatReply, ChatError> {
        let started = Instant::now();
        let turn = self.receive(request, self.answer_deadline(started)).await?;
        metrics::stage("receive", started.elapsed().as_secs_f64());
        let span = tracing::Span::current();
        span.record("conversation_id", tracing::field::display(turn.conversation.id));
        // A person owns the conversation: the assistant says nothing; the message goes to
        // them.
        if turn.conversation.state.is_human() {
            let reply = self.relay(&turn, sink, "").await?;
            span.record("mode", reply.mode.as_str());
            return Ok(reply);
        }
        let mut sink = Watched::new(sink);
        let (evidence, answer, latency) = match self.prepare(&turn, &mut sink).await {
            Ok(prepared) => prepared,
            Err(error) => {
                let why = match &error {
                    ChatError::Cancelled => Unanswered::Cancelled,
                    other => Unanswered::Failed(other),
                };
                self.record_unanswered(&turn, why, sink.shown()).await;
                return Err(error);
            }
        };
        let reply = self.commit(&turn, &evidence, &answer, latency, sink.shown()).await?;
        // Answers that were not shown as they were produced go out only now, after the
        // commit, so a customer never sees an unrecorded answer.
        span.record("mode", reply.mode.as_str());
        tracing::info_span!("reply").in_scope(|| {
            if sink.is_live() && !answer.streamed {
                for piece in split_for_stream(&reply.answer) {
                    if !sink.text(&piece) {
                        break;
                    }
                }
            }
        });
        metrics::stage("total", started.elapsed().as_secs_f64());
        Ok(reply)
    }

    /// When the answer must be ready: the turn's deadline less the audit store's budget,
    /// so the commit, whose outcome decides the reply, ends inside the turn's deadline.
    fn answer_deadline(&self, started: Instant) -> Instant {
        started + self.options.deadline.saturating_sub(self.options.audit_budget)
    }

    /// The stages between receiving and recording: evidence, decision, answer.
    async fn prepare(
        &self,
        turn: &Inbound,
        sink: &mut dyn ReplySink,
    ) -> Result<(super::evidence::Evidence<'_>, Answer, Latency), ChatError> {
        let evidence = self.gather_evidence(turn).await?;
        let decision = tracing::info_span!("decide").in_scope(|| {
            decide(
                &turn.screened,
                &evidence.retrieved.sources,
                &evidence.grounding,
                &evidence.answerability,
                &self.options.policy,
            )
        });
        let stage = Instant::now();
        let mut answer = self.answer(decision, turn, &evidence, sink).await?;
        let answer_ms = stage.elapsed().as_secs_f64() * 1e3;
        metrics::stage("answer", answer_ms / 1e3);
        if let Some(t) = evidence.query.template.clone() {
            answer.templates.insert(0, t);
        }
        let latency = Latency {
            condense: evidence.condense_ms,
            retrieval: evidence.retrieval_ms,
            answer: answer_ms,
        };
        Ok((evidence, answer, latency))
    }

    /// Records the turn; the reply exists only once the record is committed. A commit
    /// that fails or outlasts the audit budget leaves the turn's outcome in the spool:
    /// the customer's message and what they were shown, or, if the answer's commit
    /// lands after all, that it was not delivered. A commit refused because another
    /// message of the conversation took the turn's number first is not the store failing:
    /// it is never spooled (it would fail the same way on every replay); the customer's
    /// message is recorded as unanswered with the code they are given instead.
    #[tracing::instrument(name = "record", skip_all)]
    async fn commit(
        &self,
        turn: &Inbound,
        evidence: &super::evidence::Evidence<'_>,
        answer: &Answer,
        latency: Latency,
        shown: &str,
    ) -> Result<ChatReply, ChatError> {
        let reply = ChatReply {
            conversation_id: turn.conversation.id,
            conversation_token: turn.conversation.token.clone(),
            message_id: turn.message_id,
            answer: answer.text.clone(),
            mode: answer.mode,
            citations: answer.citations.clone(),
            handoff: answer.handoff,
            state: match answer.mode {
                Mode::Handoff => ConversationState::Waiting,
                _ => ConversationState::Bot,
            },
            queue_position: None,
        };
        let stage = Instant::now();
        let batch = self.turn_record(turn, evidence, &reply, answer, latency);
        match self.spool.append_within(batch, self.options.audit_budget).await {
            Ok(_) => {
                metrics::stage("audit", stage.elapsed().as_secs_f64());
                metrics::turn_recorded(&turn.screened, answer);
                let mut reply = reply;
                if reply.state == ConversationState::Waiting {
                    crate::handoff::metrics::handoff(
                        reply.handoff.map_or(HandoffReason::CustomerRequest, |h| h.reason),
                    );
                    reply.queue_position = self
                        .audit_read(self.audit.queue_position(reply.conversation_id))
                        .await
                        .ok()
                        .flatten();
                }
                Ok(reply)
            }
            // A colleague took the conversation while the assistant was answering: the
            // answer is not given, the message goes to them.
            Err((AuditError::HumanOwned, _)) => {
                let mut quiet = super::sink::WholeReply;
                self.relay(turn, &mut quiet, shown).await
            }
            Err((AuditError::Conflict, _)) => {
                let error = self.turn_taken(turn);
                ::metrics::counter!("teller_turn_conflicts_total", "code" => error.code()).increment(1);
                self.record_unanswered(turn, Unanswered::Failed(&error), shown).await;
                Err(error)
            }
            Err((error, in_flight)) => {
                let error = ChatError::AuditUnavailable(error);
                let resolution = Resolution::Answer {
                    message_id: reply.message_id,
                    instead: SpooledBatch::of(&self.undelivered_record(turn, &error, shown)),
                };
                let fallback = self.unanswered_record(turn, Unanswered::Failed(&error), shown);
                self.defer(Deferred::new(&fallback, resolution), in_flight);
                Err(error)
            }
        }
    }

    /// What a customer whose turn's number was taken is told: to send the message again,
    /// or, when the turn taken was the conversation's last, that it is over (sent again,
    /// the message would be refused as one turn too many).
    fn turn_taken(&self, turn: &Inbound) -> ChatError {
        if turn.number >= self.options.max_turns {
            ChatError::ConversationTooLong(self.options.max_turns)
        } else {
            ChatError::TurnConflict
        }
    }

    /// Records a turn that ends without an answer, within the audit budget, or spools it.
    pub(super) async fn record_unanswered(&self, turn: &Inbound, why: Unanswered<'_>, shown: &str) {
        let batch = self.unanswered_record(turn, why, shown);
        if let Err((error, in_flight)) = self.spool.append_within(batch.clone(), self.options.audit_budget).await {
            tracing::warn!(error = %error, "could not record an unanswered turn in time; spooled");
            self.defer(Deferred::new(&batch, Resolution::SameBatch), in_flight);
        }
    }

    fn defer(&self, entry: Deferred, in_flight: Option<InFlight>) {
        if let Err(e) = self.spool.defer(entry, in_flight) {
            // Neither the store nor the local disk took it: the one case where a turn
            // goes unrecorded, and the operator is told.
            tracing::error!(error = %e, "audit spool write failed: a turn's record is lost");
            ::metrics::counter!("teller_audit_records_lost_total").increment(1);
        }
    }

    /// Checks a conversation token and returns the transcript (for `GET /v1/conversations`).
    pub async fn transcript(&self, id: Uuid, token: &str) -> Result<Vec<StoredMessage>, ChatError> {
        self.authorise(id, token).await?;
        self.audit_read(self.audit.messages(id)).await
    }

    /// Where turns the audit store could not take in time wait to be recorded.
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }
}
