//! Secrets stated in words: passwords, one-time codes, PINs and card security codes
//! ("my PIN is 4821", "验证码是 739201").

use super::spans::{bare_group, regex, standalone, window, Spans};
use super::PiiKind;
use regex::Regex;
use std::sync::LazyLock;

/// Words that say a value nearby is a secret, and of which kind.
pub(super) static SECRET_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"(?i)(?P<cvv>(?-u:\b)(?:cvv2?|cvc2?|cvn|cid|csc|security (?:code|digits|number)|card verification (?:code|value|number)|",
        r"(?:3|three|4|four) (?:numbers|digits) on (?:the )?back|numbers on (?:the )?back|digits on (?:the )?back|signature strip|",
        r"(?:3|three|4|four)[- ]digit (?:code|number))(?-u:\b)|安全码|背面三位数?|背面的三位数?|卡背面?的?(?:三位|3位)数?|(?:背面|背后)[^，。,]{0,6}(?:三|3)(?:个|位)数字?|签名条|CVN码?|CVV码?)",
        r"|(?P<otp>(?-u:\b)(?:otps?|one[- ]?time (?:pass ?(?:word|code)|code|pin)|verification code|auth(?:entication)? code|",
        r"sms code|2fa code|login code|codes?|number that popped up)(?-u:\b)|",
        r"验证码|动态码|动态密码|校验码|短信码|那串数字|一次性密码)",
        r"|(?P<pin>(?-u:\b)(?:pins?|pin code|pin number)(?-u:\b)|numbers i punch in|four numbers i|取款密码|交易密码|支付密码|查询密码|卡密码|六位数?密码|ATM按的?)",
        r"|(?P<password>(?-u:\b)(?:pass ?words?|passcode|pwd|pw|pass|memorable word)(?-u:\b)|登录密码|网银密码|密码|口令)",
    ))
});

/// A number that may be a code: 3–8 digits standing alone, also typed in groups or digit
/// by digit ("482 913", "4 8 2 9 1 3").
static CODE_VALUE: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9](?: ?[0-9]){2,7}"));

/// A password typed straight after a Chinese keyword ("密码Mandy4ever73*").
static GLUED_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[`'\x22“‘「]?(?P<value>[A-Za-z0-9!@#$%^&*._~+\-]{4,64})"));

/// A password said before its keyword ("I typed Maple3110% as password").
static PASSWORD_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)(?P<value>[A-Za-z0-9!@#$%^&*._~+\-]{4,64})\s+(?:as|was)\s+(?:my\s+|the\s+|a\s+|new\s+)*$")
});

/// What follows a number that makes it a quantity, not a code ("300 seconds", "3 次").
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|times|attempts|tries|digits?|characters|chars|%|分钟|秒|小时|天|次|位|个|年|月|日|元|块)",
    )
});

/// What comes before a number that makes it an amount or a reference, not a code.
static NOT_A_CODE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)(LTD|HVD|HKD|HK\$|US\$|\$|¥|￥|RMB|CNY|USD|EUR|GBP|€|£|ref|reference|order|no\.|#)\s*$")
});

/// A possible password: a token after a connecting word ("is", "was", "是"…) or a space.
static PASSWORD_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?P<gap>\s*(?:is|was|=|:|：|to|是|为|成了?|就是|改成了?|设成了?|设为)\s*|\s+)[`'\x22“‘「]?(?P<value>[A-Za-z0-9!@#$%^&*._~+\-]{4,64})",
    )
});

/// How far after its keyword a password with a digit or a symbol may start ("the password
/// I set on June 12 was …"), and a plain word (only "my password is sunflower").
const PASSWORD_REACH: usize = 28;
const WORD_PASSWORD_REACH: usize = 16;

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
    regex(
        r"(?i)(?-u:\b)(error|promo|promotion|discount|referral|sort|swift|bic|branch|bank|postal|post|zip|area|country|product|reference|ref|tracking|voucher|coupon|qr|bar|transaction|merchant|currency|tax|class|status|invitation|invite)\s*$",
    )
});

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
pub(super) fn find_secrets(text: &str, spans: &mut Spans) {
    let breaks: Vec<(usize, usize)> = sentence_breaks(text).collect();
    let keywords: Vec<regex::Captures> = SECRET_WORDS.captures_iter(text).collect();
    for (n, c) in keywords.iter().enumerate() {
        let whole = c.get(0).expect("match");
        // A keyword's values run up to the next keyword ("密码abc123，验证码482913").
        let next_keyword = keywords
            .get(n + 1)
            .map_or(text.len(), |k| k.get(0).expect("match").start());
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
            .map_or(window_end, |b| b.0.min(window_end))
            .min(next_keyword);
        let after = &text[whole.end()..after_end];
        let (window_start, _) = window(text, whole.start().saturating_sub(30), whole.start());
        let before_start = breaks
            .iter()
            .rev()
            .find(|b| b.1 <= whole.start())
            .map_or(window_start, |b| b.1.max(window_start));
        let before = &text[before_start..whole.start()];

        let masked_code = (kind != PiiKind::Password || keyword.contains('密'))
            && mask_codes(
                text,
                kind,
                &keyword,
                (whole.end(), after),
                (before_start, before),
                spans,
            );
        if kind == PiiKind::Password && !masked_code {
            mask_password(text, whole.end(), after, !keyword.is_ascii(), spans);
            if let Some(p) = PASSWORD_BEFORE.captures(before) {
                let value = p.name("value").expect("value group");
                let start = before_start + value.start();
                if value.as_str().bytes().any(|b| !b.is_ascii_alphabetic())
                    && standalone(text, start, start + value.len())
                {
                    spans.add(start, start + value.len(), PiiKind::Password);
                }
            }
        }
    }
}

