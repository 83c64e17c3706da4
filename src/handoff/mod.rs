//! The path to a person (issue #14): the queue, a colleague taking a conversation over,
//! messages both ways in real time, suggested replies. [`Desk`] is the one owner of
//! those actions; each is one append to the audit chain (actor: the colleague), decided
//! by the rules in [`state`] inside the append's transaction, with the rows clients are
//! told of ([`crate::audit::live`]) written in the same transaction. [`feed`] carries
//! those rows to the streams of every instance, [`stream`] renders them for a customer or
//! a colleague. Independent of HTTP, like the chat pipeline.

pub mod feed;
pub mod metrics;
pub mod state;
pub mod stream;
pub mod wait;

use crate::audit::live::{
    LiveKind, MessageData, NewLiveEvent, QueueEntry, Requires, StateData, StateUpdate, Status, StoredSuggestion,
};
use crate::audit::{
    new_record_id, Actor, AuditError, AuditStore, ConversationRead, EventBatch, EventKind, NewEvent, NewMessage,
    Payload, Staff, StoredMessage,
};
use crate::chat::{ChatError, Pipeline, Suggestion};
use crate::conversation::{ConversationState, HandoffReason, Origin, Outcome, Speaker};
use serde::Serialize;
use state::Step;
use std::sync::Arc;
use uuid::Uuid;

/// Longest message or note a colleague may write, in characters.
pub const MAX_AGENT_TEXT: usize = 4_000;

#[derive(Serialize)]
struct HandoffRequested {
    reason: HandoffReason,
    priority: i64,
    /// `customer` (asked for a person) or `assistant` (handed off).
    requested_by: &'static str,
}

impl Payload for HandoffRequested {
    const KIND: EventKind = EventKind::HandoffRequested;
}

#[derive(Serialize)]
struct Claimed {
    agent: String,
    waited_seconds: f64,
}

impl Payload for Claimed {
    const KIND: EventKind = EventKind::ConversationClaimed;
}

#[derive(Serialize)]
struct Released {
    agent: String,
}

impl Payload for Released {
    const KIND: EventKind = EventKind::ConversationReleased;
}

#[derive(Serialize)]
struct Resolved {
    agent: String,
    outcome: Outcome,
}

impl Payload for Resolved {
    const KIND: EventKind = EventKind::ConversationResolved;
}

#[derive(Serialize)]
struct AgentMessageSent<'a> {
    message_id: Uuid,
    turn: i64,
    text: &'a str,
    /// The colleague's words, or a suggestion sent unchanged or edited.
    origin: Origin,
    suggestion_id: Option<Uuid>,
    /// The output guard changed the text as written.
    sanitised: bool,
}

impl Payload for AgentMessageSent<'_> {
    const KIND: EventKind = EventKind::AgentMessageSent;
}

#[derive(Serialize)]
struct NoteAdded<'a> {
    note_id: Uuid,
    text: &'a str,
}

impl Payload for NoteAdded<'_> {
    const KIND: EventKind = EventKind::NoteAdded;
}

#[derive(Serialize)]
struct ReplySuggested<'a> {
    suggestion_id: Uuid,
    #[serde(flatten)]
    draft: &'a Suggestion,
}

impl Payload for ReplySuggested<'_> {
    const KIND: EventKind = EventKind::ReplySuggested;
}

#[derive(Serialize)]
struct SuggestionDiscarded {
    suggestion_id: Uuid,
}

impl Payload for SuggestionDiscarded {
    const KIND: EventKind = EventKind::SuggestionDiscarded;
}

#[derive(Serialize)]
struct QueueRead {
    waiting: usize,
    /// The live stream was opened (rather than the queue read once).
    stream: bool,
}

impl Payload for QueueRead {
    const KIND: EventKind = EventKind::QueueRead;
}

/// What a customer is told of their place after asking for a person.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerStatus {
    pub conversation_id: Uuid,
    pub state: ConversationState,
    pub reason: Option<HandoffReason>,
    pub queue_position: Option<usize>,
    /// While waiting: the estimated wait, or when colleagues will be there.
    pub wait: Option<wait::Wait>,
}

