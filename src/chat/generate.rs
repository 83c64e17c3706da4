//! Answers written by the model from the retrieved passages, streamed through the output
//! chain as they are generated. A model that fails before anything of its answer was
//! shown is replaced by an extractive answer; one that fails after hands over honestly.

use super::answer::{citation, send_meta, Answer};
use super::evidence::Evidence;
use super::inbound::Inbound;
use super::llm::{ChatModel, Completion, LlmError, LlmLimits, LlmMessage};
use super::metrics;
use super::output::OutputChain;
use super::pipeline::Pipeline;
use super::policy::Refusal;
use super::prompts::{PromptPassage, TemplateRef};
use super::sink::ReplySink;
use super::types::ChatError;
use crate::conversation::{Citation, HandoffReason, Mode, Speaker};
use tokio::time::Instant;

/// What the customer has been shown of a reply, exactly as the deltas said it.
struct Shown<'s> {
    sink: &'s mut dyn ReplySink,
    text: String,
    /// Where the answer's body starts (after the disclosure).
    opening: usize,
}

impl<'s> Shown<'s> {
    fn new(sink: &'s mut dyn ReplySink) -> Self {
        Self {
            sink,
            text: String::new(),
            opening: 0,
        }
    }

    /// Shows `piece`; `false` once the client has gone.
    fn push(&mut self, piece: &str) -> bool {
        self.text.push_str(piece);
        self.sink.text(piece)
    }

    /// Shows a piece of the body, which starts at its first non-blank character.
    fn push_body(&mut self, piece: &str) -> bool {
        let piece = if self.body_started() { piece } else { piece.trim_start() };
        self.push(piece)
    }

    /// Marks where the body starts: everything shown so far frames it.
    fn open_body(&mut self) {
        self.opening = self.text.len();
    }

    fn body_started(&self) -> bool {
        self.text.len() > self.opening
    }
}

/// How a generation ended, with what the output chain saw.
struct Generation {
    result: Result<Completion, LlmError>,
    echoed: bool,
    declined: bool,
    cited: Vec<Citation>,
    client_open: bool,
}

impl Pipeline {
    /// Time limits for a model call that must end by `deadline`.
    pub(super) fn limits(&self, deadline: Instant) -> LlmLimits {
        let left = deadline.saturating_duration_since(Instant::now());
        LlmLimits {
            first_token: self.options.llm.first_token.min(left),
            total: self.options.llm.total.min(left),
            retries: self.options.llm.retries,
        }
    }

    pub(super) async fn generate(
        &self,
        llm: &dyn ChatModel,
        turn: &Inbound,
        evidence: &Evidence<'_>,
        sink: &mut dyn ReplySink,
    ) -> Result<Answer, ChatError> {
        let hits = &evidence.retrieved.sources[..];
        let messages = self.model_prompt(turn, evidence);
        // The candidates; `done` carries the ones the answer actually cites.
        send_meta(sink, turn, Mode::Generated, hits.iter().map(citation).collect())?;
        let live = sink.is_live();
        let framing = self.framing(turn);
        let mut templates = vec![self.prompts.reference("system"), self.prompts.reference("answer")];
        let mut shown = Shown::new(sink);
        if let Some(disclosure) = &framing.disclosure {
            shown.push(&format!("{disclosure}\n\n"));
            templates.push(self.prompts.reference("disclosure"));
        }
        shown.open_body();

        let mut chain = OutputChain::new(&self.guard, hits.len());
        let mut client_open = true;
        let started = Instant::now();
        let result = {
            let mut on_delta = |delta: &str| {
                let clean = chain.push(delta);
                client_open = shown.push_body(&clean);
                // Stop generating once the client left or the output repeats the prompt.
                // A decline is read to its end (a few tokens) so its usage is recorded.
                client_open && !chain.echoed()
            };
            llm.complete(messages, self.limits(turn.deadline), &mut on_delta).await
        };
        metrics::stage("llm", started.elapsed().as_secs_f64());
        let tail = chain.finish(result.is_ok());
        client_open = client_open && shown.push_body(&tail);
        let generation = Generation {
            result,
            echoed: chain.echoed(),
            declined: chain.declined(),
            cited: chain.cited().iter().map(|n| citation(&hits[n - 1])).collect(),
            client_open,
        };
        let base = Answer {
            citations: generation.cited.clone(),
            templates: templates.clone(),
            model: Some(llm.model().to_string()),
            streamed: live,
            ..Answer::plain(Mode::Generated, String::new())
        };
        let mut answer = self.conclude(generation, base, &templates, evidence, &mut shown, turn)?;
        if let Some(reminder) = framing.reminder {
            shown.push(&format!("\n\n{reminder}"));
            answer.templates.push(self.prompts.reference("reminder"));
        }
        // Streamed, the answer is exactly what the deltas said; otherwise it is trimmed.
        answer.text = if live {
            shown.text
        } else {
            shown.text.trim().to_string()
        };
        Ok(answer)
    }

