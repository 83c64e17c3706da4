//! Token-bounded, heading-aware chunking (text-splitter with a tiktoken-rs sizer).
//!
//! One FAQ entry is one chunk (question + answer): it is the unit compliance approved.
//! A document section is cut into chunks of at most `target` tokens that never cross a
//! `##` heading; each chunk starts with the document title and the section heading so it
//! stands on its own in retrieval and in a prompt.

use super::load::{Content, Source, SourceKind};
use crate::lang::Lang;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::ops::Range;
use text_splitter::{ChunkConfig, MarkdownSplitter};
use tiktoken_rs::CoreBPE;
use uuid::Uuid;

/// Namespace for chunk point ids: UUIDv5(source id + chunk index) is stable across runs
/// and identical in both vector-store backends.
const CHUNK_NAMESPACE: Uuid = Uuid::from_u128(0x6c0e_4b1a_93d2_4f0b_9a7e_1d2c_3b4a_5f60);

/// A retrievable unit, with everything the index stores as payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: Uuid,
    pub source_id: String,
    pub chunk_index: usize,
    pub kind: SourceKind,
    pub title: String,
    pub section: Option<String>,
    pub lang: Lang,
    pub product: Option<String>,
    pub effective_date: Option<String>,
    /// FAQ entries only: whether the answer may be served verbatim.
    pub approved: bool,
    /// The chunk as shown and cited: title and heading lines, then the passage.
    pub text: String,
    /// Hash of `text`, so a consumer can tell whether a cited passage changed.
    pub content_hash: String,
    /// Hash of the whole source; ingest compares it to skip unchanged sources.
    pub source_hash: String,
}

impl Chunk {
    pub fn point_id(source_id: &str, index: usize) -> Uuid {
        Uuid::new_v5(&CHUNK_NAMESPACE, format!("{source_id}#{index}").as_bytes())
    }

    /// The passage without the title and heading lines the chunker put in front.
    pub fn body(&self) -> &str {
        let mut rest = self.text.as_str();
        for header in std::iter::once(Some(&self.title))
            .chain([self.section.as_ref()])
            .flatten()
        {
            if let Some(after) = rest.strip_prefix(header.as_str()) {
                rest = after.strip_prefix('\n').unwrap_or(after);
            }
        }
        rest.trim_start()
    }

    /// For FAQ chunks: the approved answer (the text after the question line).
    pub fn faq_answer(&self) -> Option<&str> {
        (self.kind == SourceKind::Faq).then(|| self.body())
    }
}

/// A chunk plus the extra text that only the lexical index sees (tags, product).
#[derive(Debug, Clone)]
pub struct PreparedChunk {
    pub chunk: Chunk,
    pub index_text: String,
}

/// Raised whenever [`Chunker::chunk`] cuts the same text differently (2: a chunk that
/// starts inside a table repeats its header).
const CHUNKING_VERSION: u32 = 2;

/// Cuts sources into chunks. Cheap to clone; holds the shared BPE tables.
#[derive(Clone)]
pub struct Chunker {
    bpe: &'static CoreBPE,
    target: usize,
    overlap: usize,
}

impl Chunker {
    pub fn new(target_tokens: usize, overlap_tokens: usize) -> Self {
        Self {
            bpe: tiktoken_rs::cl100k_base_singleton(),
            target: target_tokens,
            overlap: overlap_tokens,
        }
    }

    pub fn count_tokens(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }

    /// The version of a source as indexed: its content and how it is cut. `teller ingest`
    /// skips a source whose stored hash matches, so a new chunk size, or a release that
    /// cuts differently, re-writes every source on the next ingest instead of keeping the
    /// old chunks of unchanged documents.
    pub fn source_hash(&self, source: &Source) -> String {
        let mut hasher = Sha256::new();
        hasher.update(source.content_hash().as_bytes());
        hasher.update(format!("\nchunking v{CHUNKING_VERSION} {} {}", self.target, self.overlap).as_bytes());
        hex::encode(hasher.finalize())
    }

