//! The record stage: what a turn writes to the audit log, as typed payloads, committed
//! before the reply leaves.

use super::answer::Answer;
use super::answerability::Answerability;
use super::evidence::Evidence;
use super::inbound::Inbound;
use super::pipeline::Pipeline;
use super::policy::Grounding;
use super::prompts::TemplateRef;
use super::types::{ChatError, ChatReply};
use crate::audit::live::{LiveKind, MessageData, NewLiveEvent, Requires, StateUpdate, Status};
use crate::audit::{new_record_id, Actor, EventBatch, EventKind, NewConversation, NewEvent, NewMessage, Payload};
use crate::auth;
use crate::conversation::{Citation, ConversationState, Handoff, HandoffReason, Mode, Speaker};
use crate::guard::{PiiKind, Signals};
use crate::handoff::state::Step;
use crate::lang::Lang;
use crate::retrieval::query::Turn;
use serde::Serialize;
use uuid::Uuid;

/// The customer's message, masked, with what the screen found.
#[derive(Serialize)]
struct MessageReceived<'a> {
    message_id: Uuid,
    turn: usize,
    lang: Lang,
    content: &'a str,
    masked: &'a [PiiKind],
    screen: Screen<'a>,
    /// The verified customer reference, for a signed-in customer's turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a str>,
    /// The HTTP request's id, as in the logs and the trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Screen<'a> {
    escalation: Option<HandoffReason>,
    injection: bool,
    advice: bool,
    /// Which check fired: a pattern, the classifier (with its probability), or an
    /// accepted offer of a colleague.
    signals: &'a Signals,
}

impl Payload for MessageReceived<'_> {
    const KIND: EventKind = EventKind::MessageReceived;
}

/// A customer message passed to a person (the same record as a received message).
#[derive(Serialize)]
struct MessageRelayed<'a>(MessageReceived<'a>);

impl Payload for MessageRelayed<'_> {
    const KIND: EventKind = EventKind::MessageRelayed;
}

/// What retrieval found, and how well it covered the question.
#[derive(Serialize)]
struct Retrieval<'a> {
    query: &'a str,
    backend: &'a str,
    hits: Vec<RetrievedHit<'a>>,
    grounding: &'a Grounding,
    answerability: &'a Answerability,
}

#[derive(Serialize)]
struct RetrievedHit<'a> {
    source_id: &'a str,
    chunk_id: Uuid,
    score: f32,
}

impl Payload for Retrieval<'_> {
    const KIND: EventKind = EventKind::Retrieval;
}

/// The reply as sent, and how it was produced.
#[derive(Serialize)]
struct AnswerGiven<'a> {
    message_id: Uuid,
    turn: usize,
    mode: Mode,
    answer: &'a str,
    citations: &'a [Citation],
    handoff: Option<Handoff>,
    templates: &'a [TemplateRef],
    model: Option<&'a str>,
    usage: Option<Usage>,
    fallback: Option<&'static str>,
    flags: &'a [&'static str],
    latency_ms: Latency,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

/// Milliseconds spent in the stages before the record.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Latency {
    pub condense: f64,
    pub retrieval: f64,
    pub answer: f64,
}

impl Payload for AnswerGiven<'_> {
    const KIND: EventKind = EventKind::Answer;
}

/// A risk alert of its own, so monitoring can count scams without reading turns.
#[derive(Serialize)]
struct RiskAlert {
    reason: HandoffReason,
    turn: usize,
    message_id: Uuid,
    lang: Lang,
}

impl Payload for RiskAlert {
    const KIND: EventKind = EventKind::RiskAlert;
}

/// The customer's message of a turn whose client left before the reply.
#[derive(Serialize)]
struct MessageReceivedUnanswered<'a> {
    turn: usize,
    lang: Lang,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Payload for MessageReceivedUnanswered<'_> {
    const KIND: EventKind = EventKind::MessageReceived;
}

/// How a turn without a recorded answer ended, and what the customer was shown of it
/// (text already streamed stays shown: the record says exactly what left).
#[derive(Serialize)]
struct ReplyEnded<'a> {
    turn: usize,
    message_id: Uuid,
    reason: &'a str,
    shown: &'a str,
}

/// The client left before the reply was complete.
#[derive(Serialize)]
struct ReplyCancelled<'a>(ReplyEnded<'a>);

impl Payload for ReplyCancelled<'_> {
    const KIND: EventKind = EventKind::ReplyCancelled;
}

