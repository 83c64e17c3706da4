//! `teller ingest`: index the knowledge base incrementally.

use crate::config::Settings;
use crate::knowledge::{ingest, IngestOptions};
use crate::retrieval::Index;
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Knowledge-base folder (default: TELLER_KB_DIR or ./knowledge_base).
    #[arg(long)]
    kb: Option<PathBuf>,
    /// Remove indexed sources that are no longer in the folder.
    #[arg(long)]
    prune: bool,
}

/// Ingests and prints the summary; exits non-zero when any file failed to load.
pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let kb = args.kb.unwrap_or_else(|| settings.kb_dir.clone());
    let index = Index::open(settings).await?;
    let summary = ingest(
        &index,
        &settings.chunker(),
        &IngestOptions {
            kb_dir: kb.clone(),
            prune: args.prune,
            progress: std::io::stderr().is_terminal(),
        },
    )
    .await
    .with_context(|| format!("ingest of {} failed", kb.display()))?;
    for error in &summary.errors {
        eprintln!("error: {error}");
    }
    println!("{summary}");
    Ok(if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