    pub fn chunk(&self, source: &Source) -> Vec<PreparedChunk> {
        let source_hash = self.source_hash(source);
        let mut pieces: Vec<(Option<String>, String)> = Vec::new();
        let approved = match &source.content {
            Content::Faq {
                question,
                answer,
                approved,
            } => {
                pieces.push((None, format!("{question}\n{answer}")));
                *approved
            }
            Content::Sections(sections) => {
                for section in sections {
                    let header = match &section.heading {
                        Some(h) => format!("{}\n{h}\n", source.title),
                        None => format!("{}\n", source.title),
                    };
                    let budget = self
                        .target
                        .saturating_sub(self.count_tokens(&header))
                        .max(self.target / 2);
                    for piece in self.split(&section.text, budget) {
                        pieces.push((section.heading.clone(), format!("{header}{piece}")));
                    }
                }
                false
            }
        };
        let keywords = keyword_line(source);
        pieces
            .into_iter()
            .enumerate()
            .map(|(index, (section, text))| {
                let index_text = format!("{text}\n{keywords}");
                PreparedChunk {
                    chunk: Chunk {
                        id: Chunk::point_id(&source.id, index),
                        source_id: source.id.clone(),
                        chunk_index: index,
                        kind: source.kind,
                        title: source.title.clone(),
                        section,
                        lang: source.lang,
                        product: source.product.clone(),
                        effective_date: source.effective_date.clone(),
                        approved,
                        content_hash: hex::encode(Sha256::digest(text.as_bytes())),
                        text,
                        source_hash: source_hash.clone(),
                    },
                    index_text,
                }
            })
            .collect()
    }

    fn split(&self, text: &str, budget: usize) -> Vec<String> {
        if self.count_tokens(text) <= budget {
            return vec![text.to_string()];
        }
        // A piece that starts inside a table gets the table's header again, so that every
        // chunk of a long rate table says what its columns are: keep room for it.
        let tables = tables(text);
        let reserve = tables.iter().map(|t| self.count_tokens(&t.header)).max().unwrap_or(0);
        let budget = budget.saturating_sub(reserve).max(budget / 2);
        let overlap = self.overlap.min(budget / 2);
        let config = ChunkConfig::new(budget)
            .with_sizer(self.bpe)
            .with_overlap(overlap)
            .expect("overlap is below the budget");
        MarkdownSplitter::new(config)
            .chunk_indices(text)
            .map(|(offset, piece)| {
                match tables
                    .iter()
                    .find(|t| t.rows.contains(&offset) && piece.starts_with('|'))
                {
                    Some(table) => format!("{}{piece}", table.header),
                    None => piece.to_string(),
                }
            })
            .collect()
    }
}

/// A Markdown table within a text: its header and rule lines, and where its rows are.
struct Table {
    /// `| a | b |\n|---|---|\n`
    header: String,
    /// Byte range of the body rows.
    rows: Range<usize>,
}

fn tables(text: &str) -> Vec<Table> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    let start_of = |i: usize| lines.get(i).map_or(text.len(), |(o, _)| *o);
    let is_row = |line: &str| line.trim_start().starts_with('|');
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        if !(is_row(lines[i].1) && is_table_rule(lines[i + 1].1.trim())) {
            i += 1;
            continue;
        }
        let mut end = i + 2;
        while end < lines.len() && is_row(lines[end].1) {
            end += 1;
        }
        let mut header = text[start_of(i)..start_of(i + 2)].to_string();
        if !header.ends_with('\n') {
            header.push('\n');
        }
        found.push(Table {
            header,
            rows: start_of(i + 2)..start_of(end),
        });
        i = end;
    }
    found
}

