//! The turn cap and turn numbers, held by the database: follow-ups sent to one
//! conversation at once, on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL, through the
//! JSON route and the SSE route (with a model that streams its answer before the commit).

use crate::app::{spawn_app_with, streamed_text, AppOptions, TestApp};
use crate::audit::databases;
use crate::standin::{Script, StandInServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use teller::audit::{Actor, AuditError, AuditStore, EventBatch, EventKind, NewConversation, NewEvent, NewMessage};
use teller::chat::pipeline::MAX_TURNS;
use teller::conversation::Speaker;
use uuid::Uuid;

/// Follow-ups sent at once.
const AT_ONCE: usize = 30;

/// The case: a conversation at turn cap − 2, and 30 follow-ups sent together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_follow_ups_never_pass_the_cap_or_share_a_turn_number() {
    for (url, _dir) in databases("turn_cap").await {
        let app = spawn_app_with(AppOptions {
            database_url: Some(url.clone()),
            ..Default::default()
        })
        .await;
        let question = "What is the annual fee for the Gold card?";
        let conversation = drive(&app, MAX_TURNS - 2, question).await;
        let started = Instant::now();
        let requests = (0..AT_ONCE).map(|_| app.chat(follow_up(&conversation, question)));
        let replies = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(requests))
            .await
            .expect("the follow-ups are answered within 20 s");
        let took = started.elapsed();
        let mut outcomes = Outcomes::default();
        for (status, body) in replies {
            match status {
                StatusCode::OK => outcomes.accepted.push(body["message_id"].as_str().unwrap().to_string()),
                StatusCode::CONFLICT => outcomes.refused(body["error"]["code"].as_str().unwrap(), String::new()),
                other => panic!("a follow-up got {other}: {body}"),
            }
        }
        let recorded = check_record(&app, &url, &conversation, MAX_TURNS - 2, &outcomes, &HashMap::new()).await;
        eprintln!(
            "turn cap, POST /v1/chat on {}: {AT_ONCE} follow-ups at turn {} of {MAX_TURNS} in {:.2} s: accepted {} / conflict {} / too_long {} / recorded {recorded} customer turns",
            kind(&url),
            MAX_TURNS - 1,
            took.as_secs_f64(),
            outcomes.accepted.len(),
            outcomes.conflict,
            outcomes.too_long,
        );
        fill_to_the_cap(&app, &url, &conversation, question).await;
    }
}