/// A colleague's message as sent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SentMessage {
    pub id: Uuid,
    pub text: String,
    pub origin: Origin,
    pub created_at: String,
}

/// A draft reply for a colleague.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Draft {
    pub suggestion_id: Uuid,
    #[serde(flatten)]
    pub suggestion: Suggestion,
}

/// A conversation as a colleague sees it: the whole transcript with the assistant's
/// evidence per turn, and the internal notes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    #[serde(flatten)]
    pub status: Status,
    pub messages: Vec<StoredMessage>,
    pub notes: Vec<MessageData>,
}

/// The contact-centre desk: every action on the path to a person.
#[derive(Clone)]
pub struct Desk {
    audit: Arc<AuditStore>,
    pipeline: Pipeline,
    feed: Arc<feed::LiveFeed>,
    /// When colleagues answer; `None`: always.
    hours: Option<wait::StaffedHours>,
}

/// What a colleague's action can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Now, as stored.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// What a `state` live row says of a status.
pub fn state_data(
    update: &StateUpdate,
    from: ConversationState,
    lang: &str,
    first_message: Option<String>,
) -> StateData {
    StateData {
        state: update.state,
        reason: update.reason,
        priority: update.priority,
        queued_at: update.queued_at.clone(),
        agent: update.agent.clone(),
        outcome: update.outcome,
        first_message,
        lang: lang.to_string(),
        from,
    }
}

/// A state change: its event, the new state and the live row that tells it.
fn state_batch(event: NewEvent, mut update: StateUpdate, data: &StateData) -> EventBatch {
    update.event_index = 0;
    EventBatch {
        live: vec![NewLiveEvent::new(update.conversation_id, LiveKind::State, data, 0)],
        events: vec![event],
        state: Some(update),
        ..Default::default()
    }
}

/// The batch that puts a conversation in the queue (the customer's request here, the
/// assistant's handoff in the chat pipeline's record).
pub fn queue_batch(
    status: &Status,
    update: StateUpdate,
    requested_by: &'static str,
    actor: Actor,
    first_message: Option<String>,
) -> EventBatch {
    let reason = update.reason.unwrap_or(HandoffReason::CustomerRequest);
    let event = NewEvent::of(
        actor,
        Some(status.conversation_id),
        &HandoffRequested {
            reason,
            priority: reason.priority(),
            requested_by,
        },
    );
    let data = state_data(&update, status.state, &status.lang, first_message);
    state_batch(event, update, &data)
}

/// The text a colleague wrote: not empty, at most [`MAX_AGENT_TEXT`] characters, no
/// control characters but newlines and tabs.
fn agent_text(raw: &str) -> Result<String, ChatError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ChatError::EmptyMessage);
    }
    let chars = raw.chars().count();
    if chars > MAX_AGENT_TEXT {
        return Err(ChatError::MessageTooLong { chars });
    }
    Ok(trimmed
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect())
}

impl Desk {
    pub fn new(
        audit: Arc<AuditStore>,
        pipeline: Pipeline,
        feed: Arc<feed::LiveFeed>,
        hours: Option<wait::StaffedHours>,
    ) -> Self {
        Self {
            audit,
            pipeline,
            feed,
            hours,
        }
    }

    /// What the customer at `position` in the queue is told of the wait.
    pub async fn wait(&self, position: usize) -> wait::Wait {
        let recent = self.audit.recent_claim_seconds(wait::SAMPLES).await.unwrap_or_default();
        wait::estimate(position, recent, self.hours.as_ref(), chrono::Utc::now())
    }

    /// Moves a conversation one step (claim, release, resolve); returns its status after.
    async fn step(
        &self,
        id: Uuid,
        step: Step<'_>,
        event: impl FnOnce(&Status) -> NewEvent,
    ) -> Result<Status, AuditError> {
        let at = now();
        self.audit
            .act(
                id,
                async |status, conn| {
                    let Some(update) = state::apply(&status, step, &at)? else {
                        return Ok((status, EventBatch::default()));
                    };
                    // The queue's view of it: what the customer first said.
                    let first = AuditStore::first_message_in(conn, id).await?;
                    let data = state_data(&update, status.state, &status.lang, first);
                    let after = update.status(&status.lang);
                    Ok((after, state_batch(event(&status), update, &data)))
                },
                async |_, _, _| Ok(()),
            )
            .await
    }

