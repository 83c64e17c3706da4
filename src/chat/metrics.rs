//! The chat pipeline's Prometheus metrics, named in one place.

use super::answer::Answer;
use super::llm::Completion;
use crate::guard::Screened;

/// Time spent in one stage of a turn (`retrieval`, `llm`, `answer`, `audit`, `total`).
pub(super) fn stage(name: &'static str, seconds: f64) {
    metrics::histogram!("teller_stage_seconds", "stage" => name).record(seconds);
}

/// A completion's token usage.
pub(super) fn tokens(completion: &Completion) {
    metrics::counter!("teller_llm_tokens_total", "kind" => "prompt")
        .increment(completion.prompt_tokens.unwrap_or(0).into());
    metrics::counter!("teller_llm_tokens_total", "kind" => "completion")
        .increment(completion.completion_tokens.unwrap_or(0).into());
}

/// The model found no answer in the passages.
pub(super) fn declined() {
    metrics::counter!("teller_llm_declined_total").increment(1);
}

/// A turn committed to the record: its mode, what the screen found, any fallback.
pub(super) fn turn_recorded(screened: &Screened, answer: &Answer) {
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
}
