//! `teller guard-eval`: masking, escalation and injection screening measured on labelled
//! sets, as JSON.

use crate::config::Settings;
use crate::guard::labelled;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder holding the labelled sets.
    #[arg(long, default_value = "tests/fixtures/guard")]
    sets: PathBuf,
    /// Also list every miss and false positive.
    #[arg(long)]
    details: bool,
}

pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let guard = crate::startup::build_guard(settings)?;
    let mut pii = labelled::evaluate_pii(&args.sets.join("pii.jsonl"), &guard)?;
    let mut escalation = labelled::evaluate_escalation(&args.sets.join("escalation.jsonl"))?;
    let mut injection = labelled::evaluate_injection(&args.sets.join("injection.jsonl"))?;
    if !args.details {
        for list in [
            &mut pii.misses,
            &mut pii.false_positives,
            &mut escalation.misses,
            &mut escalation.false_positives,
            &mut injection.misses,
            &mut injection.false_positives,
        ] {
            list.clear();
        }
    }
    let out = serde_json::json!({ "pii": pii, "escalation": escalation, "injection": injection });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
