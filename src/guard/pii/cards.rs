//! Card details around a card: expiry dates and security codes next to a card number or
//! card words, and card numbers typed in pieces across a sentence.

use super::numbers::reference_before;
use super::spans::{bare_group, luhn_valid, regex, Spans};
use super::PiiKind;
use regex::Regex;
use std::sync::LazyLock;

pub(super) static CARD_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)(?-u:\b)(cards?|visa|master ?card|amex|unionpay|credit|debit|cvv|cvc|cvn)(?-u:\b)|卡")
});

/// Expiry dates: month/year (09/28, 09-28, 2031年4月, 30年08月) near a card, or after an
/// expiry word.
static EXPIRY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:^|[^0-9/\-])((?:0?[1-9]|1[0-2])\s?[/\-]\s?(?:20)?[0-9]{2}|(?:20)?[0-9]{2}年(?:0?[1-9]|1[0-2])月)(?:$|[^0-9/\-])",
    )
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

/// Digit groups that may be parts of a card number typed apart ("4111 1111, then 1111
/// 1111", "begins 62565006; the rest is 5193 7135").
static DIGIT_GROUP: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]{4,16}"));

/// A message short enough, besides its numbers, to be nothing but a card number being
/// typed ("6206 and after that 825054819601 sorry typing on the bus").
fn mostly_digits(text: &str) -> bool {
    text.chars().filter(|c| c.is_alphabetic()).count() <= 40
}

/// A card number split across a sentence: consecutive digit groups, close together, in a
/// message that talks about a card (or says little else), whose digits together pass the
/// Luhn check. Every piece is a secret, so none keeps its digits.
pub(super) fn find_split_cards(text: &str, spans: &mut Spans) {
    if !CARD_WORDS.is_match(text) && !CARD_NUMBER_MENTION.is_match(text) && !mostly_digits(text) {
        return;
    }
    let groups: Vec<(usize, usize)> = DIGIT_GROUP
        .find_iter(text)
        .filter(|m| bare_group(text, m.start(), m.end()) && spans.free_but_phone(m.start(), m.end()))
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut i = 0;
    while i < groups.len() {
        let mut digits = String::new();
        let mut found = None;
        for j in i..groups.len() {
            if j > i {
                // Words between the pieces, and at most a small number ("the last 8 are").
                let gap = &text[groups[j - 1].1..groups[j].0];
                let longest_number = gap
                    .split(|c: char| !c.is_ascii_digit())
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                if gap.chars().count() > 40 || longest_number > 2 {
                    break;
                }
            }
            digits.push_str(&text[groups[j].0..groups[j].1]);
            if digits.len() > 19 {
                break;
            }
            if j > i && digits.len() >= 13 && matches!(digits.as_bytes()[0], b'2'..=b'6') && luhn_valid(&digits) {
                found = Some(j);
            }
        }
        match found {
            Some(j) => {
                for &(s, e) in &groups[i..=j] {
                    spans.add_card_piece(s, e, CARD_PART);
                }
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

/// Words right before the first digits of a card number ("my card number is", "卡号",
/// "Card:", "the first 8 digits").
const CARD_NUMBER_WORDS: &str = r"(?i)(?:card (?:number|no\.?|num|#)|(?-u:\b)card\s*[:：]|number on (?:my|the) card|(?:first|remaining) (?:[0-9]{1,2} )?digits|begins(?: with)?|starts with|卡号|卡號|卡的?前[0-9一二三四五六七八]{1,2}位|前半段|前面是|后半段|后面是|剩下的)";

static CARD_NUMBER_START: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"{CARD_NUMBER_WORDS}(?:\s*(?:is|are|was|=|是|为|:|：))?\s*$")));

/// Words that announce a card number anywhere in a message.
static CARD_NUMBER_MENTION: LazyLock<Regex> = LazyLock::new(|| regex(CARD_NUMBER_WORDS));

/// The 40 bytes before `at`.
fn before(text: &str, at: usize) -> &str {
    let mut from = at.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..at]
}

/// The first digits of a card number, typed before the rest (which may come in the next
/// message): bare groups of 4 to 15 digits in all, right after words that announce a card
/// number. A card's last four digits alone ("ending 4821") are not announced this way.
pub(super) fn find_card_starts(text: &str, spans: &mut Spans) {
    let groups: Vec<(usize, usize)> = DIGIT_GROUP
        .find_iter(text)
        .filter(|m| bare_group(text, m.start(), m.end()) && spans.free_but_phone(m.start(), m.end()))
        .filter(|m| spans.free(m.start(), m.end()) || CARD_NUMBER_START.is_match(before(text, m.start())))
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut i = 0;
    while i < groups.len() {
        let (start, _) = groups[i];
        // Announced, or all there is to a short message ("ok here 4264 6067").
        let announced = CARD_NUMBER_START.is_match(before(text, start));
        let whole_message = i == 0 && text.chars().filter(|c| c.is_alphabetic()).count() <= 12;
        if !(announced || whole_message) {
            i += 1;
            continue;
        }
        // This group and the ones right after it, separated by spaces only.
        let mut j = i;
        while j + 1 < groups.len() && text[groups[j].1..groups[j + 1].0].trim().is_empty() {
            j += 1;
        }
        let digits: usize = groups[i..=j].iter().map(|(s, e)| e - s).sum();
        let card_like = announced
            || (digits >= 8 && matches!(text.as_bytes()[start], b'2'..=b'6') && !reference_before(text, start));
        if (4..=15).contains(&digits) && card_like {
            for &(s, e) in &groups[i..=j] {
                spans.add_card_piece(s, e, CARD_PART);
            }
        }
        i = j + 1;
    }
}

/// The placeholder of a piece of a card number whose other pieces were elsewhere.
pub(super) const CARD_PART: &str = "[CARD]";

/// Whether a masked message ends with a piece of a card number (its last placeholder is a
/// card's and nothing but a few words follow it), so the next message may carry the rest.
pub(super) fn ends_with_card_part(masked: &str) -> bool {
    let Some(at) = masked.rfind("[CARD") else {
        return false;
    };
    let rest = &masked[at..];
    let after = rest.find(']').map_or("", |end| &rest[end + 1..]);
    after.chars().filter(|c| c.is_alphanumeric()).count() <= 24
}

/// The rest of a card number whose first digits ended the previous message: the bare
/// groups of digits at the start of this one, 4 to 12 digits in all.
pub(super) fn find_card_continuation(text: &str, spans: &mut Spans) {
    let groups: Vec<(usize, usize)> = DIGIT_GROUP
        .find_iter(text)
        .filter(|m| bare_group(text, m.start(), m.end()) && spans.free_but_phone(m.start(), m.end()))
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut digits = 0;
    let mut taken = Vec::new();
    for (i, &(s, e)) in groups.iter().enumerate() {
        if i > 0 {
            let gap = &text[groups[i - 1].1..s];
            if gap.chars().count() > 30 {
                break;
            }
        }
        digits += e - s;
        if digits > 15 {
            break;
        }
        taken.push((s, e));
    }
    if (4..=15).contains(&digits) {
        for (s, e) in taken {
            spans.add_card_piece(s, e, CARD_PART);
        }
    }
}
