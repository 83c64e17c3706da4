//! Refused staff attempts in the record, on both stores: rate-limited `staff_access_refused`
//! events that account for every refusal, the token never in the log, and 401s that do
//! not wait for the store.

use crate::app::{spawn_app_with, AppOptions, TestApp};
use crate::audit::databases;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use teller::audit::{AuditStore, StaffRole};
use teller::http::refused::BURST;

async fn app_on(url: &str) -> TestApp {
    spawn_app_with(AppOptions {
        database_url: Some(url.to_string()),
        ..Default::default()
    })
    .await
}

/// The `staff_access_refused` events so far.
async fn refusal_events(app: &TestApp) -> Vec<Value> {
    app.audit_events("staff_access_refused").await
}

/// Refusals the events account for: each event's own, and those it says were suppressed.
fn accounted(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|e| 1 + e["payload"]["suppressed"].as_u64().unwrap())
        .sum()
}

/// Waits until the events account for `refusals` (the recording task appends in the
/// background) and returns them.
async fn settled(app: &TestApp, refusals: u64) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let events = refusal_events(app).await;
        let counted = accounted(&events);
        assert!(
            counted <= refusals,
            "{counted} refusals recorded of {refusals}: {events:?}"
        );
        if counted == refusals {
            return events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{counted} of {refusals}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One more refusal once the limiter has a cell again (one a second): its event carries
/// every refusal not recorded since the last, so the record then accounts for all.
async fn flush(app: &TestApp) {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = app.get("/v1/audit/verify", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

fn fingerprint(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))[..8].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_tokens_is_answered_and_recorded_within_the_limit_with_every_refusal_counted() {
    const N: usize = 60;
    for (url, _dir) in databases("refused_burst").await {
        let app = app_on(&url).await;
        let token = "tlr_guessed-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let started = Instant::now();
        let server = &app;
        let requests = (0..N).map(|_| {
            let path = format!("/v1/audit/conversations/{}", uuid::Uuid::new_v4());
            async move { server.get(&path, Some(token)).await }
        });
        for (status, body) in futures::future::join_all(requests).await {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(body["error"]["code"], "invalid_staff_token");
        }
        let burst = started.elapsed();
        flush(&app).await;
        let events = settled(&app, N as u64 + 1).await;
        // The burst's own events: the quota's burst, plus one per second the burst lasted.
        let limit = BURST.get() as usize + burst.as_secs() as usize;
        let (flushed, burst_events) = events.split_last().unwrap();
        eprintln!(
            "refused staff attempts on {}: {N} bad tokens in {:.2} s → {} events (limit {limit}), {} suppressed carried by the next",
            if url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" },
            burst.as_secs_f64(),
            burst_events.len(),
            flushed["payload"]["suppressed"],
        );
        assert!(burst_events.len() <= limit, "{} events: {events:?}", burst_events.len());
        for event in burst_events {
            let payload = &event["payload"];
            assert_eq!(event["actor"], "system");
            assert_eq!(payload["reason"], "invalid_staff_token");
            assert_eq!(payload["method"], "GET");
            assert_eq!(
                payload["route"], "/v1/audit/conversations/{id}",
                "the template, not the path"
            );
            assert_eq!(payload["token_fingerprint"], fingerprint(token).as_str());
            assert_eq!(payload["token_name"], Value::Null);
        }
        assert_eq!(flushed["payload"]["reason"], "staff_token_required");
        assert_eq!(flushed["payload"]["route"], "/v1/audit/verify");
        assert_eq!(flushed["payload"]["token_fingerprint"], Value::Null);
        assert_eq!(
            flushed["payload"]["suppressed"].as_u64().unwrap() as usize,
            N - burst_events.len()
        );
        // The token itself is nowhere in the record.
        let log = app.audit_export().await;
        assert!(
            !log.contains(token) && !log.contains("guessed"),
            "the token is in the log"
        );
        let (_, metrics) = app.get("/metrics", None).await;
        let refused: f64 = metrics
            .as_str()
            .unwrap()
            .lines()
            .find(|l| l.starts_with("teller_staff_refused_total{reason=\"invalid_staff_token\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .expect("the refusals are counted");
        assert!(refused >= N as f64, "{refused}");
    }
}

#[tokio::test]
async fn a_token_of_the_wrong_role_is_recorded_with_its_name_and_never_itself() {
    for (url, _dir) in databases("refused_role").await {
        let app = spawn_app_with(AppOptions {
            database_url: Some(url.clone()),
            tweak: |s| s.metrics_token_required = true,
            ..Default::default()
        })
        .await;
        let agent = AuditStore::connect(&url)
            .await
            .unwrap()
            .create_token("adam", StaffRole::Agent)
            .await
            .unwrap();
        let (status, body) = app
            .get("/v1/audit/export?from=2026-01-01&to=2026-02-01", Some(&agent))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let events = settled(&app, 1).await;
        let event = &events[0];
        assert_eq!(event["actor"], "staff:adam");
        assert_eq!(event["payload"]["reason"], "forbidden");
        assert_eq!(event["payload"]["token_name"], "adam");
        assert_eq!(event["payload"]["role"], "agent");
        assert_eq!(event["payload"]["route"], "/v1/audit/export");
        assert_eq!(event["payload"]["token_fingerprint"], Value::Null);
        assert_eq!(event["payload"]["suppressed"], 0);
        assert!(!app.audit_export().await.contains(&agent), "the token is in the log");
        // /metrics, when it asks for a token, records its refusals the same way.
        let (status, _) = app.get("/metrics", Some("tlr_wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let events = settled(&app, 2).await;
        assert_eq!(events[1]["payload"]["route"], "/metrics");
        assert_eq!(events[1]["payload"]["reason"], "invalid_staff_token");
        assert_eq!(
            events[1]["payload"]["token_fingerprint"],
            fingerprint("tlr_wrong").as_str()
        );
    }
}

/// With the log's writes stalled (another connection holds the write lock), 401s still
/// answer at once; their events wait for the store and, once it is back, every refusal
/// is accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_at_once_while_the_store_is_stalled_and_are_counted_once_it_is_back() {
    use sqlx::Connection;
    const N: usize = 30;
    for (url, _dir) in databases("refused_stalled").await {
        let app = app_on(&url).await;
        sqlx::any::install_default_drivers();
        let mut holder = sqlx::AnyConnection::connect(&url).await.unwrap();
        if url.starts_with("sqlite") {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
        } else {
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            sqlx::query("LOCK TABLE audit_events IN EXCLUSIVE MODE")
                .execute(&mut holder)
                .await
                .unwrap();
        }
        let mut slowest = Duration::ZERO;
        for n in 0..N {
            let token = (n % 2 == 0).then_some("tlr_not-a-token");
            let started = Instant::now();
            let (status, body) = app.get("/v1/audit/verify", token).await;
            slowest = slowest.max(started.elapsed());
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
        // Nothing was recorded meanwhile: the store was stalled, and the 401s did not wait.
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let (recorded,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE kind = 'staff_access_refused'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(recorded, 0);
        eprintln!(
            "refused staff attempts with the log stalled ({}): slowest 401 of {N} in {:.1} ms",
            if url.starts_with("sqlite") {
                "SQLite"
            } else {
                "PostgreSQL"
            },
            slowest.as_secs_f64() * 1e3
        );
        assert!(slowest < Duration::from_millis(500), "a 401 waited {slowest:?}");
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
        flush(&app).await;
        settled(&app, N as u64 + 1).await;
    }
}
