//! Contact details: e-mail addresses outside the bank's domains, and the words that say a
//! number nearby is a phone number.

use super::spans::{regex, Spans};
use super::{Masker, PiiKind};
use regex::Regex;
use std::sync::LazyLock;

pub(super) static PHONE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(phone|mobile|(?-u:\b)mob(?-u:\b)|cell|tel(?-u:\b)|telephone|call|ring|text me|sms|whats ?app|wechat|contact|reach me|landline|(?-u:\b)line(?-u:\b)|fax|message at|voicemail|电话|手机|号码|联系|致电|打给|打我|微信|座机|固话)",
    )
});

/// Whether the 40 characters before a number say it is a phone number.
pub(super) fn phone_context(text: &str, start: usize) -> bool {
    let mut from = start.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    PHONE_WORDS.is_match(&text[from..start])
}

/// An address spelled out so that filters miss it: "karen.fung at netvigator dot com",
/// "x(at)y(dot)com", "xiaohong 艾特 qq 点 com". The name must look like an address's
/// (a digit, a dot, an underscore or five letters), so "meet me at noon" is left alone.
static SPELLED_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?P<name>[a-z0-9][a-z0-9._%+\-]*)\s*(?:\(at\)|\[at\]|\{at\}|(?-u:\b)at(?-u:\b)|艾特|@)\s*[a-z0-9\-]+(?:\s*(?:\(dot\)|\[dot\]|\{dot\}|(?-u:\b)dot(?-u:\b)|点|\.)\s*[a-z0-9\-]+)*\s*(?:\(dot\)|\[dot\]|\{dot\}|(?-u:\b)dot(?-u:\b)|点)\s*(?:com|net|org|edu|gov|info|biz|io|co|hk|cn|uk|us|sg|tw|mo|au|ca|de|fr|jp)(?-u:\b)",
    )
});

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| regex(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"));

impl Masker {
    pub(super) fn find_emails(&self, text: &str, spans: &mut Spans) {
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

    pub(super) fn find_spelled_emails(&self, text: &str, spans: &mut Spans) {
        for c in SPELLED_EMAIL.captures_iter(text) {
            let whole = c.get(0).expect("match");
            let name = &c["name"];
            let looks_like_one = name.bytes().any(|b| b.is_ascii_digit() || b == b'.' || b == b'_') || name.len() >= 5;
            if looks_like_one && !text[..whole.start()].ends_with(|c: char| c.is_ascii_alphanumeric()) {
                spans.add(whole.start(), whole.end(), PiiKind::Email);
            }
        }
    }
}
