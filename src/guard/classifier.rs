//! A learned text classifier for the inbound screen: multinomial logistic regression over
//! hashed word and character n-grams, for English and Chinese alike (Chinese has no
//! spaces, so its characters, pairs and triples are the features; English gets words,
//! word pairs and the three- and four-letter pieces of words, which survive typos).
//!
//! Weights come from `teller calibrate screen`, a deterministic fit on the labelled sets in
//! the repository (same data, same weights), and are committed under `models/`. Training
//! uses full-batch proximal gradient descent with an L1 penalty, so most weights are
//! exactly zero and the committed file stays small.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::Hasher;
use unicode_normalization::UnicodeNormalization;

/// Hash buckets the features fall into.
pub const BUCKETS: u32 = 1 << 18;

/// The bucket of one feature: a kind of feature (`prefix`) and its text, hashed with FNV-1a
/// (stable across versions and platforms, so committed weights stay valid).
fn bucket(prefix: &[u8], pieces: &[&[char]]) -> u32 {
    let mut h = fnv::FnvHasher::default();
    h.write(prefix);
    let mut utf8 = [0u8; 4];
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            h.write(b" ");
        }
        for c in *piece {
            h.write(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    (h.finish() % u64::from(BUCKETS)) as u32
}

/// The text as features see it: compatibility forms folded (full-width letters and
/// digits), lower case.
fn fold(text: &str) -> Vec<char> {
    if text.is_ascii() {
        text.chars().map(|c| c.to_ascii_lowercase()).collect()
    } else {
        text.nfkc().flat_map(char::to_lowercase).collect()
    }
}

/// The distinct feature buckets of a text.
pub fn features(text: &str) -> Vec<u32> {
    let folded = fold(text);
    let mut out = Vec::with_capacity(folded.len() * 3);
    // Words (digits all read as 0) and runs of Han characters, as spans of `chars`.
    let mut chars: Vec<char> = Vec::with_capacity(folded.len());
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut han: Vec<(usize, usize)> = Vec::new();
    let mut start: Option<(usize, bool)> = None;
    for c in folded.iter().copied().chain(std::iter::once(' ')) {
        let is_han = crate::lang::is_han(c);
        let in_word = c.is_alphanumeric() && !is_han;
        // Apostrophes join a word ("don't" is one word).
        let joins = matches!(c, '\'' | '’') && start.is_some_and(|(_, h)| !h);
        if joins {
            continue;
        }
        if let Some((s, was_han)) = start {
            if (was_han && !is_han) || (!was_han && !in_word) {
                if was_han { &mut han } else { &mut words }.push((s, chars.len()));
                start = None;
            }
        }
        if is_han || in_word {
            if start.is_none() {
                start = Some((chars.len(), is_han));
            }
            chars.push(if c.is_ascii_digit() { '0' } else { c });
        }
    }
    for &(s, e) in &han {
        for (n, prefix) in [(1, b"h1"), (2, b"h2"), (3, b"h3")] {
            for w in chars[s..e].windows(n) {
                out.push(bucket(prefix, &[w]));
            }
        }
    }
    let mut padded: Vec<char> = Vec::new();
    for &(s, e) in &words {
        out.push(bucket(b"w", &[&chars[s..e]]));
        padded.clear();
        padded.push('^');
        padded.extend_from_slice(&chars[s..e]);
        padded.push('$');
        for n in 3..=4 {
            for g in padded.windows(n) {
                out.push(bucket(b"g", &[g]));
            }
        }
    }
    for pair in words.windows(2) {
        out.push(bucket(
            b"b",
            &[&chars[pair[0].0..pair[0].1], &chars[pair[1].0..pair[1].1]],
        ));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Adds a feature that is not in the text: what another check found (a pattern that
/// fired), for the classifier to weigh with the words.
pub fn add_hint(features: &mut Vec<u32>, hint: &str) {
    let mut h = fnv::FnvHasher::default();
    h.write(b"hint");
    h.write(hint.as_bytes());
    let bucket = (h.finish() % u64::from(BUCKETS)) as u32;
    if let Err(at) = features.binary_search(&bucket) {
        features.insert(at, bucket);
    }
}

/// A fitted classifier: per-class sparse weights over feature buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Classifier {
    /// The labels, `none` first (the label of a message that needs nothing).
    pub classes: Vec<String>,
    pub bias: Vec<f32>,
    /// For each class, its non-zero weights by bucket.
    pub weights: Vec<BTreeMap<u32, f32>>,
    /// The smallest probability of a class other than `none` that counts as confident.
    pub threshold: f32,
    /// What it was fitted on, for the record.
    pub fitted_on: FitSummary,
    /// The weights by bucket, every class's in one row: one lookup per feature.
    #[serde(skip)]
    table: std::sync::OnceLock<fnv::FnvHashMap<u32, Vec<f32>>>,
}

impl PartialEq for Classifier {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.classes,
            &self.bias,
            &self.weights,
            self.threshold,
            &self.fitted_on,
        ) == (
            &other.classes,
            &other.bias,
            &other.weights,
            other.threshold,
            &other.fitted_on,
        )
    }
}

/// Where a classifier's weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    pub files: Vec<String>,
    pub examples: usize,
    /// Share of held-out folds' positives caught and of negatives flagged at the threshold
    /// (cross-validation on the fitting data).
    pub cv_recall: f64,
    pub cv_false_positive_rate: f64,
}

