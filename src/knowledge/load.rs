//! Loaders for the knowledge-base formats: FAQ YAML lists, Markdown with YAML front
//! matter, HTML (visible text only) and plain text.
//!
//! A malformed file becomes a [`LoadError`] naming the file and the problem; the other
//! files still load, so one bad edit never empties the index.

use super::clean::{clean_text, one_line};
use crate::lang::Lang;
use scraper::{ElementRef, Html, Node};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// What kind of item a source is; FAQ entries can be served verbatim as approved answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Faq,
    Document,
}

/// One citable item of the knowledge base: an FAQ entry or a whole document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub id: String,
    pub kind: SourceKind,
    pub title: String,
    pub lang: Lang,
    pub product: Option<String>,
    pub effective_date: Option<String>,
    pub tags: Vec<String>,
    /// Path relative to the knowledge-base folder.
    pub origin: PathBuf,
    pub content: Content,
}

/// The text of a source, already cleaned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Content {
    Faq {
        question: String,
        answer: String,
        /// Compliance-approved answers may be served verbatim.
        approved: bool,
    },
    /// Sections split at `##` headings (or `<h2>` in HTML); text before the first heading
    /// is a section without a heading.
    Sections(Vec<Section>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    pub heading: Option<String>,
    pub text: String,
}

impl Source {
    /// All of the source's text (question and answer, or every section), for checks
    /// that read documents whole.
    pub fn plain_text(&self) -> String {
        match &self.content {
            Content::Faq { question, answer, .. } => format!("{question}\n{answer}"),
            Content::Sections(sections) => sections
                .iter()
                .map(|s| match &s.heading {
                    Some(h) => format!("{h}\n{}", s.text),
                    None => s.text.clone(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// SHA-256 over everything that affects the indexed chunks: a changed answer, title,
    /// tag or date changes the hash, a touched-but-identical file does not.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("sources serialise");
        hex::encode(Sha256::digest(&canonical))
    }
}

/// A file that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for LoadError {}

/// Everything found under a knowledge-base folder.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub sources: Vec<Source>,
    pub errors: Vec<LoadError>,
}

/// Loads every supported file under `dir` (sorted, so ids and order are reproducible).
/// Unsupported extensions and dot-files are ignored; README files are documentation.
pub fn load_dir(dir: &Path) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(dir.is_dir(), "knowledge base folder {} does not exist", dir.display());
    let mut report = LoadReport::default();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let walker = WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                report.errors.push(LoadError {
                    path: err.path().unwrap_or(dir).to_path_buf(),
                    message: err.to_string(),
                });
                continue;
            }
        };
        if !entry.file_type().is_file() || is_readme(entry.path()) {
            continue;
        }
        let path = entry.path();
        let relative = path.strip_prefix(dir).unwrap_or(path).to_path_buf();
        let Some(format) = Format::of(path) else {
            continue;
        };
        let loaded = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read file: {e}"))
            .and_then(|raw| format.parse(&raw, &relative));
        match loaded {
            Ok(sources) => {
                for source in sources {
                    if let Some(first) = seen.get(&source.id) {
                        report.errors.push(LoadError {
                            path: path.to_path_buf(),
                            message: format!("duplicate id {:?} (already defined in {})", source.id, first.display()),
                        });
                        continue;
                    }
                    seen.insert(source.id.clone(), path.to_path_buf());
                    report.sources.push(source);
                }
            }
            Err(message) => report.errors.push(LoadError {
                path: path.to_path_buf(),
                message,
            }),
        }
    }
    Ok(report)
}

fn is_readme(path: &Path) -> bool {
    path.file_stem()
        .is_some_and(|s| s.to_string_lossy().eq_ignore_ascii_case("readme"))
}

#[derive(Debug, Clone, Copy)]
enum Format {
    FaqYaml,
    Markdown,
    Html,
    Text,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::FaqYaml),
            "md" | "markdown" => Some(Format::Markdown),
            "html" | "htm" => Some(Format::Html),
            "txt" => Some(Format::Text),
            _ => None,
        }
    }

    fn parse(self, raw: &str, relative: &Path) -> Result<Vec<Source>, String> {
        match self {
            Format::FaqYaml => parse_faq_yaml(raw, relative),
            Format::Markdown => parse_markdown(raw, relative).map(|s| vec![s]),
            Format::Html => parse_html(raw, relative).map(|s| vec![s]),
            Format::Text => parse_text(raw, relative).map(|s| vec![s]),
        }
    }
}

#[derive(Deserialize)]
struct FaqEntry {
    id: String,
    lang: String,
    question: String,
    answer: String,
    product: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "approved_by_default")]
    approved: bool,
    effective_date: Option<String>,
}

