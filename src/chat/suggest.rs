//! Drafts for colleagues: a reply to the customer's latest messages from the same stages
//! as the assistant's answers (evidence, decision, answer with citations), never sent by
//! itself and never recorded as a turn. The colleague's own sending goes through
//! [`Pipeline::sanitise_outgoing`], the output guard the assistant's words pass.

use super::inbound::{Conversation, Inbound};
use super::pipeline::Pipeline;
use super::policy::{decide, Decision, Refusal};
use super::sink::WholeReply;
use super::types::ChatError;
use crate::audit::{new_record_id, StoredMessage};
use crate::conversation::{Citation, ConversationState, Mode, Speaker};
use crate::lang::Lang;
use serde::Serialize;
use tokio::time::Instant;

/// A drafted reply.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub text: String,
    /// How it was produced (`generated`, `extractive`, `approved`, or `refusal` when the
    /// bank's documents do not answer it).
    pub mode: Mode,
    pub citations: Vec<Citation>,
}

impl Pipeline {
    /// Drafts a reply to what the customer wrote since anyone last answered them.
    pub async fn suggest(&self, messages: &[StoredMessage], lang: &str) -> Result<Suggestion, ChatError> {
        let answered = messages.iter().rposition(|m| m.speaker != Speaker::Customer);
        let (earlier, latest) = match answered {
            Some(i) if i + 1 < messages.len() => messages.split_at(i + 1),
            // Nothing new since the last answer: draft for the customer's last message.
            _ => {
                let last = messages
                    .iter()
                    .rposition(|m| m.speaker == Speaker::Customer)
                    .ok_or(ChatError::EmptyMessage)?;
                messages.split_at(last)
            }
        };
        let text = latest
            .iter()
            .filter(|m| m.speaker == Speaker::Customer)
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let screened = self.guard.screen(&text);
        let lang = lang.parse::<Lang>().unwrap_or_else(|_| Lang::detect(&text));
        let turn = Inbound {
            history: self.bounded_history(earlier),
            conversation: Conversation {
                id: messages
                    .first()
                    .and_then(|m| m.id.parse().ok())
                    .unwrap_or_else(new_record_id),
                token: String::new(),
                is_new: false,
                history: earlier.to_vec(),
                state: ConversationState::WithAgent,
                agent: None,
            },
            number: 0,
            customer: None,
            lang,
            screened,
            remind: false,
            message_id: new_record_id(),
            request_id: None,
            deadline: Instant::now() + self.options.deadline,
        };
        let evidence = self.gather_evidence(&turn).await?;
        let decision = match decide(
            &turn.screened,
            &evidence.retrieved.sources,
            &evidence.grounding,
            &evidence.answerability,
            &self.options.policy,
        ) {
            // The colleague is the person a handoff would reach: draft from the passages.
            Decision::Handoff(_) if !evidence.retrieved.sources.is_empty() => Decision::Answer,
            Decision::Handoff(_) => Decision::Refusal(Refusal::MissingKnowledge),
            other => other,
        };
        let answer = self.answer(decision, &turn, &evidence, &mut WholeReply).await?;
        Ok(Suggestion {
            text: answer.text,
            mode: answer.mode,
            citations: answer.citations,
        })
    }

    /// A colleague's words on their way to the customer: no markup, links only to the
    /// bank's domains, personal data masked, as for the assistant's answers.
    pub fn sanitise_outgoing(&self, text: &str) -> String {
        self.guard.output.sanitise(&self.guard.masker, text).trim().to_string()
    }
}
