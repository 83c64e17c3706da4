//! Whether the retrieved passages answer the question: a calibrated probability from
//! several signals of the evidence, not one score against one floor.
//!
//! The signals (see [`Signals`]) compare the question's BM25 terms, weighted by the
//! corpus's IDF, with the best passage, its best sentence, its title (an FAQ entry's
//! question) and the other sources. A logistic regression over them is fitted by
//! `teller calibrate answerability` on labelled questions in the repository (with
//! `--words`, over the question's own words too), and its threshold is set for at most 5 % answerable questions
//! refused. Each decision is recorded with its signals and probability, so compliance can
//! see why Teller answered.

use crate::guard::classifier::{self, Classifier, Fit};
use crate::lang::Lang;
use crate::retrieval::bm25::Bm25Encoder;
use crate::retrieval::passages::Reading;
use crate::retrieval::Hit;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

/// What the evidence says about how well it answers the question, each in a comparable
/// range whatever the corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Signals {
    /// IDF-weighted share of the question's terms in the best passage.
    pub coverage: f32,
    /// The same share for the best single sentence of that passage: what would be quoted.
    pub sentence: f32,
    /// Share of the question's terms in the best passage's title (an FAQ entry's question,
    /// a document's title and section).
    pub title: f32,
    /// Share of the title's terms in the question: the customer asked what the entry is
    /// about, rather than something near it.
    pub title_asked: f32,
    /// Share of the question's terms in any of the top three sources together.
    pub coverage_top3: f32,
    /// Share of the question's terms (by count) the knowledge base contains nowhere ("car
    /// insurance" where no document says "insurance"); the other shares leave them out.
    pub unknown: f32,
    /// ln(first source's score / second's), capped: how clearly one source leads.
    pub lead: f32,
    /// The best passage's score against what a passage with every question term once
    /// would score (offline, BM25); in hybrid mode the fused rank score, scaled.
    pub score: f32,
    /// 1 when the best passage is in the question's language.
    pub same_language: f32,
    /// ln(1 + the number of distinct terms in the question).
    pub terms: f32,
}

/// The order of [`Signals`] in a model's weights.
pub const SIGNAL_NAMES: [&str; 10] = [
    "coverage",
    "sentence",
    "title",
    "title_asked",
    "coverage_top3",
    "unknown",
    "lead",
    "score",
    "same_language",
    "terms",
];

impl Signals {
    pub fn as_array(&self) -> [f32; 10] {
        [
            self.coverage,
            self.sentence,
            self.title,
            self.title_asked,
            self.coverage_top3,
            self.unknown,
            self.lead,
            self.score,
            self.same_language,
            self.terms,
        ]
    }

    /// Measures the evidence for `question`. `discounted` terms (the bank's own name and
    /// places) do not count towards any share: every passage contains them.
    pub fn measure(question: &Reading, hits: &[Hit], discounted: &HashSet<u32>) -> Self {
        let all: Vec<u32> = question
            .terms()
            .iter()
            .copied()
            .filter(|t| !discounted.contains(t))
            .collect();
        // Shares are over the terms the knowledge base knows: a word it has never seen
        // (a typo, slang, a product it does not offer) would weigh the most by IDF and
        // swamp every share; how many there are is a signal of its own.
        let terms: Vec<u32> = all.iter().copied().filter(|t| question.known(*t)).collect();
        let unknown = if all.is_empty() {
            0.0
        } else {
            (all.len() - terms.len()) as f32 / all.len() as f32
        };
        let weight = |t: &u32| question.idf(*t);
        let total: f32 = terms.iter().map(weight).sum();
        let share = |covered: &dyn Fn(u32) -> bool| {
            if total > 0.0 {
                terms.iter().filter(|t| covered(**t)).map(weight).sum::<f32>() / total
            } else {
                0.0
            }
        };
        let Some(top) = hits.first() else {
            return Self {
                unknown,
                terms: (1.0 + all.len() as f32).ln(),
                ..Self::default()
            };
        };
        let passage = question.passage(&top.chunk);
        let sentence = passage
            .sentences
            .iter()
            .map(|(_, s)| {
                let s: HashSet<u32> = s.iter().copied().collect();
                share(&|t| s.contains(&t))
            })
            .fold(0.0, f32::max);
        let title: HashSet<u32> = passage.title.iter().copied().collect();
        let title_asked = if title.is_empty() {
            0.0
        } else {
            let asked = title.iter().filter(|t| question.terms().contains(t)).count();
            asked as f32 / title.len() as f32
        };
        let top3: Vec<_> = hits.iter().take(3).map(|h| question.passage(&h.chunk)).collect();
        let lead = match hits.get(1) {
            Some(next) if next.score > 0.0 => (top.score / next.score).ln().min(3.0),
            _ => 3.0,
        };
        let self_score: f32 = question.terms().iter().map(|t| question.idf(*t)).sum();
        Self {
            coverage: share(&|t| passage.terms.contains(&t)),
            sentence,
            title: share(&|t| title.contains(&t)),
            title_asked,
            coverage_top3: share(&|t| top3.iter().any(|p| p.terms.contains(&t))),
            unknown,
            lead,
            score: if top.score < 1.0 {
                // A fused rank score (1/(60 + rank) summed over the two searches).
                top.score * 30.0
            } else if self_score > 0.0 {
                (top.score / self_score).min(3.0)
            } else {
                0.0
            },
            same_language: f32::from(u8::from(top.chunk.lang == question.lang)),
            terms: (1.0 + all.len() as f32).ln(),
        }
    }
}

