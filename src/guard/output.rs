//! Sanitising of model output, also while it streams: plain text with limited Markdown,
//! no HTML, scripts or Markdown images, links only to allow-listed domains, personal data
//! masked, and detection of a reply that repeats the system prompt.
//!
//! Streaming works by holding text back until it is safe to judge: an unclosed tag or
//! link, a URL or a number still being written, and the last few words (which might be
//! the start of a repeated system prompt) wait for the next delta.

use super::pii::Masker;
use regex::{Captures, Regex};
use std::collections::{HashSet, VecDeque};
use std::sync::LazyLock;

/// Words (or Han characters) in a row that count as repeating the system prompt.
const ECHO_SHINGLE: usize = 10;

/// Text that replaces a link to a domain that is not allow-listed.
pub const LINK_REMOVED: &str = "[link removed]";

/// What model output may contain.
#[derive(Debug, Clone, Default)]
pub struct OutputPolicy {
    /// Domains links may point to (a subdomain of one counts), lower case.
    allowed_domains: Vec<String>,
    /// Hashes of every run of [`ECHO_SHINGLE`] tokens of the system prompts.
    system_shingles: HashSet<u64>,
}

impl OutputPolicy {
    pub fn new<'a>(allowed_domains: &[String], system_prompts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut system_shingles = HashSet::new();
        for prompt in system_prompts {
            let tokens: Vec<u64> = tokens(prompt).map(|(_, t)| t).collect();
            for window in tokens.windows(ECHO_SHINGLE) {
                system_shingles.insert(shingle_hash(window));
            }
        }
        Self {
            allowed_domains: allowed_domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect(),
            system_shingles,
        }
    }

    fn link_allowed(&self, url: &str) -> bool {
        let lower = url.to_ascii_lowercase();
        // Browsers read a backslash as a slash: "https://evil.example\.bank.example/".
        if lower.contains('\\') || lower.contains("%5c") || lower.chars().any(char::is_control) {
            return false;
        }
        let rest = if let Some(r) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) {
            r
        } else if lower.starts_with("www.") {
            lower.as_str()
        } else {
            return false;
        };
        let host = rest
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("");
        self.allowed_domains
            .iter()
            .any(|d| host == d || host.ends_with(&format!(".{d}")))
    }

    /// Sanitises a complete piece of text (see the module docs).
    pub fn sanitise(&self, masker: &Masker, text: &str) -> String {
        let no_html = HTML.replace_all(text, "");
        let no_html = UNCLOSED_TAG.replace(&no_html, "");
        let linked = LINKS.replace_all(&no_html, |c: &Captures| {
            if c.name("image").is_some() {
                String::new()
            } else if let (Some(label), Some(url)) = (c.name("label"), c.name("url")) {
                if self.link_allowed(url.as_str()) {
                    c[0].to_string()
                } else {
                    label.as_str().to_string()
                }
            } else {
                let url = &c[0];
                // Sentence punctuation after a URL is not part of it.
                let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?']);
                let tail = &url[trimmed.len()..];
                if self.link_allowed(trimmed) {
                    url.to_string()
                } else {
                    format!("{LINK_REMOVED}{tail}")
                }
            }
        });
        masker.mask(&linked).text
    }

    /// A filter for one streamed reply.
    pub fn stream<'a>(&'a self, masker: &'a Masker) -> OutputFilter<'a> {
        OutputFilter {
            policy: self,
            masker,
            received: String::new(),
            released: 0,
            scanned: 0,
            window: VecDeque::with_capacity(ECHO_SHINGLE),
            echoed: false,
        }
    }
}

/// Comments, scripts and styles with their content, then any other tag.
/// HTML element names: a `<` followed by anything else ("transfers <HKD 50,000") is text.
const TAGS: &str = "a|abbr|area|audio|b|base|blockquote|body|br|button|canvas|code|div|em|embed|font|form|frame|frameset|h[1-6]|head|hr|html|i|iframe|img|input|label|li|link|marquee|meta|object|ol|option|p|param|pre|s|script|select|small|source|span|strong|style|sub|sup|svg|table|tbody|td|textarea|th|thead|title|tr|u|ul|video|xml";

