//! `teller calibrate`: fits the learned parts of Teller from labelled sets in the
//! repository and writes them to `models/`, deterministically (the same data gives the
//! same file byte for byte).

use crate::chat::answerability::{self, Signals};
use crate::chat::pipeline::RETRIEVED_SOURCES;
use crate::config::Settings;
use crate::eval::{load_questions, Question};
use crate::guard::classifier::{Classifier, Fit};
use crate::guard::escalation;
use crate::guard::labelled::read_jsonl;
use crate::guard::models::Features;
use crate::retrieval::passages::{PassageCache, Reading};
use crate::retrieval::query::retrieval_query;
use crate::retrieval::{Index, SearchOptions};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The answerability model (models/answerability.json, or -hybrid.json when an
    /// embedding model is configured), from labelled questions over knowledge bases.
    Answerability {
        /// A knowledge base, the bank's name and its labelled questions (the `teller eval`
        /// format): `KB_DIR=BANK NAME=QUESTIONS[,QUESTIONS...]`, repeatable. The default is
        /// the repository's sets.
        #[arg(long = "set", value_parser = parse_set)]
        sets: Vec<QuestionSet>,
        /// Weigh the questions' words too: for a model fitted on one bank's own questions
        /// (see the README, "Retraining on your own transcripts").
        #[arg(long)]
        words: bool,
        #[arg(long, default_value = "models")]
        out: PathBuf,
    },
    /// The screen's escalation and advice classifiers (models/escalation.json,
    /// models/advice.json).
    Screen {
        /// The folder holding `guard/` and `blind/` (the labelled sets).
        #[arg(long, default_value = "tests/fixtures")]
        sets: PathBuf,
        /// More labelled messages, e.g. from the bank's own transcripts (JSON Lines, one
        /// `{"text", "reason"}` per line for escalation, `reason` null for a message that
        /// needs no person, or `{"text", "advice": true|false}` for the advice boundary);
        /// repeatable.
        #[arg(long = "add")]
        added: Vec<PathBuf>,
        #[arg(long, default_value = "models")]
        out: PathBuf,
    },
}

/// The escalation labels, `none` first.
pub const ESCALATION_CLASSES: [&str; 7] = [
    "none",
    "lost_card",
    "fraud_or_scam",
    "complaint",
    "customer_request",
    "vulnerable_customer",
    "account_specific",
];

/// Escalation phrasings and look-alikes: the original labelled set and the blind sets'
/// tune and train parts (never their check or reserve parts).
const ESCALATION_SETS: [&str; 5] = [
    "guard/escalation.jsonl",
    "blind/escalation/en.tune.jsonl",
    "blind/escalation/zh.tune.jsonl",
    "blind/escalation2/en.train.jsonl",
    "blind/escalation2/zh.train.jsonl",
];
/// Questions over the Harbourview corpus (the shared dev set and the blind sets' tune and
/// train parts) and over the sample knowledge base (the blind set's train part): two banks,
/// so the model learns how an answering passage looks more than one bank's topics.
const ANSWERABILITY_SETS: [(&str, &str, &[&str]); 2] = [
    (
        "tests/fixtures/harbourview",
        "Harbourview Bank",
        &[
            "tests/fixtures/harbourview/dev-questions.jsonl",
            "tests/fixtures/blind/answers/answers.tune.jsonl",
            "tests/fixtures/blind/answers2/train.jsonl",
        ],
    ),
    (
        "knowledge_base",
        "Lantern Bank",
        &["tests/fixtures/blind/lantern/train.jsonl"],
    ),
];

/// Labelled questions over one bank's knowledge base.
#[derive(Debug, Clone)]
pub struct QuestionSet {
    kb: PathBuf,
    bank_name: String,
    questions: Vec<PathBuf>,
}

fn parse_set(value: &str) -> Result<QuestionSet, String> {
    let mut parts = value.splitn(3, '=');
    let (Some(kb), Some(bank_name), Some(questions)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a set is KB_DIR=BANK NAME=QUESTIONS[,QUESTIONS...]".into());
    };
    Ok(QuestionSet {
        kb: kb.into(),
        bank_name: bank_name.into(),
        questions: questions.split(',').map(PathBuf::from).collect(),
    })
}