/// The terms of the bank's own name, in both languages' tokenisation: they are in every
/// passage and say nothing of a match.
pub fn discounted_terms(bm25: &Bm25Encoder, bank_name: &str) -> HashSet<u32> {
    [Lang::En, Lang::ZhCn]
        .into_iter()
        .flat_map(|lang| bm25.embed_query(bank_name, lang).indices)
        .collect()
}

/// The answerability model: a classifier over the evidence's signals, each cut into tenths,
/// and — when fitted with `words`, on one bank's own questions — the question's words, so
/// it also learns what that bank's documents do not cover. Words do not carry from one
/// bank's knowledge base to another's (fitted on two banks' questions, a model with words
/// refused a third knowledge base's plainest questions), so the built-in models use the
/// signals alone. Its `none` class is "answerable"; a question is refused when it is
/// "unanswerable" with at least the threshold's probability, set for at most 5 % of
/// answerable questions refused in cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Whether the question's words are features too.
    pub words: bool,
    pub classifier: Classifier,
}

/// How far above the refusal threshold a decision still counts as close.
const CLOSE_MARGIN: f32 = 0.2;

/// The decision's evidence, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Answerability {
    /// The probability that the passages do not answer the question.
    pub unanswerable: f32,
    pub threshold: f32,
    pub signals: Signals,
}

impl Answerability {
    /// The passages do not answer the question.
    pub fn refused(&self) -> bool {
        self.unanswerable >= self.threshold
    }

    /// Answered, but close to the threshold: the reply says it may not match and offers a
    /// colleague.
    pub fn is_close(&self) -> bool {
        !self.refused() && self.unanswerable >= self.threshold - CLOSE_MARGIN
    }
}

/// The features the classifier weighs: the binned signals, and the question's words if
/// `words`.
pub fn features(question: &str, signals: &Signals, words: bool) -> Vec<u32> {
    let mut f = if words {
        classifier::features(question)
    } else {
        Vec::new()
    };
    for (name, value) in SIGNAL_NAMES.iter().zip(signals.as_array()) {
        let tenth = ((value * 10.0).floor() as i32).clamp(-5, 30);
        classifier::add_hint(&mut f, &format!("{name}:{tenth}"));
    }
    f
}

impl Model {
    pub fn judge(&self, question: &str, signals: Signals) -> Answerability {
        let p = self
            .classifier
            .probabilities_of(&features(question, &signals, self.words));
        Answerability {
            unanswerable: p[1],
            threshold: self.classifier.threshold,
            signals,
        }
    }
}

/// The file a model is kept in: one per retrieval mode, since the signals' ranges differ.
pub fn file_name(hybrid: bool) -> &'static str {
    if hybrid {
        "answerability-hybrid.json"
    } else {
        "answerability.json"
    }
}

static OFFLINE: LazyLock<Arc<Model>> = LazyLock::new(|| parse(include_str!("../../models/answerability.json")));
static HYBRID: LazyLock<Arc<Model>> = LazyLock::new(|| parse(include_str!("../../models/answerability-hybrid.json")));

/// Reads a committed model.
fn parse(json: &str) -> Arc<Model> {
    Arc::new(serde_json::from_str(json).expect("the committed models parse"))
}

/// The built-in model for BM25 retrieval (`hybrid = false`) or dense + BM25.
pub fn built_in(hybrid: bool) -> Arc<Model> {
    if hybrid {
        HYBRID.clone()
    } else {
        OFFLINE.clone()
    }
}

/// Fits a model on (question, signals, answerable) examples.
pub fn fit(
    examples: &[(String, Signals, bool)],
    words: bool,
    files: Vec<String>,
    max_false_refusal_rate: f64,
) -> Model {
    let examples: Vec<(Vec<u32>, usize)> = examples
        .iter()
        .map(|(q, s, answerable)| (features(q, s, words), usize::from(!answerable)))
        .collect();
    Model {
        words,
        classifier: Classifier::calibrate(
            vec!["answerable".into(), "unanswerable".into()],
            &examples,
            files,
            max_false_refusal_rate,
            Fit::default(),
        ),
    }
}
