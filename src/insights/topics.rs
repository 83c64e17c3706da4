//! The gap report: the period's refused and handed-over questions grouped into topics,
//! largest first, each with its counts, example questions, the words it shares and the
//! sources retrieval came closest with.
//!
//! Questions are grouped by the terms they share ([`super::terms`], weighted by their
//! rarity in the knowledge base) or, when an embedder is configured, by their embeddings;
//! either way with average linkage ([`super::cluster`]). Identical questions (same words,
//! case and spacing aside) count as one point with a weight.

use super::cluster::{average_linkage, dense_cosine, sparse_cosine, Similarities};
use super::terms::{TermVector, Terms};
use super::Period;
use crate::audit::GapQuestion;
use crate::retrieval::store::IndexedSource;
use crate::retrieval::Index;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Average similarity of shared terms at which two groups of questions are one topic.
/// Short questions of one topic often share only the topic's key term (a cosine of about
/// 0.2 for a key term among four or five), while terms common in the knowledge base weigh
/// little; half that keeps a topic's loosely worded questions together.
pub const TERM_THRESHOLD: f32 = 0.1;
/// The same for embeddings, whose cosines between unrelated questions are already high.
pub const DENSE_THRESHOLD: f32 = 0.85;
/// Distinct questions grouped at most (the most asked ones): the grouping holds every
/// pair's similarity, so this bounds its memory (16 MB) and time.
pub const MAX_CLUSTERED: usize = 2_000;
/// Example questions and closest sources per topic.
const EXAMPLES: usize = 3;
const CLOSEST: usize = 3;
/// Conversations listed per topic, for the reader to open.
const CONVERSATIONS: usize = 5;

/// How the questions were grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// By shared terms.
    Terms,
    /// By embeddings from the configured embedder.
    Embeddings,
}

/// The refused and handed-over questions of a period, as topics.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GapReport {
    pub from: String,
    pub to: String,
    pub method: Method,
    /// Questions refused for missing knowledge or handed over in the period.
    pub questions: u64,
    /// Distinct questions among them.
    pub distinct: usize,
    /// Distinct questions left out of the grouping (beyond the most asked 2,000).
    pub not_clustered: usize,
    /// Largest first.
    pub topics: Vec<Topic>,
}

/// One topic: questions that share their distinctive words (or meaning).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Topic {
    /// The topic's shared words, or its most asked question when it has none.
    pub label: String,
    /// Its most weighty shared words, as customers wrote them.
    pub terms: Vec<String>,
    /// Questions in the topic.
    pub count: u64,
    /// Of which refused for missing knowledge.
    pub refused: u64,
    /// Of which handed over to a person.
    pub handed_over: u64,
    /// Handoff reasons of the handed-over questions.
    pub handoff_reasons: BTreeMap<String, u64>,
    /// The most asked questions of the topic (masked, as recorded).
    pub examples: Vec<String>,
    /// The sources retrieval ranked for the topic's questions: most often first.
    pub closest_sources: Vec<ClosestSource>,
    /// A few of the topic's conversations, for the record.
    pub conversations: Vec<String>,
    pub first_asked: String,
    pub last_asked: String,
}

/// A source retrieval found for a topic's questions, though it did not answer them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClosestSource {
    pub source_id: String,
    /// `None` once the source is no longer indexed.
    pub title: Option<String>,
    /// Questions of the topic it was retrieved for.
    pub retrieved: u64,
    /// Its best retrieval score among them.
    pub best_score: f32,
}

/// The part of a `retrieval` payload the report reads.
#[derive(Deserialize)]
struct Retrieval {
    #[serde(default)]
    hits: Vec<RetrievedHit>,
}

#[derive(Deserialize)]
struct RetrievedHit {
    source_id: String,
    score: f32,
}

/// A distinct question: its text as first seen, how often it was asked, by which records.
struct Distinct<'q> {
    text: &'q str,
    asked: Vec<&'q GapQuestion>,
}

