//! Bank account numbers: 9–16 digits, with or without dashes and spaces, that the message
//! calls an account ("account", "a/c", "acct", "账号", "账户", "收款账号"), the customer's
//! own or a payee's at any bank. They carry no check digit, so the word is what tells.

use super::spans::{digits_of, luhn_valid, regex, Spans};
use super::PiiKind;
use regex::Regex;
use std::sync::LazyLock;

/// Words that say an account number follows.
static ACCOUNT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?-u:\b)(?:account|acct|acc|a/c)(?-u:\b)(?:\s*(?:no\.?|number|num|#))?|账号|账户|帳號|帳戶|户口|戶口|账户号码|帐号|帐户",
    )
});

/// A number of digits with single spaces or dashes between groups.
static GROUPED_NUMBER: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9](?:[ \-]?[0-9])+"));

/// How far after the word a number may start (bytes; "account at Harbour Trust is …").
const REACH: usize = 40;

pub(super) fn find_accounts(text: &str, spans: &mut Spans) {
    for word in ACCOUNT_WORDS.find_iter(text) {
        // Numbers that start within reach, not across a sentence end.
        let rest = &text[word.end()..];
        let sentence = rest.split(['。', '!', '?', '\n']).next().unwrap_or(rest);
        for m in GROUPED_NUMBER.find_iter(sentence).take_while(|m| m.start() <= REACH) {
            let (start, stop) = (word.end() + m.start(), word.end() + m.end());
            let digits = digits_of(m.as_str());
            let glued = text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphabetic())
                || text[stop..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
            // A card number is the card detector's (and more sensitive).
            let card = (13..=19).contains(&digits.len()) && luhn_valid(&digits);
            if (9..=16).contains(&digits.len()) && !glued && !card && spans.free(start, stop) {
                let last_four = &digits[digits.len() - 4..];
                spans.add_with(start, stop, PiiKind::Account, format!("[ACCOUNT ••••{last_four}]"));
            }
        }
    }
}
