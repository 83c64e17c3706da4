//! The HTTP contract through a spawned server: every error in the `{"error": {...}}`
//! shape, `/readyz` within a second, `no-store` on `/v1`, `/metrics` behind a token when
//! asked, every documented operation routed — and schemathesis fuzzing the server against
//! its own `/openapi.json`.

use crate::app::{spawn_app_with, AppOptions};
use crate::audit::databases;
use reqwest::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use teller::audit::{AuditStore, StaffRole};

/// Sends `request` and asserts a JSON error with `status` and `code`.
async fn expect_error(request: reqwest::RequestBuilder, status: StatusCode, code: &str) -> reqwest::header::HeaderMap {
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let got = response.status();
    let content_type = headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
    let body = response.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{code}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    headers
}

#[tokio::test]
async fn every_error_is_json_with_a_stable_code_on_both_stores() {
    for (url, _dir) in databases("every_error_is_json").await {
        let app = spawn_app_with(AppOptions {
            database_url: Some(url.clone()),
            ..Default::default()
        })
        .await;
        let staff = app.staff_token("contract", StaffRole::Compliance).await;
        let c = &app.client;
        let at = |path: &str| format!("{}{path}", app.address);
        let audit = |path: &str| c.get(at(path)).bearer_auth(&staff);

        expect_error(c.get(at("/nowhere")), StatusCode::NOT_FOUND, "not_found").await;
        expect_error(
            c.delete(at("/v1/chat")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
        expect_error(
            c.post(at("/healthz")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
        // A NUL byte in a filter was 503 audit_unavailable on PostgreSQL.
        for filter in ["q=%00", "mode=a%00b", "from=%01", "handoff_reason=%FF"] {
            expect_error(
                audit(&format!("/v1/audit/conversations?{filter}")),
                StatusCode::BAD_REQUEST,
                "invalid_text",
            )
            .await;
        }
        expect_error(
            audit("/v1/audit/conversations?page=abc"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
        expect_error(
            audit("/v1/audit/export?to=2030-01-01"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
        expect_error(
            audit("/v1/audit/export?from=2030-01-01&to=2031-01-01&format=xml"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
        expect_error(
            audit("/v1/audit/export?from=yesterday&to=2031-01-01"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        // A page number near i64::MAX was an overflow.
        let response = audit(&format!("/v1/audit/conversations?page={}", i64::MAX))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        expect_error(
            audit("/v1/audit/conversations/%FF%FE"),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        )
        .await;
        expect_error(
            c.get(at("/v1/conversations/a%00b")),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        )
        .await;

        let chat = |body: &str| {
            c.post(at("/v1/chat"))
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string())
        };
        expect_error(
            chat(r#"{"message": "hello\u0000"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        )
        .await;
        expect_error(
            chat(r#"{"message": "hi", "lang": "e\u0007n"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        )
        .await;
        expect_error(
            chat(r#"{"message": "hi", "conversation_token": "a\u0000"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        )
        .await;
        expect_error(
            chat(r#"{"message": "\ud800"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        )
        .await;
        expect_error(chat("{"), StatusCode::BAD_REQUEST, "invalid_json").await;
        expect_error(
            chat(r#"{"message": 5}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        expect_error(
            c.post(at("/v1/chat")).body(r#"{"message": "hi"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        let mut bad_header = c.get(at("/v1/audit/verify"));
        bad_header = bad_header.header(AUTHORIZATION, HeaderValue::from_bytes(b"Bearer tlr_\xff").unwrap());
        expect_error(bad_header, StatusCode::BAD_REQUEST, "invalid_text").await;

        let long = "a".repeat(teller::http::guard::MAX_URI_BYTES + 1);
        expect_error(
            c.get(at(&format!("/healthz?{long}"))),
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
        )
        .await;
        let big = "b".repeat(teller::http::guard::MAX_HEADER_BYTES / 2);
        expect_error(
            c.get(at("/healthz")).header("x-one", &big).header("x-two", &big),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
        )
        .await;
        expect_error(
            chat(&json!({ "message": "x".repeat(40_000) }).to_string()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        )
        .await;
        eprintln!("every_error_is_json: {url} ok");
    }
}

#[tokio::test]
async fn conversation_content_and_tokens_are_never_cached() {
    let app = spawn_app_with(AppOptions::default()).await;
    let staff = app.staff_token("contract", StaffRole::Compliance).await;
    let no_store = |response: &reqwest::Response| {
        response
            .headers()
            .get(CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let reply = app
        .client
        .post(format!("{}/v1/chat", app.address))
        .json(&json!({ "message": "How do I activate my card?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_store(&reply).as_deref(), Some("no-store"));
    let reply: Value = reply.json().await.unwrap();
    let id = reply["conversation_id"].as_str().unwrap();
    let token = reply["conversation_token"].as_str().unwrap();
    let stream = app
        .client
        .post(format!("{}/v1/chat/stream", app.address))
        .json(&json!({ "message": "How do I activate my card?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_store(&stream).as_deref(), Some("no-store"));
    for (path, bearer) in [
        (format!("/v1/conversations/{id}"), token.to_string()),
        (format!("/v1/conversations/{id}"), "wrong".to_string()),
        (format!("/v1/audit/conversations/{id}"), staff.clone()),
        ("/v1/audit/conversations".to_string(), staff.clone()),
        (
            "/v1/audit/export?from=2000-01-01&to=2999-01-01".to_string(),
            staff.clone(),
        ),
        ("/v1/audit/verify".to_string(), staff.clone()),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(no_store(&response).as_deref(), Some("no-store"), "{path}");
    }
}

#[tokio::test]
async fn metrics_can_require_a_staff_token() {
    let open = spawn_app_with(AppOptions::default()).await;
    let response = open
        .client
        .get(format!("{}/metrics", open.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let closed = spawn_app_with(AppOptions {
        tweak: |s| s.metrics_token_required = true,
        ..Default::default()
    })
    .await;
    let url = format!("{}/metrics", closed.address);
    expect_error(
        closed.client.get(&url),
        StatusCode::UNAUTHORIZED,
        "staff_token_required",
    )
    .await;
    expect_error(
        closed.client.get(&url).bearer_auth("tlr_nope"),
        StatusCode::UNAUTHORIZED,
        "invalid_staff_token",
    )
    .await;
    let agent = closed.staff_token("contract", StaffRole::Agent).await;
    let response = closed.client.get(&url).bearer_auth(agent).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("teller_http_requests_total"));
}

/// Every operation of `/openapi.json` is answered by its route: never the 404 of an
/// unknown route, never 405. (The unit test in `src/http/openapi.rs` checks the other
/// direction: every route the routers register is in the document.)
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app_with(AppOptions::default()).await;
    let document: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{paths:?}");
    for (path, item) in paths {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), format!("{}{concrete}", app.address))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body["error"]["code"] != "not_found",
                "{method} {path}: {status} {body}"
            );
        }
    }
}

/// A TCP proxy to PostgreSQL that the test can stall: every connection, old and new,
/// stops carrying bytes, as when the database host hangs (without stopping the shared
/// database).
struct StallingProxy {
    port: u16,
    stall: tokio::sync::watch::Sender<bool>,
}

impl StallingProxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stall, stalled) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                let mut stalled = stalled.clone();
                tokio::spawn(async move {
                    let stalled_now = *stalled.borrow();
                    if stalled_now {
                        std::future::pending::<()>().await;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = stalls(&mut stalled) => {
                            // Keep both sockets open, carrying nothing.
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Self { port, stall }
    }
}

async fn stalls(stalled: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stalled.wait_for(|s| *s).await;
}

#[tokio::test]
async fn readyz_answers_within_a_second_when_the_database_hangs() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("readyz_answers_within_a_second: skipped (TEST_DATABASE_URL not set)");
        return;
    };
    // A schema of its own: the shared database's public schema may hold another build's
    // migrations.
    let url = crate::audit::postgres_schema(&url).await;
    let proxy = StallingProxy::start("127.0.0.1:5432".into()).await;
    let proxied = url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    assert_ne!(proxied, url, "TEST_DATABASE_URL is expected on 127.0.0.1:5432");
    let app = spawn_app_with(AppOptions {
        database_url: Some(proxied),
        ..Default::default()
    })
    .await;
    let readyz = format!("{}/readyz", app.address);
    let response = app.client.get(&readyz).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    proxy.stall.send(true).unwrap();
    let started = Instant::now();
    let response = app.client.get(&readyz).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["failing"], json!(["audit_store"]), "{body}");
    assert_eq!(body["audit_store"], "timeout", "{body}");
    assert_eq!(body["vector_store"], "ok", "{body}");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");
    eprintln!("readyz with the database stalled: 503 in {took:?}");
}

/// Sums `teller_http_requests_total` from a Prometheus text: (all, 5xx).
fn request_counts(metrics: &str) -> (u64, u64) {
    let (mut all, mut server_errors) = (0, 0);
    for line in metrics.lines().filter(|l| l.starts_with("teller_http_requests_total{")) {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        all += value as u64;
        if labels.contains("status=\"5") {
            server_errors += value as u64;
        }
    }
    (all, server_errors)
}

/// schemathesis (every check) against a spawned server's `/openapi.json`, for a bounded
/// time: no 5xx, no response outside the schema, at least 10,000 requests. `.ci/run`
/// installs it in `.ci/venv` and sets `TELLER_SCHEMATHESIS`; without it, the test says it
/// is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_schema() {
    let Some(schemathesis) = std::env::var_os("TELLER_SCHEMATHESIS").filter(|s| !s.is_empty()) else {
        eprintln!("schemathesis: skipped (TELLER_SCHEMATHESIS not set; .ci/run installs it in .ci/venv)");
        return;
    };
    let _heavy = crate::helpers::heavy().await;
    let seconds: u64 = std::env::var("TELLER_SCHEMATHESIS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    // PostgreSQL when there is one (a schema of its own; it rejects NUL bytes, SQLite
    // does not), else the default SQLite file.
    let database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => databases("schemathesis").await.pop().map(|(url, _)| url),
        _ => None,
    };
    // The real binary in a process of its own, so /metrics counts only schemathesis's
    // requests (the metrics recorder is per process, shared by the other tests here).
    let data = tempfile::TempDir::new().unwrap();
    let mut settings = teller::config::Settings::for_data_dir(data.path());
    settings.database_url = database_url;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_teller"));
    server
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // The fuzzer sends thousands of requests from one address.
        .env("TELLER_RATE_LIMIT_PER_MINUTE", "0")
        .env("TELLER_CONVERSATION_RATE_LIMIT_PER_MINUTE", "0")
        .env("TELLER_DATA_DIR", data.path())
        .env("TELLER_KB_DIR", crate::helpers::fixture("kb"))
        .env(
            "TELLER_PROMPTS_DIR",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
        )
        .env("TELLER_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .current_dir(data.path())
        .kill_on_drop(true);
    if let Some(url) = &settings.database_url {
        server.env("DATABASE_URL", url);
    }
    let _server = server.spawn().expect("teller serve starts");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let up = Instant::now();
    while client.get(format!("{address}/healthz")).send().await.is_err() {
        assert!(up.elapsed() < Duration::from_secs(120), "teller serve did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let staff = AuditStore::connect(&teller::startup::database_url(&settings).unwrap())
        .await
        .unwrap()
        .create_token("schemathesis", StaffRole::Compliance)
        .await
        .unwrap();
    // schemathesis generates in Python, one core per process (the GIL): several processes,
    // each with its own seed, keep both the fuzzer and the server busy. One worker each:
    // with two threads, CPython 3.11.7's ast.parse (called by hypothesis) fails at random
    // with "AST constructor recursion depth mismatch".
    let processes: u64 = std::env::var("TELLER_SCHEMATHESIS_PROCESSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let started = Instant::now();
    let runs = (0..processes).map(|n| {
        tokio::process::Command::new(&schemathesis)
            .arg("--config-file")
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemathesis.toml"))
            .arg("run")
            .arg(format!("{address}/openapi.json"))
            .args(["--checks", "all", "--workers", "1", "--max-time"])
            .arg(seconds.to_string())
            .arg("--seed")
            .arg((18 + n).to_string())
            .args(["--request-timeout", "20", "--no-color"])
            .arg("--header")
            .arg(format!("Authorization: Bearer {staff}"))
            .kill_on_drop(true)
            .output()
    });
    let outputs = tokio::time::timeout(Duration::from_secs(seconds + 60), futures::future::join_all(runs))
        .await
        .expect("schemathesis finished in its time budget");
    let took = started.elapsed();
    let mut failed = Vec::new();
    for (n, output) in outputs.into_iter().enumerate() {
        let output = output.expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("--- schemathesis process {n} (seed {}) ---\n{stdout}", 18 + n);
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            failed.push((n, output.status.code()));
        }
    }
    let metrics = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (requests, server_errors) = request_counts(&metrics);
    eprintln!(
        "schemathesis: {processes} processes, {requests} requests, {server_errors} answered 5xx, {:.0} s, failed: {failed:?}",
        took.as_secs_f64()
    );
    assert_eq!(server_errors, 0, "responses with a 5xx status");
    assert!(failed.is_empty(), "schemathesis found failures (see above): {failed:?}");
    assert!(requests >= 10_000, "only {requests} requests in {seconds} s");
}
