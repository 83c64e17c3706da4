//! The agent console: its headers, its session cookie and CSRF check over HTTP, and in a
//! real headless Chromium (driven through chromedriver with fantoccini) the whole path an
//! agent takes: sign in, a customer asking for a person appears in the queue without a
//! reload, take over, reply (the customer's event stream receives it), and a second agent
//! told in words that a colleague already has the conversation.

use crate::app::{spawn_app, spawn_app_with, AppOptions, TestApp};
use crate::audit::databases;
use crate::browser::{button, click, find, labelled, screenshots, sign_in_to_console, wait_for_text, Driver, WAIT};
use fantoccini::Client;
use futures::StreamExt;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use teller::audit::StaffRole;
use teller::http::console::CONTENT_SECURITY_POLICY;
use tempfile::TempDir;

fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> &str {
    response.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

async fn sign_in(app: &TestApp, token: &str, https: bool) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/console/session", app.address))
        .json(&json!({ "token": token }));
    if https {
        request = request.header("x-forwarded-proto", "https");
    }
    request.send().await.unwrap()
}

/// `teller_session=<id>` from a sign-in's `Set-Cookie`.
fn session_cookie(response: &reqwest::Response) -> String {
    header(response, SET_COOKIE).split(';').next().unwrap().to_string()
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn the_console_is_served_under_a_strict_policy_and_its_session_is_locked_down() {
    for (url, _dir) in databases("console_session").await {
        let options = || AppOptions {
            database_url: Some(url.clone()),
            ..Default::default()
        };
        let app = spawn_app_with(options()).await;
        for (path, content_type) in [
            ("/console", "text/html; charset=utf-8"),
            ("/console/console.js", "text/javascript; charset=utf-8"),
            ("/console/console.css", "text/css; charset=utf-8"),
        ] {
            let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, CONTENT_TYPE), content_type);
            assert_eq!(header(&response, "content-security-policy"), CONTENT_SECURITY_POLICY);
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert_eq!(header(&response, "referrer-policy"), "no-referrer");
            if path == "/console" {
                assert_eq!(header(&response, CACHE_CONTROL), "no-store");
                let page = response.text().await.unwrap();
                // Under that policy an inline script or style would not run; there is none.
                assert!(page.contains(r#"<script type="module" src="/console/console.js"></script>"#));
                assert_eq!(page.matches("<script").count(), 1, "one script, by URL");
                assert!(!page.contains("style=") && !page.contains("<style"), "no inline style");
                assert!(
                    !page.contains("http://") && !page.contains("https://"),
                    "nothing from elsewhere"
                );
            } else if path == "/console/console.js" {
                let script = response.text().await.unwrap();
                assert!(!script.contains("innerHTML") && !script.contains("insertAdjacentHTML"));
            }
        }
        assert_eq!(
            app.client
                .get(format!("{}/console/session", app.address))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );

        // Compliance officers and admins sign in to their own views (issue #16), but their
        // sessions cannot use the agents' routes; unknown tokens are refused.
        let officer = app.staff_token("olga", StaffRole::Compliance).await;
        let admin = app.staff_token("ada", StaffRole::Admin).await;
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        for other in [&officer, &admin] {
            let signed_in = sign_in(&app, other, false).await;
            assert_eq!(signed_in.status(), StatusCode::OK);
            let cookie = session_cookie(&signed_in);
            let queue = app
                .client
                .get(format!("{}/v1/agent/queue", app.address))
                .header(COOKIE, &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(error_code(queue).await, (StatusCode::FORBIDDEN, "forbidden".into()));
        }
        assert_eq!(
            error_code(sign_in(&app, "tlr_not-a-token", false).await).await,
            (StatusCode::UNAUTHORIZED, "invalid_staff_token".into())
        );

        // The cookie: HttpOnly, SameSite=Strict, whole site, eight hours; Secure over HTTPS.
        let over_https = sign_in(&app, &agent, true).await;
        assert_eq!(over_https.status(), StatusCode::OK);
        assert!(
            header(&over_https, SET_COOKIE).ends_with("; Secure"),
            "{:?}",
            over_https.headers()
        );
        let signed_in = sign_in(&app, &agent, false).await;
        assert_eq!(signed_in.status(), StatusCode::OK);
        let set_cookie = header(&signed_in, SET_COOKIE).to_string();
        assert!(set_cookie.starts_with("teller_session="), "{set_cookie}");
        for flag in ["; HttpOnly", "; SameSite=Strict", "; Path=/", "; Max-Age=28800"] {
            assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
        }
        assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
        assert_eq!(header(&signed_in, CACHE_CONTROL), "no-store");
        let cookie = session_cookie(&signed_in);
        let session: Value = signed_in.json().await.unwrap();
        assert_eq!(session["name"], "alex");
        assert_eq!(session["role"], "agent");
        let csrf = session["csrf_token"].as_str().unwrap().to_string();
        assert!(!cookie.contains(&csrf));

        // A second instance on the same database honours the session.
        let other = spawn_app_with(options()).await;
        let again: Value = other
            .client
            .get(format!("{}/console/session", other.address))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["name"], "alex");
        assert_eq!(
            again["csrf_token"],
            csrf.as_str(),
            "the page gets its CSRF token back after a reload"
        );

        // The agent routes take the cookie in place of a bearer token; a change also needs
        // the session's CSRF token.
        let customer = app.ask("What is the annual fee for the Gold card?").await;
        let id = customer["conversation_id"].as_str().unwrap();
        let handoff = app
            .client
            .post(format!("{}/v1/conversations/{id}/handoff", app.address))
            .bearer_auth(customer["conversation_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert!(handoff.status().is_success());
        let queue = other
            .client
            .get(format!("{}/v1/agent/queue", other.address))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(queue.status(), StatusCode::OK);
        let queue: Value = queue.json().await.unwrap();
        assert_eq!(queue["conversations"][0]["conversation_id"], id, "{queue}");
        let claim = |csrf: Option<&str>| {
            let mut request = app
                .client
                .post(format!("{}/v1/agent/conversations/{id}/claim", app.address))
                .header(COOKIE, &cookie);
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
            request.send()
        };
        assert_eq!(
            error_code(claim(None).await.unwrap()).await,
            (StatusCode::FORBIDDEN, "csrf_token_invalid".into())
        );
        let claimed = claim(Some(&csrf)).await.unwrap();
        assert_eq!(claimed.status(), StatusCode::OK);
        let claimed: Value = claimed.json().await.unwrap();
        assert_eq!(
            (claimed["state"].as_str(), claimed["agent"].as_str()),
            (Some("with_agent"), Some("alex"))
        );

        // Without the CSRF token, or with another one, a cookie cannot change anything.
        let delete = |csrf: Option<&str>| {
            let mut request = app
                .client
                .delete(format!("{}/console/session", app.address))
                .header(COOKIE, &cookie);
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
            request.send()
        };
        for forged in [None, Some("forged"), Some("")] {
            assert_eq!(
                error_code(delete(forged).await.unwrap()).await,
                (StatusCode::FORBIDDEN, "csrf_token_invalid".into()),
                "{forged:?}"
            );
        }
        let signed_out = delete(Some(&csrf)).await.unwrap();
        assert_eq!(signed_out.status(), StatusCode::OK);
        assert!(header(&signed_out, SET_COOKIE).contains("Max-Age=0"));
        let after = other
            .client
            .get(format!("{}/console/session", other.address))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(after).await,
            (StatusCode::UNAUTHORIZED, "session_invalid".into())
        );

        // The compliance officer's and the admin's sign-ins first, then the agent's two.
        let all_signed_in = app.audit_events("console_signed_in").await;
        let actors: Vec<&str> = all_signed_in.iter().map(|e| e["actor"].as_str().unwrap()).collect();
        assert_eq!(actors, ["staff:olga", "staff:ada", "staff:alex", "staff:alex"]);
        let signed_in = &all_signed_in[2..];
        let signed_out = app.audit_events("console_signed_out").await;
        assert_eq!(signed_out.len(), 1);
        assert_eq!(signed_out[0]["actor"], "staff:alex");
        assert_eq!(signed_out[0]["payload"]["session"], signed_in[1]["payload"]["session"]);
        let export = app.audit_export().await;
        assert!(!export.contains(cookie.trim_start_matches("teller_session=")) && !export.contains(&agent));
        // Refusals are recorded in the background.
        let deadline = Instant::now() + WAIT;
        loop {
            let refused = app.audit_events("staff_access_refused").await;
            let reasons: Vec<&str> = refused.iter().filter_map(|e| e["payload"]["reason"].as_str()).collect();
            if reasons.contains(&"csrf_token_invalid") && reasons.contains(&"forbidden") {
                break;
            }
            assert!(Instant::now() < deadline, "refusals not recorded: {reasons:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---- the browser ------------------------------------------------------------------------

/// A TCP proxy in front of the app that can cut every connection and refuse new ones for
/// a while, to make the console's event stream reconnect. It keeps the head of each
/// request for the agent stream, to show what the page sent when it came back.
struct CuttingProxy {
    address: String,
    /// `true` while down: open connections are dropped and new ones closed at once.
    down: tokio::sync::watch::Sender<bool>,
    stream_requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CuttingProxy {
    async fn start(upstream: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (down, is_down) = tokio::sync::watch::channel(false);
        let stream_requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let heads = stream_requests.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut is_down = is_down.clone();
                if *is_down.borrow() {
                    continue; // dropped: closed at once
                }
                let (upstream, heads) = (upstream.clone(), heads.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut head = vec![0; 16 * 1024];
                    let Ok(n) = client.read(&mut head).await else { return };
                    let text = String::from_utf8_lossy(&head[..n]).to_string();
                    if text.contains("/v1/agent/stream") {
                        heads.lock().unwrap().push(text);
                    }
                    if server.write_all(&head[..n]).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = is_down.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        Self {
            address,
            down,
            stream_requests,
        }
    }
}

async fn sign_in_through_the_page(browser: &Client, origin: &str, token: &str) {
    sign_in_to_console(browser, origin, token).await;
    wait_for_text(browser, "//h2[@id='queue-title']", "Queue").await;
}

/// WCAG 2.2 A/AA violations that axe-core rates serious or critical on the page as it is
/// now (axe-core, vendored under tests/fixtures/axe, as the widget's tests use it).
async fn accessibility_violations(browser: &Client, view: &str) -> Vec<Value> {
    let axe = std::fs::read_to_string(crate::helpers::fixture("axe/axe.min.js")).expect("the vendored axe-core");
    // Injected through WebDriver, which the page's CSP does not govern.
    browser
        .execute(&format!("{axe}\nwindow.__tellerAxe = axe;"), vec![])
        .await
        .unwrap();
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__tellerAxe
               .run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] })
               .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                  targets: v.nodes.map((n) => n.target.join(' ')) }))));",
            vec![],
        )
        .await
        .unwrap();
    let all = found.as_array().cloned().unwrap_or_default();
    eprintln!("axe {view}: {} violation(s) of any impact: {all:?}", all.len());
    all.into_iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect()
}