/// The same on the stream, where a generated answer is shown before its commit: a turn
/// that loses its number ends with an `error` event, and the record holds the message
/// unanswered with the code and exactly the text that was shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streamed_follow_ups_record_what_the_losers_were_shown() {
    let standin = StandInServer::start(Script {
        reply: "Drilling the lock costs LTD 350 [1], and a new key is cut [1].".into(),
        token_interval: Duration::from_millis(2),
        ..Default::default()
    })
    .await;
    for (url, _dir) in databases("turn_cap_stream").await {
        let app = spawn_app_with(AppOptions {
            llm: Some(standin.base_url.clone()),
            database_url: Some(url.clone()),
            ..Default::default()
        })
        .await;
        // A document question, answered by the model: approved FAQ answers never reach it.
        let question = "I lost the key to my safe deposit box - what does it cost to have the lock drilled?";
        let conversation = drive(&app, MAX_TURNS - 2, question).await;
        let started = Instant::now();
        let requests = (0..AT_ONCE).map(|_| app.chat_stream(follow_up(&conversation, question)));
        let replies = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(requests))
            .await
            .expect("the streams end within 20 s");
        let took = started.elapsed();
        let mut outcomes = Outcomes::default();
        // What each turn that reached its answer had streamed, by its message id.
        let mut streamed = HashMap::new();
        let mut modes: HashMap<String, usize> = HashMap::new();
        for (status, events) in replies {
            assert_eq!(status, StatusCode::OK, "{events:?}");
            let last = events.last().expect("a final event");
            let shown = streamed_text(&events);
            if let Some(meta) = events.iter().find(|e| e.event == "meta") {
                streamed.insert(meta.data["message_id"].as_str().unwrap().to_string(), shown.clone());
                *modes
                    .entry(meta.data["mode"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            match last.event.as_str() {
                "done" => {
                    assert_eq!(shown, last.data["answer"].as_str().unwrap());
                    outcomes
                        .accepted
                        .push(last.data["message_id"].as_str().unwrap().to_string());
                }
                "error" => outcomes.refused(last.data["error"]["code"].as_str().unwrap(), shown),
                other => panic!("a stream ended with {other}: {events:?}"),
            }
        }
        let recorded = check_record(&app, &url, &conversation, MAX_TURNS - 2, &outcomes, &streamed).await;
        eprintln!(
            "turn cap, POST /v1/chat/stream on {}: {AT_ONCE} follow-ups at turn {} of {MAX_TURNS} in {:.2} s: accepted {} / conflict {} / too_long {} / recorded {recorded} customer turns; {} refused after text was shown (modes {modes:?})",
            kind(&url),
            MAX_TURNS - 1,
            took.as_secs_f64(),
            outcomes.accepted.len(),
            outcomes.conflict,
            outcomes.too_long,
            outcomes.shown.iter().filter(|s| !s.is_empty()).count(),
        );
        fill_to_the_cap(&app, &url, &conversation, question).await;
    }
}

/// Follow-ups that all read the history before any of them commits (the model holds each
/// for 300 ms) race for the conversation's last turn: one is answered, and every other is
/// told the conversation is over, not to send its message again, and is recorded so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_that_lose_the_last_turn_are_told_the_conversation_is_over() {
    const RACING: usize = 10;
    let reply = "Drilling the lock costs LTD 350 [1], and a new key is cut [1].";
    let standin = StandInServer::start(Script {
        reply: reply.into(),
        ..Default::default()
    })
    .await;
    for (url, _dir) in databases("turn_cap_last").await {
        let app = spawn_app_with(AppOptions {
            llm: Some(standin.base_url.clone()),
            database_url: Some(url.clone()),
            ..Default::default()
        })
        .await;
        let question = "I lost the key to my safe deposit box - what does it cost to have the lock drilled?";
        standin.set_script(Script {
            reply: reply.into(),
            ..Default::default()
        });
        let conversation = drive(&app, MAX_TURNS - 1, question).await;
        standin.set_script(Script {
            reply: reply.into(),
            first_token_delay: Duration::from_millis(300),
            ..Default::default()
        });
        let requests = (0..RACING).map(|_| app.chat(follow_up(&conversation, question)));
        let replies = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(requests))
            .await
            .expect("the follow-ups are answered within 20 s");
        let mut outcomes = Outcomes::default();
        for (status, body) in replies {
            match status {
                StatusCode::OK => outcomes.accepted.push(body["message_id"].as_str().unwrap().to_string()),
                StatusCode::CONFLICT => outcomes.refused(body["error"]["code"].as_str().unwrap(), String::new()),
                other => panic!("a follow-up got {other}: {body}"),
            }
        }
        // Each was held by the model until after every other had read the history.
        outcomes.too_long_at_commit = Some(outcomes.too_long);
        assert_eq!(
            (outcomes.accepted.len(), outcomes.conflict, outcomes.too_long),
            (1, 0, RACING - 1),
            "{outcomes:?}"
        );
        let recorded = check_record(&app, &url, &conversation, MAX_TURNS - 1, &outcomes, &HashMap::new()).await;
        assert_eq!(recorded, MAX_TURNS);
        eprintln!(
            "turn cap, the last turn on {}: {RACING} racing → accepted {} / too_long {} (each recorded unanswered) / recorded {recorded} customer turns",
            kind(&url),
            outcomes.accepted.len(),
            outcomes.too_long,
        );
    }
}

/// What the follow-ups sent at once were told.
#[derive(Debug, Default)]
struct Outcomes {
    /// The message ids of the replies acknowledged (200, or `done` on the stream).
    accepted: Vec<String>,
    /// `turn_conflict`
    conflict: usize,
    /// `conversation_too_long`
    too_long: usize,
    /// The text streamed before each refusal.
    shown: Vec<String>,
    /// Of the `conversation_too_long`, those known to have lost the last turn at its
    /// commit (and so recorded), when the test can tell.
    too_long_at_commit: Option<usize>,
}

impl Outcomes {
    fn refused(&mut self, code: &str, shown: String) {
        match code {
            "turn_conflict" => self.conflict += 1,
            "conversation_too_long" => self.too_long += 1,
            other => panic!("a follow-up was refused with {other}"),
        }
        self.shown.push(shown);
    }
}

fn kind(url: &str) -> &'static str {
    if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

fn follow_up(conversation: &Value, message: &str) -> Value {
    json!({
        "conversation_id": conversation["conversation_id"],
        "conversation_token": conversation["conversation_token"],
        "message": message,
    })
}

/// A conversation of `turns` answered turns, asked one after another.
async fn drive(app: &TestApp, turns: usize, question: &str) -> Value {
    let first = app.ask(question).await;
    for _ in 1..turns {
        app.follow_up(&first, question).await;
    }
    first
}

