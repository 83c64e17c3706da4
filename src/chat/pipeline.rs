//! The chat pipeline core. See the module docs of [`crate::chat`] for the flow.

use super::citations::CitationFilter;
use super::decline::DeclineFilter;
use super::extractive;
use super::llm::{ChatModel, Completion, LlmError, LlmLimits, LlmMessage};
use super::passages::{PassageCache, Reading};
use super::policy::{decide, Decision, Grounding, PolicyConfig, Refusal};
use super::prompts::{PromptPassage, Prompts, TemplateRef};
use super::types::{ChatError, ChatReply, ChatRequest, Citation, Handoff, Mode, StreamEvent};
use crate::audit::{new_record_id, AuditStore, EventBatch, NewConversation, NewEvent, NewMessage, StoredMessage};
use crate::guard::{escalation, Guard, Reason, Screened};
use crate::knowledge::Chunker;
use crate::lang::Lang;
use crate::retrieval::query::{retrieval_query, Role, Turn};
use crate::retrieval::{distinct_sources, Hit, Index, SearchOptions};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

/// Tunables of the pipeline.
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

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            k: 5,
            history_tokens: 1_500,
            max_turns: 50,
            deadline: Duration::from_secs(30),
            llm: LlmLimits {
                first_token: Duration::from_secs(10),
                total: Duration::from_secs(25),
                retries: 2,
            },
            policy: PolicyConfig::default(),
        }
    }
}

/// Everything a turn needs; cheap to clone into request handlers.
#[derive(Clone)]
pub struct Pipeline {
    pub index: Index,
    pub audit: Arc<AuditStore>,
    pub llm: Option<Arc<dyn ChatModel>>,
    pub prompts: Arc<Prompts>,
    pub chunker: Chunker,
    pub guard: Arc<Guard>,
    /// Passages already split and tokenised, for the grounding measure and extractive
    /// answers.
    pub passages: Arc<PassageCache>,
    pub options: PipelineOptions,
}

/// What a turn's answer is built from.
#[derive(Clone, Copy)]
struct TurnContext<'a> {
    lang: Lang,
    /// The standalone retrieval query (follow-ups condensed).
    query: &'a str,
    /// The same query, read against the passages.
    question: &'a Reading<'a>,
    /// The customer's own words.
    message: &'a str,
    history: &'a [Turn],
    retrieved: &'a Retrieved,
    conversation_id: Uuid,
    /// The conversation starts with this turn.
    is_new: bool,
    /// What the inbound guardrails found.
    screened: &'a Screened,
    /// Personal data was masked for the first time in this conversation: remind the
    /// customer not to share it.
    remind: bool,
    /// 1-based number of the customer's turn.
    turn: usize,
    message_id: Uuid,
    events: Option<&'a mpsc::UnboundedSender<StreamEvent>>,
    deadline: Instant,
}

/// What retrieval found for a turn.
struct Retrieved {
    /// The best chunk of each of the top sources, best first: citations and prompts.
    sources: Vec<Hit>,
    /// Every chunk candidate, several per source: where extractive answers look.
    chunks: Vec<Hit>,
}

/// The body of a reply before it is recorded.
struct Answer {
    mode: Mode,
    text: String,
    citations: Vec<Citation>,
    handoff: Option<Handoff>,
    templates: Vec<TemplateRef>,
    model: Option<String>,
    usage: Option<(Option<u32>, Option<u32>)>,
    fallback: Option<&'static str>,
    /// Already sent to the client as deltas (generated answers stream as they come).
    streamed: bool,
    /// What the output guard changed or caught (e.g. `system_prompt_echo`).
    flags: Vec<&'static str>,
}

impl Answer {
    fn plain(mode: Mode, text: String) -> Self {
        Self {
            mode,
            text,
            citations: Vec::new(),
            handoff: None,
            templates: Vec::new(),
            model: None,
            usage: None,
            fallback: None,
            streamed: false,
            flags: Vec::new(),
        }
    }

