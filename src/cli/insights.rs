//! `teller insights`: the knowledge insights of a period (the topics Teller refused or
//! handed over, rated-down answers by source, sources never cited or stale, daily counts),
//! as text or one JSON object; recorded as the operator's read.

use crate::audit::{Actor, InsightsRead};
use crate::config::Settings;
use crate::insights::{DailyReport, FeedbackReport, GapReport, Insights, Period, Series, SourcesReport};
use crate::retrieval::Index;
use crate::startup::open_audit;
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start, inclusive (YYYY-MM-DD, or an RFC 3339 time).
    #[arg(long)]
    from: String,
    /// End, exclusive (at most 366 days after --from).
    #[arg(long)]
    to: String,
    /// One JSON object: {"gaps", "feedback", "sources", "daily"}.
    #[arg(long)]
    json: bool,
    /// Topics shown in the text output.
    #[arg(long, default_value_t = 20)]
    topics: usize,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let period = Period::parse(&args.from, &args.to)?;
    let audit = Arc::new(open_audit(settings).await?);
    let index = Index::open(settings).await?;
    let insights = Insights::new(audit.clone(), index, settings.insights_options());
    let read = InsightsRead {
        report: "all",
        from: period.from.to_string(),
        to: period.to.to_string(),
    };
    audit.record_staff_action(Actor::Operator, &read).await?;
    let gaps = insights.gaps(&period).await?;
    let feedback = insights.feedback(&period).await?;
    let sources = insights.sources(&period).await?;
    let daily = insights.daily(&period).await?;
    if args.json {
        let all = serde_json::json!({ "gaps": gaps, "feedback": feedback, "sources": sources, "daily": daily });
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print!(
            "{}",
            Text {
                gaps: &gaps,
                feedback: &feedback,
                sources: &sources,
                daily: &daily,
                topics: args.topics
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The reports as text, one section each.
struct Text<'a> {
    gaps: &'a GapReport,
    feedback: &'a FeedbackReport,
    sources: &'a SourcesReport,
    daily: &'a DailyReport,
    topics: usize,
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.gaps;
        writeln!(f, "Knowledge gaps {} to {}", g.from, g.to)?;
        writeln!(
            f,
            "  {} questions refused or handed over ({} distinct), grouped by {:?} into {} topics",
            g.questions,
            g.distinct,
            g.method,
            g.topics.len()
        )?;
        for (rank, topic) in g.topics.iter().take(self.topics).enumerate() {
            writeln!(
                f,
                "  {:>3}. {} — {} asked ({} refused, {} handed over)",
                rank + 1,
                topic.label,
                topic.count,
                topic.refused,
                topic.handed_over
            )?;
            for example in &topic.examples {
                writeln!(f, "         “{example}”")?;
            }
            if let Some(source) = topic.closest_sources.first() {
                let title = source.title.as_deref().unwrap_or("no longer indexed");
                writeln!(f, "         closest source: {} ({title})", source.source_id)?;
            }
        }
        writeln!(f, "\nRated not helpful: {}", self.feedback.rated_down)?;
        for source in &self.feedback.by_source {
            let id = source.source_id.as_deref().unwrap_or("(no source cited)");
            writeln!(
                f,
                "  {:>4}  {id} {}",
                source.rated_down,
                source.title.as_deref().unwrap_or("")
            )?;
        }
        let s = self.sources;
        writeln!(
            f,
            "\nSources: {} indexed, {} never cited in the period",
            s.indexed,
            s.never_cited.len()
        )?;
        for source in &s.never_cited {
            writeln!(f, "  never cited: {} ({})", source.source_id, source.title)?;
        }
        writeln!(f, "Older than {} days: {}", s.stale_after_days, s.stale.len())?;
        for source in &s.stale {
            writeln!(
                f,
                "  {} {} ({} days)",
                source.effective_date, source.source_id, source.age_days
            )?;
        }
        if !s.undated.is_empty() {
            writeln!(f, "Without an effective_date: {}", s.undated.len())?;
        }
        writeln!(f, "\nPer day, {} days:", self.daily.days.len())?;
        for (name, series) in [
            ("replies by mode", &self.daily.modes),
            ("handoffs by reason", &self.daily.handoff_reasons),
            ("risk alerts", &self.daily.risk_alerts),
        ] {
            writeln!(f, "  {name}: {}", Totals(series))?;
        }
        Ok(())
    }
}

/// `label total, ...`, or `none`.
struct Totals<'a>(&'a [Series]);

impl fmt::Display for Totals<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(|s| format!("{} {}", s.label, s.total)).collect();
        f.write_str(&parts.join(", "))
    }
}
