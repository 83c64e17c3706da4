//! The path to a person, end to end through spawned servers on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL: the state machine, the claim race, relayed messages,
//! the events streams and their resume, roles, suggestions, and two instances on one
//! PostgreSQL database.

use crate::app::{spawn_app_with, AppOptions, TestApp};
use crate::audit::databases;
use crate::sse::EventStream;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use teller::audit::{AuditStore, StaffRole};

pub async fn post(
    app_base: &str,
    client: &reqwest::Client,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.post(format!("{app_base}{path}")).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A conversation whose customer asked for a person.
pub async fn waiting_customer(app: &TestApp, question: &str) -> Value {
    let reply = app.ask(question).await;
    let (status, state) = post(
        &app.address,
        &app.client,
        &format!(
            "/v1/conversations/{}/handoff",
            reply["conversation_id"].as_str().unwrap()
        ),
        reply["conversation_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["state"], "waiting", "{state}");
    reply
}

fn ids(reply: &Value) -> (String, String) {
    (
        reply["conversation_id"].as_str().unwrap().to_string(),
        reply["conversation_token"].as_str().unwrap().to_string(),
    )
}

const WAIT: Duration = Duration::from_secs(5);

async fn apps(test: &str) -> Vec<(TestApp, tempfile::TempDir)> {
    let mut out = Vec::new();
    for (url, guard) in databases(test).await {
        let app = spawn_app_with(AppOptions {
            database_url: Some(url),
            ..Default::default()
        })
        .await;
        out.push((app, guard));
    }
    out
}

#[tokio::test]
async fn a_customer_who_asks_for_a_person_is_queued_taken_over_answered_live_and_handed_back() {
    for (app, _db) in apps("handoff_path").await {
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        let reply = app.ask("What is the annual fee for the Gold card?").await;
        assert_eq!(reply["state"], "bot", "{reply}");
        let (id, token) = ids(&reply);
        let events_url = format!("{}/v1/conversations/{id}/events", app.address);
        let (_, customer) = EventStream::open(&app.client, &events_url, &token, None).await;
        let mut customer = customer.unwrap();
        let (_, agent_stream) =
            EventStream::open(&app.client, &format!("{}/v1/agent/stream", app.address), &agent, None).await;
        let mut agent_stream = agent_stream.unwrap();
        let snapshot = agent_stream.next(WAIT).await.unwrap();
        assert_eq!(snapshot.event, "snapshot");

        // Asking for a person: waiting, first in the queue.
        let (status, state) = post(
            &app.address,
            &app.client,
            &format!("/v1/conversations/{id}/handoff"),
            &token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (state["state"].as_str(), state["queue_position"].as_u64()),
            (Some("waiting"), Some(1)),
            "{state}"
        );
        let told = customer.next_named("state", WAIT).await.unwrap();
        assert_eq!(
            (told.data["state"].as_str(), told.data["queue_position"].as_u64()),
            (Some("waiting"), Some(1))
        );
        let queued = agent_stream.next_named("queue", WAIT).await.unwrap();
        assert_eq!(queued.data["conversation_id"], id.as_str());
        assert_eq!(queued.data["reason"], "customer_request");
        assert_eq!(
            queued.data["first_message"],
            "What is the annual fee for the Gold card?"
        );
        let (_, queue) = app.get("/v1/agent/queue", Some(&agent)).await;
        assert_eq!(queue["conversations"][0]["conversation_id"], id.as_str(), "{queue}");

        // The bot is silent while waiting: the message is relayed, and the queue sees it.
        let relayed = app.follow_up(&reply, "Are you there? My card was charged twice").await;
        assert_eq!(relayed["mode"], "relayed", "{relayed}");
        assert_eq!(relayed["answer"], "");
        assert_eq!(
            (relayed["state"].as_str(), relayed["queue_position"].as_u64()),
            (Some("waiting"), Some(1))
        );
        let seen = agent_stream.next_named("customer_message", WAIT).await.unwrap();
        assert_eq!(seen.data["text"], "Are you there? My card was charged twice");

        // Taking it over: the customer is told who joined.
        let (status, claimed) = post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/claim"),
            &agent,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{claimed}");
        assert_eq!(
            (claimed["state"].as_str(), claimed["agent"].as_str()),
            (Some("with_agent"), Some("alex"))
        );
        let joined = customer.next_named("agent_joined", WAIT).await.unwrap();
        assert!(joined.id.ends_with(".1"), "the claim's second event: {}", joined.id);
        assert_eq!(joined.data, json!({ "name": "alex" }));

        // Messages both ways, HTML and foreign links stripped from the colleague's words.
        let (status, sent) = post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/messages"),
            &agent,
            Some(json!({ "text": "Hello, I'm Alex. <b>I can see</b> the double charge. See https://evil.example/refund" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sent}");
        assert_eq!(sent["origin"], "agent");
        let text = sent["text"].as_str().unwrap();
        assert!(!text.contains("<b>") && !text.contains("evil.example"), "{text}");
        let message = customer.next_named("message", WAIT).await.unwrap();
        assert_eq!(message.data["text"], text);
        assert_eq!(message.data["name"], "alex");
        let relayed = app.follow_up(&reply, "Thank you, it was 42.50").await;
        assert_eq!(
            (relayed["mode"].as_str(), relayed["state"].as_str()),
            (Some("relayed"), Some("with_agent"))
        );
        assert!(relayed["queue_position"].is_null());
        let seen = agent_stream.next_named("customer_message", WAIT).await.unwrap();
        assert_eq!(seen.data["text"], "Thank you, it was 42.50");
        let (status, note) = post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/notes"),
            &agent,
            Some(json!({ "text": "refund raised, ref 7781" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{note}");

        // The transcript holds the colleague's message; the colleague's view holds the
        // bot's evidence and the note, which the customer never sees.
        let (_, transcript) = app.get(&format!("/v1/conversations/{id}"), Some(&token)).await;
        let roles: Vec<&str> = transcript["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user", "agent", "user"], "{transcript}");
        assert!(!transcript.to_string().contains("7781"));
        let (_, view) = app.get(&format!("/v1/agent/conversations/{id}"), Some(&agent)).await;
        assert_eq!(view["state"], "with_agent");
        assert!(
            view["messages"][1]["citations"]
                .as_array()
                .is_some_and(|c| !c.is_empty()),
            "{view}"
        );
        assert_eq!(view["notes"][0]["text"], "refund raised, ref 7781");

        // Handed back: the assistant answers again.
        let (status, back) = post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/release"),
            &agent,
            None,
        )
        .await;
        assert_eq!((status, back["state"].as_str()), (StatusCode::OK, Some("bot")));
        assert_eq!(customer.next_named("state", WAIT).await.unwrap().data["state"], "bot");
        let answered = app.follow_up(&reply, "What is the annual fee for the Gold card?").await;
        assert_ne!(answered["mode"], "relayed", "{answered}");
        assert_eq!(answered["state"], "bot");

        // Every step is in the chain, by whom it was done.
        for (kind, actor) in [
            ("handoff_requested", "customer"),
            ("message_relayed", "customer"),
            ("conversation_claimed", "staff:alex"),
            ("agent_message_sent", "staff:alex"),
            ("note_added", "staff:alex"),
            ("conversation_released", "staff:alex"),
            ("queue_read", "staff:alex"),
        ] {
            let events = app.audit_events(kind).await;
            assert!(events.iter().any(|e| e["actor"] == actor), "no {kind} by {actor}");
        }
        let url = teller::startup::database_url(&app.settings).unwrap();
        let store = AuditStore::connect(&url).await.unwrap();
        assert_eq!(
            store.verify().await.unwrap().error,
            None,
            "the chain verifies with the handoff in it"
        );
    }
}

#[tokio::test]
async fn of_colleagues_claiming_one_conversation_at_once_exactly_one_wins() {
    for (app, _db) in apps("claim_race").await {
        let mut agents = Vec::new();
        for i in 0..8 {
            agents.push(app.staff_token(&format!("agent{i}"), StaffRole::Agent).await);
        }
        let reply = waiting_customer(&app, "I want to speak to a person").await;
        let (id, _) = ids(&reply);
        let path = format!("/v1/agent/conversations/{id}/claim");
        let outcomes =
            futures::future::join_all(agents.iter().map(|a| post(&app.address, &app.client, &path, a, None))).await;
        let won: Vec<_> = outcomes.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
        let refused = outcomes
            .iter()
            .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "already_claimed")
            .count();
        assert_eq!((won.len(), refused), (1, 7), "{outcomes:?}");
        assert_eq!(app.audit_events("conversation_claimed").await.len(), 1);
    }
}

#[tokio::test]
async fn a_client_that_reconnects_with_last_event_id_gets_exactly_what_it_missed() {
    for (app, _db) in apps("resume").await {
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        let reply = waiting_customer(&app, "Please get me a colleague").await;
        let (id, token) = ids(&reply);
        post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/claim"),
            &agent,
            None,
        )
        .await;
        let url = format!("{}/v1/conversations/{id}/events", app.address);
        let send = |n: usize| {
            let (app, agent, id) = (&app, &agent, &id);
            async move {
                let (status, _) = post(
                    &app.address,
                    &app.client,
                    &format!("/v1/agent/conversations/{id}/messages"),
                    agent,
                    Some(json!({ "text": format!("message {n}") })),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
            }
        };
        let mut received: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        let mut n = 0;
        // Ten disconnects, with messages sent while nobody listens.
        for round in 0..10 {
            let (_, stream) = EventStream::open(&app.client, &url, &token, last.as_deref()).await;
            let mut stream = stream.unwrap();
            for _ in 0..2 {
                send(n).await;
                n += 1;
            }
            // Read one or two, then drop the connection.
            for _ in 0..(1 + round % 2) {
                if let Some(e) = stream.next_named("message", WAIT).await {
                    received.push(e.data["text"].as_str().unwrap().to_string());
                }
            }
            last = stream.last_id.clone();
            drop(stream);
            send(n).await;
            n += 1;
        }
        let (_, stream) = EventStream::open(&app.client, &url, &token, last.as_deref()).await;
        let mut stream = stream.unwrap();
        while received.len() < n {
            match stream.next_named("message", Duration::from_secs(2)).await {
                Some(e) => received.push(e.data["text"].as_str().unwrap().to_string()),
                None => break,
            }
        }
        let expected: Vec<String> = (0..n).map(|i| format!("message {i}")).collect();
        assert_eq!(received, expected, "no message lost or repeated across 10 reconnects");
    }
}

#[tokio::test]
async fn only_agents_act_as_agents_and_tokens_do_not_cross() {
    for (app, _db) in apps("agent_roles").await {
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        let compliance = app.staff_token("carol", StaffRole::Compliance).await;
        let reply = waiting_customer(&app, "I need a human please").await;
        let (id, token) = ids(&reply);
        for path in ["claim", "release", "suggest"] {
            let path = format!("/v1/agent/conversations/{id}/{path}");
            let (status, body) = post(&app.address, &app.client, &path, &compliance, None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("forbidden"))
            );
            let (status, _) = post(&app.address, &app.client, &path, &token, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "a conversation token is no staff token"
            );
        }
        for path in [
            "/v1/agent/queue".to_string(),
            format!("/v1/agent/conversations/{id}"),
            "/v1/agent/stream".into(),
        ] {
            let (status, _) = app.get(&path, Some(&compliance)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        // An agent's token opens no customer's conversation.
        let (status, _) = app.get(&format!("/v1/conversations/{id}"), Some(&agent)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = EventStream::open(
            &app.client,
            &format!("{}/v1/conversations/{id}/events", app.address),
            &agent,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // And the colleague's view holds no token.
        let (_, view) = app.get(&format!("/v1/agent/conversations/{id}"), Some(&agent)).await;
        assert!(!view.to_string().contains(&token), "{view}");
        // Writing before taking over is refused.
        let (status, body) = post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/messages"),
            &agent,
            Some(json!({ "text": "hi" })),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("not_claimed"))
        );
    }
}

#[tokio::test]
async fn suggestions_are_drafts_and_what_became_of_each_is_recorded() {
    for (app, _db) in apps("suggestions").await {
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        let reply = waiting_customer(&app, "Hello").await;
        let (id, _) = ids(&reply);
        app.follow_up(&reply, "What is the annual fee for the Gold card?").await;
        post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/claim"),
            &agent,
            None,
        )
        .await;
        let (suggest_path, messages_path) = (
            format!("/v1/agent/conversations/{id}/suggest"),
            format!("/v1/agent/conversations/{id}/messages"),
        );
        let suggest = || post(&app.address, &app.client, &suggest_path, &agent, None);
        let send = |text: String, suggestion: Option<Value>| {
            post(
                &app.address,
                &app.client,
                &messages_path,
                &agent,
                Some(json!({ "text": text, "suggestion_id": suggestion })),
            )
        };
        let (status, draft) = suggest().await;
        assert_eq!(status, StatusCode::OK, "{draft}");
        assert!(draft["citations"].as_array().is_some_and(|c| !c.is_empty()), "{draft}");
        assert!(
            draft["text"].as_str().unwrap().contains("480"),
            "the Gold card fee is in the draft: {draft}"
        );
        // Nothing reached the customer by itself.
        let (_, transcript) = app
            .get(&format!("/v1/conversations/{id}"), reply["conversation_token"].as_str())
            .await;
        assert!(!transcript["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "agent"));
        let (_, sent) = send(
            draft["text"].as_str().unwrap().to_string(),
            Some(draft["suggestion_id"].clone()),
        )
        .await;
        assert_eq!(sent["origin"], "ai_suggestion", "{sent}");
        let (_, draft) = suggest().await;
        let (_, sent) = send(
            format!("{} Anything else?", draft["text"].as_str().unwrap()),
            Some(draft["suggestion_id"].clone()),
        )
        .await;
        assert_eq!(sent["origin"], "ai_suggestion_edited", "{sent}");
        let (_, draft) = suggest().await;
        let (_, sent) = send("Let me check that for you.".into(), None).await;
        assert_eq!(sent["origin"], "agent");
        let discarded = app.audit_events("suggestion_discarded").await;
        assert_eq!(discarded.len(), 1);
        assert_eq!(discarded[0]["payload"]["suggestion_id"], draft["suggestion_id"]);
        let origins: Vec<Value> = app
            .audit_events("agent_message_sent")
            .await
            .iter()
            .map(|e| e["payload"]["origin"].clone())
            .collect();
        assert_eq!(
            origins,
            [json!("ai_suggestion"), json!("ai_suggestion_edited"), json!("agent")]
        );
        assert_eq!(app.audit_events("reply_suggested").await.len(), 3);
    }
}

#[tokio::test]
async fn the_assistant_hands_a_scam_to_the_front_of_the_queue_and_then_stays_silent() {
    for (app, _db) in apps("scam_first").await {
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        let first = waiting_customer(&app, "Can I talk to someone about my mortgage?").await;
        let scam = app
            .ask("Someone called pretending to be the bank and I gave them my one-time passcode, money is leaving my account")
            .await;
        assert_eq!(
            (scam["mode"].as_str(), scam["state"].as_str()),
            (Some("handoff"), Some("waiting")),
            "{scam}"
        );
        assert_eq!(
            scam["queue_position"], 1,
            "a scam goes before an earlier ordinary request: {scam}"
        );
        let (_, queue) = app.get("/v1/agent/queue", Some(&agent)).await;
        let order: Vec<&str> = queue["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["conversation_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                scam["conversation_id"].as_str().unwrap(),
                first["conversation_id"].as_str().unwrap()
            ]
        );
        assert_eq!(queue["conversations"][0]["reason"], "fraud_or_scam");
        let next = app.follow_up(&scam, "What is the annual fee for the Gold card?").await;
        assert_eq!(next["mode"], "relayed", "no bot reply while a person owns it: {next}");
        let handoffs = app.audit_events("handoff_requested").await;
        let scam_handoff: Vec<_> = handoffs
            .iter()
            .filter(|e| e["conversation_id"] == scam["conversation_id"])
            .collect();
        assert_eq!(scam_handoff.len(), 1);
        assert_eq!(scam_handoff[0]["actor"], "assistant");
        assert_eq!(scam_handoff[0]["payload"]["reason"], "fraud_or_scam");
    }
}

/// Two `teller serve` processes on one PostgreSQL database: a customer on one, a colleague
/// on the other, messages both ways within a second, nothing lost across a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_database_carry_messages_both_ways() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("two_instances: skipped (TEST_DATABASE_URL not set)");
        return;
    };
    let _heavy = crate::helpers::heavy().await;
    let url = crate::audit::postgres_schema(&url).await;
    let (dir_a, dir_b) = (tempfile::TempDir::new().unwrap(), tempfile::TempDir::new().unwrap());
    let a = crate::faults::serve(dir_a.path(), &url, &[]).await;
    let b = crate::faults::serve(dir_b.path(), &url, &[]).await;
    let client = reqwest::Client::new();
    let agent = AuditStore::connect(&url)
        .await
        .unwrap()
        .create_token("alex", StaffRole::Agent)
        .await
        .unwrap();
    let (_, agent_stream) = EventStream::open(&client, &format!("{}/v1/agent/stream", b.base), &agent, None).await;
    let mut agent_stream = agent_stream.unwrap();
    // Its snapshot first: the stream is open before the customer arrives.
    assert_eq!(
        agent_stream.next(Duration::from_secs(3)).await.unwrap().event,
        "snapshot"
    );
    let (status, reply) = post(
        &a.base,
        &client,
        "/v1/chat",
        "",
        Some(json!({ "message": "I want to talk to a person" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (id, token) = ids(&reply);
    let (_, customer) = EventStream::open(
        &client,
        &format!("{}/v1/conversations/{id}/events", a.base),
        &token,
        None,
    )
    .await;
    let mut customer = customer.unwrap();
    if reply["state"] != "waiting" {
        post(
            &a.base,
            &client,
            &format!("/v1/conversations/{id}/handoff"),
            &token,
            None,
        )
        .await;
    }
    // B's colleague sees A's customer join the queue.
    let started = Instant::now();
    let queued = agent_stream
        .next_named("queue", Duration::from_secs(3))
        .await
        .expect("the queue on B");
    assert_eq!(queued.data["conversation_id"], id.as_str());
    post(
        &b.base,
        &client,
        &format!("/v1/agent/conversations/{id}/claim"),
        &agent,
        None,
    )
    .await;
    let mut worst = Duration::ZERO;
    for n in 0..5 {
        let sent = Instant::now();
        post(
            &b.base,
            &client,
            &format!("/v1/agent/conversations/{id}/messages"),
            &agent,
            Some(json!({ "text": format!("from B {n}") })),
        )
        .await;
        let got = customer
            .next_named("message", Duration::from_secs(3))
            .await
            .expect("B's message on A");
        assert_eq!(got.data["text"], format!("from B {n}"));
        worst = worst.max(sent.elapsed());
        let sent = Instant::now();
        let (status, _) = post(
            &a.base,
            &client,
            "/v1/chat",
            "",
            Some(json!({ "conversation_id": id, "conversation_token": token, "message": format!("from A {n}") })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let got = agent_stream
            .next_named("customer_message", Duration::from_secs(3))
            .await
            .expect("A's message on B");
        assert_eq!(got.data["text"], format!("from A {n}"));
        worst = worst.max(sent.elapsed());
    }
    assert!(
        worst < Duration::from_secs(1),
        "slowest delivery across instances {worst:?}"
    );
    // A reconnect to the other instance resumes where it left off.
    let last = customer.last_id.clone();
    drop(customer);
    post(
        &b.base,
        &client,
        &format!("/v1/agent/conversations/{id}/messages"),
        &agent,
        Some(json!({ "text": "while away" })),
    )
    .await;
    let (_, resumed) = EventStream::open(
        &client,
        &format!("{}/v1/conversations/{id}/events", b.base),
        &token,
        last.as_deref(),
    )
    .await;
    let got = resumed
        .unwrap()
        .next_named("message", Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(got.data["text"], "while away");
    eprintln!(
        "two instances: slowest delivery {worst:?}, {:?} in all",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_assistant_reply_is_refused_at_commit_once_a_person_owns_the_conversation() {
    use teller::audit::{Actor, AuditError, EventBatch, EventKind, NewEvent};
    for (app, _db) in apps("human_owned").await {
        let bot = app.ask("What is the annual fee for the Gold card?").await;
        let waiting = waiting_customer(&app, "I need a colleague").await;
        let url = teller::startup::database_url(&app.settings).unwrap();
        let store = AuditStore::connect(&url).await.unwrap();
        let answer = |reply: &Value| {
            let id = reply["conversation_id"].as_str().unwrap().parse().unwrap();
            EventBatch {
                events: vec![NewEvent {
                    actor: Actor::Assistant,
                    kind: EventKind::Answer,
                    conversation_id: Some(id),
                    payload: json!({ "answer": "late" }),
                }],
                requires: Some(teller::audit::live::Requires::Bot(id)),
                ..Default::default()
            }
        };
        assert!(store.append(answer(&bot)).await.is_ok());
        assert!(matches!(
            store.append(answer(&waiting)).await,
            Err(AuditError::HumanOwned)
        ));
        // Grouped with others, only that one fails.
        let (a, b) = tokio::join!(store.append(answer(&bot)), store.append(answer(&waiting)));
        assert!(a.is_ok() && matches!(b, Err(AuditError::HumanOwned)));
        // A colleague's reply needs them to hold the conversation when it commits.
        let agent = app.staff_token("alex", StaffRole::Agent).await;
        let id = waiting["conversation_id"].as_str().unwrap();
        post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/claim"),
            &agent,
            None,
        )
        .await;
        let reply = |who: &str| EventBatch {
            requires: Some(teller::audit::live::Requires::Holder(id.parse().unwrap(), who.into())),
            ..answer(&waiting)
        };
        assert!(matches!(
            store.append(reply("sam")).await,
            Err(AuditError::Refused {
                code: "not_your_conversation",
                ..
            })
        ));
        assert!(store.append(reply("alex")).await.is_ok());
    }
}

#[tokio::test]
async fn a_waiting_customer_is_told_an_estimate_only_from_real_claims_and_when_colleagues_return() {
    let app = spawn_app_with(AppOptions::default()).await;
    let agent = app.staff_token("alex", StaffRole::Agent).await;
    let handoff = |reply: Value| {
        let app = &app;
        async move {
            let (id, token) = ids(&reply);
            post(
                &app.address,
                &app.client,
                &format!("/v1/conversations/{id}/handoff"),
                &token,
                None,
            )
            .await
            .1
        }
    };
    // No claims yet: no estimate is made up.
    let first = handoff(app.ask("Hello, I have a question about my statement").await).await;
    assert_eq!(first["wait"]["staffed"], true, "{first}");
    assert!(first["wait"]["estimated_wait_seconds"].is_null(), "{first}");
    // Three claims later, an estimate.
    for n in 0..3 {
        let waiting = handoff(app.ask(&format!("Question number {n} about my account")).await).await;
        let id = waiting["conversation_id"].as_str().unwrap();
        post(
            &app.address,
            &app.client,
            &format!("/v1/agent/conversations/{id}/claim"),
            &agent,
            None,
        )
        .await;
    }
    let later = handoff(app.ask("Another question about my statement").await).await;
    assert_eq!(later["queue_position"], 2, "{later}");
    assert!(later["wait"]["estimated_wait_seconds"].as_u64().is_some(), "{later}");

    // Outside staffed hours: when someone will be there, and no estimate.
    let closed = spawn_app_with(AppOptions {
        tweak: |s| {
            use chrono::Timelike;
            let h = (chrono::Utc::now().hour() + 2) % 22;
            s.staffed_hours = Some(format!("{h:02}:00-{:02}:00", h + 1));
        },
        ..Default::default()
    })
    .await;
    let reply = closed.ask("Hello there").await;
    let (id, token) = ids(&reply);
    let (_, state) = post(
        &closed.address,
        &closed.client,
        &format!("/v1/conversations/{id}/handoff"),
        &token,
        None,
    )
    .await;
    assert_eq!(state["wait"]["staffed"], false, "{state}");
    assert!(state["wait"]["estimated_wait_seconds"].is_null());
    let at = chrono::DateTime::parse_from_rfc3339(state["wait"]["next_staffed_at"].as_str().unwrap()).unwrap();
    assert!(at > chrono::Utc::now(), "{state}");
    // The events stream says the same.
    let (_, stream) = EventStream::open(
        &closed.client,
        &format!("{}/v1/conversations/{id}/events", closed.address),
        &token,
        None,
    )
    .await;
    let told = stream.unwrap().next_named("state", WAIT).await.unwrap();
    assert_eq!(told.data["wait"]["staffed"], false, "{:?}", told.data);
}
