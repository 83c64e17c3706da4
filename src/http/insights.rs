//! Knowledge insights under `/v1/insights`: the topics of refused and handed-over
//! questions, rated-down answers by source, sources never cited or stale, and the daily
//! counts. Roles `compliance` and `admin`; every read is an `insights_read` event,
//! recorded before anything is returned.

use super::error::ApiError;
use super::extract::{AppQuery, KnowledgeOwner};
use super::openapi::ErrorBody;
use super::AppState;
use crate::audit::InsightsRead;
use crate::chat::ChatError;
use crate::insights::{DailyReport, FeedbackReport, GapReport, Insights, InsightsError, Period, SourcesReport};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/insights/gaps", get(gaps))
        .route("/v1/insights/feedback", get(feedback))
        .route("/v1/insights/sources", get(sources))
        .route("/v1/insights/daily", get(daily))
}

impl From<InsightsError> for ApiError {
    fn from(error: InsightsError) -> Self {
        match error {
            InsightsError::InvalidPeriod(message) => ApiError::InvalidRequest(message),
            InsightsError::Audit(e) => ApiError::Audit(e),
            InsightsError::Index(e) => ApiError::Chat(ChatError::RetrievalUnavailable(e.into())),
        }
    }
}

/// The period of a report.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Start, inclusive (`YYYY-MM-DD` is its midnight UTC, or an RFC 3339 time).
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    from: String,
    /// End, exclusive; at most 366 days after `from`.
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    to: String,
}

/// Reads the period, then records who reads which report over it.
async fn audited(
    insights: &Insights,
    staff: &KnowledgeOwner,
    report: &'static str,
    query: &PeriodQuery,
) -> Result<Period, ApiError> {
    let period = Period::parse(&query.from, &query.to)?;
    let read = InsightsRead {
        report,
        from: period.from.to_string(),
        to: period.to.to_string(),
    };
    insights.audit().record_staff_action(staff.0.actor(), &read).await?;
    Ok(period)
}

/// The questions refused for missing knowledge or handed over, grouped into topics,
/// largest first.
#[utoipa::path(
    get, path = "/v1/insights/gaps", tag = "insights",
    params(PeriodQuery),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "The topics of the period", body = GapReport),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance or admin token", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a period that cannot be read, is empty or too long", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`, `retrieval_unavailable`", body = ErrorBody),
    )
)]
pub async fn gaps(
    State(insights): State<Insights>,
    staff: KnowledgeOwner,
    AppQuery(query): AppQuery<PeriodQuery>,
) -> Result<Json<GapReport>, ApiError> {
    let period = audited(&insights, &staff, "gaps", &query).await?;
    Ok(Json(insights.gaps(&period).await?))
}

/// Answers rated "not helpful", grouped by the source they cited.
#[utoipa::path(
    get, path = "/v1/insights/feedback", tag = "insights",
    params(PeriodQuery),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "Rated-down answers by source", body = FeedbackReport),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance or admin token", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a period that cannot be read, is empty or too long", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`, `retrieval_unavailable`", body = ErrorBody),
    )
)]
pub async fn feedback(
    State(insights): State<Insights>,
    staff: KnowledgeOwner,
    AppQuery(query): AppQuery<PeriodQuery>,
) -> Result<Json<FeedbackReport>, ApiError> {
    let period = audited(&insights, &staff, "feedback", &query).await?;
    Ok(Json(insights.feedback(&period).await?))
}

/// Sources no answer of the period cited, and sources whose `effective_date` is older
/// than `TELLER_STALE_SOURCE_DAYS`.
#[utoipa::path(
    get, path = "/v1/insights/sources", tag = "insights",
    params(PeriodQuery),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "Sources never cited, stale and undated", body = SourcesReport),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance or admin token", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a period that cannot be read, is empty or too long", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`, `retrieval_unavailable`", body = ErrorBody),
    )
)]
pub async fn sources(
    State(insights): State<Insights>,
    staff: KnowledgeOwner,
    AppQuery(query): AppQuery<PeriodQuery>,
) -> Result<Json<SourcesReport>, ApiError> {
    let period = audited(&insights, &staff, "sources", &query).await?;
    Ok(Json(insights.sources(&period).await?))
}

/// Assistant replies by mode, handoffs by reason and risk alerts by reason, per day.
#[utoipa::path(
    get, path = "/v1/insights/daily", tag = "insights",
    params(PeriodQuery),
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "Counts per day", body = DailyReport),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a compliance or admin token", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a period that cannot be read, is empty or too long", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    )
)]
pub async fn daily(
    State(insights): State<Insights>,
    staff: KnowledgeOwner,
    AppQuery(query): AppQuery<PeriodQuery>,
) -> Result<Json<DailyReport>, ApiError> {
    let period = audited(&insights, &staff, "daily", &query).await?;
    Ok(Json(insights.daily(&period).await?))
}
