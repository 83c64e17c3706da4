//! The offline answerer: the most relevant sentences of the best passages, in their own
//! words, each group followed by its citation. It never writes a word of its own beyond
//! joining what the bank's documents say.

use crate::knowledge::chunk::Chunk;
use crate::knowledge::SourceKind;
use crate::lang::{is_han, Lang};
use crate::retrieval::passages::Reading;
use crate::retrieval::Hit;
use regex::Regex;
use std::sync::LazyLock;

/// Sources an answer may quote from, at most.
pub const MAX_SOURCES: usize = 3;

/// Sentences taken from the best passage, at most.
const MAX_SENTENCES_TOP: usize = 5;
/// Characters of answer text we aim to stay under (Chinese packs more per character).
fn char_budget(lang: Lang) -> usize {
    match lang {
        Lang::En => 850,
        Lang::ZhCn => 400,
    }
}

/// An extractive answer: text with `[n]` markers, and the hit indices cited (`[1]` is
/// `cited[0]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Extract {
    pub text: String,
    pub cited: Vec<usize>,
}

/// Composes an answer to the `question` from the best `sources` (one hit per source, best
/// first), looking for sentences in every retrieved chunk of each source (`chunks`).
///
/// The best source leads: an FAQ answer is quoted whole (it is short, and it is the
/// bank's own wording), a document by its best-matching sentences from any of its
/// retrieved chunks. Each further source adds its best sentence (and the next one when
/// that is on topic or carries a figure) when it matches the question nearly as well,
/// which is what questions spanning two products need.
/// `cited` holds indices into `sources`.
pub fn compose(question: &Reading, sources: &[Hit], chunks: &[Hit]) -> Option<Extract> {
    let lang = question.lang;
    let budget = char_budget(lang);
    let mut parts: Vec<(usize, Vec<String>)> = Vec::new();
    let mut used = 0;
    let mut best_top_score = 0.0;
    for (source_index, source) in sources.iter().take(MAX_SOURCES).enumerate() {
        if source_index == 0 && source.chunk.kind == SourceKind::Faq {
            let answer = question.passage(&source.chunk);
            let whole = source.chunk.body().chars().count();
            if !answer.sentences.is_empty() && whole <= budget * 3 / 2 {
                used += whole;
                best_top_score = answer
                    .sentences
                    .iter()
                    .map(|(s, t)| overlap(question, s, t))
                    .fold(0.0, f32::max);
                parts.push((0, answer.sentences.iter().map(|(s, _)| s.clone()).collect()));
                continue;
            }
        }
        let candidates = Candidates::of(question, source, chunks);
        if candidates.sentences.is_empty() {
            continue;
        }
        let mut ranked = candidates.ranked();
        let chosen = if source_index == 0 {
            best_top_score = ranked.first().map_or(0.0, |r| r.1);
            if ranked.is_empty() {
                // The source matched as a whole (e.g. through its title): lead with its
                // opening sentence.
                ranked.push((0, 0.0));
            }
            candidates.around_seeds(&ranked, &mut used, budget)
        } else {
            // A further source must match nearly as well, or it only pads the reply.
            match ranked.first() {
                Some(&(best, score)) if score >= best_top_score * SECOND_PASSAGE_SHARE => {
                    candidates.best_and_next(best, &mut used, budget)
                }
                _ => continue,
            }
        };
        if chosen.is_empty() {
            continue;
        }
        parts.push((
            source_index,
            chosen.into_iter().map(|i| candidates.sentences[i].clone()).collect(),
        ));
    }
    if parts.is_empty() {
        return None;
    }
    let separator = if lang == Lang::ZhCn { "" } else { " " };
    let text = parts
        .iter()
        .enumerate()
        .map(|(n, (i, sentences))| {
            let source = &sources[*i].chunk;
            format!(
                "{}{} [{}]",
                attribution(source),
                join_sentences(&without_bare_reply(sentences)),
                n + 1
            )
        })
        .collect::<Vec<_>>()
        .join(separator);
    Some(Extract {
        text,
        cited: parts.into_iter().map(|(source_index, _)| source_index).collect(),
    })
}

