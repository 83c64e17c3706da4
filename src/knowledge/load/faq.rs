//! FAQ YAML: a list of entries, each a source of its own.

use super::{valid_id, Content, Source, SourceKind};
use crate::knowledge::clean::{clean_text, one_line};
use crate::lang::Lang;
use serde::Deserialize;
use std::path::Path;

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

pub(super) fn parse_faq_yaml(raw: &str, relative: &Path) -> Result<Vec<Source>, String> {
    let entries: Vec<FaqEntry> = serde_yaml_ng::from_str(raw).map_err(|e| format!("invalid FAQ YAML: {e}"))?;
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
