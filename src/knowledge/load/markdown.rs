//! Markdown with YAML front matter, split into its `##` sections.

use super::{valid_id, Content, Section, Source, SourceKind};
use crate::knowledge::clean::{clean_text, one_line};
use crate::lang::Lang;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct FrontMatter {
    id: String,
    title: String,
    lang: String,
    product: Option<String>,
    effective_date: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    tags: Vec<String>,
}

pub(super) fn parse_markdown(raw: &str, relative: &Path) -> Result<Source, String> {
    let raw = raw.trim_start_matches('\u{FEFF}');
    let rest = raw
        .strip_prefix("---\n")
        .or_else(|| raw.strip_prefix("---\r\n"))
        .ok_or("missing YAML front matter (the file must start with a line `---`)")?;
    let end = rest.find("\n---").ok_or("front matter is not closed by a line `---`")?;
    let front: FrontMatter = serde_yaml_ng::from_str(&rest[..end]).map_err(|e| format!("invalid front matter: {e}"))?;
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

fn yaml_scalar(value: serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(s) => Some(s),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Splits Markdown at `##` headings outside code fences. A leading `#` line that repeats
/// the title is dropped (the title travels with every chunk anyway).
pub(super) fn markdown_sections(body: &str, title: &str) -> Vec<Section> {
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

pub(super) fn push_section(sections: &mut Vec<Section>, heading: Option<String>, text: &str) {
    let text = clean_text(text);
    if !text.is_empty() {
        sections.push(Section { heading, text });
    }
}