/// Checks the record against what the follow-ups were told, and returns how many
/// customer turns the conversation has: at most the cap, no turn number twice, one
/// recorded answer per acknowledged reply and none for a refused one, every refusal that
/// reached the commit recorded with its code and what was shown, nothing spooled, and
/// the chain intact.
async fn check_record(
    app: &TestApp,
    url: &str,
    conversation: &Value,
    before: usize,
    outcomes: &Outcomes,
    streamed: &HashMap<String, String>,
) -> usize {
    let id = conversation["conversation_id"].as_str().unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT id, turn, role FROM messages WHERE conversation_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    let customer_turns = rows.iter().filter(|(_, _, role)| role == "user").count();
    assert!(customer_turns <= MAX_TURNS, "{customer_turns} customer turns");
    let numbers: HashSet<(i64, &str)> = rows.iter().map(|(_, turn, role)| (*turn, role.as_str())).collect();
    assert_eq!(numbers.len(), rows.len(), "a turn number recorded twice");
    assert!(rows.iter().all(|(_, turn, _)| (1..=MAX_TURNS as i64).contains(turn)));
    // The answers of the burst are exactly the replies acknowledged.
    let late: HashSet<&str> = rows
        .iter()
        .filter(|(_, turn, role)| *turn > before as i64 && role == "assistant")
        .map(|(id, _, _)| id.as_str())
        .collect();
    let accepted: HashSet<&str> = outcomes.accepted.iter().map(String::as_str).collect();
    assert_eq!(accepted.len(), outcomes.accepted.len());
    assert_eq!(late, accepted);
    assert_eq!(customer_turns, before + accepted.len());
    let events: Vec<Value> = app
        .audit_export()
        .await
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["conversation_id"] == id)
        .collect();
    let answers = events.iter().filter(|e| e["kind"] == "answer").count();
    assert_eq!(answers, customer_turns, "one answer event per answered turn");
    // Refused at the commit: the message recorded unanswered, with the code the customer
    // got and the text shown. (A follow-up refused as too long before any work was done
    // is not a turn of the conversation and is not recorded.)
    let interrupted: Vec<&Value> = events.iter().filter(|e| e["kind"] == "reply_interrupted").collect();
    let with = |code: &str| interrupted.iter().filter(|e| e["payload"]["reason"] == code).count();
    assert_eq!(with("turn_conflict"), outcomes.conflict, "{interrupted:?}");
    assert!(with("conversation_too_long") <= outcomes.too_long, "{interrupted:?}");
    if let Some(at_commit) = outcomes.too_long_at_commit {
        assert_eq!(with("conversation_too_long"), at_commit, "{interrupted:?}");
    }
    assert_eq!(
        interrupted.len(),
        with("turn_conflict") + with("conversation_too_long"),
        "{interrupted:?}"
    );
    for event in &interrupted {
        let message_id = event["payload"]["message_id"].as_str().unwrap();
        assert!(!accepted.contains(message_id));
        let shown = streamed.get(message_id).map_or("", String::as_str);
        assert_eq!(event["payload"]["shown"], shown, "{event}");
    }
    // Nothing went to the spool: a refused turn is not the store failing.
    let spool = app.settings.spool_dir().join("audit-spool.jsonl");
    let spooled = std::fs::read_to_string(&spool).unwrap_or_default();
    assert!(spooled.trim().is_empty(), "{spooled}");
    let store = AuditStore::connect(url).await.unwrap();
    let verification = store.verify().await.unwrap();
    assert_eq!(verification.error, None, "{verification:?}");
    customer_turns
}

