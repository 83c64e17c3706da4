//! Retrieval evaluation on labelled questions (design.md §Evaluation).
//!
//! Metrics are computed over *distinct source ids* in rank order: a document that owns
//! the top three chunks counts once, as a customer-facing citation list would.

use crate::chat::policy::Grounding;
use crate::lang::Lang;
use crate::retrieval::passages::{PassageCache, Reading};
use crate::retrieval::query::{retrieval_query, Turn};
use crate::retrieval::{Index, SearchOptions};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// One labelled question (the `dev-questions.jsonl` format).
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    pub lang: Option<String>,
    pub question: String,
    #[serde(default)]
    pub relevant: Vec<String>,
    #[serde(default)]
    pub answer_facts: Vec<String>,
    #[serde(default = "uncategorised")]
    pub category: String,
    #[serde(default)]
    pub history: Vec<Turn>,
    #[serde(default)]
    pub expect_handoff: bool,
}

fn uncategorised() -> String {
    "uncategorised".into()
}

impl Question {
    pub fn answerable(&self) -> bool {
        !self.relevant.is_empty()
    }

    /// The declared language, or the detected one when absent or unrecognised.
    pub fn lang(&self) -> Lang {
        self.lang
            .as_deref()
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| Lang::detect(&self.question))
    }
}

/// Reads a JSON Lines file of questions; an error names the line.
pub fn load_questions(path: &Path) -> anyhow::Result<Vec<Question>> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("cannot read questions file {}", path.display()))?;
    raw.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).with_context(|| format!("{}:{}: invalid question", path.display(), n + 1))
        })
        .collect()
}

/// Recall and MRR for a group of questions.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GroupMetrics {
    pub questions: usize,
    pub answerable: usize,
    pub recall_at_k: f64,
    pub mrr: f64,
}

/// The retrieval fields of `teller eval --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalReport {
    pub k: usize,
    pub questions: usize,
    pub answerable: usize,
    pub recall_at_k: f64,
    pub mrr: f64,
    pub by_category: BTreeMap<String, GroupMetrics>,
    pub by_lang: BTreeMap<String, GroupMetrics>,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Per-question outcome, kept for reports and tests.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    pub id: String,
    pub category: String,
    pub lang: Lang,
    pub answerable: bool,
    /// 1-based rank of the first relevant source within the top k, if any.
    pub first_relevant_rank: Option<usize>,
    pub retrieved: Vec<String>,
    /// Retrieval score of the best passage.
    pub top_score: f32,
    /// The answer policy's grounding signal (share of query terms in the best passage).
    pub coverage: f32,
    pub millis: f64,
}

