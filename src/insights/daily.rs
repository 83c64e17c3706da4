//! Day-by-day counts for the charts: assistant replies by mode, handoffs by reason (the
//! assistant's and the customers' own requests) and risk alerts by reason, so that a wave
//! of scam reports stands out.

use super::{InsightsError, Period};
use crate::audit::{AuditStore, DayCount, EventKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts per day of each label, over every day of a period (days without events are 0).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DailyReport {
    pub from: String,
    pub to: String,
    /// `YYYY-MM-DD` (UTC), every day of the period in order.
    pub days: Vec<String>,
    /// Assistant replies by mode.
    pub modes: Vec<Series>,
    /// Conversations queued for a person, by reason.
    pub handoff_reasons: Vec<Series>,
    /// Risk alerts (scams, lost cards...), by reason.
    pub risk_alerts: Vec<Series>,
}

/// One label's count on each day of [`DailyReport::days`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Series {
    pub label: String,
    pub total: u64,
    pub counts: Vec<u64>,
}

/// The part of a handoff or risk-alert payload counted.
#[derive(Deserialize)]
struct Reasoned {
    reason: String,
}

pub(super) async fn report(audit: &AuditStore, period: &Period) -> Result<DailyReport, InsightsError> {
    let days = days_of(period);
    let modes = audit.modes_per_day(&period.from, &period.to).await?;
    let mut reasons = Vec::new();
    for kind in [EventKind::HandoffRequested, EventKind::RiskAlert] {
        let payloads = audit.kind_payloads(kind, &period.from, &period.to).await?;
        reasons.push(count_reasons(&payloads));
    }
    let risk_alerts = reasons.pop().expect("two kinds");
    let handoff_reasons = reasons.pop().expect("two kinds");
    Ok(DailyReport {
        from: period.from.to_string(),
        to: period.to.to_string(),
        modes: series(&days, &modes),
        handoff_reasons: series(&days, &handoff_reasons),
        risk_alerts: series(&days, &risk_alerts),
        days,
    })
}

/// Every day the period touches, `YYYY-MM-DD`.
fn days_of(period: &Period) -> Vec<String> {
    let date = |t: &str| chrono::NaiveDate::parse_from_str(&t[..10], "%Y-%m-%d").expect("timestamps start with a date");
    let (first, end) = (date(period.from.as_str()), period.to.as_str());
    let mut days = Vec::new();
    let mut day = first;
    // `to` is exclusive: its own day counts only when it starts after midnight.
    while day.format("%Y-%m-%dT00:00:00.000000Z").to_string().as_str() < end {
        days.push(day.to_string());
        day = day.succ_opt().expect("a day within chrono's range");
    }
    days
}

/// Counts `(time, payload)` rows per day and payload reason.
fn count_reasons(rows: &[(String, Option<String>)]) -> Vec<DayCount> {
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (time, payload) in rows {
        let Some(reason) = payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Reasoned>(p).ok())
        else {
            continue;
        };
        let day = time.get(..10).unwrap_or(time).to_string();
        *counts.entry((day, reason.reason)).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|((day, label), count)| DayCount { day, label, count })
        .collect()
}

/// One series per label, aligned with `days`, largest total first.
fn series(days: &[String], counts: &[DayCount]) -> Vec<Series> {
    let position: BTreeMap<&str, usize> = days.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    let mut by_label: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for count in counts {
        let Some(&i) = position.get(count.day.as_str()) else {
            continue;
        };
        by_label
            .entry(count.label.as_str())
            .or_insert_with(|| vec![0; days.len()])[i] += count.count.max(0) as u64;
    }
    let mut series: Vec<Series> = by_label
        .into_iter()
        .map(|(label, counts)| Series {
            label: label.to_string(),
            total: counts.iter().sum(),
            counts,
        })
        .collect();
    series.sort_by(|a, b| b.total.cmp(&a.total).then(a.label.cmp(&b.label)));
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_the_period_has_a_count_per_label() {
        let period = Period::parse("2026-11-29", "2026-12-02").unwrap();
        let days = days_of(&period);
        assert_eq!(days, ["2026-11-29", "2026-11-30", "2026-12-01"]);
        let rows = vec![
            (
                "2026-11-29T10:00:00.000000Z".to_string(),
                Some(r#"{"reason":"fraud_or_scam"}"#.to_string()),
            ),
            (
                "2026-12-01T10:00:00.000000Z".to_string(),
                Some(r#"{"reason":"fraud_or_scam"}"#.to_string()),
            ),
            (
                "2026-12-01T11:00:00.000000Z".to_string(),
                Some(r#"{"reason":"fraud_or_scam"}"#.to_string()),
            ),
            (
                "2026-12-01T12:00:00.000000Z".to_string(),
                Some(r#"{"reason":"lost_card"}"#.to_string()),
            ),
            // Erased by a retention purge: no reason left to count.
            ("2026-12-01T13:00:00.000000Z".to_string(), None),
        ];
        let series = series(&days, &count_reasons(&rows));
        assert_eq!(
            series,
            [
                Series {
                    label: "fraud_or_scam".into(),
                    total: 3,
                    counts: vec![1, 0, 2]
                },
                Series {
                    label: "lost_card".into(),
                    total: 1,
                    counts: vec![0, 0, 1]
                },
            ]
        );
        // A period ending after midnight includes its last day.
        let period = Period::parse("2026-11-29", "2026-11-30T06:00:00Z").unwrap();
        assert_eq!(days_of(&period), ["2026-11-29", "2026-11-30"]);
    }
}