    /// The customer asks for a person (the widget's "Talk to a person").
    pub async fn request(&self, id: Uuid, token: &str) -> Result<CustomerStatus, ChatError> {
        self.pipeline.authorise(id, token).await?;
        let reason = HandoffReason::CustomerRequest;
        let at = now();
        let (status, queued) = self
            .audit
            .act(
                id,
                async |status, conn| {
                    let Some(update) = state::apply(&status, Step::Queue(reason), &at)? else {
                        return Ok(((status, false), EventBatch::default()));
                    };
                    let first = AuditStore::first_message_in(conn, id).await?;
                    let after = update.status(&status.lang);
                    Ok((
                        (after, true),
                        queue_batch(&status, update, "customer", Actor::Customer, first),
                    ))
                },
                async |_, _, _| Ok(()),
            )
            .await
            .map_err(|e| match e {
                AuditError::NotFound => ChatError::ConversationNotFound,
                other => ChatError::AuditUnavailable(other),
            })?;
        if queued {
            metrics::handoff(reason);
        }
        self.customer_status(status).await
    }

    /// A customer's view of a status: with their place in the queue while waiting.
    pub async fn customer_status(&self, status: Status) -> Result<CustomerStatus, ChatError> {
        let queue_position = match status.state {
            ConversationState::Waiting => self
                .audit
                .queue_position(status.conversation_id)
                .await
                .map_err(ChatError::AuditUnavailable)?,
            _ => None,
        };
        let wait = match queue_position {
            Some(position) => Some(self.wait(position).await),
            None => None,
        };
        Ok(CustomerStatus {
            conversation_id: status.conversation_id,
            state: status.state,
            reason: status.reason,
            queue_position,
            wait,
        })
    }

    /// The queue, for a colleague (recorded).
    pub async fn queue(&self, staff: &Staff) -> Result<Vec<QueueEntry>, AuditError> {
        let queue = self.audit.queue().await?;
        let waiting = queue.iter().filter(|e| e.state == ConversationState::Waiting).count();
        self.audit
            .record_staff_action(staff.actor(), &QueueRead { waiting, stream: false })
            .await?;
        Ok(queue)
    }

    /// Records that a colleague opened the live stream.
    pub async fn stream_opened(&self, staff: &Staff) -> Result<(), AuditError> {
        let waiting = self
            .audit
            .waiting_by_reason()
            .await?
            .iter()
            .map(|(_, n)| *n as usize)
            .sum();
        self.audit
            .record_staff_action(staff.actor(), &QueueRead { waiting, stream: true })
            .await
    }

    /// A conversation as a colleague sees it (recorded as read).
    pub async fn view(&self, id: Uuid, staff: &Staff) -> Result<AgentView, AuditError> {
        let status = self.audit.status(id).await?.ok_or(AuditError::NotFound)?;
        let messages = self.audit.messages(id).await?;
        let notes = self.audit.notes(id).await?;
        self.audit
            .record_staff_action(staff.actor(), &ConversationRead { conversation_id: id })
            .await?;
        Ok(AgentView {
            status,
            messages,
            notes,
        })
    }

    pub async fn claim(&self, id: Uuid, staff: &Staff) -> Result<Status, AuditError> {
        let mut waited = None;
        let status = self
            .step(id, Step::Claim(&staff.name), |s| {
                waited = Some(crate::audit::live::waiting_seconds(s.queued_at.as_deref()));
                NewEvent::of(
                    staff.actor(),
                    Some(id),
                    &Claimed {
                        agent: staff.name.clone(),
                        waited_seconds: waited.unwrap_or(0.0),
                    },
                )
            })
            .await?;
        if let Some(seconds) = waited {
            metrics::claimed(seconds);
        }
        Ok(status)
    }

    /// Hands the conversation back to the assistant; drafts left unsent are discarded.
    pub async fn release(&self, id: Uuid, staff: &Staff) -> Result<Status, AuditError> {
        self.discard_open(id, staff).await?;
        let status = self
            .step(id, Step::Release(&staff.name), |_| {
                NewEvent::of(
                    staff.actor(),
                    Some(id),
                    &Released {
                        agent: staff.name.clone(),
                    },
                )
            })
            .await?;
        metrics::ended("handed_back");
        Ok(status)
    }

