//! `teller audit`: verify, checkpoint, export, purge and legal holds, each recorded as
//! the operator's action.

use crate::audit::{
    Actor, AuditExported, AuditVerified, Checkpoint, ExportFormat, PurgeReport, Timestamp, Verification, GENESIS_HASH,
};
use crate::config::Settings;
use crate::startup::open_audit;
use anyhow::Context;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Prove the log intact (chain, erasures, seals, derived rows, checkpoint file); exit 0
    /// when intact, 1 naming the first bad event. Writes nothing unless --record.
    Verify {
        /// A checkpoint (SEQ:HASH from `teller audit checkpoint`) the log must still contain.
        #[arg(long)]
        from_checkpoint: Option<Checkpoint>,
        /// The checkpoint file to check the log's tail against (default: TELLER_CHECKPOINT_FILE).
        #[arg(long)]
        checkpoint_file: Option<PathBuf>,
        /// Record the verification in the log, as the operator's action.
        #[arg(long)]
        record: bool,
    },
    /// Print the latest SEQ:HASH, to keep outside the database.
    Checkpoint,
    /// Retention: erase conversation content older than DATE (legal holds excepted);
    /// hashes stay, so the chain still verifies.
    Purge {
        #[arg(long)]
        before: Timestamp,
    },
    /// Place a legal hold on a conversation (purges skip it).
    Hold {
        #[arg(long)]
        conversation: uuid::Uuid,
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        #[arg(long)]
        conversation: uuid::Uuid,
    },
    /// Write the events of a period (from inclusive, to exclusive; YYYY-MM-DD or RFC 3339).
    Export {
        #[arg(long)]
        from: Timestamp,
        #[arg(long)]
        to: Timestamp,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: ExportFormat,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let mut audit = open_audit(settings).await?;
    match command {
        Command::Verify {
            from_checkpoint,
            checkpoint_file,
            record,
        } => {
            if let Some(path) = checkpoint_file {
                audit = audit.with_checkpoint_file(path);
            }
            let report = match &from_checkpoint {
                Some(checkpoint) => audit.verify_from_checkpoint(checkpoint).await?,
                None => audit.verify().await?,
            };
            if record {
                let verified = AuditVerified {
                    ok: report.intact(),
                    events: report.events,
                };
                audit.record_staff_action(Actor::Operator, &verified).await?;
            }
            if report.intact() {
                println!("{}", Intact(&report));
                Ok(ExitCode::SUCCESS)
            } else {
                let (seq, error) = (
                    report.first_bad_seq.unwrap_or_default(),
                    report.error.unwrap_or_default(),
                );
                eprintln!("audit log NOT intact: first bad event seq {seq}: {error}");
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Purge { before } => {
            let report = audit.purge(before.as_str(), Actor::Operator).await?;
            println!("{}", Purged(&report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Hold { conversation, reason } => {
            audit.hold(&conversation.to_string(), &reason, Actor::Operator).await?;
            println!("conversation {conversation} is on legal hold");
            Ok(ExitCode::SUCCESS)
        }
        Command::Release { conversation } => {
            if !audit.release_hold(&conversation.to_string(), Actor::Operator).await? {
                eprintln!("error: conversation {conversation} is not on legal hold");
                return Ok(ExitCode::FAILURE);
            }
            println!("legal hold on {conversation} released");
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint => {
            match audit.checkpoint().await? {
                Some(checkpoint) => println!("{checkpoint}"),
                None => println!("0:{GENESIS_HASH}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            from,
            to,
            format,
            output,
        } => {
            let (from, to) = (from.as_str(), to.as_str());
            let count = match &output {
                Some(path) => {
                    let file =
                        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                    audit
                        .export(from, to, format, &mut std::io::BufWriter::new(file))
                        .await?
                }
                None => audit.export(from, to, format, &mut std::io::stdout()).await?,
            };
            let exported = AuditExported {
                from: from.to_string(),
                to: to.to_string(),
                format,
                events: Some(count),
            };
            audit.record_staff_action(Actor::Operator, &exported).await?;
            eprintln!("exported {count} events");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What an intact log was proven to be, line by line.
struct Intact<'a>(&'a Verification);

impl fmt::Display for Intact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let head = r.head.as_ref().map_or_else(|| "empty".into(), |h| h.to_string());
        writeln!(f, "audit log intact: {} events, head {head}", r.events)?;
        writeln!(f, "  erased payloads: {}, each named by a purge event", r.erased_events)?;
        if r.seals.checked {
            writeln!(f, "  seals: {} verified, the last event sealed", r.seals.sealed_events)?;
        } else {
            writeln!(
                f,
                "  seals: not checked (no seal key: a forged tail is caught only by a checkpoint)"
            )?;
        }
        let d = &r.derived;
        writeln!(
            f,
            "  derived rows: {} messages and {} conversations match their events ({} conversations purged, {} legacy rows unproven)",
            d.messages, d.conversations, d.conversations_purged, d.legacy_rows
        )?;
        match &r.checkpoint_file {
            Some(c) => write!(f, "  checkpoint file: latest checkpoint {c} found in the log"),
            None => write!(
                f,
                "  checkpoint file: none checked (a cut tail is caught only by a checkpoint)"
            ),
        }
    }
}

struct Purged<'a>(&'a PurgeReport);

impl fmt::Display for Purged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        write!(
            f,
            "purged content before {}: {} events erased, {} messages deleted ({} conversations on legal hold kept)",
            r.before, r.events_erased, r.messages_deleted, r.conversations_held
        )
    }
}