/// The sentences of every retrieved chunk of one source, in document order, each with
/// its score: its own overlap with the question, plus part of its section heading's (a
/// table row or list item rarely repeats the topic its heading names).
struct Candidates {
    sentences: Vec<String>,
    own_scores: Vec<f32>,
    scores: Vec<f32>,
}

impl Candidates {
    fn of(question: &Reading, source: &Hit, chunks: &[Hit]) -> Self {
        let mut own: Vec<&Hit> = chunks
            .iter()
            .filter(|c| c.chunk.source_id == source.chunk.source_id)
            .collect();
        if own.is_empty() {
            own.push(source);
        }
        own.sort_by_key(|c| c.chunk.chunk_index);
        let mut candidates = Self {
            sentences: Vec::new(),
            own_scores: Vec::new(),
            scores: Vec::new(),
        };
        for chunk in own {
            let read = question.passage(&chunk.chunk);
            let heading = read.heading.as_ref().map_or(0.0, |(h, t)| overlap(question, h, t));
            for (sentence, terms) in &read.sentences {
                // Overlapping chunks repeat sentences.
                if !candidates.sentences.contains(sentence) {
                    let own = overlap(question, sentence, terms);
                    candidates.own_scores.push(own);
                    candidates.scores.push(own + HEADING_WEIGHT * heading);
                    candidates.sentences.push(sentence.clone());
                }
            }
        }
        candidates
    }

    /// Sentences that share anything with the question, best first.
    fn ranked(&self) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = self
            .scores
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, score)| *score > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }

    /// On topic itself, or carrying a figure.
    fn relevant(&self, i: usize) -> bool {
        self.own_scores[i] > 0.0 || self.sentences[i].chars().any(|c| c.is_ascii_digit())
    }

    /// The best sentences and their neighbours, in document order: the figure a customer
    /// asks about often sits in the sentence after the one that names the topic, and a
    /// matching table row is often far from the prose that introduces the table.
    fn around_seeds(&self, ranked: &[(usize, f32)], used: &mut usize, budget: usize) -> Vec<usize> {
        let seeds: Vec<usize> = ranked
            .iter()
            .take(SEEDS)
            .filter(|(_, s)| *s >= ranked[0].1 * SEED_SHARE)
            .map(|(i, _)| *i)
            .collect();
        let mut window: Vec<usize> = Vec::new();
        let mut consider = |i: usize, seed: bool| {
            let Some(sentence) = self.sentences.get(i) else { return };
            let len = sentence.chars().count();
            let fits = window.is_empty() || (window.len() < MAX_SENTENCES_TOP && *used + len <= budget);
            if (seed || self.relevant(i)) && fits && !window.contains(&i) {
                *used += len;
                window.push(i);
            }
        };
        for &seed in &seeds {
            consider(seed, true);
        }
        for step in 1..self.sentences.len() {
            for &seed in &seeds {
                for i in [seed + step, seed.wrapping_sub(step)] {
                    consider(i, false);
                }
            }
        }
        window.sort_unstable();
        window
    }

    /// A further passage adds its best sentence, and the next one when that is on topic or
    /// carries a figure ("It is LTD 1,500 a year.").
    fn best_and_next(&self, best: usize, used: &mut usize, budget: usize) -> Vec<usize> {
        let mut chosen = Vec::new();
        for i in [best, best + 1] {
            let Some(sentence) = self.sentences.get(i) else {
                continue;
            };
            let len = sentence.chars().count();
            if (i == best || self.relevant(i)) && *used + len <= budget {
                *used += len;
                chosen.push(i);
            }
        }
        chosen
    }
}

/// Says where a quote comes from, in the passage's language: the customer reads the bank's
/// words as the bank's, not as an answer written to them.
fn attribution(chunk: &Chunk) -> String {
    let title = chunk.title.trim().trim_end_matches(['?', '？']);
    let section = chunk.section.as_deref().filter(|s| !s.trim().is_empty());
    match (chunk.lang, chunk.kind, section) {
        (Lang::En, SourceKind::Faq, _) => format!("Our help page \"{title}?\" says: "),
        (Lang::En, _, Some(section)) => format!("Our document \"{title}\" ({section}) says: "),
        (Lang::En, _, None) => format!("Our document \"{title}\" says: "),
        (Lang::ZhCn, SourceKind::Faq, _) => format!("本行帮助页面《{title}？》写道："),
        (Lang::ZhCn, _, Some(section)) => format!("本行文件《{title}》“{section}”部分写道："),
        (Lang::ZhCn, _, None) => format!("本行文件《{title}》写道："),
    }
}

