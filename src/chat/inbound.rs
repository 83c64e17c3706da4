//! The first stages of a turn: the customer's message screened, authorised into its
//! conversation with the history loaded, and everything the later stages need to know
//! about it.

use super::pipeline::Pipeline;
use super::types::{ChatError, ChatRequest};
use crate::audit::{new_record_id, AuditError, StoredMessage};
use crate::auth;
use crate::conversation::{ConversationState, HandoffReason, Mode, Speaker};
use crate::guard::{escalation, pii, Screened, Signal};
use crate::lang::Lang;
use crate::retrieval::query::Turn;
use tokio::time::Instant;
use uuid::Uuid;

/// The conversation a turn belongs to, as the turn begins.
pub(super) struct Conversation {
    pub id: Uuid,
    pub token: String,
    /// The conversation starts with this turn.
    pub is_new: bool,
    /// Every message so far, in order.
    pub history: Vec<StoredMessage>,
    /// Who answers it as the turn begins.
    pub state: ConversationState,
    /// The colleague who holds it, if one does.
    pub agent: Option<String>,
}

impl Conversation {
    /// A conversation that starts now, with a token of its own.
    fn start() -> Self {
        Self {
            id: new_record_id(),
            token: auth::new_conversation_token(),
            is_new: true,
            history: Vec::new(),
            state: ConversationState::Bot,
            agent: None,
        }
    }

    /// The customer's first message, as recorded (masked): the queue's label for it.
    pub fn first_message(&self) -> Option<&str> {
        self.history
            .iter()
            .find(|m| m.speaker == Speaker::Customer)
            .map(|m| m.content.as_str())
    }

    /// The customer's last message, as recorded (masked).
    fn last_message(&self) -> Option<&str> {
        self.history
            .iter()
            .rev()
            .find(|m| m.speaker == Speaker::Customer)
            .map(|m| m.content.as_str())
    }

    /// 1-based number of the turn that comes next: one past the last recorded. Two
    /// messages sent at once read the same history and get the same number; the database
    /// keeps `(conversation, turn, role)` unique, so only the first to commit is recorded.
    fn next_turn(&self) -> usize {
        self.history.iter().map(|m| m.turn).max().unwrap_or(0).max(0) as usize + 1
    }

    /// The assistant's last reply offered a colleague: a refusal, or an answer that said
    /// it may not match (`uncertain`, the offer's wording in the reply's language).
    fn offered_colleague(&self, uncertain: &[String]) -> bool {
        self.history
            .iter()
            .rev()
            .find(|m| m.speaker == Speaker::Assistant)
            .is_some_and(|m| m.mode == Some(Mode::Refusal) || uncertain.iter().any(|u| m.content.ends_with(u.as_str())))
    }

    /// An earlier customer message had personal data masked: the reminder not to share it
    /// was given then.
    fn was_reminded(&self) -> bool {
        self.history
            .iter()
            .any(|m| m.speaker == Speaker::Customer && pii::has_placeholder(&m.content))
    }
}

/// One customer turn, screened and placed in its conversation.
pub(super) struct Inbound {
    pub conversation: Conversation,
    /// 1-based number of the customer's turn.
    pub number: usize,
    pub lang: Lang,
    /// What the inbound guardrails found; `screened.masked.text` is the message every
    /// later stage and the record see.
    pub screened: Screened,
    /// Personal data was masked for the first time in this conversation: remind the
    /// customer not to share it.
    pub remind: bool,
    /// The earlier turns the model may see, within their token budget.
    pub history: Vec<Turn>,
    /// The id the reply will have.
    pub message_id: Uuid,
    /// The verified customer sending it, if signed in.
    pub customer: Option<crate::identity::CustomerRef>,
    /// The HTTP request's id, for the record.
    pub request_id: Option<crate::telemetry::RequestId>,
    pub deadline: Instant,
}

impl Inbound {
    /// The customer's message, masked.
    pub fn message(&self) -> &str {
        &self.screened.masked.text
    }
}

