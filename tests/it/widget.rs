//! The customer chat widget (issue #15): its assets and headers, feedback, identity tokens
//! and rate limits over HTTP; and in a real headless Chromium, with the host page served
//! from another origin (`127.0.0.1:<port>`) than Teller (`localhost:<port>`, through a
//! proxy the test can cut), the whole customer path.

use crate::browser::{button, click, find, labelled, screenshots, wait_for_text, Driver, WAIT};
use crate::helpers::fixture;
use axum::response::IntoResponse;
use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use teller::audit::{AuditStore, StaffRole};
use teller::config::Settings;
use teller::identity::{CustomerRef, IdentityVerifier};
use teller::startup::Application;
use tempfile::TempDir;
use tokio::net::TcpListener;

const SECRET: &str = "a test secret of at least thirty-two bytes";

/// A Teller for these tests: its own data dir, the given knowledge base and widget origins,
/// the identity secret, and the rate limits given (0: off).
struct Teller {
    address: String,
    port: u16,
    settings: Settings,
    client: reqwest::Client,
    _data: TempDir,
}

async fn teller(kb: &str, origins: &[String], limits: (u32, u32)) -> Teller {
    let data = TempDir::new().unwrap();
    let mut settings = Settings::for_data_dir(data.path());
    settings.kb_dir = fixture(kb);
    settings.prompts_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"));
    settings.bind = "127.0.0.1:0".into();
    settings.widget_origins = Some(origins.join(","));
    settings.identity_secret = Some(SECRET.to_string().into());
    settings.rate_limit_per_minute = limits.0;
    settings.conversation_rate_limit_per_minute = limits.1;
    let app = Application::build(&settings).await.expect("app builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    Teller {
        address: format!("http://127.0.0.1:{port}"),
        port,
        settings,
        client: reqwest::Client::new(),
        _data: data,
    }
}

impl Teller {
    async fn store(&self) -> AuditStore {
        AuditStore::connect(&teller::startup::database_url(&self.settings).unwrap())
            .await
            .unwrap()
    }

