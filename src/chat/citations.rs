//! Citation markers `[n]` in model output: markers must point at a passage that was given
//! to the model. Unknown ones are removed, also while streaming, so the streamed deltas
//! always add up to the final answer. Known ones are renumbered in order of first use,
//! so `[1]` in the answer is the first entry of the reply's `citations`.

/// Filters a stream of text, dropping `[n]` markers with n outside `1..=passages`.
///
/// Output does not depend on how the text is split into deltas: whitespace and a possible
/// marker are held back until it is clear whether the marker (and the space before it)
/// survives.
#[derive(Debug)]
pub struct CitationFilter {
    passages: usize,
    /// Whitespace not yet released (it is dropped with an invalid marker after it).
    space: String,
    /// A possible marker: `[` followed by digits.
    pending: String,
    cited: Vec<usize>,
}

/// Longest marker held back while deciding: `[` plus three digits plus `]`.
const MAX_MARKER: usize = 5;

impl CitationFilter {
    pub fn new(passages: usize) -> Self {
        Self {
            passages,
            space: String::new(),
            pending: String::new(),
            cited: Vec::new(),
        }
    }

    /// Feeds generated text; returns what can be released now.
    pub fn push(&mut self, text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            if self.pending.is_empty() {
                if c == '[' {
                    self.pending.push(c);
                } else if c.is_whitespace() {
                    self.space.push(c);
                } else {
                    out.push_str(&std::mem::take(&mut self.space));
                    out.push(c);
                }
                continue;
            }
            self.pending.push(c);
            if c == ']' {
                let digits = &self.pending[1..self.pending.len() - 1];
                match digits.parse::<usize>() {
                    Ok(n) if (1..=self.passages).contains(&n) => {
                        let position = match self.cited.iter().position(|c| *c == n) {
                            Some(p) => p,
                            None => {
                                self.cited.push(n);
                                self.cited.len() - 1
                            }
                        };
                        out.push_str(&std::mem::take(&mut self.space));
                        out.push_str(&format!("[{}]", position + 1));
                    }
                    // An invented citation: drop it, and the space before it.
                    Ok(_) => self.space.clear(),
                    Err(_) => {
                        out.push_str(&std::mem::take(&mut self.space));
                        out.push_str(&self.pending);
                    }
                }
                self.pending.clear();
            } else if !c.is_ascii_digit() || self.pending.len() > MAX_MARKER {
                // Not a marker (e.g. "[see below]"): release as text, but a new `[` may
                // start the next marker.
                out.push_str(&std::mem::take(&mut self.space));
                let pending = std::mem::take(&mut self.pending);
                if c == '[' {
                    out.push_str(&pending[..pending.len() - 1]);
                    self.pending.push('[');
                } else if c.is_whitespace() {
                    out.push_str(&pending[..pending.len() - c.len_utf8()]);
                    self.space.push(c);
                } else {
                    out.push_str(&pending);
                }
            }
        }
        out
    }

    /// Releases anything still held back at the end of the stream.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.space);
        out.push_str(&std::mem::take(&mut self.pending));
        out
    }

    /// Passage numbers (1-based, as given to the model) cited so far, in order of first
    /// use: the answer's `[m]` refers to `cited()[m - 1]`.
    pub fn cited(&self) -> &[usize] {
        &self.cited
    }
}

/// Filters a complete text in one go.
pub fn filter_citations(text: &str, passages: usize) -> (String, Vec<usize>) {
    let mut filter = CitationFilter::new(passages);
    let mut out = filter.push(text);
    out.push_str(&filter.finish());
    (out, filter.cited().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_citations_are_removed_and_known_ones_kept() {
        let (text, cited) = filter_citations("Fee is LTD 5 [2]. Limit is 10 [7]. See [note] and [1][2].", 2);
        assert_eq!(text, "Fee is LTD 5 [1]. Limit is 10. See [note] and [2][1].");
        assert_eq!(cited, [2, 1]);
    }

    #[test]
    fn streaming_in_any_split_gives_the_same_text() {
        let input = "A [1] b [9] c [2x] d [[2] e [12345] f [";
        let (whole, _) = filter_citations(input, 3);
        for split in 0..input.len() {
            if !input.is_char_boundary(split) {
                continue;
            }
            let mut f = CitationFilter::new(3);
            let mut out = f.push(&input[..split]);
            out.push_str(&f.push(&input[split..]));
            out.push_str(&f.finish());
            assert_eq!(out, whole, "split at {split}");
        }
        assert_eq!(whole, "A [1] b c [2x] d [[2] e [12345] f [");
        let (renumbered, cited) = filter_citations("x [3] y [3] z [1]", 3);
        assert_eq!((renumbered.as_str(), cited), ("x [1] y [1] z [2]", vec![3, 1]));
    }
}