/// Searches every question (with its history folded in, as the chat pipeline does)
/// and scores the ranking.
pub async fn evaluate_retrieval(
    index: &Index,
    questions: &[Question],
    k: usize,
) -> anyhow::Result<(RetrievalReport, Vec<QuestionResult>)> {
    let mut results = Vec::with_capacity(questions.len());
    let passages = PassageCache::default();
    for q in questions {
        let lang = q.lang();
        let query = retrieval_query(&q.history, &q.question);
        let started = Instant::now();
        let hits = index
            .search(
                &query,
                &SearchOptions {
                    k,
                    lang: Some(lang),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("search failed for question {}", q.id))?;
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let question = Reading::new(&query, lang, &index.bm25, index.vocabulary(), &passages);
        let grounding = Grounding::measure(&question, &hits);
        let top_score = hits.first().map_or(0.0, |h| h.score);
        let retrieved: Vec<String> = hits.into_iter().map(|h| h.chunk.source_id).collect();
        let first_relevant_rank = retrieved.iter().position(|id| q.relevant.contains(id)).map(|p| p + 1);
        results.push(QuestionResult {
            id: q.id.clone(),
            category: q.category.clone(),
            lang,
            answerable: q.answerable(),
            first_relevant_rank,
            retrieved,
            top_score,
            coverage: grounding.coverage,
            millis,
        });
    }
    Ok((report(k, &results), results))
}

/// Aggregates per-question results into the report.
pub fn report(k: usize, results: &[QuestionResult]) -> RetrievalReport {
    let overall = group(results.iter());
    let mut by_category: BTreeMap<String, Vec<&QuestionResult>> = BTreeMap::new();
    let mut by_lang: BTreeMap<String, Vec<&QuestionResult>> = BTreeMap::new();
    for r in results {
        by_category.entry(r.category.clone()).or_default().push(r);
        by_lang.entry(r.lang.to_string()).or_default().push(r);
    }
    let mut latencies: Vec<f64> = results.iter().map(|r| r.millis).collect();
    latencies.sort_by(f64::total_cmp);
    RetrievalReport {
        k,
        questions: overall.questions,
        answerable: overall.answerable,
        recall_at_k: overall.recall_at_k,
        mrr: overall.mrr,
        by_category: by_category
            .into_iter()
            .map(|(c, rs)| (c, group(rs.into_iter())))
            .collect(),
        by_lang: by_lang.into_iter().map(|(l, rs)| (l, group(rs.into_iter()))).collect(),
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
    }
}

fn group<'a>(results: impl Iterator<Item = &'a QuestionResult>) -> GroupMetrics {
    let mut metrics = GroupMetrics::default();
    let (mut hits, mut reciprocal) = (0usize, 0f64);
    for r in results {
        metrics.questions += 1;
        if !r.answerable {
            continue;
        }
        metrics.answerable += 1;
        if let Some(rank) = r.first_relevant_rank {
            hits += 1;
            reciprocal += 1.0 / rank as f64;
        }
    }
    if metrics.answerable > 0 {
        metrics.recall_at_k = round(hits as f64 / metrics.answerable as f64);
        metrics.mrr = round(reciprocal / metrics.answerable as f64);
    }
    metrics
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    round(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(category: &str, lang: Lang, answerable: bool, rank: Option<usize>, millis: f64) -> QuestionResult {
        QuestionResult {
            id: "q".into(),
            category: category.into(),
            lang,
            answerable,
            first_relevant_rank: rank,
            retrieved: vec![],
            top_score: 0.0,
            coverage: 0.0,
            millis,
        }
    }

    #[test]
    fn recall_and_mrr_count_only_answerable_questions() {
        let results = vec![
            result("paraphrase", Lang::En, true, Some(1), 1.0),
            result("paraphrase", Lang::En, true, Some(2), 2.0),
            result("keyword", Lang::ZhCn, true, None, 3.0),
            result("unanswerable", Lang::En, false, None, 4.0),
        ];
        let r = report(5, &results);
        assert_eq!((r.questions, r.answerable), (4, 3));
        assert_eq!(r.recall_at_k, 0.667);
        assert_eq!(r.mrr, 0.5);
        assert_eq!(
            r.by_category["paraphrase"],
            GroupMetrics {
                questions: 2,
                answerable: 2,
                recall_at_k: 1.0,
                mrr: 0.75
            }
        );
        assert_eq!(r.by_lang["zh-CN"].recall_at_k, 0.0);
        assert_eq!(r.by_category["unanswerable"].answerable, 0);
        assert_eq!((r.p50_ms, r.p95_ms), (2.0, 4.0));
    }

    #[test]
    fn questions_parse_with_history_and_defaults() {
        let line = r#"{"id":"q-1","lang":"en","question":"and gold?","history":[{"role":"user","content":"classic?"}],"relevant":["a"],"answer_facts":[],"category":"multi_turn"}"#;
        let q: Question = serde_json::from_str(line).unwrap();
        assert_eq!(q.history.len(), 1);
        assert!(q.answerable() && !q.expect_handoff);
        let q: Question = serde_json::from_str(r#"{"id":"q","question":"年费多少"}"#).unwrap();
        assert_eq!(q.lang(), Lang::ZhCn);
        assert_eq!(q.category, "uncategorised");
    }
}

/// The answer fields of `teller eval --answers --json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnswerReport {
    /// Share of all `answer_facts` (over every question that has some) found in answers.
    pub fact_recall: f64,
    /// Share of unanswerable questions that got no answer (refusal or handoff).
    pub refusal_rate_unanswerable: f64,
    /// Share of answerable, non-escalation questions that were refused.
    pub false_refusal_rate: f64,
    /// Share of `expect_handoff` questions that were handed to a person.
    pub handoff_recall: f64,
    /// Share of questions without `expect_handoff` that were handed over.
    pub false_handoff_rate: f64,
    pub modes: BTreeMap<String, usize>,
    pub answer_p50_ms: f64,
    pub answer_p95_ms: f64,
}

/// Per-question outcome of the full pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerResult {
    pub id: String,
    pub category: String,
    pub mode: crate::chat::Mode,
    pub facts_found: usize,
    pub facts: usize,
    pub answer: String,
    pub millis: f64,
}

