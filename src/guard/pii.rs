//! Masking of personal data in free text. Payment card numbers: 13–19 digits that pass
//! the Luhn check, written with spaces, dashes or dots between groups, or with full-width
//! digits, become `[CARD ••••1234]` (at most the last four digits are kept). Digit runs
//! that fail the check — amounts, dates, reference numbers — are left alone.

use regex::Regex;
use std::sync::LazyLock;

/// A message after masking, and what was masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    /// Kinds of data found, e.g. `["card"]`, for the record and the reminder to the customer.
    pub found: Vec<&'static str>,
}

/// Digits, optionally separated by single spaces, dashes or dots: candidates for a card
/// number. Bounded so a long number is examined as a whole, not as a card inside it.
static CARD_CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^0-9])((?:[0-9][ \-.]?){12,22}[0-9])").expect("pattern compiles"));

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
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

/// Masks card numbers in `text`. Full-width digits, dashes and spaces are folded first,
/// so "４１１１…" is caught like "4111…".
pub fn mask(text: &str) -> Masked {
    // Only the digits are folded: NFKC would also turn Chinese punctuation into ASCII.
    let folded: String = text
        .chars()
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' => char::from(b'0' + (c as u32 - 0xFF10) as u8),
            '\u{FF0D}' => '-',
            '\u{3000}' => ' ',
            other => other,
        })
        .collect();
    let mut out = String::with_capacity(folded.len());
    let mut last = 0;
    let mut found = Vec::new();
    for capture in CARD_CANDIDATE.captures_iter(&folded) {
        let m = capture.get(1).expect("group 1 always matches");
        let digits: Vec<u8> = m
            .as_str()
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        if !(13..=19).contains(&digits.len()) || !luhn_valid(&digits) {
            continue;
        }
        let last_four: String = digits[digits.len() - 4..]
            .iter()
            .map(|d| char::from(b'0' + d))
            .collect();
        out.push_str(&folded[last..m.start()]);
        out.push_str(&format!("[CARD ••••{last_four}]"));
        last = m.end();
        if !found.contains(&"card") {
            found.push("card");
        }
    }
    out.push_str(&folded[last..]);
    Masked { text: out, found }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn card_numbers_are_masked_in_any_common_format() {
        for (input, expected) in [
            ("my card is 4111 1111 1111 1111 ok", "my card is [CARD ••••1111] ok"),
            ("4111-1111-1111-1111", "[CARD ••••1111]"),
            (
                "卡号４１１１１１１１１１１１１１１１，谢谢",
                "卡号[CARD ••••1111]，谢谢",
            ),
            ("amex 3782 822463 10005.", "amex [CARD ••••0005]."),
            ("5555.5555.5555.4444", "[CARD ••••4444]"),
        ] {
            assert_eq!(mask(input).text, expected, "{input}");
        }
        assert_eq!(mask("4111111111111111").found, ["card"]);
    }

    #[test]
    fn amounts_dates_and_failing_numbers_are_not_masked() {
        for input in [
            "I paid HVD 12,000.00 on 2026-11-26",
            "reference 1234 5678 9012 3456",
            "call 400-000-1888 or 0800-520-7777",
            "order 20261126000123",
        ] {
            assert_eq!(mask(input).text, input);
            assert!(mask(input).found.is_empty());
        }
    }

    fn luhn_complete(mut digits: Vec<u8>) -> Vec<u8> {
        digits.push(0);
        let check = (0..10).find(|c| {
            *digits.last_mut().unwrap() = *c;
            luhn_valid(&digits)
        });
        *digits.last_mut().unwrap() = check.unwrap();
        digits
    }

    proptest! {
        #[test]
        fn valid_card_numbers_never_survive(
            body in proptest::collection::vec(0u8..10, 12..18),
            separator in prop::sample::select(vec!["", " ", "-", "."]),
            group in 3usize..6,
            prefix in "[a-zA-Z ]{0,12}",
            suffix in "[a-zA-Z .]{0,12}",
        ) {
            let digits = luhn_complete(body);
            let mut number = String::new();
            for (i, d) in digits.iter().enumerate() {
                if i > 0 && i % group == 0 {
                    number.push_str(separator);
                }
                number.push(char::from(b'0' + d));
            }
            let text = format!("{prefix} {number} {suffix}");
            let masked = mask(&text).text;
            let plain: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let leftover: String = masked.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!leftover.contains(&plain[..plain.len() - 4]), "{text} -> {masked}");
            prop_assert!(masked.contains("[CARD ••••"), "{text} -> {masked}");
        }
    }
}
