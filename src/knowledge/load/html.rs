//! HTML pages: visible text only (scripts, styles, comments, navigation and hidden
//! elements are dropped), block elements as paragraphs.

use super::markdown::push_section;
use super::{path_id, Content, Section, Source, SourceKind};
use crate::knowledge::clean::one_line;
use crate::lang::Lang;
use scraper::{ElementRef, Html, Node};
use std::path::Path;

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

pub(super) fn parse_html(raw: &str, relative: &Path) -> Result<Source, String> {
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