fn default_sets() -> Vec<QuestionSet> {
    ANSWERABILITY_SETS
        .iter()
        .map(|(kb, bank_name, questions)| QuestionSet {
            kb: kb.into(),
            bank_name: bank_name.to_string(),
            questions: questions.iter().map(PathBuf::from).collect(),
        })
        .collect()
}

/// Share of answerable questions the threshold may refuse (in cross-validation).
const MAX_FALSE_REFUSAL_RATE: f64 = 0.05;

const ADVICE_SETS: [&str; 3] = [
    "blind/advice/en.tune.jsonl",
    "blind/advice/zh.tune.jsonl",
    "blind/advice2/train.jsonl",
];

/// Share of look-alikes a classifier may flag in cross-validation: its threshold.
const MAX_FALSE_POSITIVE_RATE: f64 = 0.02;

#[derive(Deserialize)]
struct Labelled {
    text: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    advice: Option<bool>,
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Answerability { sets, words, out } => {
            let sets = if sets.is_empty() { default_sets() } else { sets };
            let mut examples = Vec::new();
            let mut files = Vec::new();
            let mut hybrid = false;
            for set in &sets {
                let (_, index) = super::eval::eval_index(settings, &set.kb).await?;
                hybrid = index.embedder.is_some();
                for path in &set.questions {
                    files.push(path.display().to_string());
                    for q in load_questions(path)? {
                        // Escalations are the screen's, not the passages'.
                        if q.category != "escalation" && !q.expect_handoff {
                            let (query, signals) = answerability_signals(&set.bank_name, &index, &q).await?;
                            examples.push((query, signals, q.answerable()));
                        }
                    }
                }
            }
            let model = answerability::fit(&examples, words, files, MAX_FALSE_REFUSAL_RATE);
            std::fs::create_dir_all(&out)?;
            let path = out.join(answerability::file_name(hybrid));
            std::fs::write(&path, serde_json::to_string(&model)? + "\n")?;
            let (model, f) = (&model.classifier, &model.classifier.fitted_on);
            println!(
                "{}: {} questions, threshold {:.3}; cross-validated: {:.3} of unanswerable refused at {:.3} of answerable",
                path.display(),
                f.examples,
                model.threshold,
                f.cv_recall,
                f.cv_false_positive_rate
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Screen { sets, added, out } => {
            let mut escalation = read_sets(&sets, &ESCALATION_SETS)?;
            let mut advice = read_sets(&sets, &ADVICE_SETS)?;
            for path in &added {
                let name = path.display().to_string();
                for item in read_jsonl::<Labelled>(path)? {
                    if let Some(reason) = item.reason.as_deref().filter(|r| !ESCALATION_CLASSES.contains(r)) {
                        anyhow::bail!(
                            "{name}: unknown reason {reason:?} (one of {})",
                            ESCALATION_CLASSES.join(", ")
                        );
                    }
                    let set = if item.advice.is_some() {
                        &mut advice
                    } else {
                        &mut escalation
                    };
                    set.push((name.clone(), item));
                }
            }
            let files: Vec<String> = added.iter().map(|p| p.display().to_string()).collect();
            // Ordinary questions about products, answerable or not, need no person.
            let mut ordinary = Vec::new();
            for file in ANSWERABILITY_SETS.iter().flat_map(|(_, _, files)| files.iter()) {
                for q in load_questions(Path::new(file))? {
                    if q.category != "escalation" && !q.expect_handoff {
                        ordinary.push((
                            file.to_string(),
                            Labelled {
                                text: q.question,
                                reason: None,
                                advice: Some(false),
                            },
                        ));
                    }
                }
            }
            let advice: Vec<(String, Labelled)> = advice.into_iter().chain(ordinary).collect();
            let escalation_model = fit_escalation(&escalation, &advice, &files);
            let advice_model = fit_advice(&advice, &escalation, &files);
            std::fs::create_dir_all(&out)?;
            for (name, model) in [("escalation", &escalation_model), ("advice", &advice_model)] {
                let path = out.join(format!("{name}.json"));
                std::fs::write(&path, serde_json::to_string(model)? + "\n")?;
                println!(
                    "{}: {} examples, threshold {:.3}, cross-validated recall {:.3} at {:.3} false positives",
                    path.display(),
                    model.fitted_on.examples,
                    model.threshold,
                    model.fitted_on.cv_recall,
                    model.fitted_on.cv_false_positive_rate
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_sets(dir: &Path, files: &[&str]) -> anyhow::Result<Vec<(String, Labelled)>> {
    let mut out = Vec::new();
    for file in files {
        let items: Vec<Labelled> = read_jsonl(&dir.join(file))?;
        out.extend(items.into_iter().map(|item| (file.to_string(), item)));
    }
    Ok(out)
}

/// Escalation reasons; the advice sets' look-alikes and ordinary questions about products
/// are examples of `none` too (advice
/// requests themselves are left out: they get the policy's refusal with a colleague
/// offered, and some read as a complaint or distress as well).
fn fit_escalation(escalation: &[(String, Labelled)], advice: &[(String, Labelled)], added: &[String]) -> Classifier {
    let class = |reason: &Option<String>| {
        reason
            .as_deref()
            .and_then(|r| ESCALATION_CLASSES.iter().position(|c| *c == r))
            .unwrap_or(0)
    };
    let example = |text: &str, label| {
        (
            Features::of(text).with_escalation(escalation::escalation_reason(text)),
            label,
        )
    };
    let examples: Vec<(Vec<u32>, usize)> = escalation
        .iter()
        .map(|(_, item)| example(&item.text, class(&item.reason)))
        .chain(
            advice
                .iter()
                .filter(|(_, item)| item.advice != Some(true))
                .map(|(_, item)| example(&item.text, 0)),
        )
        .collect();
    let files = fitted_on(&ESCALATION_SETS, &ADVICE_SETS, added);
    Classifier::calibrate(
        ESCALATION_CLASSES.map(String::from).to_vec(),
        &examples,
        files,
        MAX_FALSE_POSITIVE_RATE,
        Fit::default(),
    )
}

/// Advice requests; the escalation sets' messages are examples of requests that are not
/// for advice.
fn fit_advice(advice: &[(String, Labelled)], escalation: &[(String, Labelled)], added: &[String]) -> Classifier {
    let example = |text: &str, label| (Features::of(text).with_advice(escalation::asks_for_advice(text)), label);
    let examples: Vec<(Vec<u32>, usize)> = advice
        .iter()
        .map(|(_, item)| example(&item.text, usize::from(item.advice == Some(true))))
        .chain(escalation.iter().map(|(_, item)| example(&item.text, 0)))
        .collect();
    let files = fitted_on(&ADVICE_SETS, &ESCALATION_SETS, added);
    Classifier::calibrate(
        vec!["none".into(), "advice".into()],
        &examples,
        files,
        MAX_FALSE_POSITIVE_RATE,
        Fit::default(),
    )
}

/// The files a screen model was fitted on, as its record lists them.
fn fitted_on(own: &[&str], other: &[&str], added: &[String]) -> Vec<String> {
    own.iter()
        .chain(other)
        .map(|f| f.to_string())
        .chain(added.iter().cloned())
        .collect()
}

/// A question's standalone query and answerability signals, retrieved exactly as a chat
/// turn retrieves.
async fn answerability_signals(bank_name: &str, index: &Index, q: &Question) -> anyhow::Result<(String, Signals)> {
    let lang = q.lang();
    let query = retrieval_query(&q.history, &q.question);
    let options = SearchOptions {
        k: RETRIEVED_SOURCES,
        lang: Some(lang),
        ..Default::default()
    };
    let hits = index.search(&query, &options).await?;
    let passages = PassageCache::default();
    let reading = Reading::new(&query, lang, &index.bm25, index.vocabulary(), &passages);
    let discounted = answerability::discounted_terms(&index.bm25, bank_name);
    let signals = Signals::measure(&reading, &hits, &discounted);
    Ok((query, signals))
}