/// The words that make a question "the same" question: case and spacing aside.
fn question_key(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds the gap report of `questions` (the period's, oldest first).
pub async fn report(period: &Period, questions: &[GapQuestion], index: &Index, sources: &[IndexedSource]) -> GapReport {
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut distinct: Vec<Distinct<'_>> = Vec::new();
    for question in questions {
        let i = *by_key.entry(question_key(&question.question)).or_insert_with(|| {
            distinct.push(Distinct {
                text: &question.question,
                asked: Vec::new(),
            });
            distinct.len() - 1
        });
        distinct[i].asked.push(question);
    }
    // Most asked first (then alphabetically, so the report repeats), and only as many as
    // the grouping holds.
    distinct.sort_by(|a, b| b.asked.len().cmp(&a.asked.len()).then(a.text.cmp(b.text)));
    let not_clustered = distinct.len().saturating_sub(MAX_CLUSTERED);
    let total_distinct = distinct.len();
    distinct.truncate(MAX_CLUSTERED);

    let vocabulary = index.vocabulary();
    let terms = Terms::new(&index.bm25, &vocabulary);
    let vectors: Vec<TermVector> = distinct.iter().map(|d| terms.vector(d.text)).collect();
    let weights: Vec<u32> = distinct.iter().map(|d| d.asked.len() as u32).collect();
    let embedded = match &index.embedder {
        Some(embedder) if !distinct.is_empty() => {
            match embedder
                .embed_passages(distinct.iter().map(|d| d.text.to_string()).collect())
                .await
            {
                Ok(dense) if dense.len() == distinct.len() => Some(dense),
                Ok(_) => {
                    tracing::warn!("the embedder returned a vector count that does not match; grouping by terms");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot embed the questions; grouping by terms");
                    None
                }
            }
        }
        _ => None,
    };
    let (method, groups) = match &embedded {
        Some(dense) => {
            let similarities = Similarities::new(dense.len(), |i, j| dense_cosine(&dense[i], &dense[j]));
            (
                Method::Embeddings,
                average_linkage(similarities, &weights, DENSE_THRESHOLD),
            )
        }
        None => {
            let similarities = Similarities::new(vectors.len(), |i, j| sparse_cosine(&vectors[i], &vectors[j]));
            (Method::Terms, average_linkage(similarities, &weights, TERM_THRESHOLD))
        }
    };
    let titles: HashMap<&str, &str> = sources
        .iter()
        .map(|s| (s.source_id.as_str(), s.title.as_str()))
        .collect();
    let topics = groups
        .iter()
        .map(|members| topic(members, &distinct, &vectors, &terms, &titles))
        .collect();
    GapReport {
        from: period.from.to_string(),
        to: period.to.to_string(),
        method,
        questions: questions.len() as u64,
        distinct: total_distinct,
        not_clustered,
        topics,
    }
}

fn topic(
    members: &[usize],
    distinct: &[Distinct<'_>],
    vectors: &[TermVector],
    terms: &Terms<'_>,
    titles: &HashMap<&str, &str>,
) -> Topic {
    let asked: Vec<&GapQuestion> = members
        .iter()
        .flat_map(|&m| distinct[m].asked.iter().copied())
        .collect();
    let mut handoff_reasons = BTreeMap::new();
    let mut refused = 0;
    for question in &asked {
        if question.mode == "refusal" {
            refused += 1;
        } else if let Some(reason) = &question.handoff_reason {
            *handoff_reasons.entry(reason.clone()).or_insert(0) += 1;
        }
    }
    // Members are in the order of `distinct`: most asked first.
    let examples: Vec<String> = members
        .iter()
        .take(EXAMPLES)
        .map(|&m| distinct[m].text.to_string())
        .collect();
    let words = shared_words(members, distinct, vectors, terms);
    let label = if words.is_empty() {
        examples[0].clone()
    } else {
        words.join(", ")
    };
    let mut conversations: Vec<String> = Vec::new();
    for question in &asked {
        if conversations.len() < CONVERSATIONS && !conversations.contains(&question.conversation_id) {
            conversations.push(question.conversation_id.clone());
        }
    }
    let times = asked.iter().map(|q| q.created_at.as_str());
    Topic {
        label,
        terms: words,
        count: asked.len() as u64,
        refused,
        handed_over: asked.len() as u64 - refused,
        handoff_reasons,
        examples,
        closest_sources: closest_sources(&asked, titles),
        conversations,
        first_asked: times.clone().min().unwrap_or_default().to_string(),
        last_asked: times.max().unwrap_or_default().to_string(),
    }
}

/// The topic's most weighty terms that more than one of its distinct questions uses (any
/// term, for a topic of one), as the customers wrote them.
fn shared_words(
    members: &[usize],
    distinct: &[Distinct<'_>],
    vectors: &[TermVector],
    terms: &Terms<'_>,
) -> Vec<String> {
    let mut weight: HashMap<u32, (f32, usize)> = HashMap::new();
    for &m in members {
        let times = distinct[m].asked.len() as f32;
        for &(id, w) in &vectors[m] {
            let entry = weight.entry(id).or_default();
            entry.0 += w * times;
            entry.1 += 1;
        }
    }
    let needed = if members.len() > 1 { 2 } else { 1 };
    let mut ranked: Vec<(u32, f32)> = weight
        .into_iter()
        .filter(|(_, (_, uses))| *uses >= needed)
        .map(|(id, (w, _))| (id, w))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(EXAMPLES);
    let wanted: HashSet<u32> = ranked.iter().map(|(id, _)| *id).collect();
    let mut found: HashMap<u32, String> = HashMap::new();
    for &m in members {
        if found.len() == wanted.len() {
            break;
        }
        for (id, word) in terms.words(distinct[m].text, &wanted) {
            found.entry(id).or_insert(word);
        }
    }
    ranked.iter().filter_map(|(id, _)| found.remove(id)).collect()
}

/// The sources retrieved for the topic's questions: most often first, then best score.
fn closest_sources(asked: &[&GapQuestion], titles: &HashMap<&str, &str>) -> Vec<ClosestSource> {
    let mut by_source: BTreeMap<String, (u64, f32)> = BTreeMap::new();
    for question in asked {
        let Some(retrieval) = question
            .retrieval
            .as_deref()
            .and_then(|r| serde_json::from_str::<Retrieval>(r).ok())
        else {
            continue;
        };
        let mut seen = HashSet::new();
        for hit in retrieval.hits {
            let entry = by_source.entry(hit.source_id.clone()).or_insert((0, f32::MIN));
            if seen.insert(hit.source_id) {
                entry.0 += 1;
            }
            entry.1 = entry.1.max(hit.score);
        }
    }
    let mut closest: Vec<ClosestSource> = by_source
        .into_iter()
        .map(|(source_id, (retrieved, best_score))| ClosestSource {
            title: titles.get(source_id.as_str()).map(|t| t.to_string()),
            source_id,
            retrieved,
            best_score,
        })
        .collect();
    closest.sort_by(|a, b| {
        b.retrieved
            .cmp(&a.retrieved)
            .then(b.best_score.total_cmp(&a.best_score))
            .then(a.source_id.cmp(&b.source_id))
    });
    closest.truncate(CLOSEST);
    closest
}