static HTML: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?is)<!--.*?-->|<script(?-u:\b).*?</script\s*>|<style(?-u:\b).*?</style\s*>|</?(?:{TAGS})(?-u:\b)[^>]*>"
    ))
    .expect("pattern compiles")
});

static TAG_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"(?i)^</?(?:{TAGS})(?-u:\b)|^<!--")).expect("pattern compiles"));

/// A tag, comment or script left open at the end of the reply: dropped with what follows.
static UNCLOSED_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?is)(<!--|<script(?-u:\b)|<style(?-u:\b)|</?(?:{TAGS})(?-u:\b)[^>]*$).*$"
    ))
    .expect("pattern compiles")
});

static LINKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<image>!\[[^\]\n]*\]\([^)\n]*\))",
        r"|\[(?P<label>[^\]\n]+)\]\((?P<url>[^)\s]+)[^)\n]*\)",
        r"|(?i:(?:https?://|www\.|javascript:|data:)[^\s<>()\[\]]+)",
    ))
    .expect("pattern compiles")
});

fn is_han(c: char) -> bool {
    crate::lang::is_han(c)
}

/// Tokens for the echo check: lower-cased ASCII words and single Han characters, with the
/// byte offset where each starts.
fn tokens(text: &str) -> impl Iterator<Item = (usize, u64)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || loop {
        let (start, c) = chars.next()?;
        if is_han(c) {
            return Some((start, u64::from(c)));
        }
        if c.is_alphanumeric() {
            let mut h: u64 = 0xcbf29ce484222325;
            let mut push = |c: char| {
                for l in c.to_lowercase() {
                    h = (h ^ u64::from(l)).wrapping_mul(0x100000001b3);
                }
            };
            push(c);
            while let Some(&(_, n)) = chars.peek() {
                if n.is_alphanumeric() && !is_han(n) {
                    push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            return Some((start, h));
        }
    })
}

fn shingle_hash(window: &[u64]) -> u64 {
    window.iter().fold(0x84222325cbf29ce4, |h, t| {
        (h ^ t).wrapping_mul(0x100000001b3).rotate_left(5)
    })
}

/// Sanitises one streamed reply; see [`OutputPolicy::stream`].
pub struct OutputFilter<'a> {
    policy: &'a OutputPolicy,
    masker: &'a Masker,
    received: String,
    /// Bytes of `received` already released.
    released: usize,
    /// Bytes of `received` already split into tokens.
    scanned: usize,
    /// The latest tokens: (start offset, hash).
    window: VecDeque<(usize, u64)>,
    echoed: bool,
}

