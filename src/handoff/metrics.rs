//! What the path to a person reports: queue length by reason, time to claim and to the
//! first reply from a colleague, handoffs by outcome.

use crate::audit::AuditStore;
use crate::conversation::{HandoffReason, Origin};

/// A conversation was put in the queue.
pub fn handoff(reason: HandoffReason) {
    metrics::counter!("teller_handoffs_total", "reason" => reason.as_str()).increment(1);
}

/// A colleague claimed a conversation that had waited `seconds`.
pub fn claimed(seconds: f64) {
    metrics::histogram!("teller_handoff_time_to_claim_seconds").record(seconds);
}

/// A colleague's message; the first since the conversation was queued at `queued_at`
/// gives the time the customer waited for a person's words.
pub fn agent_message(origin: Origin, first_since_queued: Option<&str>) {
    metrics::counter!("teller_agent_messages_total", "origin" => origin.as_str()).increment(1);
    if let Some(queued_at) = first_since_queued {
        metrics::histogram!("teller_handoff_time_to_first_reply_seconds")
            .record(crate::audit::live::waiting_seconds(Some(queued_at)));
    }
}

/// A suggested reply was drafted.
pub fn suggested() {
    metrics::counter!("teller_reply_suggestions_total").increment(1);
}

/// A colleague let a conversation go: an outcome, or `handed_back`.
pub fn ended(outcome: &'static str) {
    metrics::counter!("teller_handoffs_ended_total", "outcome" => outcome).increment(1);
}

/// Re-reads the queue length per reason after a state change.
pub async fn queue_changed(store: &AuditStore) {
    let Ok(counts) = store.waiting_by_reason().await else {
        return;
    };
    for reason in HandoffReason::ALL {
        let n = counts.iter().find(|(r, _)| r == reason.as_str()).map_or(0, |(_, n)| *n);
        metrics::gauge!("teller_queue_length", "reason" => reason.as_str()).set(n as f64);
    }
}
