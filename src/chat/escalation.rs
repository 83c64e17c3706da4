//! The escalation check that runs before retrieval: when a customer needs a person, the
//! bot must not try to answer. This covers explicit requests for a human; the guardrails
//! work adds the other reasons (lost card, fraud, complaint, vulnerability) behind the
//! same function.

use regex::RegexSet;
use std::sync::LazyLock;

/// Reason codes shared with the audit record and the API (`handoff.reason`).
pub const CUSTOMER_REQUEST: &str = "customer_request";
/// The model failed and no grounded answer could be given.
pub const TOOL_FAILURE: &str = "tool_failure";

static HUMAN_REQUEST: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\b(speak|talk|chat)\s+(to|with)\s+(a\s+|an\s+|some\s*one\s*|somebody\s*)?(real\s+|actual\s+|live\s+)?(human|person|agent|advisor|adviser|representative|staff|someone|somebody|operator)\b",
        r"(?i)\b(get|give|connect|transfer|put)\s+(me\s+)?(to\s+|through\s+to\s+|with\s+)?(a\s+|an\s+)?(real\s+|live\s+)?(human|person|agent|representative|operator)\b",
        r"(?i)\b(human|live|real)\s+(agent|person|representative|support)\s*(please|pls|now)?\b",
        r"(?i)^\s*(agent|human|operator|representative)\s*(please|pls|now)?[.!?]*\s*$",
        r"(转|找|要|接)\s*(人工|真人|客服人员|人工客服)",
        r"^\s*(人工|人工客服|真人客服)\s*[!！。]?\s*$",
        r"(和|跟|与)\s*(真人|人工|客服人员)\s*(说|谈|聊|沟通)",
    ])
    .expect("escalation patterns compile")
});

/// Returns the handoff reason when the message needs a person rather than the bot.
pub fn escalation_reason(message: &str) -> Option<&'static str> {
    HUMAN_REQUEST.is_match(message).then_some(CUSTOMER_REQUEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_requests_for_a_person_escalate() {
        for m in [
            "Can I speak to a real person?",
            "I want to talk to someone please",
            "agent",
            "connect me to an agent",
            "human agent please",
            "转人工",
            "我要找人工客服",
            "人工",
            "我想跟真人聊",
        ] {
            assert_eq!(escalation_reason(m), Some(CUSTOMER_REQUEST), "{m}");
        }
    }

    #[test]
    fn questions_that_mention_people_do_not() {
        for m in [
            "What documents does a person need to open an account?",
            "Can a human-readable statement be downloaded?",
            "how do I add a joint account holder",
            "人工智能是什么意思",
            "What is the agent banking fee?",
        ] {
            assert_eq!(escalation_reason(m), None, "{m}");
        }
    }
}
