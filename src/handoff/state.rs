//! The conversation state machine, as pure rules: who may move a conversation where.
//!
//! `bot` → `waiting` (the assistant handed off, or the customer asked for a person) →
//! `with_agent` (one colleague claimed it) → `bot` (handed back) or `closed` (resolved,
//! with an outcome). The store applies a step inside the transaction that holds every
//! process's append lock, so two colleagues acting at once are decided one after the other.

use crate::audit::live::{StateUpdate, Status};
use crate::audit::AuditError;
use crate::conversation::{ConversationState as S, HandoffReason, Outcome};

/// What someone asks of a conversation's state.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Put it in the queue (the assistant's handoff, or the customer's request).
    Queue(HandoffReason),
    Claim(&'a str),
    Release(&'a str),
    Resolve(&'a str, Outcome),
}

/// Why a step was refused: a stable code and words a colleague can act on.
fn refused(code: &'static str, message: &str) -> AuditError {
    AuditError::Refused {
        code,
        message: message.to_string(),
    }
}

/// The colleague must hold the conversation (to write to the customer, suggest, hand
/// back).
pub fn require_holder(status: &Status, agent: &str) -> Result<(), AuditError> {
    require_holder_of(status.state, status.agent.as_deref(), agent)
}

/// [`require_holder`] on the columns themselves (as the commit's check reads them).
pub fn require_holder_of(state: S, holder: Option<&str>, agent: &str) -> Result<(), AuditError> {
    match (state, holder) {
        (S::WithAgent, Some(holder)) if holder == agent => Ok(()),
        (S::WithAgent, _) => Err(refused(
            "not_your_conversation",
            "another colleague holds this conversation",
        )),
        (S::Closed, _) => Err(refused("conversation_closed", "this conversation is closed")),
        _ => Err(refused(
            "not_claimed",
            "take this conversation over before writing to the customer",
        )),
    }
}

/// The status after `step`, `None` when the conversation is already there (asking twice
/// is not an error), or why not.
pub fn apply(status: &Status, step: Step<'_>, now: &str) -> Result<Option<StateUpdate>, AuditError> {
    let base = StateUpdate::unchanged(status);
    let holder = status.agent.as_deref();
    let next = match (step, status.state) {
        (Step::Queue(_), S::Waiting | S::WithAgent) => return Ok(None),
        (Step::Queue(reason), S::Bot | S::Closed) => StateUpdate {
            state: S::Waiting,
            reason: Some(reason),
            priority: Some(reason.priority()),
            queued_at: Some(now.to_string()),
            agent: None,
            claimed_at: None,
            first_reply_at: None,
            outcome: None,
            ..base
        },
        (Step::Claim(agent), S::WithAgent) if holder == Some(agent) => return Ok(None),
        (Step::Claim(_), S::WithAgent) => {
            return Err(refused(
                "already_claimed",
                "another colleague has already taken this conversation",
            ))
        }
        (Step::Claim(agent), S::Waiting) => StateUpdate {
            state: S::WithAgent,
            agent: Some(agent.to_string()),
            claimed_at: Some(now.to_string()),
            ..base
        },
        (Step::Claim(_), S::Bot) => {
            return Err(refused(
                "not_waiting",
                "this conversation is not waiting for a colleague",
            ))
        }
        (Step::Release(agent), _) => {
            require_holder(status, agent)?;
            StateUpdate {
                state: S::Bot,
                agent: None,
                ..base
            }
        }
        (Step::Resolve(agent, _), S::WithAgent) if holder != Some(agent) => {
            return Err(refused(
                "not_your_conversation",
                "another colleague holds this conversation",
            ))
        }
        (Step::Resolve(agent, outcome), S::Waiting | S::WithAgent) => StateUpdate {
            state: S::Closed,
            agent: Some(agent.to_string()),
            outcome: Some(outcome),
            ..base
        },
        (Step::Resolve(..), S::Bot) => {
            return Err(refused(
                "not_waiting",
                "only a conversation handed to colleagues can be resolved",
            ))
        }
        (Step::Claim(_) | Step::Resolve(..), S::Closed) => {
            return Err(refused("conversation_closed", "this conversation is closed"))
        }
    };
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn status(state: S, agent: Option<&str>) -> Status {
        Status {
            conversation_id: Uuid::nil(),
            state,
            reason: Some(HandoffReason::LostCard),
            priority: Some(0),
            queued_at: Some("2026-12-04T00:00:00Z".into()),
            agent: agent.map(str::to_string),
            claimed_at: None,
            first_reply_at: None,
            outcome: None,
            lang: "en".into(),
        }
    }

    fn code(result: Result<Option<StateUpdate>, AuditError>) -> &'static str {
        match result {
            Err(AuditError::Refused { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    const NOW: &str = "2026-12-04T00:01:00Z";

    #[test]
    fn a_conversation_goes_from_the_assistant_to_the_queue_to_one_colleague_and_back() {
        let queued = apply(&status(S::Bot, None), Step::Queue(HandoffReason::FraudOrScam), NOW)
            .unwrap()
            .unwrap();
        assert_eq!((queued.state, queued.priority), (S::Waiting, Some(0)));
        assert_eq!(queued.queued_at.as_deref(), Some(NOW));
        let claimed = apply(&status(S::Waiting, None), Step::Claim("alex"), NOW)
            .unwrap()
            .unwrap();
        assert_eq!((claimed.state, claimed.agent.as_deref()), (S::WithAgent, Some("alex")));
        let back = apply(&status(S::WithAgent, Some("alex")), Step::Release("alex"), NOW)
            .unwrap()
            .unwrap();
        assert_eq!((back.state, back.agent), (S::Bot, None));
        let closed = apply(
            &status(S::WithAgent, Some("alex")),
            Step::Resolve("alex", Outcome::Referred),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!((closed.state, closed.outcome), (S::Closed, Some(Outcome::Referred)));
        // A closed conversation can be handed off again.
        let again = apply(
            &status(S::Closed, None),
            Step::Queue(HandoffReason::CustomerRequest),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (again.state, again.priority, again.outcome),
            (S::Waiting, Some(2), None)
        );
    }

    #[test]
    fn asking_twice_changes_nothing_and_a_second_colleague_is_refused() {
        assert!(
            apply(&status(S::Waiting, None), Step::Queue(HandoffReason::Complaint), NOW)
                .unwrap()
                .is_none()
        );
        assert!(apply(&status(S::WithAgent, Some("alex")), Step::Claim("alex"), NOW)
            .unwrap()
            .is_none());
        assert_eq!(
            code(apply(&status(S::WithAgent, Some("alex")), Step::Claim("sam"), NOW)),
            "already_claimed"
        );
        assert_eq!(
            code(apply(&status(S::WithAgent, Some("alex")), Step::Release("sam"), NOW)),
            "not_your_conversation"
        );
        assert_eq!(
            code(apply(
                &status(S::WithAgent, Some("alex")),
                Step::Resolve("sam", Outcome::Resolved),
                NOW
            )),
            "not_your_conversation"
        );
        assert_eq!(
            code(apply(&status(S::Bot, None), Step::Claim("sam"), NOW)),
            "not_waiting"
        );
        assert_eq!(
            code(apply(&status(S::Waiting, None), Step::Release("sam"), NOW)),
            "not_claimed"
        );
        assert_eq!(
            code(apply(&status(S::Closed, None), Step::Claim("sam"), NOW)),
            "conversation_closed"
        );
    }

    #[test]
    fn a_waiting_conversation_may_be_resolved_without_being_claimed() {
        let closed = apply(&status(S::Waiting, None), Step::Resolve("sam", Outcome::Duplicate), NOW)
            .unwrap()
            .unwrap();
        assert_eq!((closed.state, closed.agent.as_deref()), (S::Closed, Some("sam")));
    }
}
