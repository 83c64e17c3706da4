//! Retrieved passages read against one question. The answer policy's grounding measure and
//! the extractive answer both compare a question's BM25 terms with a passage's, weighted by
//! the corpus's IDF: a [`Reading`] holds the three things they need (the question's terms,
//! the term weights, the tokenised passages) so each turn tokenises its question once.

use super::bm25::Bm25Encoder;
use super::sentences::sentences;
use super::vocabulary::Vocabulary;
use crate::knowledge::chunk::Chunk;
use crate::lang::Lang;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// A chunk tokenised: the terms of the whole chunk, and its heading and sentences, each
/// with its own terms.
#[derive(Debug)]
pub struct Passage {
    /// The language it was tokenised for.
    lang: Lang,
    /// Terms of the whole chunk text (title and heading included).
    pub terms: HashSet<u32>,
    /// Terms of the title, and of the section heading when there is one (an FAQ entry's
    /// title is its question).
    pub title: Vec<u32>,
    pub heading: Option<(String, Vec<u32>)>,
    pub sentences: Vec<(String, Vec<u32>)>,
}

impl Passage {
    fn read(chunk: &Chunk, bm25: &Bm25Encoder) -> Self {
        let terms = |text: &str| bm25.embed_document(text, chunk.lang).indices;
        Self {
            lang: chunk.lang,
            terms: terms(&chunk.text).into_iter().collect(),
            title: terms(&format!("{}\n{}", chunk.title, chunk.section.as_deref().unwrap_or(""))),
            heading: chunk.section.as_ref().map(|h| (h.clone(), terms(h))),
            sentences: sentences(chunk.body())
                .into_iter()
                .map(|s| {
                    let t = terms(&s);
                    (s, t)
                })
                .collect(),
        }
    }
}

/// Passages already read, by content hash: the same passages answer many turns, and
/// tokenising them (stemming above all) was most of the extractive path's CPU and an
/// eighth of every turn's for the grounding measure. Bounded, evicting the passages least
/// likely to be asked for again (quick_cache's CLOCK-Pro), never serving stale text: new
/// content has a new hash.
pub struct PassageCache {
    entries: quick_cache::sync::Cache<String, Arc<Passage>>,
}

impl Default for PassageCache {
    /// Room for the hot passages of a large knowledge base (a few MiB).
    fn default() -> Self {
        Self::new(4096)
    }
}

impl PassageCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// The chunk read, from the cache when its content was read before.
    pub fn get(&self, chunk: &Chunk, bm25: &Bm25Encoder) -> Arc<Passage> {
        if chunk.content_hash.is_empty() {
            return Arc::new(Passage::read(chunk, bm25));
        }
        // Looked up by reference: no allocation for a hit, which is nearly every turn.
        if let Some(found) = self.entries.get(chunk.content_hash.as_str()) {
            if found.lang == chunk.lang {
                return found;
            }
        }
        let read = Arc::new(Passage::read(chunk, bm25));
        self.entries.insert(chunk.content_hash.clone(), Arc::clone(&read));
        read
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One question and what it is compared with: its terms, tokenised once, the corpus's IDF
/// weights and the cached passages.
pub struct Reading<'a> {
    pub lang: Lang,
    /// In order, so that sums over them come out the same in every process.
    terms: BTreeSet<u32>,
    /// Distinct pairs of adjacent Han characters in the question.
    bigrams: Vec<String>,
    bm25: &'a Bm25Encoder,
    vocabulary: Arc<Vocabulary>,
    cache: &'a PassageCache,
}

impl<'a> Reading<'a> {
    pub fn new(
        question: &str,
        lang: Lang,
        bm25: &'a Bm25Encoder,
        vocabulary: Arc<Vocabulary>,
        cache: &'a PassageCache,
    ) -> Self {
        Self {
            lang,
            terms: bm25.embed_query(question, lang).indices.into_iter().collect(),
            bigrams: han_bigrams(question),
            bm25,
            vocabulary,
            cache,
        }
    }