impl Pipeline {
    /// Opens the turn's conversation (checking the token, and the turn cap on the turn's
    /// number, which the commit then holds to), then screens the message, in the light of
    /// the customer's last one. Personal data is masked before retrieval, the model, logs
    /// or the record see it; every other check runs on the masked text.
    #[tracing::instrument(name = "receive", skip_all)]
    pub(super) async fn receive(&self, request: ChatRequest, deadline: Instant) -> Result<Inbound, ChatError> {
        let conversation = match &request.conversation {
            Some((id, token)) => {
                let (state, agent) = self.authorise_owner(*id, token).await?;
                Conversation {
                    id: *id,
                    token: token.clone(),
                    is_new: false,
                    history: self.audit_read(self.audit.messages(*id)).await?,
                    state,
                    agent,
                }
            }
            None => Conversation::start(),
        };
        let number = conversation.next_turn();
        // The cap bounds the assistant's turns; a customer talking to a person is not cut off.
        if number > self.options.max_turns && !conversation.state.is_human() {
            return Err(ChatError::ConversationTooLong(self.options.max_turns));
        }
        let mut screened = self
            .guard
            .screen_after(request.message.as_str(), conversation.last_message());
        let message = &screened.masked.text;
        let lang = request.lang.unwrap_or_else(|| Lang::detect(message));
        // A short yes right after the assistant offered a colleague accepts the offer.
        let uncertain = [Lang::En, Lang::ZhCn].map(|l| self.text("uncertain", l));
        if screened.escalation.is_none()
            && conversation.offered_colleague(&uncertain)
            && escalation::accepts_offer(message)
        {
            screened.escalation = Some(HandoffReason::CustomerRequest);
            screened.signals.escalation = Some(Signal::AcceptedOffer);
        }
        // The reminder not to share personal data comes once per conversation.
        let remind = !screened.masked.found.is_empty() && !conversation.was_reminded();
        // The history the model sees, counted in tokens; a turn a person answers has no
        // model, so it is not counted.
        let history = if conversation.state.is_human() {
            Vec::new()
        } else {
            self.bounded_history(&conversation.history)
        };
        Ok(Inbound {
            history,
            conversation,
            number,
            lang,
            screened,
            remind,
            message_id: new_record_id(),
            customer: request.customer,
            request_id: request.request_id,
            deadline,
        })
    }

    /// Checks a conversation token and returns who answers the conversation now; a wrong
    /// token looks exactly like an unknown conversation.
    pub async fn authorise(&self, id: Uuid, token: &str) -> Result<ConversationState, ChatError> {
        Ok(self.authorise_owner(id, token).await?.0)
    }

    /// [`Pipeline::authorise`], with the colleague who holds the conversation.
    async fn authorise_owner(&self, id: Uuid, token: &str) -> Result<(ConversationState, Option<String>), ChatError> {
        let stored = self.audit_read(self.audit.conversation_access(id)).await?;
        match stored {
            Some((hash, state, agent)) if auth::matches(&hash, token) => Ok((state, agent)),
            _ => Err(ChatError::ConversationNotFound),
        }
    }

    /// A read from the audit store, within its budget: a database that stopped answering
    /// fails the turn at once instead of holding it until the connection gives up.
    pub(super) async fn audit_read<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, AuditError>>,
    ) -> Result<T, ChatError> {
        match tokio::time::timeout(self.options.audit_budget, read).await {
            Ok(read) => read.map_err(ChatError::AuditUnavailable),
            Err(_) => Err(ChatError::AuditUnavailable(AuditError::Unavailable(
                sqlx::Error::PoolTimedOut,
            ))),
        }
    }

    /// Most recent turns that fit the token budget, oldest first. Turns refused as an
    /// attempt to change the assistant's instructions (a refusal that offers no colleague,
    /// see [`super::policy::Refusal::reason`]) are left out with their refusal: the model
    /// never sees them.
    pub(super) fn bounded_history(&self, history: &[StoredMessage]) -> Vec<Turn> {
        let mut budget = self.options.history_tokens;
        let mut turns = Vec::new();
        let flagged: Vec<i64> = history
            .iter()
            .filter(|m| m.mode == Some(Mode::Refusal) && m.handoff_reason.is_none())
            .map(|m| m.turn)
            .collect();
        for m in history.iter().rev().filter(|m| !flagged.contains(&m.turn)) {
            let cost = self.chunker.count_tokens(&m.content) + 4;
            if cost > budget {
                break;
            }
            budget -= cost;
            turns.push(Turn {
                role: m.speaker,
                content: m.content.clone(),
            });
        }
        turns.reverse();
        turns
    }
}
