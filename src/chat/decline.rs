//! The model's "I don't know". The system prompt asks the model to reply with nothing but
//! [`NO_ANSWER`] when the passages do not answer the question; the pipeline turns that
//! reply into the same refusal the answer policy gives (the bank's wording, a colleague
//! offered, `mode: "refusal"`), so a decline is recorded and queued for staff as one,
//! rather than as a generated answer that happens to say it knows nothing.

/// What the model replies, and only that, when the passages hold no answer.
pub const NO_ANSWER: &str = "NO_ANSWER";

/// Holds back the start of a streamed reply until it is clear whether it is the marker:
/// a customer never sees "NO_ANS" flash by. Held text is released as soon as it cannot
/// be the marker, which for an ordinary answer is its first token.
#[derive(Debug, Default)]
pub struct DeclineFilter {
    held: String,
    decided: Option<Verdict>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Answers,
    Declines,
}

impl DeclineFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a delta; returns the text that may go on to the customer (empty while the
    /// start is undecided, and for good once the reply is the marker).
    pub fn push(&mut self, delta: &str) -> String {
        match self.decided {
            Some(Verdict::Answers) => delta.to_string(),
            Some(Verdict::Declines) => String::new(),
            None => {
                self.held.push_str(delta);
                let start = self.held.trim_start();
                if start.starts_with(NO_ANSWER) {
                    self.decided = Some(Verdict::Declines);
                    self.held.clear();
                    String::new()
                } else if NO_ANSWER.starts_with(start) {
                    String::new()
                } else {
                    self.decided = Some(Verdict::Answers);
                    std::mem::take(&mut self.held)
                }
            }
        }
    }

    /// The reply ended: whatever was held back, unless it was the marker. Held text is
    /// only ever blank or the start of the marker, so when the reply broke off
    /// (`completed` false) it is dropped rather than shown as a fragment.
    pub fn finish(&mut self, completed: bool) -> String {
        if self.declined() {
            return String::new();
        }
        self.decided = Some(Verdict::Answers);
        let held = std::mem::take(&mut self.held);
        if completed {
            held
        } else {
            String::new()
        }
    }

    /// The reply opened with the marker.
    pub fn declined(&self) -> bool {
        self.decided == Some(Verdict::Declines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(deltas: &[&str]) -> (String, bool) {
        let mut filter = DeclineFilter::new();
        let mut out: String = deltas.iter().map(|d| filter.push(d)).collect();
        out.push_str(&filter.finish(true));
        (out, filter.declined())
    }

    #[test]
    fn the_marker_split_across_deltas_is_a_decline_and_never_shown() {
        assert_eq!(run(&["NO", "_ANS", "WER"]), (String::new(), true));
        assert_eq!(run(&[" \nNO_ANSWER", " [1]"]), (String::new(), true));
    }

    #[test]
    fn an_answer_passes_through_whole_and_in_order() {
        assert_eq!(
            run(&["The fee", " is LTD 480 [1]."]),
            ("The fee is LTD 480 [1].".into(), false)
        );
        // Text that starts like the marker is released once it departs from it...
        assert_eq!(run(&["NO", " fee applies [1]."]), ("NO fee applies [1].".into(), false));
        // ...or when the reply ends on it.
        assert_eq!(run(&["NO"]), ("NO".into(), false));
        assert_eq!(run(&[]), (String::new(), false));
    }

    #[test]
    fn the_start_of_the_marker_is_not_shown_when_the_reply_breaks_off() {
        let mut filter = DeclineFilter::new();
        assert_eq!(filter.push("NO_"), "");
        assert_eq!(filter.finish(false), "");
        assert!(!filter.declined());
    }

    #[test]
    fn once_answering_the_marker_later_on_is_just_text() {
        let mut filter = DeclineFilter::new();
        assert_eq!(filter.push("Yes."), "Yes.");
        assert_eq!(filter.push(" NO_ANSWER"), " NO_ANSWER");
        assert!(!filter.declined());
    }
}
