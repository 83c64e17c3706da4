//! Identity and account numbers with check digits: IBAN (mod-97), PRC resident ID
//! (ISO 7064 MOD 11-2), Hong Kong identity card.

use super::spans::{regex, standalone, Spans};
use super::PiiKind;
use iban::Iban;
use regex::Regex;
use std::sync::LazyLock;

static IBAN_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]){10,30}"));

pub(super) fn find_ibans(text: &str, spans: &mut Spans) {
    for m in IBAN_CANDIDATE.find_iter(text) {
        // Glued to a word it is a code ("REFDE74…"), unless the word is "IBAN".
        let before = &text[..m.start()];
        if before.chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric())
            && !before.to_ascii_uppercase().ends_with("IBAN")
        {
            continue;
        }
        // The candidate may run into a following word ("GB82 WEST ... 32 please"): try
        // the longest prefix that validates.
        let raw = m.as_str();
        let mut ends: Vec<usize> = raw
            .char_indices()
            .filter(|(_, c)| *c == ' ' || *c == '-')
            .map(|(i, _)| i)
            .collect();
        ends.push(raw.len());
        for end in ends.into_iter().rev() {
            let compact: String = raw[..end]
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase();
            let after = text[m.start() + end..].chars().next();
            if compact.parse::<Iban>().is_ok() && !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                spans.add(m.start(), m.start() + end, PiiKind::Iban);
                break;
            }
        }
    }
}

/// Eighteen characters, written whole or in groups ("110105 19761008 450X", "310104 1965
/// 1201 0714").
static PRC_ID: LazyLock<Regex> =
    LazyLock::new(|| regex(r"[1-9][0-9]{5}[ \-]?(?:19|20)[0-9]{2}[ \-]?[0-9]{4}[ \-]?[0-9]{3}[0-9Xx]"));

fn prc_id_valid(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = id[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let month = (id[10] - b'0') * 10 + (id[11] - b'0');
    let day = (id[12] - b'0') * 10 + (id[13] - b'0');
    CHECK[(sum % 11) as usize] == id[17].to_ascii_uppercase() && (1..=12).contains(&month) && (1..=31).contains(&day)
}

pub(super) fn find_prc_ids(text: &str, spans: &mut Spans) {
    for m in PRC_ID.find_iter(text) {
        let compact: Vec<u8> = m.as_str().bytes().filter(|b| !matches!(b, b' ' | b'-')).collect();
        if standalone(text, m.start(), m.end()) && compact.len() == 18 && prc_id_valid(&compact) {
            spans.add(m.start(), m.end(), PiiKind::PrcId);
        }
    }
}

/// Letters, six digits (whole or as three and three) and the check digit, bracketed or not:
/// "A123456(3)", "V 104 730 (2)".
static HKID: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)([A-Z]{1,2})\s?([0-9]{3})\s?([0-9]{3})\s?(?:\(([0-9A])\)|([0-9A]))"));

fn hkid_valid(letters: &str, digits: &str, check: &str) -> bool {
    let value = |c: u8| u32::from(c.to_ascii_uppercase() - b'A') + 10;
    let l = letters.as_bytes();
    let mut sum = if l.len() == 2 {
        value(l[0]) * 9 + value(l[1]) * 8
    } else {
        36 * 9 + value(l[0]) * 8
    };
    for (d, w) in digits.bytes().zip((2..=7).rev()) {
        sum += u32::from(d - b'0') * w;
    }
    let check = match check.as_bytes()[0] {
        b'A' | b'a' => 10,
        d => u32::from(d - b'0'),
    };
    (sum + check).is_multiple_of(11)
}

pub(super) fn find_hkids(text: &str, spans: &mut Spans) {
    for c in HKID.captures_iter(text) {
        let whole = c.get(0).expect("group 0");
        let check = c.get(4).or(c.get(5)).expect("one check group matches").as_str();
        let digits = format!("{}{}", &c[2], &c[3]);
        // Letters set apart from the digits must be capitals ("Y 723 416 (1)"): "is 465…"
        // is a word and a number.
        let spaced = text[c.get(1).expect("letters").end()..].starts_with(char::is_whitespace);
        let capitals = c[1].bytes().all(|b| b.is_ascii_uppercase());
        if standalone(text, whole.start(), whole.end()) && (!spaced || capitals) && hkid_valid(&c[1], &digits, check) {
            spans.add(whole.start(), whole.end(), PiiKind::Hkid);
        }
    }
}
