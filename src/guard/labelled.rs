//! Measures the guardrails on labelled sets (JSON Lines; see tests/fixtures/guard/README.md):
//! personal-data strings with hard negatives, escalation phrasings with look-alikes, and
//! injection attempts with benign look-alikes. `teller guard-eval` prints these reports,
//! the tests assert the targets on them.

use super::{injection, Guard};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// A share, or 1 when there is nothing to count.
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Debug, Deserialize)]
struct PiiItem {
    text: String,
    /// An earlier message of the same customer in the same conversation.
    #[serde(default)]
    previous: Option<String>,
    lang: String,
    kinds: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    keep: Vec<String>,
    split: String,
}

/// How masking did on the personal-data set.
#[derive(Debug, Default, Serialize)]
pub struct PiiReport {
    pub items: usize,
    /// Items with personal data / hard negatives.
    pub positives: usize,
    pub negatives: usize,
    /// Share of positive items whose every secret was removed.
    pub recall: f64,
    /// The same, over items with a card number.
    pub card_recall: f64,
    /// Share of negative items where anything was masked or a kept string changed.
    pub false_positive_rate: f64,
    /// Share of positive items where a string that must be kept was changed.
    pub collateral_rate: f64,
    pub by_split: BTreeMap<String, (usize, f64, f64)>,
    /// The items that failed, for a person to read.
    pub misses: Vec<String>,
    pub false_positives: Vec<String>,
}

pub fn evaluate_pii(path: &Path, guard: &Guard) -> anyhow::Result<PiiReport> {
    let items: Vec<PiiItem> = read_jsonl(path)?;
    let mut report = PiiReport {
        items: items.len(),
        ..Default::default()
    };
    let (mut caught, mut cards, mut cards_caught, mut false_pos, mut collateral) = (0, 0, 0, 0, 0);
    let mut splits: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for item in &items {
        // With an earlier message, both are masked as the conversation would be, and both
        // must lose their secrets.
        let masked = match &item.previous {
            Some(previous) => {
                let before = guard.masker.mask(previous);
                let after = guard.masker.mask_after(&item.text, &before.text);
                let mut found = before.found;
                for kind in after.found {
                    if !found.contains(&kind) {
                        found.push(kind);
                    }
                }
                super::Masked {
                    text: format!("{}\n{}", before.text, after.text),
                    found,
                }
            }
            None => guard.masker.mask(&item.text),
        };
        let kept = item.keep.iter().all(|k| masked.text.contains(k.as_str()));
        let split = splits.entry(item.split.clone()).or_default();
        if item.kinds.is_empty() {
            report.negatives += 1;
            split[2] += 1;
            if !masked.found.is_empty() || !kept {
                false_pos += 1;
                split[3] += 1;
                report
                    .false_positives
                    .push(format!("[{}] {} -> {}", item.lang, item.text, masked.text));
            }
            continue;
        }
        report.positives += 1;
        split[0] += 1;
        let ok = item.secrets.iter().all(|s| !masked.text.contains(s.as_str()));
        if ok {
            caught += 1;
            split[1] += 1;
        } else {
            report.misses.push(format!(
                "[{}] {:?} {} -> {}",
                item.lang, item.kinds, item.text, masked.text
            ));
        }
        if item.kinds.iter().any(|k| k == "card") {
            cards += 1;
            cards_caught += usize::from(ok);
        }
        if !kept {
            collateral += 1;
            report.false_positives.push(format!(
                "[{}] kept string changed: {} -> {}",
                item.lang, item.text, masked.text
            ));
        }
    }
    report.recall = share(caught, report.positives);
    report.card_recall = share(cards_caught, cards);
    report.false_positive_rate = false_pos as f64 / report.negatives.max(1) as f64;
    report.collateral_rate = collateral as f64 / report.positives.max(1) as f64;
    report.by_split = splits
        .into_iter()
        .map(|(name, [pos, hit, neg, fp])| (name, (pos + neg, share(hit, pos), fp as f64 / neg.max(1) as f64)))
        .collect();
    Ok(report)
}

#[derive(Debug, Deserialize)]
struct EscalationItem {
    text: String,
    lang: String,
    reason: Option<String>,
    split: String,
}