/// Codes (3–8 digits standing alone) in the stretch after a keyword, or for codes other
/// than passwords also before it; true when any was masked.
fn mask_codes(
    text: &str,
    kind: PiiKind,
    keyword: &str,
    (after_start, after): (usize, &str),
    (before_start, before): (usize, &str),
    spans: &mut Spans,
) -> bool {
    // "the code 417" next to a card is its security code.
    let near_card = kind == PiiKind::Otp && spans.0.iter().any(|s| s.kind == PiiKind::Card);
    let (kind, digits_range) = match kind {
        PiiKind::Cvv => (kind, 3..=4),
        PiiKind::Otp if near_card => (PiiKind::Cvv, 3..=8),
        _ => (kind, 4..=8),
    };
    let mut candidates = code_candidates(after, after_start);
    if kind != PiiKind::Password {
        candidates.extend(code_candidates(before, before_start));
    }
    // A "密码" with digits is a PIN.
    let masked_as = if keyword.contains('密') && kind == PiiKind::Password {
        PiiKind::Pin
    } else {
        kind
    };
    let mut masked = false;
    for (start, end) in candidates {
        let digits = text[start..end].bytes().filter(u8::is_ascii_digit).count();
        if digits_range.contains(&digits)
            && bare_group(text, start, end)
            && !dash_joined(text, start, end)
            && !QUANTITY.is_match(&text[end..])
            && !NOT_A_CODE_BEFORE.is_match(&text[..start])
            && spans.add(start, end, masked_as)
        {
            masked = true;
        }
    }
    masked
}

/// The codes a stretch of text may hold, as byte ranges of `text` (`offset` is where the
/// stretch starts): each number typed in groups as a whole, when its groups are alike
/// (all single digits, or all of two or more: "4 8 2 9 1 3", "482 913" — "123 0" is a code
/// and a stray digit), then every run of digits on its own.
fn code_candidates(stretch: &str, offset: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for m in CODE_VALUE.find_iter(stretch) {
        let groups: Vec<usize> = m.as_str().split(' ').map(str::len).collect();
        let alike = groups.iter().all(|&g| g == 1) || groups.iter().all(|&g| g >= 2);
        if groups.len() > 1 && alike {
            out.push((offset + m.start(), offset + m.end()));
        }
        let mut at = m.start();
        for g in m.as_str().split(' ') {
            if g.len() >= 3 {
                out.push((offset + at, offset + at + g.len()));
            }
            at += g.len() + 1;
        }
    }
    out
}

/// A number joined to others by dashes: part of a phone number or a reference.
fn dash_joined(text: &str, start: usize, end: usize) -> bool {
    let before = &text.as_bytes()[..start];
    let after = &text.as_bytes()[end..];
    (before.len() >= 2 && before[before.len() - 1] == b'-' && before[before.len() - 2].is_ascii_digit())
        || (after.len() >= 2 && after[0] == b'-' && after[1].is_ascii_digit())
}

/// A password stated after its keyword: a token with a digit or a symbol, or any word
/// after "is"/"是" that is not an everyday word; straight after a Chinese keyword
/// (`glued_allowed`), one with a digit or a symbol.
fn mask_password(text: &str, after_start: usize, after: &str, glued_allowed: bool, spans: &mut Spans) {
    let plausible = |value: &str, explicit: bool| {
        let word = value.to_ascii_lowercase();
        value.bytes().any(|b| !b.is_ascii_alphabetic()) || (explicit && !NOT_A_SECRET.contains(&word.as_str()))
    };
    let glued = GLUED_PASSWORD
        .captures(after)
        .filter(|_| glued_allowed)
        .and_then(|p| p.name("value"))
        .map(|v| (v, false));
    let spaced = PASSWORD_VALUE
        .captures_iter(after)
        .take_while(|p| p.get(0).is_some_and(|m| m.start() <= PASSWORD_REACH))
        .filter_map(|p| {
            let explicit = !p["gap"].trim().is_empty() && p.get(0)?.start() <= WORD_PASSWORD_REACH;
            Some((p.name("value")?, explicit))
        });
    for (value, explicit) in glued.into_iter().chain(spaced) {
        let v = value.as_str().trim_end_matches(['.', ',', ';']);
        let start = after_start + value.start();
        if plausible(v, explicit) && standalone(text, start, start + v.len()) {
            spans.add(start, start + v.len(), PiiKind::Password);
            return;
        }
    }
}
