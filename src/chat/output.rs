//! Model output on its way to the customer, in one chain: the model's "no answer"
//! marker is held back (it becomes the policy's refusal and is never shown), citation
//! markers are checked against the passages given, and the output guard removes markup,
//! foreign links and personal data and notices a repeated system prompt.

use super::citations::CitationFilter;
use super::decline::DeclineFilter;
use crate::guard::{Guard, OutputFilter};

/// The filters model text passes, in order, while it streams.
pub(super) struct OutputChain<'g> {
    decline: DeclineFilter,
    citations: CitationFilter,
    guard: OutputFilter<'g>,
}

impl<'g> OutputChain<'g> {
    /// For an answer written from `passages` numbered passages.
    pub fn new(guard: &'g Guard, passages: usize) -> Self {
        Self {
            decline: DeclineFilter::new(),
            citations: CitationFilter::new(passages),
            guard: guard.output.stream(&guard.masker),
        }
    }

    /// Takes a delta; returns what may be shown now.
    pub fn push(&mut self, delta: &str) -> String {
        self.guard.push(&self.citations.push(&self.decline.push(delta)))
    }

    /// Releases what was held back once the model has stopped (`completed` when it
    /// finished normally).
    pub fn finish(&mut self, completed: bool) -> String {
        let held = self.citations.push(&self.decline.finish(completed));
        let tail = self.guard.push(&(held + &self.citations.finish()));
        tail + &self.guard.finish()
    }

    /// The output repeated the system prompt.
    pub fn echoed(&self) -> bool {
        self.guard.echoed()
    }

    /// The reply was the model's "no answer" marker.
    pub fn declined(&self) -> bool {
        self.decline.declined()
    }

    /// The passages cited, 1-based, in order of first use.
    pub fn cited(&self) -> &[usize] {
        self.citations.cited()
    }
}