/// The customer's own event stream, collecting each event's raw data as it arrives.
fn customer_events(app: &TestApp, id: &str, token: &str) -> tokio::sync::mpsc::UnboundedReceiver<(String, String)> {
    let request = app
        .client
        .get(format!("{}/v1/conversations/{id}/events", app.address))
        .bearer_auth(token)
        .header("accept", "text/event-stream");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if tx.send((event, data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

#[tokio::test]
async fn an_agent_takes_over_a_waiting_customer_in_the_browser_and_a_colleague_is_refused() {
    let Some(driver) = Driver::start().await else {
        eprintln!("skipped: no chromedriver");
        return;
    };
    // Chromium is heavy on two cores: not at once with the fault scenarios or the fuzzing,
    // whose timings it would skew and whose load would stretch its own waits.
    let _heavy = crate::helpers::heavy().await;
    let app = spawn_app().await;
    let alex = app.staff_token("alex", StaffRole::Agent).await;
    let sam = app.staff_token("sam", StaffRole::Agent).await;

    let first_profile = TempDir::new().unwrap();
    // The first agent reaches Teller through a proxy that can cut the connection.
    let proxy = CuttingProxy::start(&app.address).await;
    let first = driver.browser(&first_profile).await;
    first.goto(&format!("{}/console", proxy.address)).await.unwrap();
    find(&first, &labelled("Staff token")).await;
    let violations = accessibility_violations(&first, "sign-in").await;
    assert!(violations.is_empty(), "sign-in: {violations:#?}");
    sign_in_through_the_page(&first, &proxy.address, &alex).await;
    let cookies = first.execute("return document.cookie", vec![]).await.unwrap();
    assert!(!cookies.to_string().contains("teller_session"), "HttpOnly: {cookies}");

    // A customer asks for a person, through the API, while the console is open.
    let question = "What is the annual fee for the Gold card?";
    let reply = app.ask(question).await;
    let id = reply["conversation_id"].as_str().unwrap().to_string();
    let conversation_token = reply["conversation_token"].as_str().unwrap().to_string();
    let handoff = app
        .client
        .post(format!("{}/v1/conversations/{id}/handoff", app.address))
        .bearer_auth(&conversation_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(handoff.status().is_success(), "{:?}", handoff.text().await);

    // It appears in the queue without a reload.
    let entry = format!("//ul[@id='queue-list']{}", button(question));
    find(&first, &entry).await;
    // The connection drops; meanwhile a customer who lost their card is handed over (by
    // the screen itself) and goes first once the page has reconnected and caught up.
    proxy.down.send(true).unwrap();
    wait_for_text(&first, "//*[@id='connection']", "reconnecting").await;
    let lost = "I lost my card, please block it";
    let urgent = app.ask(lost).await;
    let urgent_id = urgent["conversation_id"].as_str().unwrap();
    let handoff = app
        .client
        .post(format!("{}/v1/conversations/{urgent_id}/handoff", app.address))
        .bearer_auth(urgent["conversation_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(handoff.status().is_success());
    proxy.down.send(false).unwrap();
    find(&first, &format!("//ul[@id='queue-list']{}", button(lost))).await;
    // Only the first request of each connection is seen: the reconnection's is.
    let resumed = proxy.stream_requests.lock().unwrap().clone();
    assert!(
        resumed
            .iter()
            .any(|head| head.to_ascii_lowercase().contains("\r\nlast-event-id: ")),
        "the page should reconnect with Last-Event-ID: {resumed:#?}"
    );
    wait_for_text(&first, "(//ul[@id='queue-list']/li)[1]", lost).await;
    wait_for_text(&first, "(//ul[@id='queue-list']/li)[1]", "Lost or stolen card").await;
    wait_for_text(&first, "//*[@role='status']", "A customer is waiting").await;
    std::fs::write(
        screenshots().join("console-queue.png"),
        first.screenshot().await.unwrap(),
    )
    .unwrap();

    click(&first, &entry).await;
    click(&first, &button("Take over")).await;
    let mut events = customer_events(&app, &id, &conversation_token);
    let answer = "Hello, this is Alex from the bank. I can help you with the Gold card now.";
    let reply_box = labelled("Reply");
    click(&first, &reply_box).await;
    find(&first, &reply_box).await.send_keys(answer).await.unwrap();
    click(&first, &button("Send")).await;
    wait_for_text(&first, "//*[@role='log']", answer).await;

    // The customer's stream receives the agent's message.
    let received = tokio::time::timeout(WAIT, async {
        while let Some((event, data)) = events.recv().await {
            if event == "message" && data.contains(answer) {
                return data;
            }
        }
        panic!("the customer's stream ended without the agent's message");
    })
    .await
    .expect("the customer's stream did not receive the agent's message within 10 s");
    assert!(received.contains(answer));
    // The customer writes back: relayed to the agent, on the page without a reload.
    let thanks = "Thank you, is it charged every year?";
    let relayed = app.follow_up(&reply, thanks).await;
    assert_eq!(relayed["mode"], "relayed", "{relayed}");
    wait_for_text(&first, "//*[@role='log']", thanks).await;
    let violations = accessibility_violations(&first, "conversation").await;
    assert!(violations.is_empty(), "conversation: {violations:#?}");
    std::fs::write(
        screenshots().join("console-conversation.png"),
        first.screenshot().await.unwrap(),
    )
    .unwrap();

    // A colleague, signed in on their own, is told in words that it is taken.
    let second_profile = TempDir::new().unwrap();
    let second = driver.browser(&second_profile).await;
    sign_in_through_the_page(&second, &app.address, &sam).await;
    click(&second, &entry).await;
    click(&second, &button("Take over")).await;
    wait_for_text(
        &second,
        "//*[@id='conversation-error']",
        "Another colleague has already taken this conversation",
    )
    .await;

    // Signing out ends the session: the page asks for a token again, and the record says so.
    click(&second, &button("Sign out")).await;
    click(&second, &labelled("Staff token")).await;
    let signed_out = app.audit_events("console_signed_out").await;
    assert_eq!(signed_out.len(), 1, "{signed_out:?}");
    assert_eq!(signed_out[0]["actor"], "staff:sam");

    first.close().await.unwrap();
    second.close().await.unwrap();
}