/// The classifier's verdict on a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Index into [`Classifier::classes`] of the most probable class other than `none`.
    pub class: usize,
    /// The probability that the message is not `none`: the classes share what the
    /// message has in common with all of them ("my card is gone and I think someone used
    /// it"), and it is the sum that says a person is needed.
    pub probability: f32,
}

impl Classifier {
    pub fn new(
        classes: Vec<String>,
        bias: Vec<f32>,
        weights: Vec<BTreeMap<u32, f32>>,
        threshold: f32,
        fitted_on: FitSummary,
    ) -> Self {
        Self {
            classes,
            bias,
            weights,
            threshold,
            fitted_on,
            table: Default::default(),
        }
    }

    /// Class probabilities for a text.
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        self.probabilities_of(&features(text))
    }

    pub fn probabilities_of(&self, features: &[u32]) -> Vec<f32> {
        let table = self.table.get_or_init(|| {
            let mut table: fnv::FnvHashMap<u32, Vec<f32>> = Default::default();
            for (k, weights) in self.weights.iter().enumerate() {
                for (bucket, w) in weights {
                    table.entry(*bucket).or_insert_with(|| vec![0.0; self.classes.len()])[k] = *w;
                }
            }
            table
        });
        let mut scores = self.bias.clone();
        for row in features.iter().filter_map(|f| table.get(f)) {
            for (score, w) in scores.iter_mut().zip(row) {
                *score += w;
            }
        }
        softmax(&scores)
    }

    /// The most probable class other than `none`, when the message is not `none` with at
    /// least the threshold's probability.
    pub fn confident(&self, features: &[u32]) -> Option<Verdict> {
        let p = self.probabilities_of(features);
        let probability = 1.0 - p[0];
        let (class, _) = p
            .iter()
            .copied()
            .enumerate()
            .skip(1)
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (probability >= self.threshold).then_some(Verdict { class, probability })
    }
}

fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Settings of a fit.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    pub iterations: usize,
    pub step: f32,
    /// L1 penalty per example (sparsity).
    pub l1: f32,
    /// L2 penalty per example (stability).
    pub l2: f32,
    /// Weigh each class by the inverse of its share, so a rare class is not drowned out.
    pub balanced: bool,
}

impl Default for Fit {
    fn default() -> Self {
        Self {
            // Chosen by cross-validation on the tune sets, with a strong L2 so that words
            // seen in few examples do not make the classifier sure of itself.
            iterations: 300,
            step: 1.0,
            l1: 5e-5,
            l2: 1e-2,
            balanced: true,
        }
    }
}

/// Fits weights and biases on labelled examples (class indices into `classes`), by
/// full-batch proximal gradient descent from zero: deterministic.
pub fn fit(classes: &[String], examples: &[(Vec<u32>, usize)], settings: Fit) -> (Vec<f32>, Vec<BTreeMap<u32, f32>>) {
    let c = classes.len();
    let n = examples.len().max(1) as f32;
    // Only buckets that occur can have weight; index them densely.
    let mut index: BTreeMap<u32, usize> = BTreeMap::new();
    for (features, _) in examples {
        for f in features {
            let next = index.len();
            index.entry(*f).or_insert(next);
        }
    }
    let rows: Vec<(Vec<usize>, usize)> = examples
        .iter()
        .map(|(features, label)| (features.iter().map(|f| index[f]).collect(), *label))
        .collect();
    let mut counts = vec![0usize; c];
    for (_, label) in examples {
        counts[*label] += 1;
    }
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&k| {
            if settings.balanced && k > 0 {
                n / (c as f32 * k as f32)
            } else {
                1.0
            }
        })
        .collect();
    let mut w = vec![0f32; index.len() * c];
    let mut b = vec![0f32; c];
    let mut grad_w = vec![0f32; w.len()];
    for _ in 0..settings.iterations {
        grad_w.iter_mut().for_each(|g| *g = 0.0);
        let mut grad_b = vec![0f32; c];
        for (features, label) in &rows {
            let scores: Vec<f32> = (0..c)
                .map(|k| b[k] + features.iter().map(|&f| w[f * c + k]).sum::<f32>())
                .collect();
            let p = softmax(&scores);
            for k in 0..c {
                let err = class_weight[*label] * (p[k] - if k == *label { 1.0 } else { 0.0 });
                grad_b[k] += err;
                for &f in features {
                    grad_w[f * c + k] += err;
                }
            }
        }
        for k in 0..c {
            b[k] -= settings.step * grad_b[k] / n;
        }
        let shrink = settings.step * settings.l1;
        for (weight, grad) in w.iter_mut().zip(&grad_w) {
            let stepped = *weight - settings.step * (grad / n + settings.l2 * *weight);
            // Soft thresholding: the L1 proximal step.
            *weight = stepped.signum() * (stepped.abs() - shrink).max(0.0);
        }
    }
    let mut weights = vec![BTreeMap::new(); c];
    for (bucket, i) in &index {
        for (k, class_weights) in weights.iter_mut().enumerate() {
            let v = w[i * c + k];
            if v != 0.0 {
                class_weights.insert(*bucket, round(v));
            }
        }
    }
    (b.into_iter().map(round).collect(), weights)
}

