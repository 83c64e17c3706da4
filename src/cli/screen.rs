//! `teller screen`: what the inbound screen makes of one message, for whoever tunes the
//! rules or retrains the models: the masked text, the verdicts and what decided them.

use crate::config::Settings;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The customer's message.
    message: String,
}

pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let guard = crate::startup::build_guard(settings)?;
    let screened = guard.screen(&args.message);
    let escalation = guard.models.escalation.probabilities_of(
        &crate::guard::models::Features::of(&screened.masked.text)
            .with_escalation(crate::guard::escalation::escalation_reason(&screened.masked.text)),
    );
    let out = serde_json::json!({
        "masked": screened.masked.text,
        "found": screened.masked.found,
        "escalation": screened.escalation,
        "advice": screened.asks_for_advice,
        "injection": screened.injection,
        "signals": screened.signals,
        "escalation_probabilities": guard.models.escalation.classes.iter().zip(escalation).collect::<std::collections::BTreeMap<_, _>>(),
        "escalation_threshold": guard.models.escalation.threshold,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