    /// Closes the conversation with an outcome; drafts left unsent are discarded.
    pub async fn resolve(&self, id: Uuid, staff: &Staff, outcome: Outcome) -> Result<Status, AuditError> {
        self.discard_open(id, staff).await?;
        let status = self
            .step(id, Step::Resolve(&staff.name, outcome), |_| {
                NewEvent::of(
                    staff.actor(),
                    Some(id),
                    &Resolved {
                        agent: staff.name.clone(),
                        outcome,
                    },
                )
            })
            .await?;
        metrics::ended(outcome.into());
        Ok(status)
    }

    /// Records every draft of the conversation not yet sent as discarded.
    async fn discard_open(&self, id: Uuid, staff: &Staff) -> Result<(), AuditError> {
        self.audit
            .act(
                id,
                async |_, conn| {
                    let open = AuditStore::open_suggestions_in(conn, id).await?;
                    let ids: Vec<Uuid> = open.iter().map(|s| s.id).collect();
                    let events = ids
                        .iter()
                        .map(|&suggestion_id| {
                            NewEvent::of(staff.actor(), Some(id), &SuggestionDiscarded { suggestion_id })
                        })
                        .collect();
                    Ok((
                        ids,
                        EventBatch {
                            events,
                            ..Default::default()
                        },
                    ))
                },
                async |conn, ids, seqs| {
                    let settled: Vec<(Uuid, &str, i64)> =
                        ids.iter().zip(seqs).map(|(id, seq)| (*id, "discarded", *seq)).collect();
                    AuditStore::settle_suggestions_in(conn, &settled).await
                },
            )
            .await
            .map(|_| ())
    }