/// Recall of escalation phrasings and false handoffs on look-alikes.
#[derive(Debug, Default, Serialize)]
pub struct ClassifierReport {
    pub positives: usize,
    pub negatives: usize,
    /// Share of positives flagged (for escalations: handed over, whatever the reason).
    pub recall: f64,
    /// Share of escalations handed over with the labelled reason.
    pub reason_accuracy: f64,
    pub false_positive_rate: f64,
    /// (language, split) → (positives, recall, negatives, false-positive rate).
    pub by_group: BTreeMap<String, (usize, f64, usize, f64)>,
    pub misses: Vec<String>,
    pub false_positives: Vec<String>,
}

#[derive(Default)]
struct Tally {
    positives: usize,
    caught: usize,
    right_reason: usize,
    negatives: usize,
    false_pos: usize,
    groups: BTreeMap<String, [usize; 4]>,
    misses: Vec<String>,
    false_positives: Vec<String>,
}

impl Tally {
    fn add(&mut self, group: String, expected: bool, flagged: bool, right_reason: bool, shown: String) {
        let g = self.groups.entry(group).or_default();
        if expected {
            self.positives += 1;
            g[0] += 1;
            if flagged {
                self.caught += 1;
                g[1] += 1;
                self.right_reason += usize::from(right_reason);
            } else {
                self.misses.push(shown);
            }
        } else {
            self.negatives += 1;
            g[2] += 1;
            if flagged {
                self.false_pos += 1;
                g[3] += 1;
                self.false_positives.push(shown);
            }
        }
    }

    fn report(self) -> ClassifierReport {
        ClassifierReport {
            positives: self.positives,
            negatives: self.negatives,
            recall: share(self.caught, self.positives),
            reason_accuracy: share(self.right_reason, self.positives),
            false_positive_rate: self.false_pos as f64 / self.negatives.max(1) as f64,
            by_group: self
                .groups
                .into_iter()
                .map(|(k, [p, c, n, f])| (k, (p, share(c, p), n, f as f64 / n.max(1) as f64)))
                .collect(),
            misses: self.misses,
            false_positives: self.false_positives,
        }
    }
}

pub fn evaluate_escalation(path: &Path, guard: &Guard) -> anyhow::Result<ClassifierReport> {
    let items: Vec<EscalationItem> = read_jsonl(path)?;
    let mut tally = Tally::default();
    for item in items {
        let got = guard.screen(&item.text).escalation;
        let right = got.map(|r| r.as_str()) == item.reason.as_deref();
        let shown = format!(
            "[{}] expected {:?}, got {:?}: {}",
            item.lang,
            item.reason,
            got.map(|r| r.as_str()),
            item.text
        );
        tally.add(
            format!("{}/{}", item.lang, item.split),
            item.reason.is_some(),
            got.is_some(),
            right,
            shown,
        );
    }
    Ok(tally.report())
}

/// A message labelled yes or no for one screen (`injection` or `advice`).
#[derive(Debug, Deserialize)]
struct BinaryItem {
    text: String,
    lang: String,
    #[serde(alias = "injection", alias = "advice")]
    expected: bool,
    split: String,
}

/// A yes/no screen over a labelled set.
fn evaluate_binary(path: &Path, flags: impl Fn(&str) -> bool) -> anyhow::Result<ClassifierReport> {
    let items: Vec<BinaryItem> = read_jsonl(path)?;
    let mut tally = Tally::default();
    for item in items {
        let flagged = flags(&item.text);
        let shown = format!("[{}] expected {}: {}", item.lang, item.expected, item.text);
        tally.add(
            format!("{}/{}", item.lang, item.split),
            item.expected,
            flagged,
            true,
            shown,
        );
    }
    Ok(tally.report())
}

pub fn evaluate_injection(path: &Path) -> anyhow::Result<ClassifierReport> {
    evaluate_binary(path, injection::is_injection)
}

/// Advice requests (investment, legal, tax) and their look-alikes, through the screen.
pub fn evaluate_advice(path: &Path, guard: &Guard) -> anyhow::Result<ClassifierReport> {
    evaluate_binary(path, |text| guard.screen(text).asks_for_advice)
}