    /// The system prompt, the bounded history and the question with its passages as
    /// numbered data blocks.
    fn model_prompt(&self, turn: &Inbound, evidence: &Evidence<'_>) -> Vec<LlmMessage> {
        let passages: Vec<PromptPassage> = evidence
            .retrieved
            .sources
            .iter()
            .map(|h| PromptPassage {
                source_id: h.chunk.source_id.clone(),
                title: h.chunk.title.clone(),
                text: h.chunk.text.clone(),
            })
            .collect();
        let user = self
            .prompts
            .answer(turn.lang, &passages, turn.message())
            .expect("templates were checked at start-up");
        let mut messages = vec![LlmMessage::System(self.text("system", turn.lang))];
        for t in &turn.history {
            messages.push(match t.role {
                Speaker::Customer => LlmMessage::User(t.content.clone()),
                Speaker::Assistant | Speaker::Agent => LlmMessage::Assistant(t.content.clone()),
            });
        }
        messages.push(LlmMessage::User(user));
        messages
    }

    /// A model that failed before any of its answer was shown: an extractive answer
    /// instead, after the disclosure if one went out already.
    fn instead_of_model(
        &self,
        error: &LlmError,
        base: Answer,
        templates: &[TemplateRef],
        evidence: &Evidence<'_>,
        shown: &mut Shown<'_>,
    ) -> Answer {
        tracing::warn!(error = %error, "model failed before answering; falling back to an extractive answer");
        let mut answer = self.extractive(&evidence.question, &evidence.retrieved, Some(error.kind()));
        answer.model = base.model;
        shown.push(&answer.text);
        answer.streamed = base.streamed;
        answer
            .templates
            .splice(0..0, templates.iter().filter(|t| t.name == "disclosure").cloned());
        answer
    }

    /// The answer a generation ended in. `base` is a generated answer citing what the
    /// model cited; the body shown so far stays shown whatever follows.
    fn conclude(
        &self,
        generation: Generation,
        base: Answer,
        templates: &[TemplateRef],
        evidence: &Evidence<'_>,
        shown: &mut Shown<'_>,
        turn: &Inbound,
    ) -> Result<Answer, ChatError> {
        let body_sent = shown.body_started();
        let declined_as = |refusal: Refusal, base: Answer| {
            let refusal = self.refusal(refusal, turn.lang);
            let mut answer = Answer {
                mode: Mode::Refusal,
                handoff: refusal.handoff,
                citations: Vec::new(),
                ..base
            };
            answer.templates.extend(refusal.templates);
            (answer, refusal.text)
        };
        Ok(match generation.result {
            // The model repeated its instructions: whatever came before stays (it was
            // shown), the rest is replaced by a refusal.
            _ if generation.echoed => {
                tracing::warn!("model output repeated the system prompt; replaced by a refusal");
                let (mut answer, text) = declined_as(Refusal::Injection, base);
                shown.push(&if body_sent { format!("\n\n{text}") } else { text });
                answer.flags.push("system_prompt_echo");
                answer
            }
            // The model found no answer in the passages: the policy's refusal, in the
            // bank's words, with a colleague offered.
            _ if generation.declined => {
                let (mut answer, text) = declined_as(Refusal::MissingKnowledge, base);
                if !shown.push(&text) {
                    return Err(ChatError::Cancelled);
                }
                if let Ok(completion) = &generation.result {
                    metrics::tokens(completion);
                    answer.usage = Some((completion.prompt_tokens, completion.completion_tokens));
                }
                answer.flags.push("model_declined");
                metrics::declined();
                answer
            }
            Ok(completion) => {
                metrics::tokens(&completion);
                Answer {
                    model: Some(completion.model),
                    usage: Some((completion.prompt_tokens, completion.completion_tokens)),
                    ..base
                }
            }
            Err(LlmError::Cancelled) if !generation.client_open => return Err(ChatError::Cancelled),
            Err(error) if !body_sent => self.instead_of_model(&error, base, templates, evidence, shown),
            Err(error) => {
                // Part of a generated answer already reached the customer: finish it
                // honestly rather than switch to a different answer mid-sentence.
                tracing::warn!(error = %error, "model failed mid-answer; handing over");
                shown.push(&format!("\n\n{}", self.text("fallback", turn.lang)));
                let mut answer = Answer {
                    mode: Mode::Handoff,
                    handoff: Some(crate::conversation::Handoff {
                        reason: HandoffReason::ToolFailure,
                    }),
                    fallback: Some(error.kind()),
                    ..base
                };
                answer.templates.push(self.prompts.reference("fallback"));
                answer
            }
        })
    }
}
