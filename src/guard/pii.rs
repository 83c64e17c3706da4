//! Masking of personal data in free text, before anything else sees it.
//!
//! What is masked, each into a typed placeholder:
//! - payment card numbers: 13–19 digits passing the Luhn check, with spaces, dashes or dots
//!   between groups, full-width digits, or split into groups across a sentence that talks
//!   about a card → `[CARD ••••1234]` (at most the last four digits are kept);
//! - CVV/CVC codes and expiry dates near card context → `[CVV]`, `[EXPIRY]`;
//! - IBANs (country format and mod-97, via `iban_validate`) → `[IBAN]`;
//! - Hong Kong identity card numbers with a valid check digit → `[HKID]`;
//! - PRC resident identity numbers (ISO 7064 MOD 11-2, plausible birth date) → `[ID NUMBER]`;
//! - phone numbers: international (`+` or `00`), mainland mobiles, and HK or mainland
//!   landlines when the text says it is a phone number → `[PHONE]`;
//! - e-mail addresses → `[EMAIL]`;
//! - passwords, one-time codes and PINs stated in text, in English or Chinese
//!   ("my PIN is 4821", "验证码是 739201") → `[PASSWORD]`, `[OTP]`, `[PIN]`.
//!
//! What is never masked: amounts, dates, rates, digit runs failing their check, and the
//! bank's own published phone numbers and e-mail domains ([`Masker::new`]).

use iban::Iban;
use regex::Regex;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Card,
    Cvv,
    Expiry,
    Iban,
    Hkid,
    PrcId,
    Phone,
    Email,
    Password,
    Otp,
    Pin,
}

impl PiiKind {
    pub const ALL: [PiiKind; 11] = [
        PiiKind::Card,
        PiiKind::Cvv,
        PiiKind::Expiry,
        PiiKind::Iban,
        PiiKind::Hkid,
        PiiKind::PrcId,
        PiiKind::Phone,
        PiiKind::Email,
        PiiKind::Password,
        PiiKind::Otp,
        PiiKind::Pin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Card => "card",
            PiiKind::Cvv => "cvv",
            PiiKind::Expiry => "expiry",
            PiiKind::Iban => "iban",
            PiiKind::Hkid => "hkid",
            PiiKind::PrcId => "prc_id",
            PiiKind::Phone => "phone",
            PiiKind::Email => "email",
            PiiKind::Password => "password",
            PiiKind::Otp => "otp",
            PiiKind::Pin => "pin",
        }
    }

    /// The placeholder that replaces data of this kind (cards keep their last four digits).
    fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Card => "[CARD]",
            PiiKind::Cvv => "[CVV]",
            PiiKind::Expiry => "[EXPIRY]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::Hkid => "[HKID]",
            PiiKind::PrcId => "[ID NUMBER]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Email => "[EMAIL]",
            PiiKind::Password => "[PASSWORD]",
            PiiKind::Otp => "[OTP]",
            PiiKind::Pin => "[PIN]",
        }
    }
}

/// A message after masking, and what was masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    /// Kinds of data found, each once, in order of first appearance.
    pub found: Vec<PiiKind>,
}

/// True when `text` holds a placeholder this module writes (an earlier masked message).
pub fn has_placeholder(text: &str) -> bool {
    text.contains("[CARD ••••")
        || PiiKind::ALL
            .iter()
            .any(|k| *k != PiiKind::Card && text.contains(k.placeholder()))
}

/// Whether `text` holds anything the masker reads in context: digits, an '@', or words
/// that name a secret, a phone, a card or an expiry date. Streamed output holds such a
/// sentence back until it ends, so it is masked as a whole.
pub fn needs_context(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_ascii_digit() || matches!(c, '@' | '+' | '(' | '（' | '＋') || ('\u{FF10}'..='\u{FF19}').contains(&c)
    }) || SECRET_WORDS.is_match(text)
        || PHONE_WORDS.is_match(text)
        || CARD_WORDS.is_match(text)
}

