//! The terms of a customer question, as the knowledge base's own BM25 tokenisers see them
//! (Qdrant's stemmers and stop words; jieba segmentation for Simplified Chinese), less the
//! words every question to a bank is made of, weighted by how rare each term is in the
//! knowledge base: a question's distinctive word is usually the one the knowledge base
//! lacks, and "card" or "account" say little about what was asked.

use crate::lang::{is_han, Lang};
use crate::retrieval::bm25::Bm25Encoder;
use crate::retrieval::vocabulary::Vocabulary;
use std::collections::{HashMap, HashSet};

/// Words of asking rather than of a topic, beyond the tokenisers' stop-word lists.
const ENGLISH_FILLER: &[&str] = &[
    "please", "help", "hello", "hi", "hey", "thanks", "thank", "want", "need", "know", "tell", "like", "get", "can",
    "could", "would", "much", "many", "way", "possible", "bank", "question", "ask", "anyone", "someone", "also",
    "still", "sure", "let", "make", "go", "use", "one",
];
const CHINESE_FILLER: &[&str] = &[
    "请问",
    "你好",
    "您好",
    "我",
    "我们",
    "你们",
    "您",
    "想",
    "想要",
    "要",
    "需要",
    "怎么",
    "怎样",
    "如何",
    "什么",
    "可以",
    "能",
    "能不能",
    "可不可以",
    "吗",
    "呢",
    "吧",
    "啊",
    "的",
    "了",
    "是",
    "有",
    "没有",
    "一下",
    "银行",
    "谢谢",
    "请",
    "帮",
    "帮忙",
    "知道",
    "告诉",
    "哪里",
    "哪个",
    "哪些",
    "多少",
    "办",
];

/// Turns questions into weighted term vectors.
pub struct Terms<'a> {
    bm25: &'a Bm25Encoder,
    vocabulary: &'a Vocabulary,
    filler: HashSet<u32>,
}

/// A question's terms: (term id, weight), sorted by id, of unit length.
pub type TermVector = Vec<(u32, f32)>;

impl<'a> Terms<'a> {
    pub fn new(bm25: &'a Bm25Encoder, vocabulary: &'a Vocabulary) -> Self {
        let mut filler = HashSet::new();
        for (words, lang) in [(ENGLISH_FILLER, Lang::En), (CHINESE_FILLER, Lang::ZhCn)] {
            for word in words {
                filler.extend(bm25.embed_query(word, lang).indices);
            }
        }
        Self {
            bm25,
            vocabulary,
            filler,
        }
    }

    /// The question's distinct term ids, filler removed.
    pub fn ids(&self, text: &str) -> Vec<u32> {
        let mut ids = self.bm25.embed_query(text, Lang::detect(text)).indices;
        ids.retain(|id| !self.filler.contains(id));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The question's terms weighted by their knowledge-base IDF, normalised to unit length.
    pub fn vector(&self, text: &str) -> TermVector {
        let mut vector: TermVector = self
            .ids(text)
            .into_iter()
            .map(|id| (id, self.vocabulary.idf(id)))
            .collect();
        let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w) in &mut vector {
                *w /= norm;
            }
        }
        vector
    }

    /// A readable word for each term id of `text` that is in `wanted`: the text's own word
    /// (or, in Chinese, the segment) the tokeniser turned into that id. Term ids are token
    /// hashes, so the words are found by tokenising the text's candidate words one by one.
    pub fn words(&self, text: &str, wanted: &HashSet<u32>) -> HashMap<u32, String> {
        let mut words = HashMap::new();
        let mut consider = |candidate: &str, lang: Lang| {
            let ids = self.bm25.embed_query(candidate, lang).indices;
            if let [id] = *ids.as_slice() {
                if wanted.contains(&id) {
                    words.entry(id).or_insert_with(|| candidate.to_lowercase());
                }
            }
        };
        let mut latin = String::new();
        let mut han: Vec<char> = Vec::new();
        let flush_han = |han: &mut Vec<char>, consider: &mut dyn FnMut(&str, Lang)| {
            // Longest segments first, so "信用卡" is preferred to "信用" when both map.
            for len in (1..=han.len().min(4)).rev() {
                for start in 0..=han.len() - len {
                    let segment: String = han[start..start + len].iter().collect();
                    consider(&segment, Lang::ZhCn);
                }
            }
            han.clear();
        };
        for c in text.chars().chain(std::iter::once(' ')) {
            if is_han(c) {
                if !latin.is_empty() {
                    consider(&latin, Lang::En);
                    latin.clear();
                }
                han.push(c);
            } else {
                if !han.is_empty() {
                    flush_han(&mut han, &mut consider);
                }
                if c.is_alphanumeric() || c == '\'' {
                    latin.push(c);
                } else if !latin.is_empty() {
                    consider(&latin, Lang::En);
                    latin.clear();
                }
            }
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_dropped_and_words_are_recovered_in_both_languages() {
        let bm25 = Bm25Encoder::new();
        let vocabulary = Vocabulary::default();
        let terms = Terms::new(&bm25, &vocabulary);
        let ids = terms.ids("Hello, can you please help me with travel insurance?");
        let words = terms.words(
            "Hello, can you please help me with travel insurance?",
            &ids.iter().copied().collect(),
        );
        let mut found: Vec<&str> = words.values().map(String::as_str).collect();
        found.sort_unstable();
        assert_eq!(found, ["insurance", "travel"]);

        let text = "请问保险箱怎么租用？";
        let ids = terms.ids(text);
        assert!(!ids.is_empty());
        let words = terms.words(text, &ids.iter().copied().collect());
        assert!(words.values().any(|w| w.contains("保险")), "{words:?}");
        assert!(!words.values().any(|w| w == "请问"), "{words:?}");

        let vector = terms.vector("travel insurance");
        let norm: f32 = vector.iter().map(|(_, w)| w * w).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