/// Weights are stored to five significant decimals, so the file stays readable and the
/// same data gives the same file byte for byte.
fn round(v: f32) -> f32 {
    (v * 1e5).round() / 1e5
}

impl Classifier {
    /// Fits a classifier, then picks the threshold: the smallest one at which, in k-fold
    /// cross-validation on the same examples, at most `max_false_positive_rate` of the
    /// `none` examples would be flagged.
    pub fn calibrate(
        classes: Vec<String>,
        examples: &[(Vec<u32>, usize)],
        files: Vec<String>,
        max_false_positive_rate: f64,
        settings: Fit,
    ) -> Self {
        const FOLDS: usize = 5;
        // Out-of-fold probability of the best non-none class, for every example.
        let mut held_out: Vec<(f32, usize)> = Vec::with_capacity(examples.len());
        for fold in 0..FOLDS {
            let train: Vec<(Vec<u32>, usize)> = examples
                .iter()
                .enumerate()
                .filter(|(i, _)| i % FOLDS != fold)
                .map(|(_, e)| e.clone())
                .collect();
            let (bias, weights) = fit(&classes, &train, settings);
            let model = Classifier::new(classes.clone(), bias, weights, 0.0, FitSummary::default());
            for (features, label) in examples.iter().skip(fold).step_by(FOLDS) {
                let p = model.probabilities_of(features);
                held_out.push((1.0 - p[0], *label));
            }
        }
        let negatives: Vec<f32> = held_out.iter().filter(|(_, l)| *l == 0).map(|(p, _)| *p).collect();
        let threshold = threshold_for(&negatives, max_false_positive_rate);
        let positives = held_out.iter().filter(|(_, l)| *l != 0).count();
        let caught = held_out.iter().filter(|(p, l)| *l != 0 && *p >= threshold).count();
        let flagged = negatives.iter().filter(|p| **p >= threshold).count();
        let (bias, weights) = fit(&classes, examples, settings);
        Classifier::new(
            classes,
            bias,
            weights,
            threshold,
            FitSummary {
                files,
                examples: examples.len(),
                cv_recall: share(caught, positives),
                cv_false_positive_rate: share(flagged, negatives.len()),
            },
        )
    }
}

/// The smallest threshold that flags at most `rate` of `negatives`, and never below
/// [`MIN_THRESHOLD`].
fn threshold_for(negatives: &[f32], rate: f64) -> f32 {
    let mut sorted = negatives.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (rate * sorted.len() as f64).floor() as usize;
    let above = sorted.get(allowed).copied().unwrap_or(0.0);
    round((above + 1e-4).clamp(MIN_THRESHOLD, 1.0))
}

/// Below this the classifier is not confident, whatever the look-alikes say.
const MIN_THRESHOLD: f32 = 0.25;

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 1000.0).round() / 1000.0
    }
}

impl Default for FitSummary {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            examples: 0,
            cv_recall: 0.0,
            cv_false_positive_rate: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_cover_words_pairs_and_chinese_characters() {
        let en = features("Someone STOLE my card");
        assert_eq!(en, features("someone stole my card"), "case does not matter");
        assert!(en.len() > 8);
        let zh = features("卡被偷了");
        // 4 characters, 3 pairs, 2 triples.
        assert_eq!(zh.len(), 9);
        assert_eq!(features("ＣＡＲＤ"), features("card"), "full-width folds");
    }

    #[test]
    fn a_fit_separates_what_it_was_shown_and_is_deterministic() {
        let classes: Vec<String> = ["none", "lost"].map(String::from).to_vec();
        let data: Vec<(Vec<u32>, usize)> = [
            ("i lost my card", 1),
            ("my card was stolen", 1),
            ("card gone missing", 1),
            ("what is the card fee", 0),
            ("opening hours please", 0),
            ("how do i pay my bill", 0),
        ]
        .iter()
        .map(|(t, l)| (features(t), *l))
        .collect();
        let a = fit(&classes, &data, Fit::default());
        let b = fit(&classes, &data, Fit::default());
        assert_eq!(a, b);
        let model = Classifier::new(classes, a.0, a.1, 0.5, FitSummary::default());
        assert!(model.confident(&features("i lost my card yesterday")).is_some());
        assert!(model.confident(&features("what are your opening hours")).is_none());
    }
}