/// Masks personal data; knows which numbers and e-mail domains are the bank's own.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Digits of the bank's published phone numbers (local and international forms).
    published_numbers: HashSet<String>,
    /// E-mail domains of the bank (lower case); addresses there are not personal data.
    bank_domains: Vec<String>,
}

static DEFAULT: LazyLock<Masker> = LazyLock::new(Masker::default);

/// Masks with no knowledge of the bank's published contacts.
pub fn mask(text: &str) -> Masked {
    DEFAULT.mask(text)
}

impl Masker {
    pub fn new(published_numbers: impl IntoIterator<Item = impl AsRef<str>>, bank_domains: &[String]) -> Self {
        let published_numbers = published_numbers
            .into_iter()
            .map(|n| digits_of(n.as_ref()))
            .filter(|d| d.len() >= 6)
            .collect();
        Self {
            published_numbers,
            bank_domains: bank_domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        }
    }

    /// Phone-shaped numbers in the bank's own documents: the bank's published numbers.
    pub fn harvest_numbers<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut numbers = HashSet::new();
        for text in texts {
            for m in DIGIT_RUN.find_iter(text) {
                let digits = digits_of(m.as_str());
                // Phone-shaped: 8–15 digits, not a date such as 2026-01-20.
                if (8..=15).contains(&digits.len()) && !DATE_SHAPE.is_match(m.as_str().trim()) {
                    numbers.insert(m.as_str().trim().to_string());
                }
            }
        }
        let mut numbers: Vec<String> = numbers.into_iter().collect();
        numbers.sort();
        numbers
    }

    pub fn mask(&self, text: &str) -> Masked {
        let (folded, offsets) = fold(text);
        let mut spans = Spans::default();
        // Most messages have no digits and no '@': the detectors that need them are skipped.
        let bytes = folded.as_bytes();
        if bytes.contains(&b'@') {
            self.find_emails(&folded, &mut spans);
        }
        let has_digits = bytes.iter().any(u8::is_ascii_digit);
        if has_digits {
            find_ibans(&folded, &mut spans);
            find_prc_ids(&folded, &mut spans);
            find_hkids(&folded, &mut spans);
            self.find_numbers(&folded, &mut spans);
        }
        find_secrets(&folded, &mut spans);
        if has_digits {
            find_card_details(&folded, &mut spans);
            find_split_cards(&folded, &mut spans);
        }
        if spans.0.is_empty() {
            return Masked {
                text: text.to_string(),
                found: Vec::new(),
            };
        }
        spans.0.sort_by_key(|s| s.start);
        let map = |i: usize| offsets.as_ref().map_or(i, |o| o[i]);
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut found = Vec::new();
        for span in &spans.0 {
            let (start, end) = (map(span.start), map(span.end));
            out.push_str(&text[last..start]);
            out.push_str(&span.replacement);
            last = end;
            if !found.contains(&span.kind) {
                found.push(span.kind);
            }
        }
        out.push_str(&text[last..]);
        Masked { text: out, found }
    }

    fn find_emails(&self, text: &str, spans: &mut Spans) {
        for m in EMAIL.find_iter(text) {
            let domain = m.as_str().rsplit('@').next().unwrap_or("").to_ascii_lowercase();
            let ours = self
                .bank_domains
                .iter()
                .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
            if !ours {
                spans.add(m.start(), m.end(), PiiKind::Email);
            }
        }
    }

    /// The same digits as a published number (an international `00` prefix aside).
    fn is_published(&self, digits: &str) -> bool {
        self.published_numbers.contains(digits)
            || digits
                .strip_prefix("00")
                .is_some_and(|d| self.published_numbers.contains(d))
    }

    /// Card numbers, PRC IDs without a check letter, and phone numbers: all digit runs.
    fn find_numbers(&self, text: &str, spans: &mut Spans) {
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
            // HK: eight digits starting 2, 3 (fixed) or 4–9 (mobile), said to be a phone.
            8 => context && matches!(digits.as_bytes()[0], b'2'..=b'9'),
            11 if digits.starts_with("852") => matches!(digits.as_bytes()[3], b'2'..=b'9'),
            // Mainland landline with area code, said to be a phone.
            10..=12 => context && digits.starts_with('0'),
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Span {
    start: usize,
    end: usize,
    kind: PiiKind,
    replacement: String,
}

/// Accepted spans; a later detector never overlaps an earlier one.
#[derive(Default)]
struct Spans(Vec<Span>);

impl Spans {
    fn free(&self, start: usize, end: usize) -> bool {
        self.0.iter().all(|s| end <= s.start || start >= s.end)
    }

    fn add(&mut self, start: usize, end: usize, kind: PiiKind) -> bool {
        self.add_with(start, end, kind, kind.placeholder().to_string())
    }

    fn add_card(&mut self, start: usize, end: usize, digits: &str) -> bool {
        let last_four = &digits[digits.len() - 4..];
        self.add_with(start, end, PiiKind::Card, format!("[CARD ••••{last_four}]"))
    }

    fn add_with(&mut self, start: usize, end: usize, kind: PiiKind, replacement: String) -> bool {
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
fn fold(text: &str) -> (Cow<'_, str>, Option<Vec<usize>>) {
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
    if !text.chars().any(|c| fold_char(c).is_some()) {
        return (Cow::Borrowed(text), None);
    }
    let mut folded = String::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(text.len() + 1);
    for (i, c) in text.char_indices() {
        let out = fold_char(c).unwrap_or(c);
        for _ in 0..out.len_utf8() {
            offsets.push(i);
        }
        folded.push(out);
    }
    offsets.push(text.len());
    (Cow::Owned(folded), Some(offsets))
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn luhn_valid(digits: &str) -> bool {
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
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The digit groups of a run ("4111 1111-1111" → three groups), as byte ranges.
fn groups_of(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
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

/// Digits with single separators between them (space, dash, dot, or a closing
/// parenthesis as in "(852) 9123 4567").
static DIGIT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(?[0-9](?:[ \-.]?[()]?[ \-.]?[0-9])+").expect("pattern compiles"));

static DATE_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(19|20)[0-9]{2}[-./][0-9]{1,2}[-./][0-9]{1,2}$|^[0-9]{1,2}[-./][0-9]{1,2}[-./](19|20)[0-9]{2}$")
        .expect("pattern compiles")
});

static MAINLAND_MOBILE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^1[3-9][0-9]{9}$").expect("pattern compiles"));

static PHONE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(phone|mobile|(?-u:\b)mob(?-u:\b)|cell|tel(?-u:\b)|telephone|call|ring|text me|sms|whats ?app|wechat|contact|reach me|landline|(?-u:\b)line(?-u:\b)|fax|message at|voicemail|电话|手机|号码|联系|致电|打给|打我|微信|座机|固话)",
    )
    .expect("pattern compiles")
});

/// Whether the 40 characters before a number say it is a phone number.
fn phone_context(text: &str, start: usize) -> bool {
    let mut from = start.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    PHONE_WORDS.is_match(&text[from..start])
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").expect("pattern compiles")
});

static IBAN_CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]){10,30}").expect("pattern compiles"));