/// `|---|:---:|`: the line between a Markdown table's header and its rows.
pub fn is_table_rule(line: &str) -> bool {
    line.starts_with('|') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Tags and product, with separators turned into spaces so `annual-fee` matches "annual fee".
fn keyword_line(source: &Source) -> String {
    source
        .tags
        .iter()
        .chain(source.product.iter())
        .map(|t| t.replace(['-', '_'], " "))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::load::Section;
    use std::path::PathBuf;

    fn doc(lang: Lang, sections: Vec<Section>) -> Source {
        Source {
            id: "doc-x".into(),
            kind: SourceKind::Document,
            title: "Card Guide".into(),
            lang,
            product: Some("credit-cards".into()),
            effective_date: None,
            tags: vec![],
            origin: PathBuf::from("docs/x.md"),
            content: Content::Sections(sections),
        }
    }

    fn sentences(n: usize) -> String {
        (0..n)
            .map(|i| format!("Sentence number {i} explains a different rule about card limits and fees."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn chunks_respect_the_token_budget_and_carry_headings() {
        let chunker = Chunker::new(120, 20);
        let source = doc(
            Lang::En,
            vec![
                Section {
                    heading: Some("Fees".into()),
                    text: sentences(40),
                },
                Section {
                    heading: Some("Limits".into()),
                    text: "Short section.".into(),
                },
            ],
        );
        let chunks = chunker.chunk(&source);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        for c in &chunks {
            assert!(chunker.count_tokens(&c.chunk.text) <= 120, "{}", c.chunk.text);
            assert!(c.chunk.text.starts_with("Card Guide\n"));
        }
        let last = chunks.last().unwrap();
        assert_eq!(last.chunk.section.as_deref(), Some("Limits"));
        assert_eq!(last.chunk.text, "Card Guide\nLimits\nShort section.");
        assert_eq!(last.chunk.body(), "Short section.");
        // No chunk mixes the two sections.
        assert!(chunks
            .iter()
            .all(|c| !(c.chunk.text.contains("Sentence") && c.chunk.text.contains("Short"))));
        // Ids are stable and distinct.
        assert_eq!(chunks[0].chunk.id, Chunk::point_id("doc-x", 0));
        assert_ne!(chunks[0].chunk.id, chunks[1].chunk.id);
        assert!(chunks[0].index_text.contains("credit cards"));
    }

    #[test]
    fn the_source_hash_changes_with_the_way_of_cutting() {
        let source = doc(
            Lang::En,
            vec![Section {
                heading: None,
                text: "Text.".into(),
            }],
        );
        let hash = Chunker::new(120, 20).source_hash(&source);
        assert_eq!(hash, Chunker::new(120, 20).source_hash(&source));
        assert_ne!(hash, Chunker::new(200, 20).source_hash(&source));
        assert_ne!(hash, Chunker::new(120, 10).source_hash(&source));
        assert_ne!(hash, source.content_hash());
        assert!(Chunker::new(120, 20)
            .chunk(&source)
            .iter()
            .all(|c| c.chunk.source_hash == hash));
    }

    #[test]
    fn every_chunk_of_a_long_table_repeats_its_header() {
        let chunker = Chunker::new(120, 0);
        let rows: String = (1..=40)
            .map(|i| format!("| Currency {i} | {i}.{i}% | HVD {i},000 |\n"))
            .collect();
        let text = format!("Rates for each currency:\n\n| Currency | Rate | Minimum |\n|---|---|---|\n{rows}");
        let source = doc(
            Lang::En,
            vec![Section {
                heading: Some("Rates".into()),
                text,
            }],
        );
        let chunks = chunker.chunk(&source);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        let mut rows_seen = 0;
        for c in &chunks {
            assert!(chunker.count_tokens(&c.chunk.text) <= 120, "{}", c.chunk.text);
            let body = c.chunk.body();
            if body.contains("| Currency ") {
                assert!(
                    body.contains("| Currency | Rate | Minimum |\n|---|---|---|\n| Currency "),
                    "{body}"
                );
                rows_seen += body.matches("% | HVD").count();
            }
        }
        assert!(rows_seen >= 40, "rows lost: {rows_seen}");
    }

    #[test]
    fn chinese_text_is_split_on_character_boundaries_within_budget() {
        let chunker = Chunker::new(100, 10);
        let text = "信用卡消费分期的手续费按月收取，分期期数可选三期、六期、十二期或二十四期。".repeat(30);
        let source = doc(
            Lang::ZhCn,
            vec![Section {
                heading: Some("分期".into()),
                text: text.clone(),
            }],
        );
        let chunks = chunker.chunk(&source);
        assert!(chunks.len() > 3);
        let mut covered = 0;
        for c in &chunks {
            assert!(chunker.count_tokens(&c.chunk.text) <= 100);
            covered += c.chunk.body().chars().count();
        }
        assert!(covered >= text.chars().count(), "chunks lost text");
    }

    #[test]
    fn an_faq_entry_is_one_chunk() {
        let source = Source {
            id: "faq-1".into(),
            kind: SourceKind::Faq,
            title: "What is the fee?".into(),
            lang: Lang::En,
            product: None,
            effective_date: None,
            tags: vec!["annual-fee".into()],
            origin: PathBuf::from("faq/a.yaml"),
            content: Content::Faq {
                question: "What is the fee?".into(),
                answer: sentences(60),
                approved: true,
            },
        };
        let chunks = Chunker::new(100, 10).chunk(&source);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].chunk.approved);
        assert_eq!(chunks[0].chunk.faq_answer().unwrap(), sentences(60));
        assert!(chunks[0].index_text.ends_with("annual fee"));
    }
}
