//! The `teller` command line: one binary, one subcommand per job.

use crate::audit::{AuditStore, Checkpoint, ExportFormat, Role};
use crate::config::Settings;
use crate::eval::{evaluate_retrieval, load_questions};
use crate::knowledge::{ingest, Chunker, IngestOptions};
use crate::lang::Lang;
use crate::retrieval::store::SearchFilter;
use crate::retrieval::{Index, SearchOptions};
use anyhow::Context;
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
    Serve {
        /// Address to listen on (default: TELLER_BIND or 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Index the knowledge base (incremental: unchanged sources are skipped).
    Ingest {
        /// Knowledge-base folder (default: TELLER_KB_DIR or ./knowledge_base).
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Remove indexed sources that are no longer in the folder.
        #[arg(long)]
        prune: bool,
    },
    /// Search the index and print the best passages.
    Search {
        query: String,
        /// Only passages in this language (en, zh-CN).
        #[arg(long)]
        lang: Option<Lang>,
        /// Only passages about this product.
        #[arg(long)]
        product: Option<String>,
        #[arg(long, default_value_t = 5)]
        k: usize,
        #[arg(long)]
        json: bool,
    },
    /// The audit log: verify, checkpoint, export.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Staff API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Measure retrieval on labelled questions (see design.md §Evaluation).
    Eval {
        #[arg(long)]
        kb: PathBuf,
        #[arg(long)]
        questions: PathBuf,
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Also run the whole chat pipeline per question and score the answers.
        #[arg(long)]
        answers: bool,
        /// Write one JSON line per question (ranks, retrieved ids, answers) to stderr.
        #[arg(long)]
        details: bool,
        #[arg(long)]
        json: bool,
    },
    /// Measure the guardrails on labelled sets (pii.jsonl, escalation.jsonl,
    /// injection.jsonl; format in tests/fixtures/guard/README.md) and print JSON.
    GuardEval {
        /// Folder holding the labelled sets.
        #[arg(long, default_value = "tests/fixtures/guard")]
        sets: PathBuf,
        /// Also list every miss and false positive.
        #[arg(long)]
        details: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 0 when intact, 1 naming the first bad event.
    Verify {
        /// A checkpoint (SEQ:HASH from `teller audit checkpoint`) the log must still contain.
        #[arg(long)]
        from_checkpoint: Option<Checkpoint>,
    },
    /// Print the latest SEQ:HASH, to keep outside the database.
    Checkpoint,
    /// Retention: erase conversation content older than DATE (legal holds excepted);
    /// hashes stay, so the chain still verifies.
    Purge {
        #[arg(long)]
        before: String,
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
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is stored.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        #[arg(long)]
        name: String,
    },
    /// Revoke a token by name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

/// Runs a parsed command; the exit code says whether it fully succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load()?;
    match cli.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            crate::startup::Application::build(&settings)
                .await?
                .run_until_stopped()
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { kb, prune } => {
            let kb = kb.unwrap_or_else(|| settings.kb_dir.clone());
            let index = Index::open(&settings).await?;
            run_ingest(&settings, &index, &kb, prune).await
        }
        Command::Search {
            query,
            lang,
            product,
            k,
            json,
        } => {
            let index = Index::open(&settings).await?;
            let opts = SearchOptions {
                k,
                lang,
                filter: SearchFilter { lang, product },
            };
            let hits = index.search(&query, &opts).await?;
            if json {
                let out: Vec<_> = hits
                    .iter()
                    .enumerate()
                    .map(|(rank, hit)| {
                        serde_json::json!({
                            "rank": rank + 1,
                            "score": hit.score,
                            "source_id": hit.chunk.source_id,
                            "chunk_index": hit.chunk.chunk_index,
                            "title": hit.chunk.title,
                            "section": hit.chunk.section,
                            "lang": hit.chunk.lang,
                            "text": hit.chunk.text,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if hits.is_empty() {
                println!("no matching passages");
            } else {
                for (rank, hit) in hits.iter().enumerate() {
                    let section = hit
                        .chunk
                        .section
                        .as_deref()
                        .map(|s| format!(" › {s}"))
                        .unwrap_or_default();
                    println!(
                        "{}. [{:.3}] {} — {}{}",
                        rank + 1,
                        hit.score,
                        hit.chunk.source_id,
                        hit.chunk.title,
                        section
                    );
                    println!("   {}", snippet(hit.chunk.body(), 200));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command } => run_audit(&settings, command).await,
        Command::Token { command } => {
            let audit = open_audit(&settings).await?;
            match command {
                TokenCommand::Create { role, name } => {
                    let token = audit.create_token(&name, role).await?;
                    eprintln!("token {name:?} ({}) created; it is shown only now:", role.as_str());
                    println!("{token}");
                }
                TokenCommand::Revoke { name } => {
                    if !audit.revoke_token(&name).await? {
                        eprintln!("error: no active token named {name:?}");
                        return Ok(ExitCode::FAILURE);
                    }
                    println!("token {name:?} revoked");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            kb,
            questions,
            k,
            answers,
            details,
            json,
        } => {
            let questions = load_questions(&questions)?;
            // Evaluation gets its own collection per knowledge base, so it never mixes
            // with (or prunes) the index that serves customers.
            let mut eval_settings = settings.clone();
            eval_settings.collection = eval_collection(&settings.collection, &kb);
            eval_settings.kb_dir = kb.clone();
            let index = Index::open(&eval_settings).await?;
            let ingested = ingest(
                &index,
                &Chunker::new(settings.chunk_tokens, settings.chunk_overlap),
                &IngestOptions {
                    kb_dir: kb.clone(),
                    prune: true,
                    progress: false,
                },
            )
            .await?;
            for error in &ingested.errors {
                eprintln!("warning: {error}");
            }
            let (report, per_question) = evaluate_retrieval(&index, &questions, k).await?;
            if details {
                for result in &per_question {
                    eprintln!("{}", serde_json::to_string(result)?);
                }
            }
            let answer_report = if answers {
                let (answer_report, answers) = eval_answers(&eval_settings, index, &questions).await?;
                if details {
                    for result in &answers {
                        eprintln!("{}", serde_json::to_string(result)?);
                    }
                }
                Some(answer_report)
            } else {
                None
            };
            if json {
                let mut out = serde_json::to_value(&report)?;
                if let Some(answers) = &answer_report {
                    let extra = serde_json::to_value(answers)?;
                    out.as_object_mut()
                        .expect("report is an object")
                        .extend(extra.as_object().expect("object").clone());
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                if let Some(a) = &answer_report {
                    println!(
                        "answers: fact recall {:.3}, refusal rate (unanswerable) {:.3}, false refusal rate {:.3}, handoff recall {:.3}, false handoff rate {:.3}, modes {:?}",
                        a.fact_recall, a.refusal_rate_unanswerable, a.false_refusal_rate, a.handoff_recall, a.false_handoff_rate, a.modes
                    );
                }
                println!(
                    "{} questions ({} answerable): recall@{} {:.3}, MRR {:.3}, p50 {:.2} ms, p95 {:.2} ms",
                    report.questions,
                    report.answerable,
                    report.k,
                    report.recall_at_k,
                    report.mrr,
                    report.p50_ms,
                    report.p95_ms
                );
                for (name, m) in report.by_category.iter().chain(report.by_lang.iter()) {
                    println!(
                        "  {name:<14} n={:<4} recall {:.3}  MRR {:.3}",
                        m.questions, m.recall_at_k, m.mrr
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::GuardEval { sets, details } => {
            use crate::guard::labelled;
            let guard = crate::startup::build_guard(&settings)?;
            let mut pii = labelled::evaluate_pii(&sets.join("pii.jsonl"), &guard)?;
            let mut escalation = labelled::evaluate_escalation(&sets.join("escalation.jsonl"))?;
            let mut injection = labelled::evaluate_injection(&sets.join("injection.jsonl"))?;
            if !details {
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
    }
}

async fn open_audit(settings: &Settings) -> anyhow::Result<AuditStore> {
    let url = crate::startup::database_url(settings)?;
    AuditStore::connect(&url).await.context("cannot open the audit store")
}

/// A date (`2026-11-01`) means its midnight UTC; anything else must be RFC 3339.
pub fn timestamp(value: &str) -> anyhow::Result<String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(midnight.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .with_context(|| format!("{value:?} is neither YYYY-MM-DD nor an RFC 3339 time"))?;
    Ok(parsed
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

async fn run_audit(settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let audit = open_audit(settings).await?;
    match command {
        AuditCommand::Verify { from_checkpoint } => {
            let report = match &from_checkpoint {
                Some(checkpoint) => audit.verify_from_checkpoint(checkpoint).await?,
                None => audit.verify().await?,
            };
            audit
                .record_staff_action(
                    "operator",
                    "audit_verified",
                    serde_json::json!({ "ok": report.error.is_none(), "events": report.events }),
                )
                .await?;
            match (&report.error, report.first_bad_seq) {
                (Some(error), Some(seq)) => {
                    eprintln!("audit log NOT intact: first bad event seq {seq}: {error}");
                    Ok(ExitCode::FAILURE)
                }
                _ => {
                    let head = report.head.map(|h| h.to_string()).unwrap_or_else(|| "empty".into());
                    println!("audit log intact: {} events, head {head}", report.events);
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        AuditCommand::Purge { before } => {
            let report = audit.purge(&timestamp(&before)?, "operator").await?;
            println!(
                "purged content before {}: {} events erased, {} messages deleted ({} conversations on legal hold kept)",
                report.before, report.events_erased, report.messages_deleted, report.conversations_held
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Hold { conversation, reason } => {
            audit.hold(&conversation.to_string(), &reason, "operator").await?;
            println!("conversation {conversation} is on legal hold");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Release { conversation } => {
            if !audit.release_hold(&conversation.to_string(), "operator").await? {
                eprintln!("error: conversation {conversation} is not on legal hold");
                return Ok(ExitCode::FAILURE);
            }
            println!("legal hold on {conversation} released");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            match audit.checkpoint().await? {
                Some(checkpoint) => println!("{checkpoint}"),
                None => println!("0:{}", crate::audit::GENESIS_HASH),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export {
            from,
            to,
            format,
            output,
        } => {
            let (from, to) = (timestamp(&from)?, timestamp(&to)?);
            let count = match &output {
                Some(path) => {
                    let file =
                        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                    audit
                        .export(&from, &to, format, &mut std::io::BufWriter::new(file))
                        .await?
                }
                None => audit.export(&from, &to, format, &mut std::io::stdout()).await?,
            };
            audit
                .record_staff_action(
                    "operator",
                    "audit_exported",
                    serde_json::json!({ "from": from, "to": to, "format": format, "events": count }),
                )
                .await?;
            eprintln!("exported {count} events");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ingests `kb` and prints the summary; exits non-zero when any file failed to load.
pub async fn run_ingest(settings: &Settings, index: &Index, kb: &Path, prune: bool) -> anyhow::Result<ExitCode> {
    let chunker = Chunker::new(settings.chunk_tokens, settings.chunk_overlap);
    let summary = ingest(
        index,
        &chunker,
        &IngestOptions {
            kb_dir: kb.to_path_buf(),
            prune,
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

/// Runs the chat pipeline over the questions, recording into a throw-away audit database
/// (evaluation turns are not customer conversations and stay out of the real record).
async fn eval_answers(
    settings: &Settings,
    index: Index,
    questions: &[crate::eval::Question],
) -> anyhow::Result<(crate::eval::AnswerReport, Vec<crate::eval::AnswerResult>)> {
    let scratch = settings.data_dir.join("eval").join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let mut scratch_settings = settings.clone();
    scratch_settings.database_url = Some(format!("sqlite://{}", scratch.join("audit.db").display()));
    let result = async {
        let pipeline = crate::startup::build_pipeline(&scratch_settings, index).await?;
        crate::eval::evaluate_answers(&pipeline, questions).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn eval_collection(base: &str, kb: &Path) -> String {
    let canonical = kb.canonicalize().unwrap_or_else(|_| kb.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    format!("{base}-eval-{}", &hex::encode(digest)[..12])
}

fn snippet(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        format!("{}…", flat.chars().take(max_chars).collect::<String>())
    }
}