fn find_ibans(text: &str, spans: &mut Spans) {
    for m in IBAN_CANDIDATE.find_iter(text) {
        if text[..m.start()]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric())
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
            if compact.parse::<Iban>().is_ok() && standalone(text, m.start(), m.start() + end) {
                spans.add(m.start(), m.start() + end, PiiKind::Iban);
                break;
            }
        }
    }
}

static PRC_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[1-9][0-9]{5}(?:19|20)[0-9]{9}[0-9Xx]").expect("pattern compiles"));

fn prc_id_valid(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = id[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let month = (id[10] - b'0') * 10 + (id[11] - b'0');
    let day = (id[12] - b'0') * 10 + (id[13] - b'0');
    CHECK[(sum % 11) as usize] == id[17].to_ascii_uppercase() && (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn find_prc_ids(text: &str, spans: &mut Spans) {
    for m in PRC_ID.find_iter(text) {
        if standalone(text, m.start(), m.end()) && prc_id_valid(m.as_str().as_bytes()) {
            spans.add(m.start(), m.end(), PiiKind::PrcId);
        }
    }
}

static HKID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)([A-Z]{1,2})([0-9]{6})\s?(?:\(([0-9A])\)|([0-9A]))").expect("pattern compiles"));

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

fn find_hkids(text: &str, spans: &mut Spans) {
    for c in HKID.captures_iter(text) {
        let whole = c.get(0).expect("group 0");
        let check = c.get(3).or(c.get(4)).expect("one check group matches").as_str();
        if standalone(text, whole.start(), whole.end()) && hkid_valid(&c[1], &c[2], check) {
            spans.add(whole.start(), whole.end(), PiiKind::Hkid);
        }
    }
}

/// Words that say a value nearby is a secret, and of which kind.
static SECRET_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?P<cvv>(?-u:\b)(?:cvv2?|cvc2?|cvn|cid|csc|security (?:code|digits|number)|card verification (?:code|value|number)|",
        r"(?:3|three|4|four) (?:numbers|digits) on the back|numbers on the back|digits on the back|signature strip|",
        r"(?:3|three|4|four)[- ]digit (?:code|number))(?-u:\b)|安全码|背面三位数?|背面的三位数?|卡背面?的?(?:三位|3位)数?|(?:背面|背后)[^，。,]{0,6}(?:三|3)(?:个|位)数字?|签名条|CVN码?|CVV码?)",
        r"|(?P<otp>(?-u:\b)(?:otps?|one[- ]?time (?:pass ?(?:word|code)|code|pin)|verification code|auth(?:entication)? code|",
        r"sms code|2fa code|login code|codes?|number that popped up)(?-u:\b)|",
        r"验证码|动态码|动态密码|校验码|短信码|那串数字|一次性密码)",
        r"|(?P<pin>(?-u:\b)(?:pins?|pin code|pin number)(?-u:\b)|numbers i punch in|four numbers i|取款密码|交易密码|支付密码|查询密码|卡密码|六位数?密码|ATM按的?)",
        r"|(?P<password>(?-u:\b)(?:pass ?words?|passcode|pwd|pw|pass|memorable word)(?-u:\b)|登录密码|网银密码|密码|口令)",
    ))
    .expect("pattern compiles")
});