/// The turn failed before its answer was recorded: a stage failed, or the audit store
/// did not take the answer in time.
#[derive(Serialize)]
struct ReplyInterrupted<'a>(ReplyEnded<'a>);

impl Payload for ReplyInterrupted<'_> {
    const KIND: EventKind = EventKind::ReplyInterrupted;
}

/// An answer whose commit landed after the customer had been told it failed: they were
/// given the error `reason` and shown `shown`, not the answer as recorded.
#[derive(Serialize)]
struct ReplyUndelivered<'a>(ReplyEnded<'a>);

impl Payload for ReplyUndelivered<'_> {
    const KIND: EventKind = EventKind::ReplyUndelivered;
}

/// Why a turn ended without its answer recorded.
pub(super) enum Unanswered<'e> {
    /// The client left.
    Cancelled,
    /// The error the customer was given.
    Failed(&'e ChatError),
}

/// An earlier turn of an evaluation question, recorded as its conversation's history.
#[derive(Serialize)]
struct HistorySeeded<'a> {
    role: Speaker,
    content: &'a str,
}

impl Payload for HistorySeeded<'_> {
    const KIND: EventKind = EventKind::HistorySeeded;
}

fn message_received(turn: &Inbound, message_id: Uuid) -> MessageReceived<'_> {
    let screened = &turn.screened;
    MessageReceived {
        message_id,
        turn: turn.number,
        lang: turn.lang,
        content: turn.message(),
        masked: &screened.masked.found,
        screen: Screen {
            escalation: screened.escalation,
            injection: screened.injection,
            advice: screened.asks_for_advice,
            signals: &screened.signals,
        },
        customer: turn.customer.as_ref().map(|c| c.as_str()),
        request_id: turn.request_id.as_ref().map(|r| r.as_str()),
    }
}

fn answer_given<'a>(turn: &Inbound, reply: &'a ChatReply, answer: &'a Answer, latency: Latency) -> AnswerGiven<'a> {
    AnswerGiven {
        message_id: reply.message_id,
        turn: turn.number,
        mode: reply.mode,
        answer: &reply.answer,
        citations: &reply.citations,
        handoff: reply.handoff,
        templates: &answer.templates,
        model: answer.model.as_deref(),
        usage: answer.usage.map(|(prompt_tokens, completion_tokens)| Usage {
            prompt_tokens,
            completion_tokens,
        }),
        fallback: answer.fallback,
        flags: &answer.flags,
        latency_ms: latency,
    }
}

/// The conversation's verified customer, for its row.
fn customer_link(turn: &Inbound) -> Option<(Uuid, String)> {
    turn.customer
        .as_ref()
        .map(|c| (turn.conversation.id, c.as_str().to_string()))
}

fn new_conversation(turn: &Inbound) -> Option<NewConversation> {
    turn.conversation.is_new.then(|| NewConversation {
        id: turn.conversation.id,
        token_hash: auth::hash(&turn.conversation.token),
        lang: turn.lang.to_string(),
    })
}

impl Pipeline {
    /// Everything one answered turn records: the message, the retrieval, the answer, a
    /// risk alert for a scam, and the two transcript rows.
    pub(super) fn turn_record(
        &self,
        turn: &Inbound,
        evidence: &Evidence<'_>,
        reply: &ChatReply,
        answer: &Answer,
        latency: Latency,
    ) -> EventBatch {
        let id = Some(turn.conversation.id);
        let user_message_id = new_record_id();
        let mut events = vec![
            NewEvent::of(Actor::Customer, id, &message_received(turn, user_message_id)),
            NewEvent::of(Actor::Customer, id, &self.retrieval(evidence)),
            NewEvent::of(Actor::Assistant, id, &answer_given(turn, reply, answer, latency)),
        ];
        if let Some(reason) = turn.screened.escalation.filter(|r| r.is_risk()) {
            let alert = RiskAlert {
                reason,
                turn: turn.number,
                message_id: reply.message_id,
                lang: turn.lang,
            };
            events.push(NewEvent::of(Actor::System, id, &alert));
        }
        let message = |id, speaker, content: &str, event_index| {
            NewMessage::text(
                id,
                turn.conversation.id,
                turn.number as i64,
                speaker,
                content,
                event_index,
            )
        };
        let mut batch = EventBatch {
            conversation: new_conversation(turn),
            messages: vec![
                message(user_message_id, Speaker::Customer, turn.message(), 0),
                NewMessage {
                    mode: Some(reply.mode),
                    citations: Some(reply.citations.clone()),
                    handoff_reason: reply.handoff.map(|h| h.reason),
                    ..message(reply.message_id, Speaker::Assistant, &reply.answer, 2)
                },
            ],
            // Refused at commit if a person took the conversation meanwhile.
            requires: (!turn.conversation.is_new).then_some(Requires::Bot(turn.conversation.id)),
            customer: customer_link(turn),
            ..Default::default()
        };
        self.state_change(turn, reply, &mut events, &mut batch);
        batch.events = events;
        batch
    }

