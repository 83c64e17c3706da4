//! Knowledge insights: what the record says the knowledge base fails to answer, over a
//! period. The questions refused for missing knowledge or handed over, grouped into topics
//! ([`topics`]); answers rated "not helpful" by the source they cited; sources never cited
//! and sources past their age; replies, handoffs and risk alerts per day. The same reports
//! serve `/v1/insights/...` and `teller insights`; reading them is the caller's audit event.

pub mod cluster;
mod daily;
mod reports;
pub mod terms;
pub mod topics;

pub use daily::{DailyReport, Series};
pub use reports::{FeedbackReport, RatedAnswer, SourceFeedback, SourcesReport, StaleSource};
pub use topics::{ClosestSource, GapReport, Method, Topic};

use crate::audit::{AuditError, AuditStore, Timestamp};
use crate::retrieval::store::StoreError;
use crate::retrieval::Index;
use std::sync::Arc;

/// The longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// A report's period: `from` inclusive, `to` exclusive, at most [`MAX_PERIOD_DAYS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Period {
    /// Reads the period's ends (a date `YYYY-MM-DD` is its midnight UTC).
    pub fn parse(from: &str, to: &str) -> Result<Self, InsightsError> {
        let time = |value: &str| {
            value
                .parse::<Timestamp>()
                .map_err(|e| InsightsError::InvalidPeriod(e.to_string()))
        };
        let (from, to) = (time(from)?, time(to)?);
        let instant =
            |t: &Timestamp| chrono::DateTime::parse_from_rfc3339(t.as_str()).expect("timestamps are RFC 3339");
        let days = (instant(&to) - instant(&from)).num_seconds() as f64 / 86_400.0;
        if days <= 0.0 {
            return Err(InsightsError::InvalidPeriod("`to` must be after `from`".into()));
        }
        if days > MAX_PERIOD_DAYS as f64 {
            return Err(InsightsError::InvalidPeriod(format!(
                "a report covers at most {MAX_PERIOD_DAYS} days"
            )));
        }
        Ok(Self { from, to })
    }
}

/// What a report can fail with.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    #[error("invalid period: {0}")]
    InvalidPeriod(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Index(#[from] StoreError),
}

/// Settings of the reports.
#[derive(Debug, Clone, Copy)]
pub struct InsightsOptions {
    /// Sources with an `effective_date` older than this are stale.
    pub stale_after_days: u32,
}

/// The reports, over the audit store and the knowledge base's index.
#[derive(Clone)]
pub struct Insights {
    audit: Arc<AuditStore>,
    index: Index,
    options: InsightsOptions,
}

impl Insights {
    pub fn new(audit: Arc<AuditStore>, index: Index, options: InsightsOptions) -> Self {
        Self { audit, index, options }
    }

    /// The store the reports read (and their readers are recorded in).
    pub fn audit(&self) -> &Arc<AuditStore> {
        &self.audit
    }

    /// Refused and handed-over questions, grouped into topics, largest first.
    pub async fn gaps(&self, period: &Period) -> Result<GapReport, InsightsError> {
        let questions = self.audit.gap_questions(&period.from, &period.to).await?;
        let sources = self.index.store.sources().await?;
        Ok(topics::report(period, &questions, &self.index, &sources).await)
    }

    /// Answers rated "not helpful", grouped by the source they cited.
    pub async fn feedback(&self, period: &Period) -> Result<FeedbackReport, InsightsError> {
        let rated = self.audit.rated_down(&period.from, &period.to).await?;
        let sources = self.index.store.sources().await?;
        Ok(reports::feedback(period, &rated, &sources))
    }

    /// Sources never cited in the period, and sources past their age (as of now).
    pub async fn sources(&self, period: &Period) -> Result<SourcesReport, InsightsError> {
        let cited = self.audit.cited_lists(&period.from, &period.to).await?;
        let sources = self.index.store.sources().await?;
        let today = chrono::Utc::now().date_naive();
        Ok(reports::sources(
            period,
            &cited,
            sources,
            today,
            self.options.stale_after_days,
        ))
    }

    /// Replies by mode, handoffs by reason and risk alerts by reason, per day.
    pub async fn daily(&self, period: &Period) -> Result<DailyReport, InsightsError> {
        daily::report(&self.audit, period).await
    }
}
