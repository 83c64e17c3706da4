//! The `teller` binary as a user runs it: exit codes, summaries, JSON output.

use crate::helpers::{fixture, TestCollection};
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

/// What one test's commands share: a data directory, and a collection of the test's own,
/// so that with `QDRANT_URL` set (the commands inherit it) they write to a collection
/// deleted afterwards, never to the default one.
struct Scratch {
    dir: TempDir,
    collection: TestCollection,
}

impl Scratch {
    fn new(test: &str) -> Self {
        Self {
            dir: TempDir::new().unwrap(),
            collection: TestCollection::new(test),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `teller` as a user runs it in this scratch space.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_teller"));
        command
            .env("TELLER_DATA_DIR", self.path())
            .env("TELLER_COLLECTION", &self.collection.name)
            .env_remove("TELLER_CONFIG")
            .current_dir(self.path());
        command
    }
}

fn teller(data: &Scratch, args: &[&str]) -> Output {
    data.command()
        .args(args)
        .env_remove("TELLER_EMBEDDING_MODEL")
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
    let data = Scratch::new("cli-ingest");
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
    let data = Scratch::new("cli-search");
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
    let data = Scratch::new("cli-usage");
    let out = teller(&data, &["search"]);
    assert_eq!(out.status.code(), Some(2), "missing argument is a usage error");

    let out = data
        .command()
        .args(["search", "fee"])
        .env("TELLER_CHUNK_TOKENS", "10")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TELLER_CHUNK_TOKENS"), "{}", stderr(&out));

    let out = teller(&data, &["ingest", "--kb", "/nonexistent/kb"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/kb"), "{}", stderr(&out));
}

#[test]
fn with_a_seal_key_every_write_is_sealed_and_verify_checks_the_seals() {
    let data = Scratch::new("cli-seal");
    let key = data.path().join("seal.key");
    std::fs::write(&key, "c3".repeat(32)).unwrap();
    let sealed = |args: &[&str]| {
        data.command()
            .args(args)
            .env("TELLER_AUDIT_SEAL_KEY_FILE", &key)
            .output()
            .expect("teller runs")
    };
    assert!(sealed(&["token", "create", "--role", "compliance", "--name", "carol"])
        .status
        .success());
    let out = sealed(&["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("seals: 1 verified"), "{}", stdout(&out));
    // Written without the key, the new head is unsealed: verify with the key says so.
    assert!(teller(&data, &["token", "revoke", "--name", "carol"]).status.success());
    let out = sealed(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("first bad event seq 2: the last event carries no seal"),
        "{}",
        stderr(&out)
    );
    // A key file that is not a key stops the command with a message.
    std::fs::write(&key, "too short").unwrap();
    let out = sealed(&["audit", "verify"]);
    assert!(
        !out.status.success() && stderr(&out).contains("at least 32 bytes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn audit_commands_verify_export_and_manage_tokens() {
    let data = Scratch::new("cli-audit");
    let out = teller(&data, &["token", "create", "--role", "compliance", "--name", "carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).trim().starts_with("tlr_"),
        "the token is printed once: {}",
        stdout(&out)
    );
    let out = teller(&data, &["token", "create", "--role", "auditor", "--name", "x"]);
    assert_eq!(out.status.code(), Some(2), "unknown roles are usage errors");

    let out = teller(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("audit log intact: 1 events"), "{}", stdout(&out));
    assert!(stdout(&out).contains("seals: not checked"), "{}", stdout(&out));
    // Verifying writes nothing unless asked to.
    let checkpoint = stdout(&teller(&data, &["audit", "checkpoint"])).trim().to_string();
    assert!(checkpoint.starts_with("1:"), "{checkpoint}");
    assert!(teller(&data, &["audit", "verify", "--record"]).status.success());
    let checkpoint = stdout(&teller(&data, &["audit", "checkpoint"])).trim().to_string();
    assert!(checkpoint.starts_with("2:"), "{checkpoint}");

    let csv = data.path().join("out.csv");
    let out = teller(
        &data,
        &[
            "audit",
            "export",
            "--from",
            "2000-01-01",
            "--to",
            "2999-01-01",
            "--format",
            "csv",
            "--output",
            csv.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("seq,occurred_at,actor,kind"));
    assert!(
        text.contains("token_created") && !text.contains("tlr_"),
        "tokens never reach the log"
    );

    // Tamper with the SQLite file behind Teller's back: verify names the event.
    let url = format!("sqlite://{}", data.path().join("teller.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for statement in [
            "DROP TRIGGER audit_events_no_update",
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;
    });
    let out = teller(&data, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("first bad event seq 1"), "{}", stderr(&out));
    let out = teller(&data, &["audit", "verify", "--from-checkpoint", &checkpoint]);
    assert_eq!(out.status.code(), Some(1));
}
