//! `teller token`: staff API tokens.

use crate::audit::StaffRole;
use crate::config::Settings;
use crate::startup::open_audit;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a token; it is printed once and only its hash is stored.
    Create {
        /// agent, compliance or admin.
        #[arg(long)]
        role: StaffRole,
        #[arg(long)]
        name: String,
    },
    /// Revoke a token by name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let audit = open_audit(settings).await?;
    match command {
        Command::Create { role, name } => {
            let token = audit.create_token(&name, role).await?;
            eprintln!("token {name:?} ({role}) created; it is shown only now:");
            println!("{token}");
        }
        Command::Revoke { name } => {
            if !audit.revoke_token(&name).await? {
                eprintln!("error: no active token named {name:?}");
                return Ok(ExitCode::FAILURE);
            }
            println!("token {name:?} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