    fn template(mode: Mode, text: String, template: TemplateRef, handoff: Option<Handoff>) -> Self {
        Self {
            handoff,
            templates: vec![template],
            ..Self::plain(mode, text)
        }
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn snippet(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(240) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Adds a completion's token usage to the metrics.
fn count_tokens(completion: &Completion) {
    metrics::counter!("teller_llm_tokens_total", "kind" => "prompt")
        .increment(completion.prompt_tokens.unwrap_or(0).into());
    metrics::counter!("teller_llm_tokens_total", "kind" => "completion")
        .increment(completion.completion_tokens.unwrap_or(0).into());
}

fn citation(hit: &Hit) -> Citation {
    Citation {
        source_id: hit.chunk.source_id.clone(),
        title: hit.chunk.title.clone(),
        snippet: snippet(hit.chunk.body()),
        score: hit.score,
    }
}

impl Pipeline {
    /// Checks a conversation token and returns the transcript (for `GET /v1/conversations`).
    pub async fn transcript(&self, id: Uuid, token: &str) -> Result<Vec<StoredMessage>, ChatError> {
        self.authorise(id, token).await?;
        self.audit.messages(id).await.map_err(ChatError::AuditUnavailable)
    }

    /// Checks a conversation token; a wrong token looks exactly like an unknown conversation.
    pub async fn authorise(&self, id: Uuid, token: &str) -> Result<(), ChatError> {
        let stored = self
            .audit
            .conversation_token_hash(id)
            .await
            .map_err(ChatError::AuditUnavailable)?;
        // A wrong token looks exactly like an unknown conversation.
        match stored {
            Some(hash) if bool::from(hash.as_bytes().ct_eq(hash_token(token).as_bytes())) => Ok(()),
            _ => Err(ChatError::ConversationNotFound),
        }
    }

    /// Answers one customer turn. With `events`, streams `Meta` then `Delta`s; the
    /// returned reply (the SSE `done` payload) is only produced after the audit commit.
    #[tracing::instrument(skip_all, fields(conversation_id))]
    pub async fn respond(
        &self,
        request: ChatRequest,
        events: Option<mpsc::UnboundedSender<StreamEvent>>,
    ) -> Result<ChatReply, ChatError> {
        let started = Instant::now();
        let deadline = started + self.options.deadline;
        // Personal data is masked before retrieval, the model, logs or the record see it;
        // every other check runs on the masked text.
        let mut screened = self.guard.screen(request.message.as_str());
        let message = screened.masked.text.clone();

        let (conversation_id, token, is_new, history) = match &request.conversation {
            Some((id, token)) => {
                self.authorise(*id, token).await?;
                let history = self.audit.messages(*id).await.map_err(ChatError::AuditUnavailable)?;
                (*id, token.clone(), false, history)
            }
            None => (new_record_id(), new_token(), true, Vec::new()),
        };
        tracing::Span::current().record("conversation_id", tracing::field::display(conversation_id));
        let turn = history.iter().filter(|m| m.role == "user").count() + 1;
        if turn > self.options.max_turns {
            return Err(ChatError::ConversationTooLong(self.options.max_turns));
        }
        let lang = request.lang.unwrap_or_else(|| Lang::detect(&message));
        let history_turns = self.bounded_history(&history);
        // A short yes right after the assistant offered a colleague accepts the offer.
        let offered = history
            .iter()
            .rev()
            .find(|m| m.role == "assistant")
            .is_some_and(|m| m.mode.as_deref() == Some(Mode::Refusal.as_str()));
        if screened.escalation.is_none() && offered && escalation::accepts_offer(&message) {
            screened.escalation = Some(Reason::CustomerRequest);
        }
        // The reminder not to share personal data comes once per conversation: earlier
        // customer messages with placeholders got it already.
        let remind = !screened.masked.found.is_empty()
            && !history
                .iter()
                .any(|m| m.role == "user" && crate::guard::pii::has_placeholder(&m.content));

        // Retrieval runs for handoffs too: the record shows what the bank's documents
        // said about the customer's situation, and safety information comes from there.
        let stage = Instant::now();
        // A flagged message never reaches the model, not even to be condensed.
        let (query, condense_template) = if screened.injection {
            (retrieval_query(&history_turns, &message), None)
        } else {
            self.standalone_query(&history_turns, &message, lang, deadline).await
        };
        let condense_ms = stage.elapsed().as_secs_f64() * 1e3;
        let stage = Instant::now();
        let retrieved = self.retrieve(&query, lang, deadline).await?;
        let hits = &retrieved.sources[..];
        let retrieval_ms = stage.elapsed().as_secs_f64() * 1e3;
        metrics::histogram!("teller_stage_seconds", "stage" => "retrieval").record(retrieval_ms / 1e3);

        let question = self.reading(&query, lang);
        let grounding = Grounding::measure(&question, hits);
        let decision = decide(&screened, hits, &grounding, &self.options.policy);
        let message_id = new_record_id();
        let stage = Instant::now();
        let ctx = TurnContext {
            lang,
            query: &query,
            question: &question,
            message: &message,
            history: &history_turns,
            retrieved: &retrieved,
            conversation_id,
            is_new,
            screened: &screened,
            remind,
            turn,
            message_id,
            events: events.as_ref(),
            deadline,
        };
        let answer = self.answer(decision, ctx).await;
        let answer_ms = stage.elapsed().as_secs_f64() * 1e3;
        metrics::histogram!("teller_stage_seconds", "stage" => "answer").record(answer_ms / 1e3);
        let mut answer = match answer {
            Ok(answer) => answer,
            Err(ChatError::Cancelled) => {
                self.record_cancelled(conversation_id, &token, is_new, lang, turn, &message)
                    .await;
                return Err(ChatError::Cancelled);
            }
            Err(e) => return Err(e),
        };
        if let Some(t) = condense_template {
            answer.templates.insert(0, t);
        }

        let reply = ChatReply {
            conversation_id,
            conversation_token: token.clone(),
            message_id,
            answer: answer.text.clone(),
            mode: answer.mode,
            citations: answer.citations.clone(),
            handoff: answer.handoff.clone(),
        };
        let stage = Instant::now();
        let batch = self.turn_record(ctx, &reply, &answer, &grounding, [condense_ms, retrieval_ms, answer_ms]);
        // No deadline here: an append abandoned half-way could still be committed by the
        // group it joined, recording an answer the customer never got. The pool's acquire
        // timeout bounds a dead database instead.
        self.audit.append(batch).await.map_err(ChatError::AuditUnavailable)?;
        metrics::histogram!("teller_stage_seconds", "stage" => "audit").record(stage.elapsed().as_secs_f64());
        metrics::counter!("teller_chat_turns_total", "mode" => answer.mode.as_str()).increment(1);
        if let Some(reason) = screened.escalation.filter(|r| r.is_risk()) {
            // Early warning: a bank watches this rate for waves of scams.
            metrics::counter!("teller_risk_alerts_total", "reason" => reason.as_str()).increment(1);
        }
        if screened.injection {
            metrics::counter!("teller_injection_flagged_total").increment(1);
        }
        for kind in &screened.masked.found {
            metrics::counter!("teller_pii_masked_total", "kind" => kind.as_str()).increment(1);
        }
        if let Some(fallback) = answer.fallback {
            metrics::counter!("teller_llm_fallbacks_total", "reason" => fallback).increment(1);
        }

        // Answers that were not generated token by token go out only now, after the
        // commit, so a customer never sees an unrecorded answer.
        if let Some(tx) = &events {
            if !answer.streamed {
                for piece in split_for_stream(&reply.answer) {
                    if tx.send(StreamEvent::Delta(piece)).is_err() {
                        break;
                    }
                }
            }
        }
        metrics::histogram!("teller_stage_seconds", "stage" => "total").record(started.elapsed().as_secs_f64());
        Ok(reply)
    }

    async fn retrieve(&self, query: &str, lang: Lang, deadline: Instant) -> Result<Retrieved, ChatError> {
        let options = SearchOptions {
            k: self.options.k,
            lang: Some(lang),
            ..Default::default()
        };
        let chunks = timeout_at(deadline, self.index.search_chunks(query, &options))
            .await
            .map_err(|_| ChatError::Deadline)?
            .map_err(ChatError::RetrievalUnavailable)?;
        let sources = distinct_sources(chunks.clone(), self.options.k);
        // Only the chunks of the sources an extractive answer may quote are kept for the
        // rest of the turn (a streamed turn holds them until it ends).
        let quotable: Vec<&str> = sources
            .iter()
            .take(extractive::MAX_SOURCES)
            .map(|h| h.chunk.source_id.as_str())
            .collect();
        let chunks = chunks
            .into_iter()
            .filter(|c| quotable.contains(&c.chunk.source_id.as_str()))
            .collect();
        Ok(Retrieved { sources, chunks })
    }

    /// Most recent turns that fit the token budget, oldest first. Turns refused as an
    /// attempt to change the assistant's instructions (a refusal that offers no colleague,
    /// see [`Refusal::reason`]) are left out with their refusal: the model never sees them.
    fn bounded_history(&self, history: &[StoredMessage]) -> Vec<Turn> {
        let mut budget = self.options.history_tokens;
        let mut turns = Vec::new();
        let flagged: Vec<i64> = history
            .iter()
            .filter(|m| m.mode.as_deref() == Some(Mode::Refusal.as_str()) && m.handoff_reason.is_none())
            .map(|m| m.turn)
            .collect();
        for m in history.iter().rev().filter(|m| !flagged.contains(&m.turn)) {
            let cost = self.chunker.count_tokens(&m.content) + 4;
            if cost > budget {
                break;
            }
            budget -= cost;
            let role = if m.role == "user" { Role::User } else { Role::Assistant };
            turns.push(Turn {
                role,
                content: m.content.clone(),
            });
        }
        turns.reverse();
        turns
    }

    /// The retrieval query: condensed by the model when one is configured and there is
    /// history, deterministically otherwise (and whenever the model fails).
    async fn standalone_query(
        &self,
        history: &[Turn],
        message: &str,
        lang: Lang,
        deadline: Instant,
    ) -> (String, Option<TemplateRef>) {
        let fallback = retrieval_query(history, message);
        let (Some(llm), false) = (&self.llm, history.is_empty()) else {
            return (fallback, None);
        };
        let turns: Vec<(String, String)> = history
            .iter()
            .map(|t| {
                (
                    if t.role == Role::User { "customer" } else { "assistant" }.to_string(),
                    t.content.clone(),
                )
            })
            .collect();
        let Ok(prompt) = self.prompts.condense(lang, &turns, message) else {
            return (fallback, None);
        };
        let limits = self.limits(deadline);
        let mut ignore = |_: &str| true;
        match llm.complete(vec![LlmMessage::User(prompt)], limits, &mut ignore).await {
            Ok(c) if !c.text.trim().is_empty() => {
                // The customer's own words stay in the query: a condensation that drops
                // them can only lose recall.
                (
                    format!("{}\n{message}", c.text.trim()),
                    Some(self.prompts.reference("condense")),
                )
            }
            Ok(_) => (fallback, None),
            Err(e) => {
                tracing::warn!(error = %e, "condense failed; using the deterministic query");
                (fallback, None)
            }
        }
    }

    fn limits(&self, deadline: Instant) -> LlmLimits {
        let left = deadline.saturating_duration_since(Instant::now());
        LlmLimits {
            first_token: self.options.llm.first_token.min(left),
            total: self.options.llm.total.min(left),
            retries: self.options.llm.retries,
        }
    }

    async fn answer(&self, decision: Decision, ctx: TurnContext<'_>) -> Result<Answer, ChatError> {
        let TurnContext {
            lang,
            retrieved,
            conversation_id,
            message_id,
            events,
            ..
        } = ctx;
        let hits = &retrieved.sources[..];
        let mut answer = match decision {
            Decision::Handoff(reason) => {
                let mut answer = Answer::template(
                    Mode::Handoff,
                    self.prompts
                        .handoff(lang, reason)
                        .expect("templates were checked at start-up"),
                    self.prompts.reference("handoff"),
                    Some(Handoff {
                        reason: reason.to_string(),
                    }),
                );
                // Meanwhile, what the bank's own documents say to do (a hotline, locking
                // the card), quoted and cited, never generated.
                if let Some(terms) = reason.safety_terms(lang) {
                    let safety_query = format!("{terms}\n{}", ctx.message);
                    // The handoff never fails for want of its quote.
                    match self.retrieve(&safety_query, lang, ctx.deadline).await {
                        Ok(found) => {
                            // Sentences are chosen for the safety terms alone, so the
                            // hotline comes first rather than what echoes the customer.
                            let safety = self.reading(terms, lang);
                            if let Some(extract) = extractive::compose(&safety, &found.sources, &found.chunks) {
                                answer.text = format!("{}\n\n{}", answer.text, extract.text);
                                answer.citations = extract.cited.iter().map(|i| citation(&found.sources[*i])).collect();
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "no safety information for a handoff"),
                    }
                }
                answer
            }
            Decision::Refusal(refusal) => self.refusal(refusal, lang),
            Decision::Approved => {
                let top = &hits[0];
                let text = top.chunk.faq_answer().unwrap_or(top.chunk.body()).to_string();
                Answer {
                    citations: vec![citation(top)],
                    ..Answer::plain(Mode::Approved, text)
                }
            }
            Decision::Answer => match &self.llm {
                Some(llm) => return self.generate(llm.as_ref(), ctx).await,
                None => self.extractive(ctx.question, retrieved, None),
            },
        };
        self.frame(ctx, &mut answer);
        if let Some(tx) = events {
            let meta = StreamEvent::Meta {
                conversation_id,
                message_id,
                mode: answer.mode,
                citations: answer.citations.clone(),
            };
            tx.send(meta).map_err(|_| ChatError::Cancelled)?;
        }
        Ok(answer)
    }

    fn refusal(&self, refusal: Refusal, lang: Lang) -> Answer {
        let name = refusal.template();
        Answer::template(
            Mode::Refusal,
            self.prompts
                .text(name, lang)
                .expect("templates were checked at start-up"),
            self.prompts.reference(name),
            refusal.reason().map(|r| Handoff { reason: r.to_string() }),
        )
    }

    /// The AI disclosure that opens a conversation and the reminder after masked
    /// personal data, around the body of a reply.
    fn frame_parts(&self, ctx: TurnContext<'_>) -> (Option<String>, Option<String>) {
        let text = |name| {
            self.prompts
                .text(name, ctx.lang)
                .expect("templates were checked at start-up")
        };
        (
            ctx.is_new.then(|| text("disclosure")),
            ctx.remind.then(|| text("reminder")),
        )
    }

    fn frame(&self, ctx: TurnContext<'_>, answer: &mut Answer) {
        let (disclosure, reminder) = self.frame_parts(ctx);
        if let Some(disclosure) = disclosure {
            answer.text = format!("{disclosure}\n\n{}", answer.text);
            answer.templates.push(self.prompts.reference("disclosure"));
        }
        if let Some(reminder) = reminder {
            answer.text = format!("{}\n\n{reminder}", answer.text);
            answer.templates.push(self.prompts.reference("reminder"));
        }
    }

    /// A question read against this index's passages.
    fn reading<'a>(&'a self, question: &str, lang: Lang) -> Reading<'a> {
        Reading::new(
            question,
            lang,
            &self.index.bm25,
            self.index.vocabulary(),
            &self.passages,
        )
    }

    fn extractive(&self, question: &Reading, retrieved: &Retrieved, fallback: Option<&'static str>) -> Answer {
        let hits = &retrieved.sources[..];
        let lang = question.lang;
        match extractive::compose(question, &retrieved.sources, &retrieved.chunks) {
            Some(extract) => Answer {
                citations: extract.cited.iter().map(|i| citation(&hits[*i])).collect(),
                fallback,
                ..Answer::plain(Mode::Extractive, extract.text)
            },
            None => match fallback {
                // The model failed and the passages hold nothing quotable: a person helps.
                Some(reason) => {
                    let mut a = Answer::template(
                        Mode::Handoff,
                        self.prompts
                            .text("fallback", lang)
                            .expect("templates were checked at start-up"),
                        self.prompts.reference("fallback"),
                        Some(Handoff {
                            reason: Reason::ToolFailure.to_string(),
                        }),
                    );
                    a.fallback = Some(reason);
                    a
                }
                None => self.refusal(Refusal::MissingKnowledge, lang),
            },
        }
    }

    async fn generate(&self, llm: &dyn ChatModel, ctx: TurnContext<'_>) -> Result<Answer, ChatError> {
        let TurnContext {
            lang,
            message,
            history,
            retrieved,
            conversation_id,
            message_id,
            events,
            deadline,
            ..
        } = ctx;
        let hits = &retrieved.sources[..];
        let passages: Vec<PromptPassage> = hits
            .iter()
            .map(|h| PromptPassage {
                source_id: h.chunk.source_id.clone(),
                title: h.chunk.title.clone(),
                text: h.chunk.text.clone(),
            })
            .collect();
        let system = self
            .prompts
            .text("system", lang)
            .expect("templates were checked at start-up");
        let user = self
            .prompts
            .answer(lang, &passages, message)
            .expect("templates were checked at start-up");
        let mut messages = vec![LlmMessage::System(system)];
        for turn in history {
            messages.push(match turn.role {
                Role::User => LlmMessage::User(turn.content.clone()),
                Role::Assistant => LlmMessage::Assistant(turn.content.clone()),
            });
        }
        messages.push(LlmMessage::User(user));

        if let Some(tx) = events {
            // The candidates; `done` carries the ones the answer actually cites.
            let meta = StreamEvent::Meta {
                conversation_id,
                message_id,
                mode: Mode::Generated,
                citations: hits.iter().map(citation).collect(),
            };
            tx.send(meta).map_err(|_| ChatError::Cancelled)?;
        }
        let (disclosure, reminder) = self.frame_parts(ctx);
        let mut templates = vec![self.prompts.reference("system"), self.prompts.reference("answer")];
        // What the customer has been shown so far, exactly as the deltas said it.
        let mut shown = String::new();
        let send = |shown: &mut String, piece: String| {
            shown.push_str(&piece);
            match events {
                // A closed channel means the client went away.
                Some(tx) if !piece.is_empty() => tx.send(StreamEvent::Delta(piece)).is_ok(),
                _ => true,
            }
        };
        if let Some(disclosure) = disclosure {
            send(&mut shown, format!("{disclosure}\n\n"));
            templates.push(self.prompts.reference("disclosure"));
        }
        let opening = shown.len();
        // Model output passes the citation check, then the output guard (markup, links,
        // personal data, system-prompt echo), and only then reaches the customer.
        // First, a reply that is the model's "no answer" marker is held back and never
        // shown; it becomes the policy's refusal below.
        let mut decline = DeclineFilter::new();
        let mut citations = CitationFilter::new(passages.len());
        let mut guard = self.guard.output.stream(&self.guard.masker);
        let mut client_open = true;
        // The body starts at its first non-blank character.
        let body = |shown: &String, piece: String| {
            if shown.len() == opening {
                piece.trim_start().to_string()
            } else {
                piece
            }
        };
        let mut on_delta = |delta: &str| {
            let clean = body(&shown, guard.push(&citations.push(&decline.push(delta))));
            client_open = send(&mut shown, clean);
            // Stop generating once the client left or the output repeats the prompt. A
            // decline is read to its end (a few tokens) so its usage is recorded.
            client_open && !guard.echoed()
        };
        let started = Instant::now();
        let result = llm.complete(messages, self.limits(deadline), &mut on_delta).await;
        metrics::histogram!("teller_stage_seconds", "stage" => "llm").record(started.elapsed().as_secs_f64());
        let held = citations.push(&decline.finish(result.is_ok()));
        let tail = guard.push(&(held + &citations.finish()));
        let tail = tail + &guard.finish();
        let echoed = guard.echoed();
        let tail = body(&shown, tail);
        client_open = client_open && send(&mut shown, tail);
        let body_sent = shown.len() > opening;
        let cited: Vec<Citation> = citations.cited().iter().map(|n| citation(&hits[n - 1])).collect();
        let base = |mode: Mode, handoff: Option<Handoff>| Answer {
            mode,
            text: String::new(),
            citations: cited.clone(),
            handoff,
            templates: templates.clone(),
            model: Some(llm.model().to_string()),
            usage: None,
            fallback: None,
            streamed: events.is_some(),
            flags: Vec::new(),
        };
        let mut answer = match result {
            _ if echoed => {
                // The model repeated its instructions: whatever came before stays (it was
                // shown), the rest is replaced by a refusal.
                tracing::warn!("model output repeated the system prompt; replaced by a refusal");
                let refusal = self.refusal(Refusal::Injection, lang);
                let addition = if body_sent {
                    format!("\n\n{}", refusal.text)
                } else {
                    refusal.text.clone()
                };
                send(&mut shown, addition);
                let mut answer = base(Mode::Refusal, None);
                answer.citations.clear();
                answer.templates.extend(refusal.templates);
                answer.flags.push("system_prompt_echo");
                answer
            }
            // The model found no answer in the passages: the policy's refusal, in the
            // bank's words, with a colleague offered.
            _ if decline.declined() => {
                let refusal = self.refusal(Refusal::MissingKnowledge, lang);
                if !send(&mut shown, refusal.text.clone()) {
                    return Err(ChatError::Cancelled);
                }
                let mut answer = base(Mode::Refusal, refusal.handoff.clone());
                answer.citations.clear();
                answer.templates.extend(refusal.templates);
                if let Ok(completion) = &result {
                    count_tokens(completion);
                    answer.usage = Some((completion.prompt_tokens, completion.completion_tokens));
                }
                answer.flags.push("model_declined");
                metrics::counter!("teller_llm_declined_total").increment(1);
                answer
            }
            Ok(completion) => {
                count_tokens(&completion);
                Answer {
                    model: Some(completion.model),
                    usage: Some((completion.prompt_tokens, completion.completion_tokens)),
                    ..base(Mode::Generated, None)
                }
            }
            Err(LlmError::Cancelled) if !client_open => return Err(ChatError::Cancelled),
            Err(error) if !body_sent => {
                tracing::warn!(error = %error, "model failed before answering; falling back to an extractive answer");
                let mut answer = self.extractive(ctx.question, retrieved, Some(error.kind()));
                answer.model = Some(llm.model().to_string());
                // After the disclosure, if one went out already.
                send(&mut shown, answer.text.clone());
                answer.streamed = events.is_some();
                answer
                    .templates
                    .splice(0..0, templates.iter().filter(|t| t.name == "disclosure").cloned());
                answer
            }
            Err(error) => {
                // Part of a generated answer already reached the customer: finish it
                // honestly rather than switch to a different answer mid-sentence.
                tracing::warn!(error = %error, "model failed mid-answer; handing over");
                let apology = self
                    .prompts
                    .text("fallback", lang)
                    .expect("templates were checked at start-up");
                send(&mut shown, format!("\n\n{apology}"));
                let mut answer = base(
                    Mode::Handoff,
                    Some(Handoff {
                        reason: Reason::ToolFailure.to_string(),
                    }),
                );
                answer.templates.push(self.prompts.reference("fallback"));
                answer.fallback = Some(error.kind());
                answer
            }
        };
        if let Some(reminder) = reminder {
            send(&mut shown, format!("\n\n{reminder}"));
            answer.templates.push(self.prompts.reference("reminder"));
        }
        // Streamed, the answer is exactly what the deltas said; otherwise it is trimmed.
        answer.text = if events.is_some() {
            shown
        } else {
            shown.trim().to_string()
        };
        Ok(answer)
    }

    fn turn_record(
        &self,
        ctx: TurnContext<'_>,
        reply: &ChatReply,
        answer: &Answer,
        grounding: &Grounding,
        [condense_ms, retrieval_ms, answer_ms]: [f64; 3],
    ) -> EventBatch {
        let TurnContext {
            lang,
            query,
            message,
            retrieved,
            is_new,
            turn,
            screened,
            ..
        } = ctx;
        let hits = &retrieved.sources[..];
        let id = reply.conversation_id;
        let user_message_id = new_record_id();
        let event = |kind: &str, payload: serde_json::Value| NewEvent {
            actor: "customer".into(),
            kind: kind.into(),
            conversation_id: Some(id),
            payload,
        };
        let citations = serde_json::to_value(&reply.citations).expect("citations serialise");
        let mut batch = EventBatch {
            conversation: is_new.then(|| NewConversation {
                id,
                token_hash: hash_token(&reply.conversation_token),
                lang: lang.to_string(),
            }),
            events: vec![
                event(
                    "message_received",
                    json!({
                        "message_id": user_message_id,
                        "turn": turn,
                        "lang": lang,
                        "content": message,
                        "masked": screened.masked.found,
                        "screen": {
                            "escalation": screened.escalation,
                            "injection": screened.injection,
                            "advice": screened.asks_for_advice,
                        },
                    }),
                ),
                event(
                    "retrieval",
                    json!({
                        "query": query,
                        "backend": self.index.store.backend(),
                        "hits": hits.iter().map(|h| json!({ "source_id": h.chunk.source_id, "chunk_id": h.chunk.id, "score": h.score })).collect::<Vec<_>>(),
                        "grounding": grounding,
                    }),
                ),
                NewEvent {
                    actor: "assistant".into(),
                    ..event(
                        "answer",
                        json!({
                            "message_id": reply.message_id,
                            "turn": turn,
                            "mode": reply.mode,
                            "answer": reply.answer,
                            "citations": citations,
                            "handoff": reply.handoff,
                            "templates": answer.templates,
                            "model": answer.model,
                            "usage": answer.usage.map(|(p, c)| json!({ "prompt_tokens": p, "completion_tokens": c })),
                            "fallback": answer.fallback,
                            "flags": answer.flags,
                            "latency_ms": { "condense": condense_ms, "retrieval": retrieval_ms, "answer": answer_ms },
                        }),
                    )
                },
            ],
            messages: vec![
                NewMessage {
                    id: user_message_id,
                    conversation_id: id,
                    turn: turn as i64,
                    role: "user".into(),
                    content: message.to_string(),
                    mode: None,
                    citations: None,
                    handoff_reason: None,
                    event_index: 0,
                },
                NewMessage {
                    id: reply.message_id,
                    conversation_id: id,
                    turn: turn as i64,
                    role: "assistant".into(),
                    content: reply.answer.clone(),
                    mode: Some(reply.mode.as_str().into()),
                    citations: Some(citations),
                    handoff_reason: reply.handoff.as_ref().map(|h| h.reason.clone()),
                    event_index: 2,
                },
            ],
        };
        if let Some(reason) = screened.escalation.filter(|r| r.is_risk()) {
            // A risk alert of its own, so monitoring can count scams without reading turns.
            batch.events.push(NewEvent {
                actor: "system".into(),
                ..event(
                    "risk_alert",
                    json!({ "reason": reason, "turn": turn, "message_id": reply.message_id, "lang": lang }),
                )
            });
        }
        batch
    }

    /// A turn whose client left mid-answer: the customer's message is still recorded.
    async fn record_cancelled(&self, id: Uuid, token: &str, is_new: bool, lang: Lang, turn: usize, message: &str) {
        let batch = EventBatch {
            conversation: is_new.then(|| NewConversation {
                id,
                token_hash: hash_token(token),
                lang: lang.to_string(),
            }),
            events: vec![
                NewEvent {
                    actor: "customer".into(),
                    kind: "message_received".into(),
                    conversation_id: Some(id),
                    payload: json!({ "turn": turn, "lang": lang, "content": message }),
                },
                NewEvent {
                    actor: "customer".into(),
                    kind: "reply_cancelled".into(),
                    conversation_id: Some(id),
                    payload: json!({ "turn": turn, "reason": "client_disconnected" }),
                },
            ],
            messages: Vec::new(),
        };
        if let Err(e) = self.audit.append(batch).await {
            tracing::error!(error = %e, "could not record a cancelled turn");
        }
    }
}

/// Splits a finished answer into word-sized deltas for clients that render progressively.
pub fn split_for_stream(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if (c.is_whitespace() && current.len() >= 24) || crate::lang::is_han(c) && current.chars().count() >= 8 {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

impl Pipeline {
    /// Records earlier turns as a conversation of their own (for `teller eval`, whose
    /// multi-turn questions come with history) and returns its id and token, so the
    /// question is then asked exactly as a customer's follow-up would be.
    pub async fn seed_conversation(&self, history: &[Turn], lang: Lang) -> Result<(Uuid, String), ChatError> {
        let id = new_record_id();
        let token = new_token();
        let mut batch = EventBatch {
            conversation: Some(NewConversation {
                id,
                token_hash: hash_token(&token),
                lang: lang.to_string(),
            }),
            ..Default::default()
        };
        let mut turn = 0;
        for t in history {
            let role = match t.role {
                Role::User => {
                    turn += 1;
                    "user"
                }
                Role::Assistant => "assistant",
            };
            batch.messages.push(NewMessage {
                id: new_record_id(),
                conversation_id: id,
                turn: turn.max(1),
                role: role.into(),
                content: t.content.clone(),
                mode: None,
                citations: None,
                handoff_reason: None,
                event_index: batch.events.len(),
            });
            batch.events.push(NewEvent {
                actor: "evaluation".into(),
                kind: "history_seeded".into(),
                conversation_id: Some(id),
                payload: json!({ "role": role, "content": t.content }),
            });
        }
        self.audit.append(batch).await.map_err(ChatError::AuditUnavailable)?;
        Ok((id, token))
    }
}