/// A number that may be a code: 3–8 digits standing alone.
static CODE_VALUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]{3,8}").expect("pattern compiles"));

/// What follows a number that makes it a quantity, not a code ("300 seconds", "3 次").
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|times|attempts|tries|digits?|characters|chars|%|分钟|秒|小时|天|次|位|个|年|月|日|元|块)")
        .expect("pattern compiles")
});

/// What comes before a number that makes it an amount or a reference, not a code.
static NOT_A_CODE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(LTD|HVD|HKD|HK\$|US\$|\$|¥|￥|RMB|CNY|USD|EUR|GBP|€|£|ref|reference|order|no\.|#)\s*$")
        .expect("pattern compiles")
});

/// A password: a token with a digit or a symbol, or any word after "is"/"是".
static PASSWORD_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:[^\n.。!！?？]{0,16}?)(?P<gap>\s*(?:is|was|=|:|：|to|是|为|成了?|就是|改成了?|设成了?|设为)\s*|\s+)[`'\x22“‘「]?(?P<value>[A-Za-z0-9!@#$%^&*._~+\-]{4,64})")
        .expect("pattern compiles")
});

/// Words that follow "my password is…" without being a password.
const NOT_A_SECRET: &[&str] = &[
    "wrong",
    "incorrect",
    "correct",
    "right",
    "not",
    "expired",
    "locked",
    "blocked",
    "invalid",
    "very",
    "the",
    "and",
    "but",
    "for",
    "from",
    "with",
    "this",
    "that",
    "your",
    "still",
    "being",
    "been",
    "working",
    "required",
    "needed",
    "sent",
    "received",
    "reset",
    "changed",
    "change",
    "forgotten",
    "forgot",
    "lost",
    "stolen",
    "compromised",
    "leaked",
    "safe",
    "secure",
    "same",
    "different",
    "long",
    "short",
    "weak",
    "strong",
    "case",
    "sensitive",
    "please",
    "help",
    "does",
    "didn",
    "doesn",
    "never",
    "always",
    "only",
    "also",
    "just",
    "again",
    "already",
    "then",
    "what",
    "when",
    "where",
    "which",
    "will",
    "would",
    "should",
    "could",
    "might",
    "must",
    "there",
    "here",
    "valid",
    "used",
    "using",
    "number",
    "numbers",
    "code",
    "codes",
    "word",
    "words",
    "reader",
    "generator",
    "field",
    "screen",
    "page",
    "expiry",
    "expires",
    "doesnt",
    "didnt",
    "cant",
    "wont",
    "asked",
    "asking",
    "gave",
    "given",
    "told",
    "entered",
    "typed",
    "shared",
    "said",
    "says",
    "keeps",
    "shows",
    "showing",
    "appears",
    "digits",
    "characters",
    "letters",
    "twice",
    "once",
    "mine",
    "yours",
    "generated",
    "setting",
    "policy",
    "rules",
    "requirements",
    "limit",
    "limits",
    "attempts",
    "tries",
    "manager",
    "hint",
    "recovery",
    "rejected",
    "accepted",
    "updated",
    "work",
    "works",
    "expire",
    "every",
    "more",
    "less",
    "than",
    "into",
    "over",
    "after",
    "before",
    "about",
    "have",
    "having",
    "into",
    "everything",
];

/// "error code 4021", "promo code 2024": a code that names something other than a secret.
static CODE_QUALIFIER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(error|promo|promotion|discount|referral|sort|swift|bic|branch|bank|postal|post|zip|area|country|product|reference|ref|tracking|voucher|coupon|qr|bar|transaction|merchant|currency|tax|class|status|invitation|invite)\s*$")
        .expect("pattern compiles")
});

fn window(text: &str, from: usize, to: usize) -> (usize, usize) {
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

/// Where sentences end, as (start, end) byte offsets of each break: a CJK stop or a line
/// break, or `.`, `!`, `?`, `;` followed by whitespace or the end of the text (passwords
/// and amounts may contain them).
pub(crate) fn sentence_breaks(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    text.char_indices().filter_map(move |(i, c)| {
        let end = i + c.len_utf8();
        let breaks = matches!(c, '。' | '！' | '？' | '；' | '\n')
            || (matches!(c, '.' | '!' | '?' | ';') && text[end..].chars().next().is_none_or(char::is_whitespace));
        breaks.then_some((i, end))
    })
}

/// Codes (OTP, PIN, CVV) and passwords stated in text: a keyword, and a value within a
/// short stretch of the same sentence after it (or, for codes, just before it: "is 654065
/// too easy as a PIN?").
fn find_secrets(text: &str, spans: &mut Spans) {
    let breaks: Vec<(usize, usize)> = sentence_breaks(text).collect();
    for c in SECRET_WORDS.captures_iter(text) {
        let whole = c.get(0).expect("match");
        let keyword = whole.as_str().to_ascii_lowercase();
        let kind = if c.name("cvv").is_some() {
            PiiKind::Cvv
        } else if c.name("otp").is_some() {
            PiiKind::Otp
        } else if c.name("pin").is_some() {
            PiiKind::Pin
        } else {
            PiiKind::Password
        };
        if kind == PiiKind::Otp && keyword.contains("code") && CODE_QUALIFIER.is_match(&text[..whole.start()]) {
            continue;
        }
        // The rest of the sentence after the keyword (at most ~48 bytes), and before it
        // (at most ~30).
        let (_, window_end) = window(text, whole.end(), whole.end() + 48);
        let after_end = breaks
            .iter()
            .find(|b| b.0 >= whole.end())
            .map_or(window_end, |b| b.0.min(window_end));
        let after = &text[whole.end()..after_end];
        let (window_start, _) = window(text, whole.start().saturating_sub(30), whole.start());
        let before_start = breaks
            .iter()
            .rev()
            .find(|b| b.1 <= whole.start())
            .map_or(window_start, |b| b.1.max(window_start));
        let before = &text[before_start..whole.start()];

        let mut masked_code = false;
        if kind != PiiKind::Password || keyword.contains('密') {
            // "the code 417" next to a card is its security code.
            let near_card = kind == PiiKind::Otp && spans.0.iter().any(|s| s.kind == PiiKind::Card);
            let (kind, digits_range) = match kind {
                PiiKind::Cvv => (kind, 3..=4),
                PiiKind::Otp if near_card => (PiiKind::Cvv, 3..=8),
                _ => (kind, 4..=8),
            };
            let mut candidates: Vec<(usize, usize)> = CODE_VALUE
                .find_iter(after)
                .map(|m| (whole.end() + m.start(), whole.end() + m.end()))
                .collect();
            if kind != PiiKind::Password {
                candidates.extend(
                    CODE_VALUE
                        .find_iter(before)
                        .map(|m| (before_start + m.start(), before_start + m.end())),
                );
            }
            for (start, end) in candidates {
                if digits_range.contains(&(end - start))
                    && bare_group(text, start, end)
                    && !QUANTITY.is_match(&text[end..])
                    && !NOT_A_CODE_BEFORE.is_match(&text[..start])
                    && spans.add(
                        start,
                        end,
                        if keyword.contains('密') && kind == PiiKind::Password {
                            PiiKind::Pin
                        } else {
                            kind
                        },
                    )
                {
                    masked_code = true;
                }
            }
        }
        if kind == PiiKind::Password && !masked_code {
            if let Some(p) = PASSWORD_VALUE.captures(after) {
                let value = p.name("value").expect("value group");
                let v = value.as_str().trim_end_matches(['.', ',']);
                let explicit = !p["gap"].trim().is_empty();
                let word = v.to_ascii_lowercase();
                let has_digit_or_symbol = v.bytes().any(|b| !b.is_ascii_alphabetic());
                let plausible = has_digit_or_symbol || (explicit && !NOT_A_SECRET.contains(&word.as_str()));
                let start = whole.end() + value.start();
                if plausible && standalone(text, start, start + v.len()) {
                    spans.add(start, start + v.len(), PiiKind::Password);
                }
            }
        }
    }
}

static CARD_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(cards?|visa|master ?card|amex|unionpay|credit|debit|cvv|cvc|cvn)(?-u:\b)|卡")
        .expect("pattern compiles")
});

/// Expiry dates: month/year (or 2031年4月) near a card, or after an expiry word.
static EXPIRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9/])((?:0?[1-9]|1[0-2])\s?/\s?(?:20)?[0-9]{2}|20[0-9]{2}年(?:0?[1-9]|1[0-2])月)(?:$|[^0-9/])")
        .expect("pattern compiles")
});

static EXPIRY_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(exp|expiry|expiration|expires?|valid|good (thru|through)|runs out|有效期|到期|截止日期|过期)(?-u:\b)|有效期|到期|截止日期|过期")
        .expect("pattern compiles")
});

/// A month/year right after a masked card ("4111… 09/28 123").
static TRAILING_DETAILS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\s,;/，]{1,4}((?:0[1-9]|1[0-2])\s?/\s?(?:20)?[0-9]{2})(?:[\s,;/，]{1,4}([0-9]{3,4}))?(?-u:\b)")
        .expect("pattern compiles")
});

fn find_card_details(text: &str, spans: &mut Spans) {
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
static DIGIT_GROUP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]{4,6}").expect("pattern compiles"));

/// A digit group that is a whole number on its own, not part of an amount, rate or date.
/// (Punctuation that ends a sentence or a clause may touch it; a thousands separator or
/// decimal point between digits may not.)
fn bare_group(text: &str, start: usize, end: usize) -> bool {
    let mut before = text[..start].chars().rev();
    let prev = before.next();
    let mut after = text[end..].chars();
    let next = after.next();
    let glued = |c: char| c.is_ascii_alphanumeric() || "$¥￥%/:#".contains(c);
    let separator = |c: char| c == ',' || c == '.';
    !prev.is_some_and(|c| glued(c) || (separator(c) && before.next().is_some_and(|d| d.is_ascii_digit())))
        && !next.is_some_and(|c| glued(c) || (separator(c) && after.next().is_some_and(|d| d.is_ascii_digit())))
}

/// A card number split across a sentence: consecutive digit groups, close together, in a
/// message that talks about a card, whose digits together pass the Luhn check.
fn find_split_cards(text: &str, spans: &mut Spans) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(text: &str) -> String {
        mask(text).text
    }

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
            ("card 4111111111111111 123", "card [CARD ••••1111] 123"),
            ("1. 4111 1111 1111 1111", "1. [CARD ••••1111]"),
            ("#1 4539-1488-0343-6467", "#1 [CARD ••••6467]"),
            ("4539148803436467thanks", "[CARD ••••6467]thanks"),
        ] {
            assert_eq!(masked(input), expected, "{input}");
        }
        assert_eq!(mask("4111111111111111").found, [PiiKind::Card]);
    }

    #[test]
    fn a_card_number_split_across_a_sentence_is_masked() {
        let m = masked("my card starts 4111 1111 and then it's 1111 1111");
        assert!(!m.contains("4111 1111"), "{m}");
        assert!(m.contains("[CARD ••••1111]"), "{m}");
    }

    #[test]
    fn card_details_next_to_a_card_are_masked() {
        assert_eq!(
            masked("card 4111 1111 1111 1111 exp 09/28 cvv 123"),
            "card [CARD ••••1111] exp [EXPIRY] cvv [CVV]"
        );
        assert_eq!(masked("4111111111111111 09/28 123"), "[CARD ••••1111] [EXPIRY] [CVV]");
        assert_eq!(
            masked("信用卡有效期 09/27，安全码 456"),
            "信用卡有效期 [EXPIRY]，安全码 [CVV]"
        );
        // A date with no card in sight is a date.
        assert_eq!(masked("the statement expires 09/28"), "the statement expires 09/28");
    }

    #[test]
    fn identity_numbers_with_valid_check_digits_are_masked() {
        assert_eq!(masked("HKID A123456(3)"), "HKID [HKID]");
        assert_eq!(masked("HKID A123456(4)"), "HKID A123456(4)");
        assert_eq!(masked("身份证号11010519491231002X。"), "身份证号[ID NUMBER]。");
        assert_eq!(masked("身份证号110105194912310021"), "身份证号110105194912310021");
        assert_eq!(masked("IBAN GB82 WEST 1234 5698 7654 32 thanks"), "IBAN [IBAN] thanks");
        assert_eq!(
            masked("IBAN GB82 WEST 1234 5698 7654 33"),
            "IBAN GB82 WEST 1234 5698 7654 33"
        );
    }

    #[test]
    fn phones_and_emails_are_masked_but_not_the_banks_own() {
        assert_eq!(masked("call me on +852 9123 4567"), "call me on [PHONE]");
        assert_eq!(masked("我的手机号是13800138000"), "我的手机号是[PHONE]");
        assert_eq!(masked("my mobile is 9123 4567"), "my mobile is [PHONE]");
        assert_eq!(masked("write to jane.doe@mail.example"), "write to [EMAIL]");
        let bank = Masker::new(
            ["0800-520-9110", "+99 20 520 9110"],
            &["lanternbank.example".to_string()],
        );
        let text = "I called 0800-520-9110 and +99 20 520 9110, and wrote to complaints@lanternbank.example";
        assert_eq!(bank.mask(text).text, text);
        assert_eq!(masked("call 400-000-1888"), "call 400-000-1888");
    }

    #[test]
    fn secrets_stated_in_words_are_masked() {
        for (input, expected) in [
            ("my PIN is 4821", "my PIN is [PIN]"),
            ("password: Summer#2024", "password: [PASSWORD]"),
            ("pw is Blue!Moon77 ok", "pw is [PASSWORD] ok"),
            ("the OTP was 552913", "the OTP was [OTP]"),
            ("验证码是 739201", "验证码是 [OTP]"),
            ("我的密码是abc12345", "我的密码是[PASSWORD]"),
            ("my password is sunshine", "my password is [PASSWORD]"),
        ] {
            assert_eq!(masked(input), expected, "{input}");
        }
        for input in [
            "I forgot my PIN",
            "my password is not working",
            "I never got the OTP",
            "验证码一直收不到",
            "what is the code for the branch?",
        ] {
            assert_eq!(masked(input), input);
        }
    }

    #[test]
    fn amounts_dates_and_failing_numbers_are_not_masked() {
        for input in [
            "I paid HVD 12,000.00 on 2026-11-26",
            "reference 1234 5678 9012 3456",
            "call 400-000-1888 or 0800-520-7777",
            "order 20261126000123",
            "rate 3.85% p.a. from 01/12/2026",
            "transaction 91234567 on 26/11/2026",
        ] {
            assert_eq!(masked(input), input);
            assert!(mask(input).found.is_empty());
        }
    }

    #[test]
    fn untouched_text_keeps_its_full_width_characters() {
        assert_eq!(
            masked("２０２６年，卡号４１１１１１１１１１１１１１１１"),
            "２０２６年，卡号[CARD ••••1111]"
        );
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(has_placeholder(&masked("my PIN is 4821")));
        assert!(has_placeholder(&masked("4111111111111111")));
        assert!(!has_placeholder("my PIN is safe"));
    }

    fn luhn_complete(mut digits: Vec<u8>) -> Vec<u8> {
        digits.push(0);
        let check = (0..10).find(|c| {
            *digits.last_mut().unwrap() = *c;
            let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            luhn_valid(&s)
        });
        *digits.last_mut().unwrap() = check.unwrap();
        digits
    }

    proptest! {
        #[test]
        fn valid_card_numbers_never_survive(
            body in proptest::collection::vec(0u8..10, 12..18),
            separator in prop::sample::select(vec!["", " ", "-", ".", "　"]),
            full_width in any::<bool>(),
            group in 3usize..6,
            prefix in "[a-zA-Z 卡号是:]{0,12}",
            suffix in "[a-zA-Z .，。]{0,12}",
        ) {
            let digits = luhn_complete(body);
            let mut number = String::new();
            for (i, d) in digits.iter().enumerate() {
                if i > 0 && i % group == 0 {
                    number.push_str(separator);
                }
                let c = if full_width { char::from_u32(0xFF10 + u32::from(*d)).unwrap() } else { char::from(b'0' + d) };
                number.push(c);
            }
            let text = format!("{prefix} {number} {suffix}");
            let masked = mask(&text).text;
            let plain: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let (folded, _) = fold(&masked);
            let leftover: String = folded.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!leftover.contains(&plain[..plain.len() - 4]), "{text} -> {masked}");
            prop_assert!(masked.contains("[CARD ••••"), "{text} -> {masked}");
        }

        #[test]
        fn masking_never_panics_and_is_idempotent(text in "\\PC{0,80}") {
            let once = mask(&text).text;
            prop_assert_eq!(mask(&once).text, once);
        }
    }
}