    async fn export(&self) -> Vec<Value> {
        let mut out = Vec::new();
        self.store()
            .await
            .export(
                "2000-01-01T00:00:00Z",
                "2999-01-01T00:00:00Z",
                teller::audit::ExportFormat::Jsonl,
                &mut out,
            )
            .await
            .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn chat(&self, body: Value, identity: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}/v1/chat", self.address)).json(&body);
        if let Some(identity) = identity {
            request = request.header("x-teller-identity", identity);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn feedback(&self, reply: &Value, message_id: &str, body: Value) -> (StatusCode, Value) {
        let id = reply["conversation_id"].as_str().unwrap();
        let response = self
            .client
            .post(format!(
                "{}/v1/conversations/{id}/messages/{message_id}/feedback",
                self.address
            ))
            .bearer_auth(reply["conversation_token"].as_str().unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn audit_view(&self, id: &str) -> Value {
        let name = format!("olga-{}", uuid::Uuid::new_v4());
        let officer = self
            .store()
            .await
            .create_token(&name, StaffRole::Compliance)
            .await
            .unwrap();
        let response = self
            .client
            .get(format!("{}/v1/audit/conversations/{id}", self.address))
            .bearer_auth(officer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn the_widget_is_served_under_strict_policies_and_fits_its_budgets() {
    let app = teller("kb", &["https://www.bank.example".into()], (0, 0)).await;
    for (path, content_type) in [
        ("/widget.js", "text/javascript; charset=utf-8"),
        ("/widget/frame", "text/html; charset=utf-8"),
        ("/widget/frame.js", "text/javascript; charset=utf-8"),
        ("/widget/frame.css", "text/css; charset=utf-8"),
        ("/demo", "text/html; charset=utf-8"),
        ("/widget/demo.css", "text/css; charset=utf-8"),
    ] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let policy = header(&response, "content-security-policy").to_string();
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        match path {
            "/widget/frame" => {
                assert!(policy.contains("script-src 'self'"), "{policy}");
                assert!(
                    policy.ends_with("frame-ancestors 'self' https://www.bank.example"),
                    "{policy}"
                );
            }
            "/demo" => assert!(policy.contains("frame-ancestors 'none'"), "{policy}"),
            "/widget.js" => assert_eq!(header(&response, "cross-origin-resource-policy"), "cross-origin"),
            _ => assert!(policy.contains("frame-ancestors 'none'"), "{policy}"),
        }
    }
    // The OpenAPI document lists the widget's routes and the new ones.
    let (_, document) = (
        (),
        app.client
            .get(format!("{}/openapi.json", app.address))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
    );
    for path in [
        "/widget.js",
        "/widget/frame",
        "/demo",
        "/v1/conversations/{id}/messages/{message_id}/feedback",
        "/v1/customer/conversations",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} not in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn feedback_is_one_changeable_rating_per_assistant_reply_audited_and_masked() {
    let app = teller("kb", &[], (0, 0)).await;
    let (status, reply) = app
        .chat(json!({ "message": "What is the annual fee for the Gold card?" }), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let message_id = reply["message_id"].as_str().unwrap().to_string();

    let (status, rated) = app.feedback(&reply, &message_id, json!({ "rating": "up" })).await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(
        (rated["rating"].as_str(), &rated["previous"]),
        (Some("up"), &Value::Null)
    );
    let comment = "Not clear. Call me on 07700 900123 or mail jane.doe@example.com";
    let (status, changed) = app
        .feedback(&reply, &message_id, json!({ "rating": "down", "comment": comment }))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["previous"], "up");
    let recorded = changed["comment"].as_str().unwrap();
    assert!(
        !recorded.contains("07700 900123") && !recorded.contains("jane.doe@example.com"),
        "{recorded}"
    );

    // Not an assistant message of this conversation, or not a conversation of this token.
    let transcript: Value = app
        .client
        .get(format!(
            "{}/v1/conversations/{}",
            app.address,
            reply["conversation_id"].as_str().unwrap()
        ))
        .bearer_auth(reply["conversation_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_message = transcript["messages"][0]["id"].as_str().unwrap().to_string();
    for (message, body, expected) in [
        (
            user_message.as_str(),
            json!({ "rating": "up" }),
            (StatusCode::NOT_FOUND, "message_not_found"),
        ),
        (
            "0190a0b0-0000-7000-8000-000000000000",
            json!({ "rating": "up" }),
            (StatusCode::NOT_FOUND, "message_not_found"),
        ),
        (
            "not-a-uuid",
            json!({ "rating": "up" }),
            (StatusCode::NOT_FOUND, "message_not_found"),
        ),
        (
            &message_id,
            json!({ "rating": "sideways" }),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ),
        (
            &message_id,
            json!({ "rating": "up", "comment": "x".repeat(1_001) }),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ),
    ] {
        let (status, body) = app.feedback(&reply, message, body).await;
        assert_eq!((status, body["error"]["code"].as_str().unwrap()), expected, "{message}");
    }
    let mut forged = reply.clone();
    forged["conversation_token"] = json!("forged");
    let (status, body) = app.feedback(&forged, &message_id, json!({ "rating": "up" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("conversation_not_found"))
    );

    // Every change is an event; the compliance view has the current rating.
    let events: Vec<Value> = app
        .export()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "feedback_given")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["payload"]["rating"], "down");
    assert_eq!(events[1]["payload"]["previous"], "up");
    assert_eq!(events[1]["actor"], "customer");
    let exported = serde_json::to_string(&events).unwrap();
    assert!(!exported.contains("jane.doe@example.com") && !exported.contains("900123"));
    let view = app.audit_view(reply["conversation_id"].as_str().unwrap()).await;
    assert_eq!(view["feedback"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["feedback"][0]["rating"], "down");
    assert_eq!(view["feedback"][0]["message_id"], message_id.as_str());
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("teller_feedback_total{rating=\"down\"}"),
        "no feedback metric"
    );
}

#[tokio::test]
async fn a_signed_identity_token_records_the_customer_and_lists_their_conversations() {
    let app = teller("kb", &[], (0, 0)).await;
    let bank = IdentityVerifier::new(SECRET.as_bytes()).unwrap();
    let soon = chrono::Utc::now().timestamp() + 300;
    let jane = bank.mint(&CustomerRef::parse("cust-1001").unwrap(), soon);
    let bob = bank.mint(&CustomerRef::parse("cust-2002").unwrap(), soon);

    let (status, first) = app
        .chat(
            json!({ "message": "What is the annual fee for the Gold card?" }),
            Some(&jane),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let id = first["conversation_id"].as_str().unwrap();
    let view = app.audit_view(id).await;
    assert_eq!(view["customer_ref"], "cust-1001");
    let received = view["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "message_received")
        .unwrap();
    assert_eq!(received["payload"]["customer"], "cust-1001");
    // An anonymous conversation that signs in later gets its customer then.
    let (_, anonymous) = app
        .chat(json!({ "message": "What are your branch opening hours?" }), None)
        .await;
    let later = anonymous["conversation_id"].as_str().unwrap();
    assert_eq!(app.audit_view(later).await["customer_ref"], Value::Null);
    let (status, _) = app
        .chat(
            json!({
                "conversation_id": later, "conversation_token": anonymous["conversation_token"],
                "message": "What interest rate does the savings account pay?",
            }),
            Some(&jane),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.audit_view(later).await["customer_ref"], "cust-1001");

    let list = |identity: Option<String>| {
        let mut request = app.client.get(format!("{}/v1/customer/conversations", app.address));
        if let Some(identity) = identity {
            request = request.header("x-teller-identity", identity);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, mine) = list(Some(jane.clone())).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let ids: Vec<&str> = mine["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [later, id], "newest first");
    assert_eq!(
        mine["conversations"][1]["first_message"],
        "What is the annual fee for the Gold card?"
    );
    assert_eq!(list(Some(bob)).await.1["conversations"], json!([]));
    assert_eq!(list(None).await.1["error"]["code"], "identity_required");

    // Forged, tampered and expired tokens are refused, on chat turns too.
    let forger = IdentityVerifier::new(b"not the bank's secret, but as long").unwrap();
    let forged = forger.mint(&CustomerRef::parse("cust-1001").unwrap(), soon);
    let expired = bank.mint(
        &CustomerRef::parse("cust-1001").unwrap(),
        chrono::Utc::now().timestamp() - 1,
    );
    for bad in [forged, expired, format!("{jane}x"), "garbage".into()] {
        let (status, body) = list(Some(bad.clone())).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_identity_token"))
        );
        let (status, body) = app.chat(json!({ "message": "hello" }), Some(&bad)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_identity_token"))
        );
    }
}

#[tokio::test]
async fn the_public_routes_are_rate_limited_per_ip_and_per_conversation() {
    let per_ip = teller("kb", &[], (3, 0)).await;
    for _ in 0..3 {
        let (status, _) = per_ip
            .chat(json!({ "message": "What are your branch opening hours?" }), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = per_ip
        .client
        .post(format!("{}/v1/chat/stream", per_ip.address))
        .json(&json!({ "message": "What are your branch opening hours?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The widget's assets are not API calls.
    let asset = per_ip
        .client
        .get(format!("{}/widget.js", per_ip.address))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), StatusCode::OK);

    let per_conversation = teller("kb", &[], (0, 2)).await;
    let (_, reply) = per_conversation
        .chat(json!({ "message": "What are your branch opening hours?" }), None)
        .await;
    let follow_up = json!({
        "conversation_id": reply["conversation_id"], "conversation_token": reply["conversation_token"],
        "message": "And on Saturdays?",
    });
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(per_conversation.chat(follow_up.clone(), None).await.0);
    }
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]
    );
    // Another conversation is not held back.
    let (status, _) = per_conversation
        .chat(json!({ "message": "What are your branch opening hours?" }), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

// ---- the browser ------------------------------------------------------------------------

/// A TCP proxy in front of Teller, so the browser reaches it as `localhost:<port>` and the
/// test can drop every open connection (the event stream with them) at once.
struct Proxy {
    port: u16,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let open = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { port, connections }
    }

    /// Drops every connection open now, as a network drop or a server restart would.
    fn cut(&self) -> usize {
        let open: Vec<_> = std::mem::take(&mut *self.connections.lock().unwrap());
        let live = open.iter().filter(|t| !t.is_finished()).count();
        open.iter().for_each(|t| t.abort());
        live
    }
}

/// The bank's side: pages on `127.0.0.1:<port>` (`listener`), another origin than
/// Teller's, and an advert frame from yet another (`evil`).
fn host_pages(listener: std::net::TcpListener, evil: std::net::TcpListener, teller: u16) {
    let evil_port = evil.local_addr().unwrap().port();
    let teller_origin = format!("http://localhost:{teller}");
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Host bank</title></head>\
         <body><h1>Host bank</h1><p>Welcome.</p>\
         <iframe title=\"Adverts\" src=\"http://127.0.0.1:{evil_port}/evil\"></iframe>\
         <script src=\"{teller_origin}/widget.js\" async></script></body></html>"
    );
    let strict = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>Strict host</title>\
         <link rel=\"stylesheet\" href=\"/hostile.css\"></head>\
         <body><h1>Strict host</h1><script src=\"{teller_origin}/widget.js\" async></script></body></html>"
    );
    let policy = format!(
        "default-src 'none'; script-src {teller_origin} 'self'; frame-src {teller_origin}; style-src 'self'; \
         base-uri 'none'; form-action 'none'"
    );
    let advert = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ad</title>\
                <script src=\"/evil.js\"></script></head><body>Ad</body></html>";
    // Another origin posts forged messages to the page and every frame, again and again.
    let evil_js = "setInterval(() => { for (const w of [top, ...Array.from(top.frames)]) { \
                   try { w.postMessage({ v: 1, type: 'close' }, '*'); \
                   w.postMessage({ v: 1, type: 'identity', token: 'forged' }, '*'); } catch (e) {} } }, 200);";
    let router = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        )
        .route(
            "/strict",
            axum::routing::get(move || async move {
                ([("content-security-policy", policy)], axum::response::Html(strict)).into_response()
            }),
        )
        .route(
            "/hostile.css",
            axum::routing::get(|| async { ([("content-type", "text/css")], "* { all: unset }") }),
        )
        .route(
            "/evil",
            axum::routing::get(move || async move { axum::response::Html(advert) }),
        )
        .route(
            "/evil.js",
            axum::routing::get(move || async move { ([("content-type", "text/javascript")], evil_js) }),
        );
    let again = router.clone();
    for (listener, router) in [(listener, router), (evil, again)] {
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
}

/// The widget's shadow root on the current page.
async fn shadow(browser: &Client) -> fantoccini::elements::ShadowRoot {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(host) = browser.find(Locator::Css("[data-teller-widget]")).await {
            if let Ok(root) = host.shadow_root().await {
                return root;
            }
        }
        assert!(Instant::now() < deadline, "the widget did not appear");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn launcher(browser: &Client) -> Element {
    shadow(browser)
        .await
        .find(Locator::Css("button.launcher"))
        .await
        .unwrap()
}

/// Opens the chat with the launcher and enters its frame.
async fn open_chat(browser: &Client, name: &str) {
    let button = launcher(browser).await;
    assert_eq!(button.attr("aria-label").await.unwrap().as_deref(), Some(name));
    button.click().await.unwrap();
    enter_chat(browser).await;
}

async fn enter_chat(browser: &Client) {
    let frame = shadow(browser).await.find(Locator::Css("iframe")).await.unwrap();
    frame.enter_frame().await.unwrap();
    find(browser, "//textarea[@id='message']").await;
}

/// Types `text` into the message box and presses Send; returns how many assistant replies
/// were shown before.
async fn say(browser: &Client, message_label: &str, send: &str, text: &str) -> usize {
    let before = assistant_count(browser).await;
    let field = find(browser, &labelled(message_label)).await;
    field.send_keys(text).await.unwrap();
    click(browser, &button(send)).await;
    before
}

/// Asks `text` and returns the complete reply.
async fn ask(browser: &Client, message_label: &str, send: &str, text: &str) -> String {
    let before = say(browser, message_label, send, text).await;
    answer_after(browser, before).await
}

const LAST_ANSWER: &str = "(//*[@role='log']/div[contains(@class,'assistant')])[last()]";

/// Waits until there are more than `before` assistant replies and the last is complete (not
/// busy), and returns its text.
async fn answer_after(browser: &Client, before: usize) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if assistant_count(browser).await <= before {
            assert!(Instant::now() < deadline, "no new answer within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if let Ok(item) = browser.find(Locator::XPath(LAST_ANSWER)).await {
            if item.attr("aria-busy").await.unwrap().is_none()
                && browser
                    .find(Locator::XPath("//*[@role='log'][@aria-busy='false']"))
                    .await
                    .is_ok()
            {
                return item.text().await.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no complete answer within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assistant_count(browser: &Client) -> usize {
    browser
        .find_all(Locator::XPath("//*[@role='log']/div[contains(@class,'assistant')]"))
        .await
        .unwrap()
        .len()
}

/// axe-core on the current document: the serious and critical violations.
async fn axe(browser: &Client) -> (Vec<String>, usize) {
    let source = std::fs::read_to_string(fixture("axe/axe.min.js")).unwrap();
    browser.execute(&source, vec![]).await.unwrap();
    let result = browser
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             axe.run(document, { resultTypes: ['violations'] }).then((r) => done({ \
               violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })), \
               passes: r.passes.length }), (e) => done({ error: String(e) }));",
            vec![],
        )
        .await
        .unwrap();
    assert!(result.get("error").is_none(), "{result}");
    let serious = result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| v.to_string())
        .collect();
    let all = result["violations"].as_array().unwrap().len();
    println!("axe: {} passes, violations {}", result["passes"], result["violations"]);
    (serious, all)
}

async fn agent_token(app: &Teller, name: &str) -> String {
    app.store().await.create_token(name, StaffRole::Agent).await.unwrap()
}

async fn agent_says(app: &Teller, agent: &str, id: &str, text: &str) {
    let response = app
        .client
        .post(format!("{}/v1/agent/conversations/{id}/messages", app.address))
        .bearer_auth(agent)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.text().await);
}

/// The frame's stored conversation (read inside the frame: the host page cannot).
async fn stored_conversation(browser: &Client) -> Value {
    let stored = browser
        .execute("return sessionStorage.getItem('teller.conversation')", vec![])
        .await
        .unwrap();
    serde_json::from_str(stored.as_str().unwrap_or("null")).unwrap()
}

/// The median of some durations, in milliseconds.
fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Sends `text` from the frame and returns the milliseconds from the Send click to the
/// first answer text on screen (measured in the page, with `performance.now()`).
async fn first_token_ms(browser: &Client, text: &str) -> f64 {
    let result = browser
        .execute_async(
            "const [text, done] = arguments; \
             const log = document.getElementById('log'); \
             const before = log.querySelectorAll('.msg.assistant').length; \
             const input = document.getElementById('message'); \
             input.value = text; \
             let start; \
             const seen = () => { const all = log.querySelectorAll('.msg.assistant'); \
               const last = all[all.length - 1]; \
               return all.length > before && last.querySelector('.body').textContent.trim().length > 0; }; \
             const observer = new MutationObserver(() => { if (seen()) { observer.disconnect(); \
               done(performance.now() - start); } }); \
             observer.observe(log, { childList: true, subtree: true, characterData: true }); \
             start = performance.now(); \
             document.getElementById('send').click();",
            vec![json!(text)],
        )
        .await
        .unwrap();
    // Let the turn finish before the next one.
    answer_after(browser, 0).await;
    let deadline = Instant::now() + WAIT;
    while browser
        .find(Locator::XPath("//*[@role='log'][@aria-busy='false']"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the turn did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    result.as_f64().unwrap()
}

#[tokio::test]
async fn a_customer_chats_rates_reloads_and_reaches_a_colleague_through_the_widget() {
    let Some(driver) = Driver::start().await else {
        eprintln!("skipped: no chromedriver");
        return;
    };
    // Chromium is heavy on two cores: one browser test at a time.
    let _heavy = crate::helpers::heavy().await;
    // The bank's page on 127.0.0.1:<host>, allowed to embed; the advert frame on
    // 127.0.0.1:<evil>, not allowed; Teller reached as localhost:<proxy>.
    let host_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let evil_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = host_listener.local_addr().unwrap().port();
    let app = teller("kb-widget", &[format!("http://127.0.0.1:{host}")], (0, 0)).await;
    let proxy = Proxy::start(app.port).await;
    host_pages(host_listener, evil_listener, proxy.port);
    let profile = TempDir::new().unwrap();
    let browser = driver.browser(&profile).await;
    browser.goto(&format!("http://127.0.0.1:{host}/")).await.unwrap();

    // English: a streamed answer with a numbered source; the frame holds the token, the
    // page does not.
    open_chat(&browser, "Open chat").await;
    let answer = ask(&browser, "Message", "Send", "What is the annual fee for the Gold card?").await;
    assert!(answer.contains("Gold"), "{answer}");
    find(&browser, &format!("{LAST_ANSWER}//ol[@class='sources']/li")).await;
    let stored = stored_conversation(&browser).await;
    let token = stored["token"].as_str().expect("the frame keeps the token").to_string();
    let id = stored["id"].as_str().unwrap().to_string();

    // Feedback reaches the audit record.
    click(&browser, &format!("{LAST_ANSWER}{}", button("Helpful"))).await;
    find(
        &browser,
        &format!("{LAST_ANSWER}//button[@aria-pressed='true'][normalize-space(.)='Helpful']"),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while !app
        .export()
        .await
        .iter()
        .any(|e| e["kind"] == "feedback_given" && e["payload"]["rating"] == "up")
    {
        assert!(Instant::now() < deadline, "no feedback_given event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Chinese, after switching the language: the labels change with it.
    click(&browser, "//button[@id='lang']").await;
    find(&browser, &button("发送")).await;
    let answer = ask(&browser, "输入消息", "发送", "网上银行转账限额是多少？").await;
    assert!(answer.contains("限额") || answer.contains("转账"), "{answer}");
    find(&browser, &format!("{LAST_ANSWER}//ol[@class='sources']/li")).await;
    click(&browser, "//button[@id='lang']").await;
    find(&browser, &button("Send")).await;

    // A passage with markup in it renders as text.
    let answer = ask(&browser, "Message", "Send", "How much is the parrot perch rental?").await;
    assert!(answer.contains("parrot") || answer.contains("perch"), "{answer}");
    let sources = find(&browser, &format!("{LAST_ANSWER}//ol[@class='sources']"))
        .await
        .text()
        .await
        .unwrap();
    assert!(sources.contains("Parrot Perch Rental"), "{sources}");
    let injected = browser
        .execute(
            "return [document.querySelectorAll('img, script:not([src])').length, window.__pwned ?? null]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        injected,
        json!([0, null]),
        "markup from a passage ran or became elements"
    );

    // A forged postMessage from the advert's origin neither closes the chat nor signs
    // anybody in (it has been posting every 200 ms all along).
    browser.enter_parent_frame().await.unwrap();
    browser.enter_parent_frame().await.ok();
    browser
        .execute("window.postMessage({ v: 1, type: 'close' }, '*')", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !launcher(&browser).await.is_displayed().await.unwrap(),
        "a forged close was obeyed"
    );
    enter_chat(&browser).await;
    assert!(
        !find(&browser, "//*[@id='error']").await.is_displayed().await.unwrap(),
        "a forged identity was used"
    );

    // First visible token after Send, 20 turns in a fresh conversation.
    click(&browser, &button("New conversation")).await;
    let mut samples = Vec::new();
    for _ in 0..20 {
        samples.push(first_token_ms(&browser, "What is the annual fee for the Gold card?").await);
    }
    let median = median_ms(samples.clone());
    println!(
        "widget first visible token after Send: median {median:.1} ms of 20 (min {:.1}, max {:.1})",
        samples.iter().cloned().fold(f64::INFINITY, f64::min),
        samples.iter().cloned().fold(0.0, f64::max)
    );
    assert!(median <= 100.0, "first token median {median:.1} ms");
    // Back to the first conversation for the rest, as a reload would find it.
    browser
        .execute(
            "sessionStorage.setItem('teller.conversation', JSON.stringify({ id: arguments[0], token: arguments[1], state: 'bot' }))",
            vec![json!(id), json!(token)],
        )
        .await
        .unwrap();

    // Reload: the conversation is shown again, from the frame's storage.
    browser.enter_parent_frame().await.unwrap();
    browser.refresh().await.unwrap();
    let page_storage = browser
        .execute(
            "return JSON.stringify(Object.assign({}, sessionStorage, localStorage))",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        !page_storage.as_str().unwrap().contains(&token),
        "the host page can read the token"
    );
    open_chat(&browser, "Open chat").await;
    wait_for_text(
        &browser,
        "//*[@role='log']",
        "What is the annual fee for the Gold card?",
    )
    .await;
    wait_for_text(&browser, "//*[@role='log']", "网上银行转账限额是多少？").await;
    assert_eq!(assistant_count(&browser).await, 3);

    // A person: the widget says so plainly, and the colleague's messages arrive live.
    say(&browser, "Message", "Send", "I want to talk to a real person").await;
    wait_for_text(&browser, "//*[@role='status']", "waiting for a colleague").await;
    std::fs::write(
        screenshots().join("widget-waiting.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    let alex = agent_token(&app, "Alex").await;
    let claim = app
        .client
        .post(format!("{}/v1/agent/conversations/{id}/claim", app.address))
        .bearer_auth(&alex)
        .send()
        .await
        .unwrap();
    assert!(claim.status().is_success(), "{:?}", claim.text().await);
    wait_for_text(&browser, "//*[@role='status']", "Alex from Lantern Bank has joined").await;
    agent_says(&app, &alex, &id, "Hello, this is Alex. How can I help?").await;
    wait_for_text(&browser, "//*[@role='log']", "Hello, this is Alex.").await;
    // Markup from a colleague is text too.
    agent_says(
        &app,
        &alex,
        &id,
        "See <img src=x onerror=window.__pwned=3> and <script>window.__pwned=4</script> here",
    )
    .await;
    wait_for_text(&browser, "//*[@role='log']", "here").await;
    let injected = browser
        .execute(
            "return [document.querySelectorAll('img, script:not([src])').length, window.__pwned ?? null]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        injected,
        json!([0, null]),
        "markup from a colleague ran or became elements"
    );

    // The server drops the stream: messages sent meanwhile arrive once, in order.
    let dropped = proxy.cut();
    assert!(dropped > 0, "no connection to drop");
    agent_says(&app, &alex, &id, "First while you were away.").await;
    agent_says(&app, &alex, &id, "Second while you were away.").await;
    wait_for_text(&browser, "//*[@role='log']", "Second while you were away.").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texts: Vec<String> = {
        let mut texts = Vec::new();
        for item in browser
            .find_all(Locator::XPath("//*[@role='log']/div[contains(@class,'agent')]"))
            .await
            .unwrap()
        {
            texts.push(item.text().await.unwrap());
        }
        texts
    };
    let count = |needle: &str| texts.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(texts.len(), 4, "{texts:?}");
    for needle in [
        "Hello, this is Alex.",
        "First while you were away.",
        "Second while you were away.",
    ] {
        assert_eq!(count(needle), 1, "{needle} in {texts:?}");
    }
    let first = texts.iter().position(|t| t.contains("First")).unwrap();
    assert!(texts[first + 1].contains("Second"), "{texts:?}");
    std::fs::write(
        screenshots().join("widget-colleague.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // Escape closes the chat and gives focus back to the launcher.
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    browser.enter_parent_frame().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let focused = browser
            .execute(
                "const h = document.querySelector('[data-teller-widget]'); \
                 return h.shadowRoot.activeElement && h.shadowRoot.activeElement.getAttribute('aria-label')",
                vec![],
            )
            .await
            .unwrap();
        if focused == json!("Open chat") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "focus did not return to the launcher: {focused}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = token;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_widget_works_under_a_strict_policy_and_hostile_css_and_not_where_it_is_not_allowed() {
    let Some(driver) = Driver::start().await else {
        eprintln!("skipped: no chromedriver");
        return;
    };
    // Chromium is heavy on two cores: one browser test at a time.
    let _heavy = crate::helpers::heavy().await;
    let host_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let evil_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = host_listener.local_addr().unwrap().port();
    let app = teller("kb", &[format!("http://127.0.0.1:{host}")], (0, 0)).await;
    let proxy = Proxy::start(app.port).await;
    let evil = evil_listener.local_addr().unwrap().port();
    host_pages(host_listener, evil_listener, proxy.port);
    let profile = TempDir::new().unwrap();
    let browser = driver.browser(&profile).await;

    // `* { all: unset }` and a CSP that allows no inline script or style: the launcher is
    // still a visible, labelled button (in the page's language), and the chat works.
    browser.goto(&format!("http://127.0.0.1:{host}/strict")).await.unwrap();
    let button_element = launcher(&browser).await;
    assert!(button_element.is_displayed().await.unwrap());
    let (_, _, width, height) = button_element.rectangle().await.unwrap();
    assert!(width >= 24.0 && height >= 24.0, "{width}x{height}");
    open_chat(&browser, "打开聊天").await;
    let answer = ask(&browser, "输入消息", "发送", "网上银行转账限额是多少？").await;
    assert!(!answer.is_empty());
    find(&browser, &format!("{LAST_ANSWER}//ol[@class='sources']/li")).await;
    browser.enter_parent_frame().await.unwrap();
    std::fs::write(
        screenshots().join("widget-strict-host.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // A page whose origin is not in TELLER_WIDGET_ORIGINS cannot frame the chat.
    browser.goto(&format!("http://127.0.0.1:{evil}/strict")).await.unwrap();
    launcher(&browser).await.click().await.unwrap();
    let frame = shadow(&browser).await.find(Locator::Css("iframe")).await.unwrap();
    frame.enter_frame().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        browser.find(Locator::Css("textarea#message")).await.is_err(),
        "the chat loaded in a frame of an origin not allowed"
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_demo_page_works_by_keyboard_alone_passes_axe_and_fits_a_phone() {
    let Some(driver) = Driver::start().await else {
        eprintln!("skipped: no chromedriver");
        return;
    };
    // Chromium is heavy on two cores: one browser test at a time.
    let _heavy = crate::helpers::heavy().await;
    let app = teller("kb", &[], (0, 0)).await;
    let proxy = Proxy::start(app.port).await;
    let profile = TempDir::new().unwrap();
    let browser = driver.browser(&profile).await;
    browser
        .goto(&format!("http://localhost:{}/demo", proxy.port))
        .await
        .unwrap();
    let (serious, all) = axe(&browser).await;
    assert!(serious.is_empty(), "demo page: {serious:?}");
    println!("axe demo page: {all} violations, 0 serious or critical");

    // Tab to the launcher (past the page's own links), Enter opens the chat with the
    // message box focused; type, Enter sends.
    launcher(&browser).await;
    let focused_launcher = "const h = document.querySelector('[data-teller-widget]'); \
        return !!(h && h.shadowRoot.activeElement && h.shadowRoot.activeElement.classList.contains('launcher'))";
    let mut tabs = 0;
    while browser.execute(focused_launcher, vec![]).await.unwrap() != json!(true) {
        browser
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        tabs += 1;
        assert!(tabs < 20, "the launcher is not reachable by Tab");
    }
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    enter_chat(&browser).await;
    let deadline = Instant::now() + WAIT;
    while browser
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap()
        != json!("message")
    {
        assert!(Instant::now() < deadline, "the message box did not get focus");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("What is the annual fee for the Gold card?\u{E007}")
        .await
        .unwrap();
    let answer = answer_after(&browser, 0).await;
    assert!(answer.contains("Gold"), "{answer}");
    // Tab reaches the answer's source and its feedback buttons; Enter rates.
    let mut tabs = 0;
    loop {
        browser
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        let name = browser
            .execute("return document.activeElement.textContent", vec![])
            .await
            .unwrap();
        if name == json!("Helpful") {
            break;
        }
        tabs += 1;
        assert!(tabs < 30, "Helpful is not reachable by Tab");
    }
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    find(&browser, "//button[@aria-pressed='true'][normalize-space(.)='Helpful']").await;

    let (serious, all) = axe(&browser).await;
    assert!(serious.is_empty(), "open widget: {serious:?}");
    println!("axe open widget: {all} violations, 0 serious or critical");
    browser.enter_parent_frame().await.unwrap();
    let shots = screenshots();
    std::fs::write(shots.join("widget-desktop.png"), browser.screenshot().await.unwrap()).unwrap();

    // A phone: the chat fills the screen, inputs are 16 px so the page does not zoom.
    browser.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frame = shadow(&browser).await.find(Locator::Css(".panel")).await.unwrap();
    let (x, y, width, _) = frame.rectangle().await.unwrap();
    let viewport = browser.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!((x, y), (0.0, 0.0));
    assert!(
        (width - viewport.as_f64().unwrap()).abs() < 1.0,
        "{width} vs {viewport}"
    );
    enter_chat(&browser).await;
    let size = browser
        .execute(
            "return getComputedStyle(document.getElementById('message')).fontSize",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(size, json!("16px"));
    browser.enter_parent_frame().await.unwrap();
    std::fs::write(shots.join("widget-phone.png"), browser.screenshot().await.unwrap()).unwrap();
    browser.close().await.unwrap();
}
