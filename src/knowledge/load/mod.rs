//! Loaders for the knowledge-base formats: FAQ YAML lists, Markdown with YAML front
//! matter, HTML (visible text only) and plain text.
//!
//! A malformed file becomes a [`LoadError`] naming the file and the problem; the other
//! files still load, so one bad edit never empties the index.

mod faq;
mod html;
mod markdown;
mod text;

use crate::lang::Lang;
use faq::parse_faq_yaml;
use html::parse_html;
use markdown::parse_markdown;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use text::parse_text;
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

pub(super) fn valid_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_whitespace) {
        return Err(format!("id must be 1-200 characters without spaces, got {id:?}"));
    }
    Ok(id.to_string())
}

/// `notes/atm-network.txt` → `notes/atm-network`: stable as long as the file stays put.
pub(super) fn path_id(relative: &Path) -> String {
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
