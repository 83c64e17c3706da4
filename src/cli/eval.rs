//! `teller eval`: retrieval (and, with `--answers`, answer) metrics on labelled questions,
//! in a collection of its own.

use crate::config::Settings;
use crate::eval::{evaluate_answers, evaluate_retrieval, load_questions, AnswerReport, Question, RetrievalReport};
use crate::knowledge::{ingest, IngestOptions};
use crate::retrieval::Index;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
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
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let questions = load_questions(&args.questions)?;
    let (eval_settings, index) = eval_index(settings, &args.kb).await?;
    let (retrieval, per_question) = evaluate_retrieval(&index, &questions, args.k).await?;
    if args.details {
        for result in &per_question {
            eprintln!("{}", serde_json::to_string(result)?);
        }
    }
    let answers = if args.answers {
        let (report, answers) = eval_answers(&eval_settings, index, &questions).await?;
        if args.details {
            for result in &answers {
                eprintln!("{}", serde_json::to_string(result)?);
            }
        }
        Some(report)
    } else {
        None
    };
    let report = Report { retrieval, answers };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json()?)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The retrieval report and, when answers were scored, the answer report.
struct Report {
    retrieval: RetrievalReport,
    answers: Option<AnswerReport>,
}

impl Report {
    /// One JSON object: the retrieval fields, then the answer fields.
    fn to_json(&self) -> anyhow::Result<serde_json::Value> {
        let mut out = serde_json::to_value(&self.retrieval)?;
        if let Some(answers) = &self.answers {
            let extra = serde_json::to_value(answers)?;
            out.as_object_mut()
                .expect("report is an object")
                .extend(extra.as_object().expect("object").clone());
        }
        Ok(out)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = &self.answers {
            writeln!(
                f,
                "answers: fact recall {:.3}, refusal rate (unanswerable) {:.3}, false refusal rate {:.3}, handoff recall {:.3}, false handoff rate {:.3}, modes {:?}",
                a.fact_recall, a.refusal_rate_unanswerable, a.false_refusal_rate, a.handoff_recall, a.false_handoff_rate, a.modes
            )?;
        }
        let r = &self.retrieval;
        writeln!(
            f,
            "{} questions ({} answerable): recall@{} {:.3}, MRR {:.3}, p50 {:.2} ms, p95 {:.2} ms",
            r.questions, r.answerable, r.k, r.recall_at_k, r.mrr, r.p50_ms, r.p95_ms
        )?;
        for (name, m) in r.by_category.iter().chain(r.by_lang.iter()) {
            writeln!(
                f,
                "  {name:<14} n={:<4} recall {:.3}  MRR {:.3}",
                m.questions, m.recall_at_k, m.mrr
            )?;
        }
        Ok(())
    }
}

/// Runs the chat pipeline over the questions, recording into a throw-away audit database
/// (evaluation turns are not customer conversations and stay out of the real record).
async fn eval_answers(
    settings: &Settings,
    index: Index,
    questions: &[Question],
) -> anyhow::Result<(AnswerReport, Vec<crate::eval::AnswerResult>)> {
    let scratch = settings.data_dir.join("eval").join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let mut scratch_settings = settings.clone();
    scratch_settings.database_url = Some(format!("sqlite://{}", scratch.join("audit.db").display()));
    let result = async {
        let audit = Arc::new(crate::startup::open_audit(&scratch_settings).await?);
        let pipeline = crate::startup::build_pipeline(&scratch_settings, index, audit)?;
        evaluate_answers(&pipeline, questions).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// An index of `kb` in a collection of its own, so evaluation never mixes with (or prunes)
/// the index that serves customers; and the settings that point at it.
pub(super) async fn eval_index(settings: &Settings, kb: &Path) -> anyhow::Result<(Settings, Index)> {
    let mut eval_settings = settings.clone();
    eval_settings.collection = eval_collection(&settings.collection, kb);
    eval_settings.kb_dir = kb.to_path_buf();
    let index = Index::open(&eval_settings).await?;
    let ingested = ingest(
        &index,
        &settings.chunker(),
        &IngestOptions {
            kb_dir: kb.to_path_buf(),
            prune: true,
            progress: false,
        },
    )
    .await?;
    for error in &ingested.errors {
        eprintln!("warning: {error}");
    }
    Ok((eval_settings, index))
}

fn eval_collection(base: &str, kb: &Path) -> String {
    let canonical = kb.canonicalize().unwrap_or_else(|_| kb.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    format!("{base}-eval-{}", &hex::encode(digest)[..12])
}
