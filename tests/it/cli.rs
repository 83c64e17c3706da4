//! The `teller` binary as a user runs it: exit codes, summaries, JSON output.

use crate::helpers::fixture;
use std::process::{Command, Output};
use tempfile::TempDir;

fn teller(data: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_teller"))
        .args(args)
        .env("TELLER_DATA_DIR", data.path())
        .env_remove("TELLER_CONFIG")
        .env_remove("TELLER_EMBEDDING_MODEL")
        .current_dir(data.path())
        .output()
        .expect("teller runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ingest_reports_a_summary_and_malformed_files_fail_the_command() {
    let data = TempDir::new().unwrap();
    let kb = fixture("kb");
    let out = teller(&data, &["ingest", "--kb", kb.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("8 added, 0 updated, 0 unchanged, 0 removed"),
        "{}",
        stdout(&out)
    );

    let out = teller(&data, &["ingest", "--kb", kb.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("0 added, 0 updated, 8 unchanged"),
        "{}",
        stdout(&out)
    );

    let bad = fixture("malformed");
    let out = teller(&data, &["ingest", "--kb", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("broken.yaml") && err.contains("no-front-matter.md"),
        "{err}"
    );
    assert!(stdout(&out).contains("1 added"), "{}", stdout(&out));
}

#[test]
fn search_and_eval_print_json() {
    let data = TempDir::new().unwrap();
    let kb = fixture("kb");
    assert!(teller(&data, &["ingest", "--kb", kb.to_str().unwrap()])
        .status
        .success());

    let out = teller(&data, &["search", "gold card annual fee", "--k", "2", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["source_id"], "faq-basics-001");
    assert!(hits.as_array().unwrap().len() <= 2);

    let questions = fixture("questions.jsonl");
    let out = teller(
        &data,
        &[
            "eval",
            "--kb",
            kb.to_str().unwrap(),
            "--questions",
            questions.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "k",
        "questions",
        "answerable",
        "recall_at_k",
        "mrr",
        "by_category",
        "by_lang",
        "p50_ms",
        "p95_ms",
    ] {
        assert!(report.get(field).is_some(), "missing {field}: {report}");
    }
    assert_eq!(report["recall_at_k"], 1.0);
}

#[test]
fn usage_and_configuration_errors_exit_non_zero_with_a_message() {
    let data = TempDir::new().unwrap();
    let out = teller(&data, &["search"]);
    assert_eq!(out.status.code(), Some(2), "missing argument is a usage error");

    let out = Command::new(env!("CARGO_BIN_EXE_teller"))
        .args(["search", "fee"])
        .env("TELLER_DATA_DIR", data.path())
        .env("TELLER_CHUNK_TOKENS", "10")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TELLER_CHUNK_TOKENS"), "{}", stderr(&out));

    let out = teller(&data, &["ingest", "--kb", "/nonexistent/kb"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/kb"), "{}", stderr(&out));
}
