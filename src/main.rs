use clap::Parser;

/// glibc's allocator spent a third of the server's CPU under load (per-request buffers
/// of search, JSON and hashing); mimalloc's thread-local free lists remove most of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;
use teller::cli::{self, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its work; one-shot commands keep stderr for problems only.
    let telemetry = teller::telemetry::init(match cli.command {
        Command::Serve(_) => "info,qdrant_edge=error",
        _ => "warn,qdrant_edge=error",
    });
    let code = match cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