fn approved_by_default() -> bool {
    true
}

fn parse_faq_yaml(raw: &str, relative: &Path) -> Result<Vec<Source>, String> {
    let entries: Vec<FaqEntry> = serde_yaml::from_str(raw).map_err(|e| format!("invalid FAQ YAML: {e}"))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(n, entry)| {
            let at = |msg: String| format!("entry {} ({:?}): {msg}", n + 1, entry.id);
            let id = valid_id(&entry.id).map_err(at)?;
            let lang = entry.lang.parse::<Lang>().map_err(|e| at(e.to_string()))?;
            let question = one_line(&entry.question);
            let answer = clean_text(&entry.answer);
            if question.is_empty() || answer.is_empty() {
                return Err(at("question and answer must not be empty".into()));
            }
            Ok(Source {
                id,
                kind: SourceKind::Faq,
                title: question.clone(),
                lang,
                product: entry.product.map(|p| one_line(&p)).filter(|p| !p.is_empty()),
                effective_date: entry.effective_date,
                tags: entry.tags,
                origin: relative.to_path_buf(),
                content: Content::Faq {
                    question,
                    answer,
                    approved: entry.approved,
                },
            })
        })
        .collect()
}

fn valid_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_whitespace) {
        return Err(format!("id must be 1-200 characters without spaces, got {id:?}"));
    }
    Ok(id.to_string())
}

#[derive(Deserialize)]
struct FrontMatter {
    id: String,
    title: String,
    lang: String,
    product: Option<String>,
    effective_date: Option<serde_yaml::Value>,
    #[serde(default)]
    tags: Vec<String>,
}

fn parse_markdown(raw: &str, relative: &Path) -> Result<Source, String> {
    let raw = raw.trim_start_matches('\u{FEFF}');
    let rest = raw
        .strip_prefix("---\n")
        .or_else(|| raw.strip_prefix("---\r\n"))
        .ok_or("missing YAML front matter (the file must start with a line `---`)")?;
    let end = rest.find("\n---").ok_or("front matter is not closed by a line `---`")?;
    let front: FrontMatter = serde_yaml::from_str(&rest[..end]).map_err(|e| format!("invalid front matter: {e}"))?;
    let body = rest[end + 4..].trim_start_matches(['-', '\r']);
    let lang = front.lang.parse::<Lang>().map_err(|e| e.to_string())?;
    let title = one_line(&front.title);
    let sections = markdown_sections(body, &title);
    if sections.is_empty() {
        return Err("document has no text after the front matter".into());
    }
    Ok(Source {
        id: valid_id(&front.id)?,
        kind: SourceKind::Document,
        title,
        lang,
        product: front.product.map(|p| one_line(&p)),
        effective_date: front.effective_date.and_then(yaml_scalar),
        tags: front.tags,
        origin: relative.to_path_buf(),
        content: Content::Sections(sections),
    })
}

fn yaml_scalar(value: serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(s) => Some(s),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Splits Markdown at `##` headings outside code fences. A leading `#` line that repeats
/// the title is dropped (the title travels with every chunk anyway).
fn markdown_sections(body: &str, title: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut heading: Option<String> = None;
    let mut text = String::new();
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence {
            if let Some(h) = trimmed.strip_prefix("## ") {
                push_section(&mut sections, heading.take(), &text);
                text.clear();
                heading = Some(one_line(h.trim_end_matches('#')));
                continue;
            }
            if let Some(h) = trimmed.strip_prefix("# ") {
                if heading.is_none() && text.trim().is_empty() && one_line(h) == title {
                    continue;
                }
            }
        }
        text.push_str(line);
        text.push('\n');
    }
    push_section(&mut sections, heading, &text);
    sections
}

fn push_section(sections: &mut Vec<Section>, heading: Option<String>, text: &str) {
    let text = clean_text(text);
    if !text.is_empty() {
        sections.push(Section { heading, text });
    }
}

/// Elements whose content is never shown to a reader.
const INVISIBLE_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "nav", "footer",
];
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "li",
    "ul",
    "ol",
    "table",
    "tr",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "dd",
    "dt",
    "hr",
];

