//! BM25 sparse vectors with Qdrant's own tokenizers (Qdrant Edge's `EdgeBm25`).
//!
//! English text goes through the word tokenizer with the English stemmer and stop words.
//! Chinese text needs the multilingual tokenizer (charabia with jieba segmentation): the
//! word tokenizer would keep a whole Chinese phrase as one token. Indices are token
//! hashes, so both models write into one vocabulary and a product name or number in a
//! Chinese question still matches the same word in an English passage.

use super::store::SparseVec;
use crate::lang::Lang;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::external::ordered_float::NotNan;
use qdrant_edge::TokenizerType;

/// BM25's `b`: how strongly longer chunks are penalised. The index mixes short FAQ chunks
/// (~60 words) with document chunks of up to 300 tokens that hold the detail, and full
/// normalisation (0.75) buries the latter; recall@5 and MRR on the eval set are flat for
/// b in 0.1–0.3 and fall above it (BENCHMARKS.md).
const LENGTH_NORMALISATION: f64 = 0.3;

/// Encodes documents and queries into the `bm25` sparse vector. The IDF part of BM25 is
/// applied by Qdrant at query time (the vector's `Idf` modifier).
pub struct Bm25Encoder {
    english: EdgeBm25,
    chinese: EdgeBm25,
}

impl Default for Bm25Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Bm25Encoder {
    pub fn new() -> Self {
        let english = EdgeBm25::new(EdgeBm25Config {
            language: Some("english".into()),
            tokenizer: TokenizerType::Word,
            b: NotNan::new(LENGTH_NORMALISATION).expect("a number"),
            ..Default::default()
        })
        .expect("English BM25 configuration is valid");
        let chinese = EdgeBm25::new(EdgeBm25Config {
            language: Some("chinese".into()),
            tokenizer: TokenizerType::Multilingual,
            b: NotNan::new(LENGTH_NORMALISATION).expect("a number"),
            ..Default::default()
        })
        .expect("Chinese BM25 configuration is valid");
        Self { english, chinese }
    }

    pub fn embed_document(&self, text: &str, lang: Lang) -> SparseVec {
        match lang {
            Lang::En => self.english.embed_document(text).into(),
            Lang::ZhCn => merge(
                self.chinese.embed_document(text).into(),
                self.english.embed_document(&latin_residue(text)).into(),
            ),
        }
    }

    pub fn embed_query(&self, text: &str, lang: Lang) -> SparseVec {
        match lang {
            Lang::En => self.english.embed_query(text).into(),
            Lang::ZhCn => merge(
                self.chinese.embed_query(text).into(),
                self.english.embed_query(&latin_residue(text)).into(),
            ),
        }
    }
}

/// The non-Han part of a Chinese text (numbers, product names, phone numbers), which the
/// multilingual tokenizer drops or segments differently from English text.
fn latin_residue(text: &str) -> String {
    text.chars()
        .map(|c| {
            if crate::lang::is_han(c) || !c.is_ascii() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Union of two sparse vectors; a token present in both keeps the larger weight.
fn merge(a: SparseVec, b: SparseVec) -> SparseVec {
    let mut pairs: Vec<(u32, f32)> = a.indices.into_iter().zip(a.values).collect();
    pairs.extend(b.indices.into_iter().zip(b.values));
    pairs.sort_by_key(|(i, _)| *i);
    let mut out = SparseVec::default();
    for (index, value) in pairs {
        if out.indices.last() == Some(&index) {
            let last = out.values.last_mut().expect("values follow indices");
            *last = last.max(value);
        } else {
            out.indices.push(index);
            out.values.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares_token(a: &SparseVec, b: &SparseVec) -> bool {
        a.indices.iter().any(|i| b.indices.contains(i))
    }

    #[test]
    fn english_is_stemmed_and_stop_words_dropped() {
        let bm25 = Bm25Encoder::new();
        let q = bm25.embed_query("the fees", Lang::En);
        let d = bm25.embed_document("A fee is charged", Lang::En);
        assert_eq!(q.indices.len(), 1);
        assert!(shares_token(&q, &d));
    }

    #[test]
    fn chinese_is_segmented_into_words() {
        let bm25 = Bm25Encoder::new();
        let d = bm25.embed_document("信用卡年费是多少", Lang::ZhCn);
        assert!(d.indices.len() >= 2, "{d:?}");
        let q = bm25.embed_query("年费", Lang::ZhCn);
        assert!(shares_token(&q, &d));
    }

    #[test]
    fn numbers_in_chinese_text_match() {
        let bm25 = Bm25Encoder::new();
        let d = bm25.embed_document("分期24期的月手续费率为0.48%", Lang::ZhCn);
        let q = bm25.embed_query("24", Lang::En);
        assert!(shares_token(&q, &d));
        let merged = merge(
            SparseVec {
                indices: vec![1, 5],
                values: vec![0.5, 1.0],
            },
            SparseVec {
                indices: vec![5, 7],
                values: vec![2.0, 1.0],
            },
        );
        assert_eq!(
            merged,
            SparseVec {
                indices: vec![1, 5, 7],
                values: vec![0.5, 2.0, 1.0]
            }
        );
    }
}
