//! Card details around a card: expiry dates and security codes next to a card number or
//! card words, and card numbers typed in pieces across a sentence.

use super::spans::{bare_group, luhn_valid, regex, Spans};
use super::PiiKind;
use regex::Regex;
use std::sync::LazyLock;

pub(super) static CARD_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)(?-u:\b)(cards?|visa|master ?card|amex|unionpay|credit|debit|cvv|cvc|cvn)(?-u:\b)|卡")
});

/// Expiry dates: month/year (or 2031年4月) near a card, or after an expiry word.
static EXPIRY: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?:^|[^0-9/])((?:0?[1-9]|1[0-2])\s?/\s?(?:20)?[0-9]{2}|20[0-9]{2}年(?:0?[1-9]|1[0-2])月)(?:$|[^0-9/])")
});

static EXPIRY_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?-u:\b)(exp|expiry|expiration|expires?|valid|good (thru|through)|runs out|有效期|到期|截止日期|过期)(?-u:\b)|有效期|到期|截止日期|过期",
    )
});

/// A month/year right after a masked card ("4111… 09/28 123").
static TRAILING_DETAILS: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^[\s,;/，]{1,4}((?:0[1-9]|1[0-2])\s?/\s?(?:20)?[0-9]{2})(?:[\s,;/，]{1,4}([0-9]{3,4}))?(?-u:\b)")
});

pub(super) fn find_card_details(text: &str, spans: &mut Spans) {
    // Card context: a card number, or card or expiry words, within 48 bytes.
    let mut anchors: Vec<(usize, usize)> = spans
        .0
        .iter()
        .filter(|s| s.kind == PiiKind::Card)
        .map(|s| (s.start, s.end))
        .collect();
    anchors.extend(CARD_WORDS.find_iter(text).map(|m| (m.start(), m.end())));
    if !anchors.is_empty() {
        anchors.extend(EXPIRY_WORDS.find_iter(text).map(|m| (m.start(), m.end())));
    }
    for c in EXPIRY.captures_iter(text) {
        let date = c.get(1).expect("date group");
        let near = anchors
            .iter()
            .any(|&(s, e)| date.start() < e + 48 && s < date.end() + 48);
        if near {
            spans.add(date.start(), date.end(), PiiKind::Expiry);
        }
    }
    let card_ends: Vec<usize> = spans
        .0
        .iter()
        .filter(|s| s.kind == PiiKind::Card)
        .map(|s| s.end)
        .collect();
    for end in card_ends {
        if let Some(c) = TRAILING_DETAILS.captures(&text[end..]) {
            let date = c.get(1).expect("date group");
            spans.add(end + date.start(), end + date.end(), PiiKind::Expiry);
            if let Some(code) = c.get(2) {
                spans.add(end + code.start(), end + code.end(), PiiKind::Cvv);
            }
        }
    }
}

/// Short digit groups: parts of a card number typed apart ("4111 1111, then 1111 1111").
static DIGIT_GROUP: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]{4,6}"));

/// A card number split across a sentence: consecutive digit groups, close together, in a
/// message that talks about a card, whose digits together pass the Luhn check.
pub(super) fn find_split_cards(text: &str, spans: &mut Spans) {
    if !CARD_WORDS.is_match(text) {
        return;
    }
    let groups: Vec<(usize, usize)> = DIGIT_GROUP
        .find_iter(text)
        .filter(|m| bare_group(text, m.start(), m.end()) && spans.free(m.start(), m.end()))
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut i = 0;
    while i < groups.len() {
        let mut digits = String::new();
        let mut found = None;
        for j in i..groups.len() {
            if j > i {
                let gap = &text[groups[j - 1].1..groups[j].0];
                if gap.chars().count() > 30 || gap.bytes().any(|b| b.is_ascii_digit()) {
                    break;
                }
            }
            digits.push_str(&text[groups[j].0..groups[j].1]);
            if digits.len() > 19 {
                break;
            }
            if j > i && digits.len() >= 13 && matches!(digits.as_bytes()[0], b'2'..=b'6') && luhn_valid(&digits) {
                found = Some((j, digits.clone()));
            }
        }
        match found {
            Some((j, digits)) => {
                let last = &digits[digits.len() - 4..];
                for (n, &(s, e)) in groups[i..=j].iter().enumerate() {
                    let replacement = if n == j - i {
                        format!("[CARD ••••{last}]")
                    } else {
                        "[CARD]".to_string()
                    };
                    spans.add_with(s, e, PiiKind::Card, replacement);
                }
                i = j + 1;
            }
            None => i += 1,
        }
    }
}