fn parse_html(raw: &str, relative: &Path) -> Result<Source, String> {
    let doc = Html::parse_document(raw);
    let root = doc.root_element();
    let lang = root.value().attr("lang").and_then(|l| l.parse::<Lang>().ok());
    let meta = |name: &str| {
        let selector = scraper::Selector::parse(&format!("meta[name=\"{name}\"]")).ok()?;
        doc.select(&selector).next()?.value().attr("content").map(one_line)
    };
    let mut walker = HtmlText::default();
    walker.walk(root);
    walker.finish_section();
    let title = select_text(&doc, "title")
        .or_else(|| select_text(&doc, "h1"))
        .unwrap_or_else(|| path_id(relative));
    let mut sections = walker.sections;
    if let Some(first) = sections.first_mut() {
        // The page's own <h1> repeats the title.
        if first.heading.is_none() {
            if let Some(rest) = first.text.strip_prefix(&title) {
                first.text = rest.trim_start().to_string();
            }
        }
    }
    sections.retain(|s| !s.text.is_empty());
    if sections.is_empty() {
        return Err("page has no visible text".into());
    }
    let all_text: String = sections.iter().map(|s| s.text.as_str()).collect();
    Ok(Source {
        id: meta("id").unwrap_or_else(|| path_id(relative)),
        kind: SourceKind::Document,
        lang: lang.unwrap_or_else(|| Lang::detect(&all_text)),
        title,
        product: meta("product"),
        effective_date: meta("effective_date"),
        tags: Vec::new(),
        origin: relative.to_path_buf(),
        content: Content::Sections(sections),
    })
}

fn select_text(doc: &Html, selector: &str) -> Option<String> {
    let selector = scraper::Selector::parse(selector).ok()?;
    let text = one_line(&doc.select(&selector).next()?.text().collect::<String>());
    (!text.is_empty()).then_some(text)
}

/// Collects visible text, starting a new section at each `<h2>`.
#[derive(Default)]
struct HtmlText {
    sections: Vec<Section>,
    heading: Option<String>,
    text: String,
}

impl HtmlText {
    fn walk(&mut self, element: ElementRef<'_>) {
        for child in element.children() {
            match child.value() {
                Node::Text(text) => self.text.push_str(text),
                Node::Element(el) => {
                    let Some(child_el) = ElementRef::wrap(child) else {
                        continue;
                    };
                    let name = el.name();
                    if INVISIBLE_TAGS.contains(&name) || is_hidden(el) {
                        continue;
                    }
                    if name == "h2" {
                        self.finish_section();
                        self.heading = Some(one_line(&visible_text(child_el)));
                        continue;
                    }
                    let block = BLOCK_TAGS.contains(&name);
                    if block {
                        self.text.push('\n');
                    }
                    if name == "li" {
                        self.text.push_str("- ");
                    }
                    self.walk(child_el);
                    if name == "td" || name == "th" {
                        self.text.push_str(" | ");
                    } else if block {
                        self.text.push('\n');
                    }
                }
                // Comments, doctype and processing instructions are never visible.
                _ => {}
            }
        }
    }

    fn finish_section(&mut self) {
        let text: String = self
            .text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n");
        push_section(&mut self.sections, self.heading.take(), &text);
        self.text.clear();
    }
}

fn visible_text(element: ElementRef<'_>) -> String {
    let mut inner = HtmlText::default();
    inner.walk(element);
    inner.text
}

fn is_hidden(el: &scraper::node::Element) -> bool {
    if el.attr("hidden").is_some() || el.attr("aria-hidden") == Some("true") {
        return true;
    }
    if el.name() == "input" && el.attr("type") == Some("hidden") {
        return true;
    }
    el.attr("style").is_some_and(|style| {
        let style: String = style
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        style.contains("display:none")
            || style.contains("visibility:hidden")
            || style.contains("font-size:0")
            || style.contains("opacity:0;")
            || style.ends_with("opacity:0")
    })
}

fn parse_text(raw: &str, relative: &Path) -> Result<Source, String> {
    let text = clean_text(raw);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let title = one_line(first);
    if title.is_empty() {
        return Err("file is empty".into());
    }
    let body = if rest.trim().is_empty() {
        text.clone()
    } else {
        clean_text(rest)
    };
    Ok(Source {
        id: path_id(relative),
        kind: SourceKind::Document,
        lang: Lang::detect(&text),
        title,
        product: None,
        effective_date: None,
        tags: Vec::new(),
        origin: relative.to_path_buf(),
        content: Content::Sections(vec![Section {
            heading: None,
            text: body,
        }]),
    })
}