    /// A handoff puts the conversation in the queue of colleagues (its own event, and the
    /// live row that tells the queue); an answer after a colleague closed the conversation
    /// gives it back to the assistant.
    fn state_change(&self, turn: &Inbound, reply: &ChatReply, events: &mut Vec<NewEvent>, batch: &mut EventBatch) {
        let status = Status {
            conversation_id: turn.conversation.id,
            state: turn.conversation.state,
            reason: None,
            priority: None,
            queued_at: None,
            agent: None,
            claimed_at: None,
            first_reply_at: None,
            outcome: None,
            lang: turn.lang.to_string(),
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match (reply.mode, reply.handoff) {
            (Mode::Handoff, Some(handoff)) => {
                let Ok(Some(update)) = crate::handoff::state::apply(&status, Step::Queue(handoff.reason), &now) else {
                    return;
                };
                let first = turn.conversation.first_message().unwrap_or(turn.message()).to_string();
                let queued = crate::handoff::queue_batch(&status, update, "assistant", Actor::Assistant, Some(first));
                let offset = events.len();
                events.extend(queued.events);
                batch.live.extend(queued.live.into_iter().map(|mut l| {
                    l.event_index += offset;
                    l
                }));
                batch.state = queued.state.map(|mut s| {
                    s.event_index += offset;
                    s
                });
            }
            _ if turn.conversation.state == ConversationState::Closed => {
                batch.state = Some(StateUpdate {
                    state: ConversationState::Bot,
                    agent: None,
                    // The answer's event.
                    event_index: 2,
                    ..StateUpdate::unchanged(&status)
                });
            }
            _ => {}
        }
    }

    fn retrieval<'e>(&'e self, evidence: &'e Evidence<'_>) -> Retrieval<'e> {
        Retrieval {
            query: &evidence.query.text,
            backend: self.index.store.backend(),
            hits: evidence
                .retrieved
                .sources
                .iter()
                .map(|h| RetrievedHit {
                    source_id: &h.chunk.source_id,
                    chunk_id: h.chunk.id,
                    score: h.score,
                })
                .collect(),
            grounding: &evidence.grounding,
            answerability: &evidence.answerability,
        }
    }

    /// A customer message while a person owns the conversation: recorded (masked and
    /// screened, as every message), its transcript row, and the live row that shows it to
    /// the colleague. `shown`: text of an assistant's answer the customer had already been
    /// shown when a colleague took the conversation (recorded as interrupted).
    pub(super) fn relayed_record(&self, turn: &Inbound, holder: Option<&str>, shown: &str) -> (EventBatch, Uuid) {
        let id = Some(turn.conversation.id);
        let message_id = new_record_id();
        let mut events = vec![NewEvent::of(
            Actor::Customer,
            id,
            &MessageRelayed(message_received(turn, message_id)),
        )];
        if !shown.is_empty() {
            let ended = ReplyEnded {
                turn: turn.number,
                message_id: turn.message_id,
                reason: "conversation_with_agent",
                shown,
            };
            events.push(NewEvent::of(Actor::System, id, &ReplyInterrupted(ended)));
        }
        let data = MessageData {
            id: message_id,
            text: turn.message().to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            agent: holder.map(str::to_string),
            origin: None,
        };
        let batch = EventBatch {
            events,
            messages: vec![NewMessage {
                id: message_id,
                conversation_id: turn.conversation.id,
                turn: turn.number as i64,
                speaker: Speaker::Customer,
                content: turn.message().to_string(),
                mode: None,
                citations: None,
                handoff_reason: None,
                event_index: 0,
            }],
            live: vec![NewLiveEvent::new(
                turn.conversation.id,
                LiveKind::CustomerMessage,
                &data,
                0,
            )],
            customer: customer_link(turn),
            ..Default::default()
        };
        (batch, message_id)
    }

    /// A turn that ended without its answer: the customer's message is still recorded,
    /// with why the turn ended and the text the customer had been shown.
    pub(super) fn unanswered_record(&self, turn: &Inbound, why: Unanswered<'_>, shown: &str) -> EventBatch {
        let id = Some(turn.conversation.id);
        let message = MessageReceivedUnanswered {
            turn: turn.number,
            lang: turn.lang,
            content: turn.message(),
            request_id: turn.request_id.as_ref().map(|r| r.as_str()),
        };
        let ended = |reason| ReplyEnded {
            turn: turn.number,
            message_id: turn.message_id,
            reason,
            shown,
        };
        let ending = match why {
            Unanswered::Cancelled => NewEvent::of(Actor::Customer, id, &ReplyCancelled(ended("client_disconnected"))),
            Unanswered::Failed(error) => NewEvent::of(Actor::System, id, &ReplyInterrupted(ended(error.code()))),
        };
        EventBatch {
            conversation: new_conversation(turn),
            events: vec![NewEvent::of(Actor::Customer, id, &message), ending],
            ..Default::default()
        }
    }

    /// What is recorded when a turn's answer, which the customer was told had not been
    /// recorded, turns out to have been committed after all.
    pub(super) fn undelivered_record(&self, turn: &Inbound, error: &ChatError, shown: &str) -> EventBatch {
        let undelivered = ReplyUndelivered(ReplyEnded {
            turn: turn.number,
            message_id: turn.message_id,
            reason: error.code(),
            shown,
        });
        EventBatch::event(NewEvent::of(Actor::System, Some(turn.conversation.id), &undelivered))
    }

    /// Records earlier turns as a conversation of their own (for `teller eval`, whose
    /// multi-turn questions come with history) and returns its id and token, so the
    /// question is then asked exactly as a customer's follow-up would be.
    ///
    /// Numbered as answered turns are, within the unique `(conversation, turn, role)`: a
    /// customer message starts a turn and the assistant's reply shares its number; a
    /// message that opens the history or follows one of its own speaker (a greeting, a
    /// second reply) starts a turn of its own. The question then comes one turn after.
    pub async fn seed_conversation(&self, history: &[Turn], lang: Lang) -> Result<(Uuid, String), ChatError> {
        let id = new_record_id();
        let token = auth::new_conversation_token();
        let mut batch = EventBatch {
            conversation: Some(NewConversation {
                id,
                token_hash: auth::hash(&token),
                lang: lang.to_string(),
            }),
            ..Default::default()
        };
        let speakers: Vec<Speaker> = history.iter().map(|t| t.role).collect();
        for (t, turn) in history.iter().zip(seeded_turns(&speakers)) {
            batch.messages.push(NewMessage {
                id: new_record_id(),
                conversation_id: id,
                turn,
                speaker: t.role,
                content: t.content.clone(),
                mode: None,
                citations: None,
                handoff_reason: None,
                event_index: batch.events.len(),
            });
            batch.events.push(NewEvent::of(
                Actor::Evaluation,
                Some(id),
                &HistorySeeded {
                    role: t.role,
                    content: &t.content,
                },
            ));
        }
        self.audit.append(batch).await.map_err(ChatError::AuditUnavailable)?;
        Ok((id, token))
    }
}

/// The turn number of each message of a seeded history (see
/// [`Pipeline::seed_conversation`]): no two messages of one speaker share a number.
fn seeded_turns(speakers: &[Speaker]) -> Vec<i64> {
    let (mut turn, mut spoken) = (0, Vec::new());
    speakers
        .iter()
        .map(|&speaker| {
            if turn == 0 || speaker == Speaker::Customer || spoken.contains(&speaker) {
                turn += 1;
                spoken.clear();
            }
            spoken.push(speaker);
            turn
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_histories_never_give_one_speaker_two_messages_of_a_turn() {
        use Speaker::{Assistant as A, Customer as C};
        assert_eq!(seeded_turns(&[C, A]), [1, 1]);
        assert_eq!(seeded_turns(&[C, A, C, A]), [1, 1, 2, 2]);
        // A greeting first, a customer who writes twice, an assistant that replies twice.
        assert_eq!(seeded_turns(&[A, C, A]), [1, 2, 2]);
        assert_eq!(seeded_turns(&[C, C, A]), [1, 2, 2]);
        assert_eq!(seeded_turns(&[C, A, A]), [1, 1, 2]);
        assert_eq!(seeded_turns(&[]), Vec::<i64>::new());
    }
}