    /// The question's distinct terms (stemmed, stop words dropped).
    pub fn terms(&self) -> &BTreeSet<u32> {
        &self.terms
    }

    /// A term's weight: the rare words of a question say what it is about.
    pub fn idf(&self, term: u32) -> f32 {
        self.vocabulary.idf(term)
    }

    /// Whether any indexed passage contains the term.
    pub fn known(&self, term: u32) -> bool {
        self.vocabulary.df.contains_key(&term)
    }

    /// IDF-weighted sum of the question's terms among `terms` (each counted as often as
    /// it occurs there).
    pub fn shared_weight(&self, terms: &[u32]) -> f32 {
        terms
            .iter()
            .filter(|t| self.terms.contains(t))
            .map(|t| self.idf(*t))
            .sum()
    }

    /// How many of the question's Han character pairs occur in `text`.
    pub fn shared_bigrams(&self, text: &str) -> usize {
        self.bigrams.iter().filter(|b| text.contains(b.as_str())).count()
    }

    pub fn passage(&self, chunk: &Chunk) -> Arc<Passage> {
        self.cache.get(chunk, self.bm25)
    }
}

/// Distinct pairs of adjacent Han characters.
fn han_bigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for pair in chars.windows(2) {
        if pair.iter().all(|c| crate::lang::is_han(*c)) {
            let bigram: String = pair.iter().collect();
            if !out.contains(&bigram) {
                out.push(bigram);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::SourceKind;
    use uuid::Uuid;

    fn chunk(text: &str, hash: &str) -> Chunk {
        Chunk {
            id: Uuid::nil(),
            source_id: "doc-a".into(),
            chunk_index: 0,
            kind: SourceKind::Document,
            title: "Guide".into(),
            section: Some("Fees".into()),
            lang: Lang::En,
            product: None,
            effective_date: None,
            approved: false,
            text: format!("Guide\nFees\n{text}"),
            content_hash: hash.into(),
            source_hash: String::new(),
        }
    }

    #[test]
    fn the_cache_reads_each_content_once_and_stays_bounded() {
        let bm25 = Bm25Encoder::new();
        let cache = PassageCache::new(2);
        let mut gold = chunk("The Gold card fee is LTD 480.", "h1");
        let first = cache.get(&gold, &bm25);
        assert!(Arc::ptr_eq(&first, &cache.get(&gold, &bm25)));
        assert_eq!(first.sentences[0].0, "The Gold card fee is LTD 480.");
        // New content has a new hash and is read afresh, never served stale.
        gold.text = "Guide\nFees\nThe Gold card fee is LTD 500.".into();
        gold.content_hash = "h2".into();
        assert_eq!(cache.get(&gold, &bm25).sentences[0].0, "The Gold card fee is LTD 500.");
        for n in 3..10 {
            gold.content_hash = format!("h{n}");
            cache.get(&gold, &bm25);
        }
        assert!(cache.len() <= 2, "{} entries", cache.len());
    }

    #[test]
    fn a_reading_weighs_the_question_terms_a_passage_shares() {
        let bm25 = Bm25Encoder::new();
        let cache = PassageCache::new(4);
        let reading = Reading::new(
            "gold card fees",
            Lang::En,
            &bm25,
            Arc::new(Vocabulary::default()),
            &cache,
        );
        let passage = reading.passage(&chunk("The Gold card fee is LTD 480.", "h1"));
        let (_, terms) = &passage.sentences[0];
        // "gold", "card" and "fee" (stemmed) are shared; "is", "the" are stop words.
        let each = reading.idf(0);
        assert_eq!(reading.terms().len(), 3);
        assert!((reading.shared_weight(terms) - 3.0 * each).abs() < 1e-6);
        assert_eq!(reading.shared_weight(&[]), 0.0);
    }
}