/// `notes/atm-network.txt` → `notes/atm-network`: stable as long as the file stays put.
fn path_id(relative: &Path) -> String {
    relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faq_entries_default_to_approved() {
        let raw = "- id: faq-1\n  lang: en\n  question: \"Fee?\"\n  answer: >-\n    It is\n    HVD 5.\n  product: cards\n  tags: [fee]\n- id: faq-2\n  lang: zh-CN\n  question: 年费？\n  answer: 免年费。\n  approved: false\n";
        let sources = parse_faq_yaml(raw, Path::new("faq/x.yaml")).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(
            sources[0].content,
            Content::Faq {
                question: "Fee?".into(),
                answer: "It is HVD 5.".into(),
                approved: true
            }
        );
        assert_eq!(sources[1].lang, Lang::ZhCn);
        assert!(matches!(sources[1].content, Content::Faq { approved: false, .. }));
    }

    #[test]
    fn faq_errors_name_the_entry() {
        let raw = "- id: faq-1\n  lang: fr\n  question: q\n  answer: a\n";
        let err = parse_faq_yaml(raw, Path::new("x.yaml")).unwrap_err();
        assert!(err.contains("entry 1") && err.contains("fr"), "{err}");
        let err = parse_faq_yaml("- id: [", Path::new("x.yaml")).unwrap_err();
        assert!(err.starts_with("invalid FAQ YAML"), "{err}");
    }

    #[test]
    fn markdown_splits_at_level_two_headings_outside_fences() {
        let raw = "---\nid: doc-a\ntitle: Card Guide\nlang: en\nproduct: cards\neffective_date: 2026-01-15\n---\n\n# Card Guide\n\nIntro text.\n\n## Fees\n\nFee is HVD 5.\n\n### Detail\n\nMore.\n\n```\n## not a heading\n```\n\n## Limits\n\nLimit text.\n";
        let source = parse_markdown(raw, Path::new("docs/a.md")).unwrap();
        assert_eq!(source.effective_date.as_deref(), Some("2026-01-15"));
        let Content::Sections(sections) = &source.content else {
            panic!()
        };
        let headings: Vec<_> = sections.iter().map(|s| s.heading.as_deref()).collect();
        assert_eq!(headings, [None, Some("Fees"), Some("Limits")]);
        assert_eq!(sections[0].text, "Intro text.");
        assert!(sections[1].text.contains("### Detail") && sections[1].text.contains("## not a heading"));
    }

    #[test]
    fn markdown_without_front_matter_is_an_error() {
        let err = parse_markdown("# Title\n\ntext", Path::new("a.md")).unwrap_err();
        assert!(err.contains("front matter"), "{err}");
        let err = parse_markdown("---\ntitle: x\nlang: en\n---\ntext", Path::new("a.md")).unwrap_err();
        assert!(err.contains("id"), "{err}");
    }

    #[test]
    fn html_keeps_only_visible_text() {
        let raw = r#"<!doctype html><html lang="en"><head><title>Branch hours</title>
            <style>.x{color:red}</style><script>var secret = "token";</script></head>
            <body><nav>Home | Cards</nav><h1>Branch hours</h1><p>Open <b>9am</b> to 5pm.</p>
            <!-- internal: staff code 1234 -->
            <div style="display: none">hidden promo</div><p hidden>also hidden</p>
            <h2>Holidays</h2><ul><li>Closed on New Year</li></ul>
            <table><tr><td>Mon</td><td>9-5</td></tr></table></body></html>"#;
        let source = parse_html(raw, Path::new("pages/branch-hours.html")).unwrap();
        assert_eq!(source.id, "pages/branch-hours");
        assert_eq!(source.title, "Branch hours");
        let Content::Sections(sections) = &source.content else {
            panic!()
        };
        let all = format!("{sections:?}");
        for hidden in [
            "secret",
            "color:red",
            "staff code",
            "hidden promo",
            "also hidden",
            "Home | Cards",
        ] {
            assert!(!all.contains(hidden), "{hidden} leaked: {all}");
        }
        assert_eq!(sections[0].text, "Open 9am to 5pm.");
        assert_eq!(sections[1].heading.as_deref(), Some("Holidays"));
        assert!(sections[1].text.contains("- Closed on New Year"));
        assert!(sections[1].text.contains("Mon | 9-5"));
    }

    #[test]
    fn text_files_take_id_from_path_and_title_from_first_line() {
        let source = parse_text("ATM network\n\nWe run 300 ATMs.\n", Path::new("notes/atm.txt")).unwrap();
        assert_eq!(source.id, "notes/atm");
        assert_eq!(source.title, "ATM network");
        assert!(parse_text("  \n", Path::new("e.txt")).is_err());
    }

    #[test]
    fn content_hash_changes_with_content_only() {
        let raw = "- id: faq-1\n  lang: en\n  question: q\n  answer: a\n";
        let a = parse_faq_yaml(raw, Path::new("x.yaml")).unwrap();
        let b = parse_faq_yaml(raw, Path::new("x.yaml")).unwrap();
        assert_eq!(a[0].content_hash(), b[0].content_hash());
        let c = parse_faq_yaml(&raw.replace("answer: a", "answer: b"), Path::new("x.yaml")).unwrap();
        assert_ne!(a[0].content_hash(), c[0].content_hash());
    }
}
