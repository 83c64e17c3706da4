//! Digit runs: card numbers (Luhn) and the phone numbers among what is left.

use super::contact::phone_context;
use super::spans::{digits_of, groups_of, luhn_valid, regex, standalone, Spans};
use super::{Masker, PiiKind};
use regex::Regex;
use std::sync::LazyLock;

/// Digits with single separators between them (space, dash, dot, or a closing
/// parenthesis as in "(852) 9123 4567").
pub(super) static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| regex(r"\(?[0-9](?:[ \-.]?[()]?[ \-.]?[0-9])+"));

pub(super) static DATE_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^(19|20)[0-9]{2}[-./][0-9]{1,2}[-./][0-9]{1,2}$|^[0-9]{1,2}[-./][0-9]{1,2}[-./](19|20)[0-9]{2}$")
});

pub(super) static MAINLAND_MOBILE: LazyLock<Regex> = LazyLock::new(|| regex(r"^1[3-9][0-9]{9}$"));

impl Masker {
    /// The same digits as a published number (an international `00` prefix aside).
    fn is_published(&self, digits: &str) -> bool {
        self.published_numbers.contains(digits)
            || digits
                .strip_prefix("00")
                .is_some_and(|d| self.published_numbers.contains(d))
    }

    /// Card numbers, PRC IDs without a check letter, and phone numbers: all digit runs.
    pub(super) fn find_numbers(&self, text: &str, spans: &mut Spans) {
        for m in DIGIT_RUN.find_iter(text) {
            // A card number with a word glued after it ("4539…6467thanks") is still a
            // card; digits glued after letters are a code ("DE74 9465…", "REF123…"); a
            // phone number must stand alone.
            if text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue;
            }
            let alone = standalone(text, m.start(), m.end());
            let groups = groups_of(text, m.start(), m.end());
            self.classify_groups(text, &groups, alone, spans);
        }
    }

    /// Finds a card number at the start of a run (the longest prefix of its groups that
    /// passes, so "4111 1111 1111 1111 123" masks the card and keeps "123"); the groups
    /// left over are one number that may be a phone number. A card is never looked for
    /// in the middle of a longer number: a reference whose tail happens to pass the Luhn
    /// check is not a card.
    fn classify_groups(&self, text: &str, groups: &[(usize, usize)], alone: bool, spans: &mut Spans) {
        let mut rest_from = 0;
        let mut i = 0;
        while i < groups.len() {
            let mut matched = None;
            let mut digits = 0;
            for j in i..groups.len() {
                digits += groups[j].1 - groups[j].0;
                if digits > 19 {
                    break;
                }
                if digits >= 13 {
                    let number = digits_of(&text[groups[i].0..groups[j].1]);
                    if luhn_valid(&number) {
                        matched = Some((j, number));
                    }
                }
            }
            match matched {
                Some((j, number)) => {
                    if alone {
                        self.classify_rest(text, &groups[rest_from..i], spans);
                    }
                    spans.add_card(groups[i].0, groups[j].1, &number);
                    i = j + 1;
                    rest_from = i;
                }
                // A card may follow a list marker or other short number ("1. 4111 …"),
                // but never starts inside a longer one.
                None if groups[i].1 - groups[i].0 <= 3 => i += 1,
                None => break,
            }
        }
        if alone {
            self.classify_rest(text, &groups[rest_from..], spans);
        }
    }

    fn classify_rest(&self, text: &str, groups: &[(usize, usize)], spans: &mut Spans) {
        let (Some(first), Some(last)) = (groups.first(), groups.last()) else {
            return;
        };
        let (start, end) = (first.0, last.1);
        let start = if start > 0 && text.as_bytes()[start - 1] == b'+' {
            start - 1
        } else {
            start
        };
        if self.is_phone(text, start, end) {
            spans.add(start, end, PiiKind::Phone);
        }
    }

    fn is_phone(&self, text: &str, start: usize, end: usize) -> bool {
        let raw = &text[start..end];
        let digits = digits_of(raw);
        if self.is_published(&digits) {
            return false;
        }
        let international = raw.starts_with('+') || (digits.starts_with("00") && digits.len() >= 10);
        if international {
            return (8..=15).contains(&digits.len());
        }
        // Bank and service lines (400, 800, 0800, 1800 prefixes) are never personal.
        if ["400", "800", "0800", "1800"].iter().any(|p| digits.starts_with(p)) {
            return false;
        }
        let context = phone_context(text, start);
        match digits.len() {
            // Mainland mobile: 1[3-9] and eleven digits; with the 86 country code.
            11 if MAINLAND_MOBILE.is_match(&digits) => true,
            13 if digits.starts_with("86") && MAINLAND_MOBILE.is_match(&digits[2..]) => true,
            // HK: eight digits starting 2, 3 (fixed) or 4–9 (mobile), said to be a phone,
            // or written as a phone number is (four and four: "9123 4567", "6376-5102")
            // and starting as a mobile does, where nothing says it is a reference.
            8 => {
                let first = digits.as_bytes()[0];
                (context && (b'2'..=b'9').contains(&first))
                    || (hk_shaped(raw) && matches!(first, b'5' | b'6' | b'9') && !reference_before(text, start))
            }
            11 if digits.starts_with("852") => matches!(digits.as_bytes()[3], b'2'..=b'9'),
            // Mainland landline with area code, said to be a phone.
            10..=12 => context && digits.starts_with('0'),
            _ => false,
        }
    }
}

/// Four digits, one space or dash, four digits: how Hong Kong numbers are written.
fn hk_shaped(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() == 9 && matches!(b[4], b' ' | b'-') && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
}

/// Words just before a number that make it a reference, an order or an amount.
static REFERENCE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(ref|reference|order|invoice|tracking|booking|receipt|policy|case|ticket|member|room|flight|no\.|#|LTD|HKD|HK\$|US\$|\$|RMB|¥|￥|单号|订单|编号|参考号|金额)(?:\s+(?:number|no\.?|code|id))?\W{0,3}$",
    )
});

/// Whether the words just before `start` make a number a reference, an order or an amount.
pub(super) fn reference_before(text: &str, start: usize) -> bool {
    let mut from = start.saturating_sub(24);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    REFERENCE_BEFORE.is_match(&text[from..start])
}