impl OutputFilter<'_> {
    /// Takes the next piece of model output and returns the text that is safe to show.
    /// Returns nothing more once the output was found repeating the system prompt.
    pub fn push(&mut self, delta: &str) -> String {
        if self.echoed {
            return String::new();
        }
        self.received.push_str(delta);
        self.scan(false);
        if self.echoed {
            return String::new();
        }
        self.release(self.safe_end())
    }

    /// Releases whatever is still held back at the end of the reply.
    pub fn finish(&mut self) -> String {
        if self.echoed {
            return String::new();
        }
        self.scan(true);
        if self.echoed {
            return String::new();
        }
        self.release(self.received.len())
    }

    /// True when the output repeated a run of the system prompt.
    pub fn echoed(&self) -> bool {
        self.echoed
    }

    /// Splits newly received text into tokens (the last one only when `all`, since it may
    /// continue in the next delta) and checks each new window against the system prompt.
    fn scan(&mut self, all: bool) {
        let text = &self.received[self.scanned..];
        // A token is complete once something that cannot continue it follows.
        let complete = if all {
            text.len()
        } else {
            text.char_indices()
                .rev()
                .find(|(_, c)| !c.is_alphanumeric() || is_han(*c))
                .map_or(0, |(i, c)| i + c.len_utf8())
        };
        let base = self.scanned;
        for (start, hash) in tokens(&self.received[base..base + complete]) {
            if self.window.len() == ECHO_SHINGLE {
                self.window.pop_front();
            }
            self.window.push_back((base + start, hash));
            if self.window.len() == ECHO_SHINGLE {
                let hashes: Vec<u64> = self.window.iter().map(|(_, h)| *h).collect();
                if self.policy.system_shingles.contains(&shingle_hash(&hashes)) {
                    self.echoed = true;
                    return;
                }
            }
        }
        self.scanned = base + complete;
    }

    /// How far the text can be released: before the last tokens that could still start a
    /// repeat of the system prompt, an unfinished token, and any open tag, link or number.
    fn safe_end(&self) -> usize {
        let held_tokens = self.window.len().saturating_sub(1).min(ECHO_SHINGLE - 1);
        let mut end = if held_tokens == 0 {
            self.scanned
        } else {
            self.window[self.window.len() - held_tokens].0
        };
        end = end.min(self.scanned);
        let pending = &self.received[self.released..end];
        let open = [
            pending.rfind('<'),
            // An image starts one character earlier, at its `!`.
            pending
                .rfind('[')
                .map(|i| if pending[..i].ends_with('!') { i - 1 } else { i }),
            // A URL is released whole, once whitespace ends it.
            find_last_url_start(pending),
        ];
        for start in open.into_iter().flatten() {
            if !closed(&pending[start..]) {
                end = end.min(self.released + start);
            }
        }
        // Personal data is recognised by its context within a sentence ("my PIN is 4821",
        // "call me on 9123 4567"): a sentence with digits or such words is released whole.
        // The sentence the cut falls in is judged whole, with what has arrived of it so
        // far (including the words held back).
        let tail = &self.received[self.released..];
        let cut = end.saturating_sub(self.released);
        // A break at the very end of what has arrived may not be one yet ("3." then "5%").
        let breaks: Vec<(usize, usize)> = super::pii::sentence_breaks(tail).filter(|b| b.1 < tail.len()).collect();
        let start = breaks.iter().rev().find(|b| b.1 <= cut).map_or(0, |b| b.1);
        let stop = breaks.iter().find(|b| b.0 >= cut).map_or(tail.len(), |b| b.1);
        if super::pii::needs_context(&tail[start..stop]) {
            end = end.min(self.released + start);
        }
        end.max(self.released)
    }

    fn release(&mut self, end: usize) -> String {
        if end <= self.released {
            return String::new();
        }
        let piece = &self.received[self.released..end];
        self.released = end;
        self.policy.sanitise(self.masker, piece)
    }
}

fn find_last_url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://", "www."]
        .iter()
        .filter_map(|p| lower.rfind(p))
        .max()
        .filter(|start| !text[*start..].contains(char::is_whitespace))
}