    /// A colleague's message to the customer, through the output guard (masking, links
    /// only to the bank's domains, no HTML). With the id of the suggestion the reply box
    /// held, the record says whether it went unchanged or edited; every other open
    /// suggestion is recorded as discarded. That the colleague still holds the
    /// conversation is checked again in the commit's transaction, so a message joins the
    /// group commit of every other write instead of waiting for a transaction of its own.
    pub async fn send(
        &self,
        id: Uuid,
        staff: &Staff,
        raw: &str,
        suggestion: Option<Uuid>,
    ) -> Result<SentMessage, HandoffError> {
        let written = agent_text(raw)?;
        let text = self.pipeline.sanitise_outgoing(&written);
        if text.trim().is_empty() {
            return Err(ChatError::EmptyMessage.into());
        }
        let status = self.audit.status(id).await?.ok_or(AuditError::NotFound)?;
        state::require_holder(&status, &staff.name)?;
        let open = self.audit.open_suggestions(id).await?;
        let origin = match suggestion {
            None => Origin::Agent,
            Some(sid) => match open.iter().find(|s| s.id == sid) {
                Some(s) if s.text == text => Origin::AiSuggestion,
                Some(_) => Origin::AiSuggestionEdited,
                None => {
                    return Err(AuditError::Refused {
                        code: "unknown_suggestion",
                        message: "that suggestion is not open in this conversation".into(),
                    }
                    .into())
                }
            },
        };
        let message_id = new_record_id();
        let created_at = now();
        let turn = self.audit.last_turn(id).await?.max(1);
        let mut events = vec![NewEvent::of(
            staff.actor(),
            Some(id),
            &AgentMessageSent {
                message_id,
                turn,
                text: &text,
                origin,
                suggestion_id: suggestion,
                sanitised: text != written,
            },
        )];
        // (suggestion, outcome, index of the event that records it)
        let mut settled: Vec<(Uuid, &'static str, usize)> = Vec::new();
        if let Some(sid) = suggestion {
            settled.push((
                sid,
                if origin == Origin::AiSuggestion {
                    "sent"
                } else {
                    "edited"
                },
                0,
            ));
        }
        for s in open.iter().filter(|s| Some(s.id) != suggestion) {
            settled.push((s.id, "discarded", events.len()));
            events.push(NewEvent::of(
                staff.actor(),
                Some(id),
                &SuggestionDiscarded { suggestion_id: s.id },
            ));
        }
        let data = MessageData {
            id: message_id,
            text: text.clone(),
            created_at: created_at.clone(),
            agent: Some(staff.name.clone()),
            origin: Some(origin),
        };
        let batch = EventBatch {
            messages: vec![NewMessage {
                id: message_id,
                conversation_id: id,
                turn,
                speaker: Speaker::Agent,
                content: text.clone(),
                mode: None,
                citations: None,
                handoff_reason: None,
                event_index: 0,
            }],
            live: vec![NewLiveEvent::new(id, LiveKind::AgentMessage, &data, 0)],
            requires: Some(Requires::Holder(id, staff.name.clone())),
            events,
            ..Default::default()
        };
        if settled.is_empty() {
            self.audit.append(batch).await?;
        } else {
            // Drafts settle with the message, in its transaction.
            self.audit
                .act(
                    id,
                    async |_, _| Ok(((), batch)),
                    async |conn: &mut sqlx::AnyConnection, _: &(), seqs: &[i64]| {
                        let settled: Vec<(Uuid, &str, i64)> = settled
                            .iter()
                            .map(|(sid, outcome, i)| (*sid, *outcome, seqs[*i]))
                            .collect();
                        AuditStore::settle_suggestions_in(conn, &settled).await
                    },
                )
                .await?;
        }
        let first_since_queued = status.first_reply_at.is_none().then_some(status.queued_at).flatten();
        metrics::agent_message(origin, first_since_queued.as_deref());
        Ok(SentMessage {
            id: message_id,
            text,
            origin,
            created_at,
        })
    }

    /// An internal note: shown to colleagues, never to the customer.
    pub async fn note(&self, id: Uuid, staff: &Staff, raw: &str) -> Result<MessageData, HandoffError> {
        let text = agent_text(raw)?;
        let note = MessageData {
            id: new_record_id(),
            text,
            created_at: now(),
            agent: Some(staff.name.clone()),
            origin: None,
        };
        let event = NewEvent::of(
            staff.actor(),
            Some(id),
            &NoteAdded {
                note_id: note.id,
                text: &note.text,
            },
        );
        let batch = EventBatch {
            live: vec![NewLiveEvent::new(id, LiveKind::Note, &note, 0)],
            events: vec![event],
            ..Default::default()
        };
        self.audit
            .act(id, async |_, _| Ok(((), batch)), async |_, _, _| Ok(()))
            .await?;
        Ok(note)
    }

    /// A draft reply to the customer's latest messages, from the same pipeline core as
    /// the assistant's answers; recorded, never sent by itself.
    pub async fn suggest(&self, id: Uuid, staff: &Staff) -> Result<Draft, HandoffError> {
        let status = self.audit.status(id).await?.ok_or(AuditError::NotFound)?;
        state::require_holder(&status, &staff.name)?;
        let messages = self.audit.messages(id).await?;
        let suggestion = self.pipeline.suggest(&messages, &status.lang).await?;
        let suggestion_id = new_record_id();
        let stored = StoredSuggestion {
            id: suggestion_id,
            agent: staff.name.clone(),
            text: suggestion.text.clone(),
        };
        let event = NewEvent::of(
            staff.actor(),
            Some(id),
            &ReplySuggested {
                suggestion_id,
                draft: &suggestion,
            },
        );
        self.audit
            .act(
                id,
                async |status, _| {
                    state::require_holder(&status, &staff.name)?;
                    Ok(((), EventBatch::event(event)))
                },
                async |conn, _, seqs| AuditStore::insert_suggestion_in(conn, id, &stored, seqs[0]).await,
            )
            .await?;
        metrics::suggested();
        Ok(Draft {
            suggestion_id,
            suggestion,
        })
    }

    /// Tells the other side that someone is typing (not recorded: it is stale at once).
    pub async fn typing(&self, id: Uuid, staff: &Staff) -> Result<(), AuditError> {
        let status = self.audit.status(id).await?.ok_or(AuditError::NotFound)?;
        state::require_holder(&status, &staff.name)?;
        self.feed.typing(id, "agent").await;
        Ok(())
    }
}
