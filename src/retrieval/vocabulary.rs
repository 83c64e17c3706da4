//! Document frequencies of the indexed BM25 terms, for IDF weights outside Qdrant (the
//! answer policy weighs how much of a question the best passage covers by how rare each
//! term is: a question whose distinctive word appears nowhere in the knowledge base is
//! not answered by a passage that shares only its common words).

use std::collections::HashMap;

/// Term → number of chunks containing it, over `docs` chunks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    pub docs: usize,
    pub df: HashMap<u32, u32>,
}

impl Vocabulary {
    /// Builds the vocabulary from each chunk's sparse-vector term ids.
    pub fn from_documents<'a>(documents: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut vocabulary = Self::default();
        for terms in documents {
            vocabulary.docs += 1;
            for term in terms {
                *vocabulary.df.entry(*term).or_insert(0) += 1;
            }
        }
        vocabulary
    }

    /// BM25's IDF, `ln(1 + (N - df + 0.5) / (df + 0.5))`, as Qdrant's IDF modifier computes
    /// it. A term no chunk contains gets the highest weight a term can have.
    pub fn idf(&self, term: u32) -> f32 {
        let n = self.docs as f32;
        let df = self.df.get(&term).copied().unwrap_or(0) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_and_unseen_terms_weigh_more() {
        let docs: Vec<Vec<u32>> = vec![vec![1, 2], vec![1, 3], vec![1]];
        let v = Vocabulary::from_documents(docs.iter().map(Vec::as_slice));
        assert_eq!(v.docs, 3);
        assert!(v.idf(1) < v.idf(2));
        assert!(v.idf(2) < v.idf(99));
        assert!(v.idf(1) > 0.0);
    }
}