/// Asks every question through the chat pipeline (history seeded as a real conversation)
/// and scores the answers.
pub async fn evaluate_answers(
    pipeline: &crate::chat::Pipeline,
    questions: &[Question],
) -> anyhow::Result<(AnswerReport, Vec<AnswerResult>)> {
    use crate::chat::{ChatRequest, UserMessage, WholeReply};
    let mut results = Vec::with_capacity(questions.len());
    for q in questions {
        let conversation = if q.history.is_empty() {
            None
        } else {
            Some(pipeline.seed_conversation(&q.history, q.lang()).await?)
        };
        let request = ChatRequest {
            customer: None,
            conversation,
            message: UserMessage::parse(&q.question)
                .with_context(|| format!("question {} is not a valid message", q.id))?,
            lang: Some(q.lang()),
            request_id: None,
        };
        let started = Instant::now();
        let reply = pipeline
            .respond(request, &mut WholeReply)
            .await
            .with_context(|| format!("question {} failed", q.id))?;
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let answer_lower = reply.answer.to_lowercase();
        let facts_found = q
            .answer_facts
            .iter()
            .filter(|f| answer_lower.contains(&f.to_lowercase()))
            .count();
        results.push(AnswerResult {
            id: q.id.clone(),
            category: q.category.clone(),
            mode: reply.mode,
            facts_found,
            facts: q.answer_facts.len(),
            answer: reply.answer,
            millis,
        });
    }
    Ok((answer_report(questions, &results), results))
}

pub fn answer_report(questions: &[Question], results: &[AnswerResult]) -> AnswerReport {
    use crate::chat::Mode;
    let share = |hits: usize, of: usize| {
        if of == 0 {
            0.0
        } else {
            round(hits as f64 / of as f64)
        }
    };
    let pairs: Vec<(&Question, &AnswerResult)> = questions.iter().zip(results).collect();
    let facts: usize = results.iter().map(|r| r.facts).sum();
    let found: usize = results.iter().map(|r| r.facts_found).sum();
    let declined = |r: &AnswerResult| matches!(r.mode, Mode::Refusal | Mode::Handoff);
    let unanswerable: Vec<_> = pairs
        .iter()
        .filter(|(q, _)| !q.answerable() && !q.expect_handoff)
        .collect();
    let answerable: Vec<_> = pairs
        .iter()
        .filter(|(q, _)| q.answerable() && !q.expect_handoff && q.category != "escalation")
        .collect();
    let escalations: Vec<_> = pairs.iter().filter(|(q, _)| q.expect_handoff).collect();
    let others: Vec<_> = pairs.iter().filter(|(q, _)| !q.expect_handoff).collect();
    let mut modes = BTreeMap::new();
    for r in results {
        *modes.entry(r.mode.as_str().to_string()).or_insert(0) += 1;
    }
    let mut latencies: Vec<f64> = results.iter().map(|r| r.millis).collect();
    latencies.sort_by(f64::total_cmp);
    AnswerReport {
        fact_recall: share(found, facts),
        refusal_rate_unanswerable: share(
            unanswerable.iter().filter(|(_, r)| declined(r)).count(),
            unanswerable.len(),
        ),
        false_refusal_rate: share(
            answerable.iter().filter(|(_, r)| r.mode == Mode::Refusal).count(),
            answerable.len(),
        ),
        handoff_recall: share(
            escalations.iter().filter(|(_, r)| r.mode == Mode::Handoff).count(),
            escalations.len(),
        ),
        false_handoff_rate: share(
            others.iter().filter(|(_, r)| r.mode == Mode::Handoff).count(),
            others.len(),
        ),
        modes,
        answer_p50_ms: percentile(&latencies, 0.50),
        answer_p95_ms: percentile(&latencies, 0.95),
    }
}
