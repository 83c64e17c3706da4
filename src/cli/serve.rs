//! `teller serve`: the HTTP API.

use crate::config::Settings;
use crate::startup::Application;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (default: TELLER_BIND or 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<String>,
}

pub async fn run(mut settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(bind) = args.bind {
        settings.bind = bind;
    }
    Application::build(&settings).await?.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}
