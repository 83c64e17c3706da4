//! Plain text: the id from the path, the title from the first line.

use super::{path_id, Content, Section, Source, SourceKind};
use crate::knowledge::clean::{clean_text, one_line};
use crate::lang::Lang;
use std::path::Path;

pub(super) fn parse_text(raw: &str, relative: &Path) -> Result<Source, String> {
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
