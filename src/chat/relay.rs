//! A customer's message while a person owns the conversation (`waiting` or `with_agent`):
//! the assistant says nothing — no evidence is gathered, no answer produced — and the
//! message, masked and screened like every other, is recorded and shown to the colleague.

use super::inbound::Inbound;
use super::pipeline::Pipeline;
use super::record::Unanswered;
use super::sink::{ReplySink, StreamEvent};
use super::types::{ChatError, ChatReply};
use crate::audit::AuditError;
use crate::conversation::{ConversationState, Mode};

impl Pipeline {
    /// Passes the turn's message on to the person who owns the conversation; the reply
    /// says so (`mode: relayed`, the state and, while waiting, the place in the queue).
    #[tracing::instrument(name = "relay", skip_all)]
    pub(super) async fn relay(
        &self,
        turn: &Inbound,
        sink: &mut dyn ReplySink,
        shown: &str,
    ) -> Result<ChatReply, ChatError> {
        // Owned by a person as the turn began, or (a colleague took it while the assistant
        // was answering) as it is now.
        let (state, agent) = if turn.conversation.state.is_human() {
            (turn.conversation.state, turn.conversation.agent.clone())
        } else {
            let status = self
                .audit_read(self.audit.status(turn.conversation.id))
                .await?
                .ok_or(ChatError::ConversationNotFound)?;
            (status.state, status.agent)
        };
        let (batch, _) = self.relayed_record(turn, agent.as_deref(), shown);
        let stage = std::time::Instant::now();
        match self.spool.append_within(batch, self.options.audit_budget).await {
            Ok(_) => super::metrics::stage("audit", stage.elapsed().as_secs_f64()),
            Err((AuditError::Conflict, _)) => {
                self.record_unanswered(turn, Unanswered::Failed(&ChatError::TurnConflict), shown)
                    .await;
                return Err(ChatError::TurnConflict);
            }
            Err((error, _)) => {
                let error = ChatError::AuditUnavailable(error);
                self.record_unanswered(turn, Unanswered::Failed(&error), shown).await;
                return Err(error);
            }
        }
        ::metrics::counter!("teller_messages_relayed_total", "state" => state.as_str()).increment(1);
        let queue_position = match state {
            ConversationState::Waiting => self
                .audit_read(self.audit.queue_position(turn.conversation.id))
                .await
                .ok()
                .flatten(),
            _ => None,
        };
        sink.send(StreamEvent::Meta {
            conversation_id: turn.conversation.id,
            message_id: turn.message_id,
            mode: Mode::Relayed,
            citations: Vec::new(),
        });
        Ok(ChatReply {
            conversation_id: turn.conversation.id,
            conversation_token: turn.conversation.token.clone(),
            message_id: turn.message_id,
            answer: String::new(),
            mode: Mode::Relayed,
            citations: Vec::new(),
            handoff: None,
            state,
            queue_position,
        })
    }
}
