//! The learned parts of the inbound screen: which handoff reason a message needs, and
//! whether it asks for advice. Fitted by `teller calibrate screen` on the labelled sets in
//! the repository and compiled in from `models/`.

use super::classifier::{add_hint, features, Classifier};
use crate::conversation::HandoffReason;
use anyhow::Context;
use std::path::Path;
use std::sync::{Arc, LazyLock};

/// The escalation and advice classifiers.
#[derive(Debug, Clone)]
pub struct ScreenModels {
    pub escalation: Arc<Classifier>,
    pub advice: Arc<Classifier>,
}

static BUILT_IN: LazyLock<ScreenModels> = LazyLock::new(|| ScreenModels {
    escalation: Arc::new(parse(include_str!("../../models/escalation.json"))),
    advice: Arc::new(parse(include_str!("../../models/advice.json"))),
});

fn parse(json: &str) -> Classifier {
    serde_json::from_str(json).expect("the committed models parse")
}

impl Default for ScreenModels {
    /// The models built into the binary.
    fn default() -> Self {
        BUILT_IN.clone()
    }
}

impl ScreenModels {
    /// The reason the escalation classifier is confident of, with its probability. What
    /// the hand-written patterns found (`pattern`) is one of its features: it weighs them
    /// with the words, so a pattern that fires on a general question ("what happens if an
    /// ATM keeps my card?") can be outweighed.
    pub fn escalation(&self, text: &Features, pattern: Option<HandoffReason>) -> Option<(HandoffReason, f32)> {
        let verdict = self.escalation.confident(&text.with_escalation(pattern))?;
        let reason = self.escalation.classes[verdict.class].parse().ok()?;
        Some((reason, verdict.probability))
    }

    /// The probability that a message asks for advice, when the classifier is confident;
    /// `pattern` says whether the advice patterns matched.
    pub fn advice(&self, text: &Features, pattern: bool) -> Option<f32> {
        self.advice.confident(&text.with_advice(pattern)).map(|v| v.probability)
    }

    /// Reads `escalation.json` and `advice.json` from a folder (`TELLER_MODELS_DIR`), as
    /// `teller calibrate screen --out` writes them.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<Arc<Classifier>> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Arc::new(
                serde_json::from_str(&text).with_context(|| format!("{} is not a model", path.display()))?,
            ))
        };
        Ok(Self {
            escalation: read("escalation.json")?,
            advice: read("advice.json")?,
        })
    }
}

/// A message's word and character features, computed once for both classifiers.
pub struct Features(Vec<u32>);

impl Features {
    pub fn of(text: &str) -> Self {
        Self(features(text))
    }

    /// The escalation classifier's features: the text's, and the pattern that fired.
    pub fn with_escalation(&self, pattern: Option<HandoffReason>) -> Vec<u32> {
        let mut f = self.0.clone();
        if let Some(reason) = pattern {
            add_hint(&mut f, reason.as_str());
        }
        f
    }

    /// The advice classifier's features: the text's, and whether the advice patterns
    /// matched.
    pub fn with_advice(&self, pattern: bool) -> Vec<u32> {
        let mut f = self.0.clone();
        if pattern {
            add_hint(&mut f, "advice");
        }
        f
    }
}
