//! The `teller` command line: one binary, one module per subcommand, each with its
//! arguments and a `run`.

mod audit;
pub mod calibrate;
mod eval;
mod guard_eval;
mod ingest;
mod insights;
mod screen;
mod search;
mod serve;
mod token;

use crate::config::Settings;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "teller",
    version,
    about = "Retrieval-augmented customer service for retail banks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (ingests the knowledge base on first start if the index is empty).
    Serve(serve::Args),
    /// Index the knowledge base (incremental: unchanged sources are skipped).
    Ingest(ingest::Args),
    /// Search the index and print the best passages.
    Search(search::Args),
    /// The audit log: verify, checkpoint, export.
    Audit {
        #[command(subcommand)]
        command: audit::Command,
    },
    /// Knowledge insights of a period: refused and handed-over topics, rated-down answers
    /// by source, sources never cited or stale, replies, handoffs and risk alerts per day.
    Insights(insights::Args),
    /// Staff API tokens.
    Token {
        #[command(subcommand)]
        command: token::Command,
    },
    /// Measure retrieval on labelled questions (see design.md §Evaluation).
    Eval(eval::Args),
    /// Fit the learned parts (the screen's classifiers) from the labelled sets and write
    /// them to models/.
    Calibrate {
        #[command(subcommand)]
        command: calibrate::Command,
    },
    /// Show what the inbound screen makes of one message (masking, escalation, advice,
    /// injection) and why.
    Screen(screen::Args),
    /// Measure the guardrails on labelled sets (pii.jsonl, escalation.jsonl,
    /// injection.jsonl; format in tests/fixtures/guard/README.md) and print JSON.
    GuardEval(guard_eval::Args),
}

/// Runs a parsed command; the exit code says whether it fully succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load()?;
    match cli.command {
        Command::Serve(args) => serve::run(settings, args).await,
        Command::Ingest(args) => ingest::run(&settings, args).await,
        Command::Search(args) => search::run(&settings, args).await,
        Command::Audit { command } => audit::run(&settings, command).await,
        Command::Token { command } => token::run(&settings, command).await,
        Command::Insights(args) => insights::run(&settings, args).await,
        Command::Eval(args) => eval::run(&settings, args).await,
        Command::GuardEval(args) => guard_eval::run(&settings, args),
        Command::Screen(args) => screen::run(&settings, args),
        Command::Calibrate { command } => calibrate::run(&settings, command).await,
    }
}