/// The quote without a bare "Yes."/"No."/"是的。" at its start: that answers the page's own
/// question, which may not be the customer's.
fn without_bare_reply(sentences: &[String]) -> Vec<String> {
    static BARE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(?:yes|no|yep|nope|sure|of course|absolutely|not at all|是的|不是|可以|不可以|不能|能|会|不会|没有|有的|当然)(?:[.!。！]\s*$|[,，、]\s*)")
            .expect("pattern compiles")
    });
    let mut out: Vec<String> = sentences.to_vec();
    if let Some(first) = out.first_mut() {
        if let Some(m) = BARE.find(first) {
            let rest = first[m.end()..].trim_start().to_string();
            *first = capitalised(&rest);
        }
    }
    out.retain(|s| !s.trim().is_empty());
    if out.is_empty() {
        sentences.to_vec()
    } else {
        out
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Joins quoted sentences into running text. Table rows and list items carry no full stop
/// of their own, so each gets one ("。" after Chinese), or "0.62%" and "24期" would run
/// together; Chinese sentences follow each other without a space, others with one.
fn join_sentences(sentences: &[String]) -> String {
    let mut text = String::new();
    for sentence in sentences {
        if let Some(last) = text.chars().last() {
            if !is_han(last) && !is_cjk_punctuation(last) {
                text.push(' ');
            }
        }
        text.push_str(sentence);
        let last = sentence
            .trim_end_matches(['*', '"', '\'', ')', '”', '’', '）', '」'])
            .chars()
            .last();
        match last {
            Some(c) if matches!(c, '.' | '!' | '?' | ';' | ':') || is_cjk_punctuation(c) => {}
            Some(c) if is_han(c) || sentence.chars().any(is_han) => text.push('。'),
            _ => text.push('.'),
        }
    }
    text
}

/// Full-width sentence and clause punctuation of Chinese text.
fn is_cjk_punctuation(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '：' | '，' | '、')
}

/// Share of a section heading's overlap with the question that each of its sentences gets.
const HEADING_WEIGHT: f32 = 0.5;

/// Sentences of the best passage that each bring their neighbours into the answer...
const SEEDS: usize = 2;
/// ...when they score at least this share of the best one.
const SEED_SHARE: f32 = 0.7;

/// A later passage's best sentence must score this share of the best one's to be added.
const SECOND_PASSAGE_SHARE: f32 = 0.6;

/// Weight of each pair of adjacent Han characters that a Chinese question and sentence
/// share, about a rare word's IDF. Chinese words are segmented by a dictionary, and the
/// same phrase can segment differently in a question and a passage (费率 against 手续费率
/// → 手续费 + 率, 年利率 against 年化利率), so by words alone the sentence with the rate
/// shares nothing with the question. On the dev questions: fact_recall 0.682 → 0.698,
/// the same for any weight from 3 to 50, none at 2 (BENCHMARKS.md).
const PAIR_WEIGHT: f32 = 5.0;

