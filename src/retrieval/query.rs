//! Building the standalone retrieval query for a message in a conversation.
//!
//! The chat pipeline, `teller eval` (questions with `history`) and tests all call
//! [`retrieval_query`], so offline evaluation measures exactly what customers get.

use crate::conversation::Speaker;
use serde::{Deserialize, Serialize};

/// A turn of conversation history (`{"role": "user" | "assistant", "content"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Speaker,
    pub content: String,
}

/// Turns a follow-up ("and the gold one?") into a query that stands on its own, without
/// a model: the customer's previous question supplies the topic the follow-up refers
/// to. The current message comes first and is repeated so that its own words outweigh
/// the context's in BM25.
///
/// Only the customer's own turns are used: the assistant's answers name neighbouring
/// products and facts that would pull retrieval back to the previous passage.
pub fn retrieval_query(history: &[Turn], message: &str) -> String {
    let message = message.trim();
    let previous = history
        .iter()
        .rev()
        .find(|t| t.role == Speaker::Customer && !t.content.trim().is_empty());
    match previous {
        Some(turn) => format!("{message}\n{message}\n{}", turn.content.trim()),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_carry_the_previous_question() {
        let history = vec![
            Turn {
                role: Speaker::Customer,
                content: "minimum income for the classic card?".into(),
            },
            Turn {
                role: Speaker::Assistant,
                content: "HVD 96,000.".into(),
            },
        ];
        let q = retrieval_query(&history, "and the gold one?");
        assert!(q.starts_with("and the gold one?"));
        assert!(q.contains("minimum income for the classic card?"));
        assert!(!q.contains("96,000"));
        assert_eq!(retrieval_query(&[], " hi "), "hi");
    }
}
