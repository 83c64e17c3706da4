//! The spans a message's detectors claim, and the text helpers they share: folding
//! full-width characters, digit runs and groups, the Luhn check.

use super::PiiKind;
use regex::Regex;
use std::borrow::Cow;

/// A compiled pattern; every pattern here is a literal, checked by the tests.
pub(super) fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("pattern compiles")
}

#[derive(Debug)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: PiiKind,
    pub(super) replacement: String,
}

/// Accepted spans; a later detector never overlaps an earlier one.
#[derive(Default)]
pub(super) struct Spans(pub(super) Vec<Span>);

impl Spans {
    /// Free, or taken only by a phone number (which a card piece may claim).
    pub(super) fn free_but_phone(&self, start: usize, end: usize) -> bool {
        self.0
            .iter()
            .all(|s| s.kind == PiiKind::Phone || end <= s.start || start >= s.end)
    }

    pub(super) fn free(&self, start: usize, end: usize) -> bool {
        self.0.iter().all(|s| end <= s.start || start >= s.end)
    }

    pub(super) fn add(&mut self, start: usize, end: usize, kind: PiiKind) -> bool {
        self.add_with(start, end, kind, kind.placeholder().to_string())
    }

    pub(super) fn add_card(&mut self, start: usize, end: usize, digits: &str) -> bool {
        let last_four = &digits[digits.len() - 4..];
        self.add_with(start, end, PiiKind::Card, format!("[CARD ••••{last_four}]"))
    }

    /// Claims a span for a card piece even where a phone number was read (a piece of a card
    /// is written like a Hong Kong number: "6299 1282").
    pub(super) fn add_card_piece(&mut self, start: usize, end: usize, replacement: &str) -> bool {
        self.0
            .retain(|s| !(s.kind == PiiKind::Phone && start < s.end && s.start < end));
        self.add_with(start, end, PiiKind::Card, replacement.to_string())
    }

    pub(super) fn add_with(&mut self, start: usize, end: usize, kind: PiiKind, replacement: String) -> bool {
        if start >= end || !self.free(start, end) {
            return false;
        }
        self.0.push(Span {
            start,
            end,
            kind,
            replacement,
        });
        true
    }
}

/// Folds full-width digits, Latin letters and the symbols that appear in numbers and
/// addresses to ASCII (Chinese punctuation is left alone), and maps folded byte offsets
/// back to the original text when anything changed.
pub(super) fn fold(text: &str) -> (Cow<'_, str>, Option<Vec<usize>>) {
    let fold_char = |c: char| match c {
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            char::from_u32(c as u32 - 0xFEE0)
        }
        '\u{FF0B}' | '\u{FF0D}' | '\u{FF0E}' | '\u{FF20}' | '\u{FF08}' | '\u{FF09}' => {
            char::from_u32(c as u32 - 0xFEE0)
        }
        '\u{3000}' => Some(' '),
        _ => None,
    };
    let numerals = chinese_digit_runs(text);
    if numerals.is_empty() && !text.chars().any(|c| fold_char(c).is_some()) {
        return (Cow::Borrowed(text), None);
    }
    let mut folded = String::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(text.len() + 1);
    for (i, c) in text.char_indices() {
        let digit = numerals
            .iter()
            .any(|r| r.contains(&i))
            .then(|| chinese_digit(c))
            .flatten();
        let out = digit.or_else(|| fold_char(c)).unwrap_or(c);
        for _ in 0..out.len_utf8() {
            offsets.push(i);
        }
        folded.push(out);
    }
    offsets.push(text.len());
    (Cow::Owned(folded), Some(offsets))
}

/// A Chinese numeral read as a digit ("四一八零" is how a card number is read out).
fn chinese_digit(c: char) -> Option<char> {
    let digit = "零一二三四五六七八九"
        .chars()
        .position(|d| d == c)
        .or((c == '〇').then_some(0))?;
    char::from_digit(digit as u32, 10)
}

/// Byte ranges of runs of four or more Chinese numerals: digits read out one by one, not
/// words such as 一下 or 三个.
fn chinese_digit_runs(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (chinese_digit(c).is_some(), start) {
            (true, None) => start = Some((i, 1)),
            (true, Some((s, n))) => start = Some((s, n + 1)),
            (false, Some((s, n))) => {
                if n >= 4 {
                    runs.push(s..i);
                }
                start = None;
            }
            (false, None) => {}
        }
    }
    runs
}

pub(super) fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

pub(super) fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.bytes().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// A match is a whole token: not glued to ASCII letters or digits on either side (Chinese
/// text has no spaces, so Han characters around a number are fine).
pub(super) fn standalone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The digit groups of a run ("4111 1111-1111" → three groups), as byte ranges.
pub(super) fn groups_of(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut groups = Vec::new();
    let mut i = start;
    while i < end {
        if bytes[i].is_ascii_digit() {
            let s = i;
            while i < end && bytes[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((s, i));
        } else {
            i += 1;
        }
    }
    groups
}

/// A digit group that is a whole number on its own, not part of an amount, rate or date.
/// (Punctuation that ends a sentence or a clause may touch it; a thousands separator or
/// decimal point between digits may not.)
pub(super) fn bare_group(text: &str, start: usize, end: usize) -> bool {
    let mut before = text[..start].chars().rev();
    let prev = before.next();
    let mut after = text[end..].chars();
    let next = after.next();
    let glued = |c: char| c.is_ascii_alphanumeric() || "$¥￥%/:#".contains(c);
    let separator = |c: char| c == ',' || c == '.';
    !prev.is_some_and(|c| glued(c) || (separator(c) && before.next().is_some_and(|d| d.is_ascii_digit())))
        && !next.is_some_and(|c| glued(c) || (separator(c) && after.next().is_some_and(|d| d.is_ascii_digit())))
}

/// The byte range [from, to) widened to character boundaries.
pub(super) fn window(text: &str, from: usize, to: usize) -> (usize, usize) {
    let mut from = from.min(text.len());
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = to.min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    (from, to)
}