/// Whether a construct that starts the text is complete: a tag closed by `>`, a Markdown
/// link that is not waiting for its `(url)`.
fn closed(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("<script") || lower.starts_with("<style") || lower.starts_with("<!--") {
        return lower.contains("</script") && lower.ends_with('>')
            || lower.contains("</style") && lower.ends_with('>')
            || lower.starts_with("<!--") && lower.contains("-->");
    }
    if let Some(rest) = text.strip_prefix('<') {
        // Not a tag ("<HKD 50,000"), or a tag that is complete. A short tail may still
        // become a tag name ("<scr"), so it waits.
        let may_become_tag = rest.len() < 12 && !rest.contains(char::is_whitespace);
        return !rest.is_empty() && (rest.contains('>') || (!TAG_START.is_match(text) && !may_become_tag));
    }
    let text = text.strip_prefix('!').filter(|t| t.starts_with('[')).unwrap_or(text);
    if text.starts_with('[') {
        let Some(close) = text.find(']') else {
            return text.contains('\n');
        };
        let after = &text[close + 1..];
        if after.is_empty() {
            return false;
        }
        if after.starts_with('(') {
            return after.contains(')');
        }
        return true;
    }
    // A URL with nothing after it yet.
    text.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutputPolicy {
        OutputPolicy::new(
            &["lanternbank.example".to_string()],
            ["You are Lantern Bank's virtual assistant. Answer only from the numbered passages and cite them."],
        )
    }

    fn clean(text: &str) -> String {
        policy().sanitise(&Masker::default(), text)
    }

    #[test]
    fn html_scripts_and_images_are_removed() {
        assert_eq!(clean("Hi <b>there</b><script>alert(1)</script>!"), "Hi there!");
        assert_eq!(clean("a <!-- hidden --> b"), "a  b");
        assert_eq!(
            clean("see ![logo](https://lanternbank.example/x.png) here"),
            "see  here"
        );
        assert_eq!(clean("ok <img src=x onerror=alert(1)>"), "ok ");
        assert_eq!(clean("amounts < 500 and 3<4 stay"), "amounts < 500 and 3<4 stay");
    }

    #[test]
    fn only_allow_listed_links_survive() {
        assert_eq!(
            clean("Apply at [our site](https://www.lanternbank.example/apply)."),
            "Apply at [our site](https://www.lanternbank.example/apply)."
        );
        assert_eq!(clean("Go to [this](https://evil.example/login) now"), "Go to this now");
        assert_eq!(clean("Visit https://evil.example/x."), format!("Visit {LINK_REMOVED}."));
        assert_eq!(
            clean("Visit https://online.lanternbank.example."),
            "Visit https://online.lanternbank.example."
        );
        assert_eq!(clean("[x](javascript:alert(1))"), "x)");
        assert_eq!(
            clean("fake https://lanternbank.example.evil.example/"),
            format!("fake {LINK_REMOVED}")
        );
    }

    #[test]
    fn lookalike_links_and_lone_angle_brackets() {
        assert_eq!(
            clean("x https://evil.example\\.lanternbank.example/login y"),
            format!("x {LINK_REMOVED} y")
        );
        assert_eq!(
            clean("Transfers <HKD 50,000 are free. Larger ones cost more."),
            "Transfers <HKD 50,000 are free. Larger ones cost more."
        );
    }

    #[test]
    fn card_numbers_in_output_are_masked() {
        assert_eq!(
            clean("Your card 4111 1111 1111 1111 is"),
            "Your card [CARD ••••1111] is"
        );
    }

    fn stream(pieces: &[&str]) -> (String, bool) {
        let policy = policy();
        let masker = Masker::default();
        let mut filter = policy.stream(&masker);
        let mut out = String::new();
        for p in pieces {
            out.push_str(&filter.push(p));
        }
        out.push_str(&filter.finish());
        (out, filter.echoed())
    }

    #[test]
    fn streamed_output_matches_the_whole_text_sanitised() {
        let text = "Call us. <b>Bold</b> and [a link](https://evil.example/p) plus 4111 1111 1111 1111 done, https://lanternbank.example/x ok [1].";
        let whole = clean(text);
        for size in [1, 2, 3, 5, 8, 13] {
            let pieces: Vec<String> = text
                .chars()
                .collect::<Vec<_>>()
                .chunks(size)
                .map(|c| c.iter().collect())
                .collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (out, echoed) = stream(&refs);
            assert_eq!(out, whole, "piece size {size}");
            assert!(!echoed);
        }
    }

    #[test]
    fn streaming_masks_exactly_what_masking_the_whole_reply_masks() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/guard/pii.jsonl");
        let items = std::fs::read_to_string(path).unwrap();
        let policy = policy();
        let masker = Masker::default();
        for line in items.lines() {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = format!("Noted: {} Anything else?", item["text"].as_str().unwrap());
            let whole = policy.sanitise(&masker, &text);
            let words: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
            let chars: Vec<String> = text.chars().map(String::from).collect();
            for pieces in [&words, &chars] {
                let mut filter = policy.stream(&masker);
                let mut out: String = pieces.iter().map(|p| filter.push(p)).collect();
                out.push_str(&filter.finish());
                assert_eq!(out, whole, "{text}");
            }
        }
    }

    #[test]
    fn repeating_the_system_prompt_is_detected_before_it_is_shown() {
        let (out, echoed) = stream(&[
            "Sure. My instructions: you are Lantern Bank's virtual ",
            "assistant. Answer only from the numbered passages and cite them.",
        ]);
        assert!(echoed);
        assert!(!out.contains("virtual assistant. Answer only"), "{out}");
        let (_, echoed) = stream(&["The virtual assistant answers from passages."]);
        assert!(!echoed);
    }
}
