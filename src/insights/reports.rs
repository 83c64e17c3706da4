//! The reports on sources: answers rated "not helpful" by the source they cited, sources
//! no answer cited, and sources past their age.

use super::Period;
use crate::audit::RatedDown;
use crate::lang::Lang;
use crate::retrieval::store::IndexedSource;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Rated-down answers shown per source.
const EXAMPLES: usize = 5;

/// Answers rated "not helpful" in a period, by cited source.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedbackReport {
    pub from: String,
    pub to: String,
    /// Answers whose current rating is "not helpful".
    pub rated_down: u64,
    /// Most rated-down first; an answer citing two sources counts for both.
    pub by_source: Vec<SourceFeedback>,
}

/// The rated-down answers that cited one source (or none).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceFeedback {
    /// `None`: answers that cited no source.
    pub source_id: Option<String>,
    pub title: Option<String>,
    pub rated_down: u64,
    /// The latest few, masked as recorded.
    pub answers: Vec<RatedAnswer>,
}

/// One rated-down answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RatedAnswer {
    pub conversation_id: String,
    pub message_id: String,
    pub question: Option<String>,
    pub comment: Option<String>,
    pub rated_at: String,
}

/// Sources no answer of the period cited, and sources past their age.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourcesReport {
    pub from: String,
    pub to: String,
    /// Sources in the index.
    pub indexed: usize,
    pub never_cited: Vec<IndexedSource>,
    /// The age past which a source is stale.
    pub stale_after_days: u32,
    /// Oldest first.
    pub stale: Vec<StaleSource>,
    /// Sources that give no (readable) `effective_date`.
    pub undated: Vec<IndexedSource>,
}

/// A source whose `effective_date` is older than the configured age.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaleSource {
    pub source_id: String,
    pub title: String,
    #[schema(value_type = String)]
    pub lang: Lang,
    pub effective_date: String,
    pub age_days: i64,
}

/// The part of a recorded citation the reports read.
#[derive(Deserialize)]
struct Cited {
    source_id: String,
}

fn cited_ids(citations: Option<&str>) -> Vec<String> {
    let cited: Vec<Cited> = citations.and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
    let mut ids: Vec<String> = cited.into_iter().map(|c| c.source_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

pub(super) fn feedback(period: &Period, rated: &[RatedDown], sources: &[IndexedSource]) -> FeedbackReport {
    let titles: HashMap<&str, &str> = sources
        .iter()
        .map(|s| (s.source_id.as_str(), s.title.as_str()))
        .collect();
    let mut by_source: BTreeMap<Option<String>, Vec<&RatedDown>> = BTreeMap::new();
    for answer in rated {
        let ids = cited_ids(answer.citations.as_deref());
        if ids.is_empty() {
            by_source.entry(None).or_default().push(answer);
        }
        for id in ids {
            by_source.entry(Some(id)).or_default().push(answer);
        }
    }
    let mut by_source: Vec<SourceFeedback> = by_source
        .into_iter()
        .map(|(source_id, answers)| SourceFeedback {
            title: source_id
                .as_deref()
                .and_then(|id| titles.get(id))
                .map(|t| t.to_string()),
            source_id,
            rated_down: answers.len() as u64,
            answers: answers
                .iter()
                .rev()
                .take(EXAMPLES)
                .map(|a| RatedAnswer {
                    conversation_id: a.conversation_id.clone(),
                    message_id: a.message_id.clone(),
                    question: a.question.clone(),
                    comment: a.comment.clone(),
                    rated_at: a.created_at.clone(),
                })
                .collect(),
        })
        .collect();
    by_source.sort_by(|a, b| b.rated_down.cmp(&a.rated_down).then(a.source_id.cmp(&b.source_id)));
    FeedbackReport {
        from: period.from.to_string(),
        to: period.to.to_string(),
        rated_down: rated.len() as u64,
        by_source,
    }
}

pub(super) fn sources(
    period: &Period,
    cited_lists: &[String],
    sources: Vec<IndexedSource>,
    today: chrono::NaiveDate,
    stale_after_days: u32,
) -> SourcesReport {
    let cited: HashSet<String> = cited_lists.iter().flat_map(|c| cited_ids(Some(c.as_str()))).collect();
    let indexed = sources.len();
    let mut never_cited = Vec::new();
    let mut stale = Vec::new();
    let mut undated = Vec::new();
    for source in sources {
        let date = source
            .effective_date
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok());
        match date {
            Some(date) if (today - date).num_days() > i64::from(stale_after_days) => stale.push(StaleSource {
                source_id: source.source_id.clone(),
                title: source.title.clone(),
                lang: source.lang,
                effective_date: date.to_string(),
                age_days: (today - date).num_days(),
            }),
            Some(_) => {}
            None => undated.push(source.clone()),
        }
        if !cited.contains(&source.source_id) {
            never_cited.push(source);
        }
    }
    stale.sort_by(|a, b| {
        a.effective_date
            .cmp(&b.effective_date)
            .then(a.source_id.cmp(&b.source_id))
    });
    SourcesReport {
        from: period.from.to_string(),
        to: period.to.to_string(),
        indexed,
        never_cited,
        stale_after_days,
        stale,
        undated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(id: &str, date: Option<&str>) -> IndexedSource {
        IndexedSource {
            source_id: id.into(),
            source_hash: "h".into(),
            title: id.to_uppercase(),
            lang: Lang::En,
            effective_date: date.map(str::to_string),
        }
    }

    #[test]
    fn sources_never_cited_stale_and_undated() {
        let period = Period::parse("2026-11-01", "2026-12-01").unwrap();
        let cited = vec![r#"[{"source_id":"a","title":"A"},{"source_id":"b","title":"B"}]"#.to_string()];
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let report = sources(
            &period,
            &cited,
            vec![
                source("a", Some("2026-06-01")),
                source("b", Some("2024-01-31")),
                source("c", None),
                source("d", Some("2026-01-01")),
            ],
            today,
            365,
        );
        let ids = |s: &[IndexedSource]| s.iter().map(|s| s.source_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&report.never_cited), ["c", "d"]);
        assert_eq!(report.stale.len(), 1);
        assert_eq!(report.stale[0].source_id, "b");
        assert_eq!(report.stale[0].age_days, 1038);
        assert_eq!(ids(&report.undated), ["c"]);
    }

    #[test]
    fn rated_down_answers_count_for_each_source_they_cite() {
        let period = Period::parse("2026-11-01", "2026-12-01").unwrap();
        let answer = |id: &str, citations: &str| RatedDown {
            message_id: id.into(),
            conversation_id: "c".into(),
            citations: Some(citations.into()),
            comment: None,
            question: Some("q".into()),
            created_at: "2026-11-02T00:00:00.000000Z".into(),
        };
        let rated = vec![
            answer("1", r#"[{"source_id":"a"},{"source_id":"b"}]"#),
            answer("2", r#"[{"source_id":"a"}]"#),
            answer("3", "[]"),
        ];
        let report = feedback(&period, &rated, &[source("a", None)]);
        assert_eq!(report.rated_down, 3);
        let counts: Vec<(Option<&str>, u64)> = report
            .by_source
            .iter()
            .map(|s| (s.source_id.as_deref(), s.rated_down))
            .collect();
        assert_eq!(counts, [(Some("a"), 2), (None, 1), (Some("b"), 1)]);
        assert_eq!(report.by_source[0].title.as_deref(), Some("A"));
    }
}