/// IDF-weighted share of the question's terms that a sentence contains, plus the Han
/// character pairs they share, with a little weight for sentences that carry figures
/// (customers ask for fees, limits and rates).
fn overlap(question: &Reading, sentence: &str, terms: &[u32]) -> f32 {
    let shared = question.shared_weight(terms) + PAIR_WEIGHT * question.shared_bigrams(sentence) as f32;
    if shared == 0.0 {
        return 0.0;
    }
    let has_figure = sentence.chars().any(|c| c.is_ascii_digit());
    shared * if has_figure { 1.2 } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::chunk::Chunk;
    use crate::retrieval::bm25::Bm25Encoder;
    use crate::retrieval::passages::PassageCache;
    use crate::retrieval::vocabulary::Vocabulary;
    use std::sync::Arc;
    use uuid::Uuid;

    fn hit(source: &str, text: &str, lang: Lang) -> Hit {
        Hit {
            score: 1.0,
            chunk: Chunk {
                id: Uuid::nil(),
                source_id: source.into(),
                chunk_index: 0,
                kind: SourceKind::Document,
                title: "Guide".into(),
                section: Some("Fees".into()),
                lang,
                product: None,
                effective_date: None,
                approved: false,
                text: format!("Guide\nFees\n{text}"),
                content_hash: String::new(),
                source_hash: String::new(),
            },
        }
    }

    /// An English answer with no corpus statistics (every term weighs the same).
    fn compose_en(query: &str, sources: &[Hit], chunks: &[Hit]) -> Extract {
        let bm25 = Bm25Encoder::new();
        let cache = PassageCache::new(16);
        let question = Reading::new(query, Lang::En, &bm25, Arc::new(Vocabulary::default()), &cache);
        compose(&question, sources, chunks).expect("an answer")
    }

    #[test]
    fn a_heading_that_names_the_topic_lifts_its_sentences() {
        let section = |index: usize, heading: &str, text: &str| {
            let mut h = hit("doc-a", "", Lang::En);
            h.chunk.chunk_index = index;
            h.chunk.section = Some(heading.into());
            h.chunk.text = format!("Guide\n{heading}\n{text}");
            h
        };
        // Six sentences naming the rating, each with a figure, tie with the table row on
        // their own words; the row's heading decides which leads the answer.
        let intro = section(
            0,
            "Overview",
            "Platinum 1 homes. Platinum 2 homes. Platinum 3 homes. Platinum 4 homes. Platinum 5 homes. Platinum 6 homes.",
        );
        let pricing = section(
            1,
            "Fixed rate pricing",
            "| Rating | Rate |\n|---|---|\n| Platinum | 3.43% |",
        );
        let chunks = vec![intro.clone(), pricing];
        let answer = compose_en("fixed rate for platinum", &[intro], &chunks);
        assert!(answer.text.contains("Platinum: 3.43%"), "{}", answer.text);
        assert!(!answer.text.contains("Platinum 1 homes"), "{}", answer.text);
    }

    #[test]
    fn a_matching_table_row_far_from_the_best_sentence_is_quoted_too() {
        let guide = hit(
            "doc-a",
            "Example: a Platinum customer on the fixed rate pays HVD 20,132 a month. Branches open at 9. \
             Cards cost HVD 5. Parking is HVD 3. Lockers are HVD 2. Coins are counted at 1%.\n\n\
             | Rating | Fixed rate | Variable rate |\n|---|---|---|\n| Platinum | 3.43% | 4.00% |\n| Gold | 3.48% | 4.10% |",
            Lang::En,
        );
        let answer = compose_en(
            "platinum fixed rate",
            std::slice::from_ref(&guide),
            std::slice::from_ref(&guide),
        );
        assert!(answer.text.contains("HVD 20,132"), "{}", answer.text);
        assert!(
            answer
                .text
                .contains("Platinum — Fixed rate: 3.43%; Variable rate: 4.00%."),
            "{}",
            answer.text
        );
    }

    #[test]
    fn a_further_passage_brings_the_figure_that_follows_its_best_sentence() {
        let hits = vec![
            hit("doc-a", "The Gold card annual fee is LTD 480.", Lang::En),
            hit(
                "doc-b",
                "The Platinum card has an annual fee. It is LTD 1,500 a year. Gardens are green.",
                Lang::En,
            ),
        ];
        let answer = compose_en("annual fee gold platinum card", &hits, &hits);
        assert_eq!(
            answer.text,
            "Our document \"Guide\" (Fees) says: The Gold card annual fee is LTD 480. [1] Our document \"Guide\" (Fees) says: The Platinum card has an annual fee. It is LTD 1,500 a year. [2]"
        );
    }

    #[test]
    fn chinese_sentences_match_by_character_pairs_where_word_segmentation_differs() {
        // The question says 费率; the row says 手续费率, which segments as 手续费 + 率: not
        // one word in common, but the phrase is there.
        let guide = hit(
            "doc-a",
            "| 期数 | 月手续费率 | 年化利率 |\n|---|---|---|\n| 12期 | 0.50% | 10.9% |",
            Lang::ZhCn,
        );
        let bm25 = Bm25Encoder::new();
        let cache = PassageCache::new(4);
        let question = Reading::new("费率多少", Lang::ZhCn, &bm25, Arc::new(Vocabulary::default()), &cache);
        let passage = question.passage(&guide.chunk);
        let (row, terms) = &passage.sentences[0];
        assert_eq!(row, "12期——月手续费率：0.50%；年化利率：10.9%");
        assert_eq!(question.shared_weight(terms), 0.0);
        assert!(overlap(&question, row, terms) > 0.0);
    }

    #[test]
    fn rows_and_list_items_are_joined_as_sentences() {
        let rows = ["Gold: HVD 600".to_string(), "Platinum: HVD 1,800".to_string()];
        assert_eq!(join_sentences(&rows), "Gold: HVD 600. Platinum: HVD 1,800.");
        let zh = [
            "12期：0.50%".to_string(),
            "24期：0.48%".to_string(),
            "须提前3个工作日。".to_string(),
        ];
        assert_eq!(join_sentences(&zh), "12期：0.50%。24期：0.48%。须提前3个工作日。");
        let mixed = [
            "**Fees.** None apply.".to_string(),
            "分期。".to_string(),
            "Done!".to_string(),
        ];
        assert_eq!(join_sentences(&mixed), "**Fees.** None apply. 分期。Done!");
    }

    #[test]
    fn picks_the_matching_sentences_and_cites_them() {
        let hits = vec![
            hit(
                "doc-a",
                "Our branches are modern. The Gold card annual fee is LTD 480. Parking is free.",
                Lang::En,
            ),
            hit("doc-b", "Weather is nice. Gardens are green.", Lang::En),
        ];
        let answer = compose_en("gold card annual fee", &hits, &hits);
        assert_eq!(
            answer.text,
            "Our document \"Guide\" (Fees) says: The Gold card annual fee is LTD 480. [1]"
        );
        assert_eq!(answer.cited, [0]);
    }

    #[test]
    fn a_second_passage_contributes_only_when_it_matches_as_well() {
        let hits = vec![
            hit("doc-a", "The Gold card annual fee is LTD 480.", Lang::En),
            hit("doc-b", "The Platinum card annual fee is LTD 1,500.", Lang::En),
        ];
        let answer = compose_en("annual fee gold platinum card", &hits, &hits);
        assert_eq!(
            answer.text,
            "Our document \"Guide\" (Fees) says: The Gold card annual fee is LTD 480. [1] Our document \"Guide\" (Fees) says: The Platinum card annual fee is LTD 1,500. [2]"
        );
        assert_eq!(answer.cited, [0, 1]);
    }

    #[test]
    fn a_quote_says_where_it_is_from_and_drops_the_pages_own_yes() {
        let mut faq = hit(
            "faq-freeze",
            "Yes. In the Lantern App go to Cards, select the card and tap Freeze card.",
            Lang::En,
        );
        faq.chunk.kind = SourceKind::Faq;
        faq.chunk.title = "Can I temporarily freeze my card in the app?".into();
        faq.chunk.section = None;
        faq.chunk.text = format!(
            "{}\n{}",
            faq.chunk.title, "Yes. In the Lantern App go to Cards, select the card and tap Freeze card."
        );
        let answer = compose_en(
            "how do i freeze my card",
            std::slice::from_ref(&faq),
            std::slice::from_ref(&faq),
        );
        assert_eq!(
            answer.text,
            "Our help page \"Can I temporarily freeze my card in the app?\" says: In the Lantern App go to Cards, select the card and tap Freeze card. [1]"
        );
        let mut zh = hit("faq-zh", "是的，您可以在App中冻结卡片。", Lang::ZhCn);
        zh.chunk.kind = SourceKind::Faq;
        zh.chunk.title = "可以临时冻结卡吗？".into();
        zh.chunk.section = None;
        zh.chunk.text = format!("{}\n{}", zh.chunk.title, "是的，您可以在App中冻结卡片。");
        let bm25 = Bm25Encoder::new();
        let cache = PassageCache::new(4);
        let question = Reading::new(
            "怎么冻结卡片",
            Lang::ZhCn,
            &bm25,
            Arc::new(Vocabulary::default()),
            &cache,
        );
        let answer = compose(&question, std::slice::from_ref(&zh), std::slice::from_ref(&zh)).unwrap();
        assert_eq!(
            answer.text,
            "本行帮助页面《可以临时冻结卡吗？》写道：您可以在App中冻结卡片。 [1]"
        );
    }
}
