//! The answer policy: which kind of reply a turn gets, decided from the retrieval
//! evidence before any text is produced. Whether the passages answer at all is the
//! calibrated model's call ([`super::answerability`]); the approved-answer thresholds are
//! calibrated on labelled questions (BENCHMARKS.md, "Answer policy calibration").

use super::answerability::Answerability;
use crate::conversation::HandoffReason;
use crate::guard::Screened;
use crate::knowledge::SourceKind;
use crate::retrieval::passages::Reading;
use crate::retrieval::Hit;

/// Thresholds of the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyConfig {
    /// An approved FAQ entry is served verbatim when it ranks first with at least this
    /// share of the question's terms...
    pub approved_min_coverage: f32,
    /// ...and leads the next source by this factor of retrieval score.
    pub approved_min_lead: f32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            approved_min_coverage: 0.5,
            approved_min_lead: 1.25,
        }
    }
}

/// How much of the question the best passages cover.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Grounding {
    /// IDF-weighted share of the query's distinct terms (after stemming and stop words)
    /// found in the best passage, in [0, 1].
    pub coverage: f32,
    /// Top score divided by the next source's score (∞ when alone).
    pub lead: f32,
}

impl Grounding {
    pub fn measure(question: &Reading, hits: &[Hit]) -> Self {
        let Some(top) = hits.first() else {
            return Self {
                coverage: 0.0,
                lead: 0.0,
            };
        };
        let passage = question.passage(&top.chunk);
        // IDF-weighted: the rare words of a question say what it is about.
        let total: f32 = question.terms().iter().map(|t| question.idf(*t)).sum();
        let covered: f32 = question
            .terms()
            .iter()
            .filter(|t| passage.terms.contains(t))
            .map(|t| question.idf(*t))
            .sum();
        let coverage = if total > 0.0 { covered / total } else { 0.0 };
        let lead = match hits.get(1) {
            Some(next) if next.score > 0.0 => top.score / next.score,
            _ => f32::INFINITY,
        };
        Self { coverage, lead }
    }
}

/// What the turn will be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A person takes over (the reply quotes the bank's safety information for the
    /// reasons that have some, see `answer::safety_terms`).
    Handoff(HandoffReason),
    /// Serve the first hit's approved FAQ answer verbatim.
    Approved,
    Refusal(Refusal),
    /// Answer from the passages (with the model, or extractively without one).
    Answer,
}

/// Why the bot declines to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing in the knowledge base clears the grounding floor, or the model found no
    /// answer in the passages it was given: offer a colleague.
    MissingKnowledge,
    /// Investment, legal or tax advice: offer a colleague.
    PolicyRestriction,
    /// The message tried to change the assistant's instructions.
    Injection,
}

impl Refusal {
    /// The reason recorded with the reply when a colleague is offered. Only a refusal of
    /// an injection has none, which is how later turns leave such exchanges out of the
    /// history given to the model.
    pub fn reason(self) -> Option<HandoffReason> {
        match self {
            Refusal::MissingKnowledge => Some(HandoffReason::MissingKnowledge),
            Refusal::PolicyRestriction => Some(HandoffReason::PolicyRestriction),
            Refusal::Injection => None,
        }
    }

    /// The template that words it.
    pub fn template(self) -> &'static str {
        match self {
            Refusal::MissingKnowledge => "refusal",
            Refusal::PolicyRestriction => "policy",
            Refusal::Injection => "injection",
        }
    }
}

/// Applies the policy in its fixed order: escalation, the guardrails' refusals (prompt
/// injection, advice), refusal when the calibrated answerability says the passages do not
/// answer, approved answer, answer.
pub fn decide(
    screened: &Screened,
    hits: &[Hit],
    grounding: &Grounding,
    answerability: &Answerability,
    config: &PolicyConfig,
) -> Decision {
    if let Some(reason) = screened.escalation {
        return Decision::Handoff(reason);
    }
    if screened.injection {
        return Decision::Refusal(Refusal::Injection);
    }
    if screened.asks_for_advice {
        return Decision::Refusal(Refusal::PolicyRestriction);
    }
    let Some(top) = hits.first() else {
        return Decision::Refusal(Refusal::MissingKnowledge);
    };
    if answerability.refused() {
        return Decision::Refusal(Refusal::MissingKnowledge);
    }
    if top.chunk.kind == SourceKind::Faq
        && top.chunk.approved
        && grounding.coverage >= config.approved_min_coverage
        && grounding.lead >= config.approved_min_lead
    {
        return Decision::Approved;
    }
    Decision::Answer
}
