//! `teller guard-eval`: masking, escalation, advice and injection screening measured on
//! labelled sets, as JSON.

use crate::config::Settings;
use crate::guard::labelled::{self, ClassifierReport, PiiReport};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder holding the labelled sets: any of pii.jsonl, escalation.jsonl, advice.jsonl
    /// and injection.jsonl (format in tests/fixtures/guard/README.md).
    #[arg(long, default_value = "tests/fixtures/guard")]
    sets: PathBuf,
    /// Also list every miss and false positive.
    #[arg(long)]
    details: bool,
}

#[derive(Serialize)]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pii: Option<PiiReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation: Option<ClassifierReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    advice: Option<ClassifierReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    injection: Option<ClassifierReport>,
}

pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let guard = crate::startup::build_guard(settings)?;
    let path = |name: &str| Some(args.sets.join(name)).filter(|p| p.exists());
    let mut report = Report {
        pii: path("pii.jsonl")
            .map(|p| labelled::evaluate_pii(&p, &guard))
            .transpose()?,
        escalation: path("escalation.jsonl")
            .map(|p| labelled::evaluate_escalation(&p, &guard))
            .transpose()?,
        advice: path("advice.jsonl")
            .map(|p| labelled::evaluate_advice(&p, &guard))
            .transpose()?,
        injection: path("injection.jsonl")
            .map(|p| labelled::evaluate_injection(&p))
            .transpose()?,
    };
    if !args.details {
        if let Some(p) = report.pii.as_mut() {
            p.misses.clear();
            p.false_positives.clear();
        }
        for c in [&mut report.escalation, &mut report.advice, &mut report.injection]
            .into_iter()
            .flatten()
        {
            c.misses.clear();
            c.false_positives.clear();
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
