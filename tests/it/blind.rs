//! The screen and the answer decision on the blind sets (tests/fixtures/blind, written by
//! helpers who never saw the code): their tune and train parts, which the rules and models
//! were fitted on, and their check parts, each scored once before anyone read it. A check
//! floor here is that first-read figure (BENCHMARKS.md, "Trust on unseen cases"), so a
//! regression fails; it is not a target the code was tuned to reach.

use crate::helpers::fixture;
use std::path::{Path, PathBuf};
use std::process::Command;
use teller::config::Settings;
use teller::guard::labelled::{evaluate_advice, evaluate_escalation, evaluate_pii, ClassifierReport};
use teller::guard::Guard;
use tempfile::TempDir;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn guard() -> Guard {
    let mut settings = Settings::for_data_dir(Path::new("unused"));
    settings.kb_dir = repo("knowledge_base");
    teller::startup::build_guard(&settings).unwrap()
}

/// The labelled sets' lines, concatenated into one file.
fn joined(files: &[&str]) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("set.jsonl");
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(fixture(&format!("blind/{f}"))).unwrap())
        .collect();
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn assert_at_least(name: &str, report: &ClassifierReport, recall: f64, reason: f64, max_false_positive: f64) {
    assert!(
        report.recall >= recall && report.reason_accuracy >= reason && report.false_positive_rate <= max_false_positive,
        "{name}: recall {:.3} (floor {recall}), right reason {:.3} (floor {reason}), false positives {:.3} (ceiling {max_false_positive})",
        report.recall,
        report.reason_accuracy,
        report.false_positive_rate
    );
}

#[test]
fn escalation_holds_its_figures_on_the_blind_sets() {
    let guard = guard();
    // (files, recall, right reason, false handoffs)
    let sets: [(&[&str], f64, f64, f64); 6] = [
        (
            &["escalation/en.tune.jsonl", "escalation2/en.train.jsonl"],
            0.93,
            0.93,
            0.0,
        ),
        (
            &["escalation/zh.tune.jsonl", "escalation2/zh.train.jsonl"],
            0.92,
            0.92,
            0.016,
        ),
        (&["escalation/en.check.jsonl"], 0.901, 0.901, 0.0),
        (&["escalation/zh.check.jsonl"], 0.913, 0.869, 0.0),
        (&["escalation2/en.check.jsonl"], 0.857, 0.809, 0.012),
        (&["escalation2/zh.check.jsonl"], 0.793, 0.738, 0.024),
    ];
    for (files, recall, reason, false_positive) in sets {
        let (_dir, path) = joined(files);
        let report = evaluate_escalation(&path, &guard).unwrap();
        assert_at_least(&files.join("+"), &report, recall, reason, false_positive);
    }
}

#[test]
fn advice_requests_hold_their_figures_on_the_blind_sets() {
    let guard = guard();
    let sets: [(&[&str], f64, f64); 4] = [
        (
            &["advice/en.tune.jsonl", "advice/zh.tune.jsonl", "advice2/train.jsonl"],
            0.99,
            0.03,
        ),
        (&["advice/en.check.jsonl"], 0.882, 0.056),
        (&["advice/zh.check.jsonl"], 0.875, 0.059),
        (&["advice2/check.jsonl"], 0.861, 0.056),
    ];
    for (files, recall, false_positive) in sets {
        let (_dir, path) = joined(files);
        let report = evaluate_advice(&path, &guard).unwrap();
        assert_at_least(&files.join("+"), &report, recall, recall, false_positive);
    }
}

#[test]
fn masking_holds_its_figures_on_the_blind_sets() {
    let guard = guard();
    // (file, recall, card recall, false positives)
    for (file, recall, cards, false_positive) in [
        ("pii/pii.tune.jsonl", 0.988, 1.0, 0.0),
        ("pii/pii.check.jsonl", 0.918, 0.92, 0.0),
    ] {
        let report = evaluate_pii(&fixture(&format!("blind/{file}")), &guard).unwrap();
        assert!(
            report.recall >= recall && report.card_recall >= cards && report.false_positive_rate <= false_positive,
            "{file}: recall {:.3}, cards {:.3}, false positives {:.3}: {:#?}",
            report.recall,
            report.card_recall,
            report.false_positive_rate,
            report.misses
        );
    }
}

fn teller(data: &TempDir, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_teller"))
        .args(args)
        .env("TELLER_DATA_DIR", data.path())
        .env_remove("TELLER_CONFIG")
        .env_remove("TELLER_EMBEDDING_MODEL")
        .env_remove("TELLER_MODELS_DIR")
        .env_remove("QDRANT_URL")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("teller runs")
}

#[test]
fn the_committed_models_are_what_calibration_fits_from_the_committed_sets() {
    let data = TempDir::new().unwrap();
    let out = data.path().join("models");
    let out_arg = out.to_str().unwrap();
    for args in [
        vec!["calibrate", "screen", "--out", out_arg],
        vec!["calibrate", "answerability", "--out", out_arg],
    ] {
        let run = teller(&data, &args);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    for name in ["escalation.json", "advice.json", "answerability.json"] {
        let fitted = std::fs::read_to_string(out.join(name)).unwrap();
        let committed = std::fs::read_to_string(repo("models").join(name)).unwrap();
        assert!(
            fitted == committed,
            "models/{name} differs from what `teller calibrate` fits"
        );
    }
}

/// `teller eval --answers` on a set, offline, as JSON.
fn answers(kb: &str, bank: &str, questions: &str) -> serde_json::Value {
    let data = TempDir::new().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_teller"))
        .args([
            "eval",
            "--kb",
            repo(kb).to_str().unwrap(),
            "--questions",
            fixture(&format!("blind/{questions}")).to_str().unwrap(),
            "--answers",
            "--json",
        ])
        .env("TELLER_DATA_DIR", data.path())
        .env("TELLER_BANK_NAME", bank)
        .env_remove("TELLER_CONFIG")
        .env_remove("TELLER_EMBEDDING_MODEL")
        .env_remove("TELLER_MODELS_DIR")
        .env_remove("QDRANT_URL")
        .current_dir(data.path())
        .output()
        .expect("teller runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_slice(&run.stdout).unwrap()
}

#[test]
fn answers_hold_their_figures_on_the_blind_check_sets() {
    // (knowledge base, bank, questions, unanswerable refused, false refusals, fact recall)
    for (kb, bank, questions, refused, false_refusals, facts) in [
        (
            "tests/fixtures/harbourview",
            "Harbourview Bank",
            "answers/answers.check.jsonl",
            0.208,
            0.095,
            0.515,
        ),
        (
            "tests/fixtures/harbourview",
            "Harbourview Bank",
            "answers2/check.jsonl",
            0.071,
            0.0,
            0.70,
        ),
        (
            "knowledge_base",
            "Lantern Bank",
            "lantern/check.jsonl",
            0.15,
            0.133,
            0.587,
        ),
    ] {
        let r = answers(kb, bank, questions);
        let value = |k: &str| r[k].as_f64().unwrap();
        assert!(
            value("refusal_rate_unanswerable") >= refused
                && value("false_refusal_rate") <= false_refusals
                && value("fact_recall") >= facts,
            "{questions}: {r}"
        );
    }
}