/// Follow-ups one at a time reach the cap exactly, and the next is refused as too long.
async fn fill_to_the_cap(app: &TestApp, url: &str, conversation: &Value, question: &str) {
    loop {
        let (status, body) = app.chat(follow_up(conversation, question)).await;
        match status {
            StatusCode::OK => continue,
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "conversation_too_long", "{body}");
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let (customer_turns,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND role = 'user'")
            .bind(conversation["conversation_id"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(customer_turns, MAX_TURNS as i64);
}

/// A customer row and an assistant row of turn `n`, with their events.
fn turn_batch(conversation: Uuid, new: bool, n: i64) -> EventBatch {
    let event = |actor, kind| NewEvent {
        actor,
        kind,
        conversation_id: Some(conversation),
        payload: json!({ "turn": n }),
    };
    let message = |speaker, event_index| NewMessage {
        id: teller::audit::new_record_id(),
        conversation_id: conversation,
        turn: n,
        speaker,
        content: format!("{speaker} {n}"),
        mode: None,
        citations: None,
        handoff_reason: None,
        event_index,
    };
    EventBatch {
        conversation: new.then(|| NewConversation {
            id: conversation,
            token_hash: "h".into(),
            lang: "en".into(),
        }),
        events: vec![
            event(Actor::Customer, EventKind::MessageReceived),
            event(Actor::Assistant, EventKind::Answer),
        ],
        messages: vec![message(Speaker::Customer, 0), message(Speaker::Assistant, 1)],
        ..Default::default()
    }
}

/// At the store: of batches that take one turn's number, only the first commits and
/// every other comes back as a conflict (not as the store being unavailable), while the
/// batches the group commit put with them, of other conversations, are all committed.
#[tokio::test]
async fn a_turn_number_taken_is_a_conflict_that_fails_only_its_own_batch() {
    for (url, _dir) in databases("turn_conflict_store").await {
        let store = Arc::new(AuditStore::connect(&url).await.unwrap());
        let contested = Uuid::new_v4();
        store.append(turn_batch(contested, true, 1)).await.unwrap();
        let others: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
        let appends = (0..8)
            .map(|_| turn_batch(contested, false, 2))
            .chain(others.iter().map(|id| turn_batch(*id, true, 1)))
            .map(|batch| {
                let store = store.clone();
                tokio::spawn(async move { store.append(batch).await })
            })
            .collect::<Vec<_>>();
        let mut outcomes = Vec::new();
        for append in appends {
            outcomes.push(append.await.unwrap());
        }
        let (contested_outcomes, other_outcomes) = outcomes.split_at(8);
        assert_eq!(contested_outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{url}");
        assert!(
            contested_outcomes
                .iter()
                .all(|o| matches!(o, Ok(_) | Err(AuditError::Conflict))),
            "{url}: {contested_outcomes:?}"
        );
        assert!(other_outcomes.iter().all(Result::is_ok), "{url}: {other_outcomes:?}");
        assert_eq!(store.messages(contested).await.unwrap().len(), 4);
        let events = store.events(1, 1_000).await.unwrap();
        assert_eq!(events.len(), 2 * (1 + 1 + 8), "{url}");
        assert_eq!(store.verify().await.unwrap().error, None, "{url}");
    }
}

/// A log written before the unique turn numbers may repeat them (the race this fixes):
/// the migration renumbers those rows past their conversation's last turn, a turn's two
/// rows together, and leaves the events as they were.
#[tokio::test]
async fn the_migration_renumbers_turns_recorded_twice_before_it() {
    for (url, _dir) in databases("turn_migration").await {
        // The log as it was before migration 0004.
        let earlier = tempfile::TempDir::new().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(if url.starts_with("sqlite") {
            "migrations/sqlite"
        } else {
            "migrations/postgres"
        });
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if name.as_str() < "0004" {
                std::fs::copy(&path, earlier.path().join(name)).unwrap();
            }
        }
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite") {
            // As the store opens it: the file is created first.
            let path = url.trim_start_matches("sqlite://");
            std::fs::File::create(path).unwrap();
        }
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(earlier.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let at = "2026-01-01T00:00:00.000000Z";
        sqlx::query("INSERT INTO conversations (id, token_hash, lang, created_at) VALUES ('c', 'h', 'en', $1)")
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        // Turns 1, 2, 2, 2, 3: three follow-ups were numbered from the same history.
        let turns = [1, 2, 2, 2, 3];
        for (n, turn) in turns.iter().enumerate() {
            for (offset, role) in [(1, "user"), (2, "assistant")] {
                let seq = 2 * n as i64 + offset;
                sqlx::query("INSERT INTO audit_events (seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash) VALUES ($1, $2, 'system', 'answer', 'c', '{}', 'x', 'x', 'x')")
                    .bind(seq)
                    .bind(at)
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query("INSERT INTO messages (id, conversation_id, turn, role, content, created_at, event_seq) VALUES ($1, 'c', $2, $3, $4, $5, $6)")
                    .bind(format!("m{seq}"))
                    .bind(*turn as i64)
                    .bind(role)
                    .bind(format!("{role} {n}"))
                    .bind(at)
                    .bind(seq)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        pool.close().await;
        // Opening the store applies the migration.
        drop(AuditStore::connect(&url).await.unwrap());
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let renumbered: Vec<(String, i64)> = sqlx::query_as("SELECT content, turn FROM messages ORDER BY event_seq")
            .fetch_all(&pool)
            .await
            .unwrap();
        let expected: Vec<(String, i64)> = [1, 2, 4, 5, 3]
            .iter()
            .enumerate()
            .flat_map(|(n, turn)| [(format!("user {n}"), *turn), (format!("assistant {n}"), *turn)])
            .collect();
        assert_eq!(renumbered, expected, "{url}");
        // The index now refuses a repeat.
        let repeat = sqlx::query("INSERT INTO messages (id, conversation_id, turn, role, content, created_at, event_seq) VALUES ('again', 'c', 3, 'user', 'x', $1, 1)")
            .bind(at)
            .execute(&pool)
            .await;
        assert!(repeat.is_err(), "{url}");
    }
}
