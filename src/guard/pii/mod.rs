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

mod accounts;
mod cards;
mod contact;
mod ids;
mod numbers;
mod secrets;
mod spans;
#[cfg(test)]
mod tests;

use cards::{find_card_details, find_split_cards, CARD_WORDS};
use contact::PHONE_WORDS;
use ids::{find_hkids, find_ibans, find_prc_ids};
use numbers::DIGIT_RUN;
pub(crate) use secrets::sentence_breaks;
use secrets::{find_secrets, SECRET_WORDS};
use serde::Serialize;
use spans::{digits_of, fold, Spans};
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
    /// A bank account number (the customer's or a payee's, at any bank).
    Account,
}

impl PiiKind {
    pub const ALL: [PiiKind; 12] = [
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
        PiiKind::Account,
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
            PiiKind::Account => "account",
        }
    }

    /// The placeholder that replaces data of this kind (cards keep their last four digits).
    pub(super) fn placeholder(self) -> &'static str {
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
            PiiKind::Account => "[ACCOUNT]",
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
        || text.contains("[ACCOUNT ••••")
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
    pub(super) published_numbers: HashSet<String>,
    /// E-mail domains of the bank (lower case); addresses there are not personal data.
    pub(super) bank_domains: Vec<String>,
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
                if (8..=15).contains(&digits.len()) && !numbers::DATE_SHAPE.is_match(m.as_str().trim()) {
                    numbers.insert(m.as_str().trim().to_string());
                }
            }
        }
        let mut numbers: Vec<String> = numbers.into_iter().collect();
        numbers.sort();
        numbers
    }

    /// Masks a message that follows `previous` (the same customer's last message, already
    /// masked) in one conversation: a card number typed across the two messages is masked
    /// in both (see [`cards::find_card_continuation`]).
    pub fn mask_after(&self, text: &str, previous: &str) -> Masked {
        self.mask_with(text, cards::ends_with_card_part(previous))
    }

    pub fn mask(&self, text: &str) -> Masked {
        self.mask_with(text, false)
    }

    fn mask_with(&self, text: &str, continues_card: bool) -> Masked {
        let (folded, offsets) = fold(text);
        let mut spans = Spans::default();
        // Most messages have no digits and no '@': the detectors that need them are skipped.
        let bytes = folded.as_bytes();
        if bytes.contains(&b'@') {
            self.find_emails(&folded, &mut spans);
        }
        self.find_spelled_emails(&folded, &mut spans);
        let has_digits = bytes.iter().any(u8::is_ascii_digit);
        if has_digits {
            find_ibans(&folded, &mut spans);
            find_prc_ids(&folded, &mut spans);
            find_hkids(&folded, &mut spans);
            accounts::find_accounts(&folded, &mut spans);
            self.find_numbers(&folded, &mut spans);
        }
        find_secrets(&folded, &mut spans);
        if has_digits {
            if continues_card {
                cards::find_card_continuation(&folded, &mut spans);
            }
            find_split_cards(&folded, &mut spans);
            cards::find_card_starts(&folded, &mut spans);
            find_card_details(&folded, &mut spans);
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
}
