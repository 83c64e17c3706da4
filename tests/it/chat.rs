//! End-to-end chat through a spawned server: the answer modes, streaming, conversations,
//! bad input, timeouts and load shedding.

use crate::app::{spawn_app, spawn_app_with, spawn_app_with_llm, AppOptions};
use crate::standin::{Script, StandInServer};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn approved_faq_answers_are_served_verbatim_with_their_citation() {
    let app = spawn_app().await;
    let reply = app.ask("What is the annual fee for the Gold card?").await;
    assert_eq!(reply["mode"], "approved", "{reply}");
    let answer = reply["answer"].as_str().unwrap();
    assert!(
        answer.contains("\n\nThe Lantern Gold card has an annual fee of LTD 480"),
        "{answer}"
    );
    assert_eq!(reply["citations"][0]["source_id"], "faq-basics-001");
    assert!(reply["handoff"].is_null());
    assert_eq!(
        reply["conversation_token"].as_str().unwrap().len(),
        43,
        "256-bit token, base64url"
    );
}

#[tokio::test]
async fn without_a_model_answers_are_extracted_from_the_passages() {
    let app = spawn_app().await;
    let reply = app
        .ask("I lost the key to my safe deposit box - what does it cost to have the lock drilled?")
        .await;
    assert_eq!(reply["mode"], "extractive", "{reply}");
    let answer = reply["answer"].as_str().unwrap();
    assert!(answer.contains("LTD 350"), "{answer}");
    assert!(answer.contains("[1]"));
    assert_eq!(reply["citations"][0]["source_id"], "doc-guide");
}

#[tokio::test]
async fn questions_the_knowledge_base_cannot_answer_are_refused_with_an_offer_of_a_colleague() {
    let app = spawn_app().await;
    let reply = app.ask("do you sell travel insurance for trips abroad?").await;
    assert_eq!(reply["mode"], "refusal", "{reply}");
    assert!(reply["answer"].as_str().unwrap().contains("colleague"));
    assert_eq!(reply["citations"], json!([]));
    assert_eq!(reply["handoff"]["reason"], "missing_knowledge");
    // Saying yes to the offer hands the conversation over.
    let yes = app.follow_up(&reply, "yes please").await;
    assert_eq!(yes["mode"], "handoff", "{yes}");
    assert_eq!(yes["handoff"]["reason"], "customer_request");

    let reply = app.ask("你们卖旅游保险吗？").await;
    assert_eq!(reply["mode"], "refusal", "{reply}");
    assert!(reply["answer"].as_str().unwrap().contains("转接同事"), "{reply}");
}

#[tokio::test]
async fn asking_for_a_person_hands_over() {
    let app = spawn_app().await;
    let reply = app.ask("I want to talk to a real person").await;
    assert_eq!(reply["mode"], "handoff");
    assert_eq!(reply["handoff"]["reason"], "customer_request");
    let reply = app.ask("转人工").await;
    assert_eq!(reply["handoff"]["reason"], "customer_request");
    assert!(reply["answer"].as_str().unwrap().contains("转接"));
}

#[tokio::test]
async fn generated_answers_use_the_templates_and_only_real_citations() {
    let standin = StandInServer::start(Script {
        reply: "Drilling the lock costs LTD 350 [1], and a new key is cut [7].".into(),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with_llm(&standin).await;
    // A document question: approved FAQ answers never reach the model.
    let question = "I lost the key to my safe deposit box - what does it cost to have the lock drilled?";
    let reply = app.ask(question).await;
    assert_eq!(reply["mode"], "generated", "{reply}");
    let answer = reply["answer"].as_str().unwrap();
    assert!(
        answer.ends_with("\n\nDrilling the lock costs LTD 350 [1], and a new key is cut."),
        "{answer}"
    );
    assert_eq!(reply["citations"].as_array().unwrap().len(), 1);
    assert_eq!(reply["citations"][0]["source_id"], "doc-guide");

    let requests = standin.recorder.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request["model"], "stand-in-model");
    assert_eq!(request["stream"], true);
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Answer ONLY from the numbered passages"), "{system}");
    let user = request["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap();
    assert!(user.contains("<passage n=\"1\" source=\"doc-guide\""), "{user}");
    assert!(user.contains("LTD 350"));
    assert!(user.ends_with(&format!("Customer question: {question}")));
}

#[tokio::test]
async fn a_model_that_finds_no_answer_in_the_passages_gives_the_refusal_with_a_colleague() {
    let standin = StandInServer::start(Script {
        reply: "NO_ANSWER".into(),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with_llm(&standin).await;
    // A document question that passes the grounding floor, so the model is asked.
    let question = "I lost the key to my safe deposit box - what does it cost to have the lock drilled?";
    let reply = app.ask(question).await;
    assert_eq!(reply["mode"], "refusal", "{reply}");
    assert_eq!(reply["handoff"]["reason"], "missing_knowledge");
    assert_eq!(reply["citations"], json!([]));
    let answer = reply["answer"].as_str().unwrap();
    assert!(
        answer.contains("colleague") && !answer.contains("NO_ANSWER"),
        "{answer}"
    );
    let system = standin.recorder.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(system.contains("reply with exactly NO_ANSWER"), "{system}");

    // Streamed, the marker is never shown: the deltas are the refusal.
    let (status, events) = app.chat_stream(json!({ "message": question, "lang": "zh-CN" })).await;
    assert_eq!(status, StatusCode::OK);
    let done = events.last().unwrap();
    assert_eq!(done.data["mode"], "refusal", "{events:?}");
    let streamed = crate::app::streamed_text(&events);
    assert_eq!(streamed, done.data["answer"].as_str().unwrap());
    assert!(
        streamed.contains("转接同事") && !streamed.contains("NO_ANSWER"),
        "{streamed}"
    );
    // The model was asked both times: the refusal is its decline, not the policy's.
    assert_eq!(standin.recorder.requests().len(), 2);

    // The record says the model declined, and which templates worded the reply.
    let export = app.audit_export().await;
    assert_eq!(export.matches("model_declined").count(), 2, "{export}");
    // ...with the tokens the decline cost (the passages are most of them).
    assert_eq!(
        export.matches("\"completion_tokens\":1,\"prompt_tokens\":").count(),
        2,
        "{export}"
    );
    assert!(export.contains("{\"name\":\"refusal\",\"version\":1}"), "{export}");
}

#[tokio::test]
async fn streamed_deltas_add_up_to_the_done_answer() {
    let standin = StandInServer::start(Script {
        reply: "Delivery takes up to 5 business days [1]. Express costs LTD 80 [1][4].".into(),
        ..Default::default()
    })
    .await;
    for app in [spawn_app().await, spawn_app_with_llm(&standin).await] {
        for question in [
            "How long does delivery of a replacement card take, and what does express cost?",
            "I lost the key to my safe deposit box, what does drilling the lock cost?",
        ] {
            let (status, events) = app.chat_stream(json!({ "message": question })).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(events.first().unwrap().event, "meta", "{events:?}");
            let done = events.last().unwrap();
            assert_eq!(done.event, "done", "{events:?}");
            let streamed = crate::app::streamed_text(&events);
            assert_eq!(streamed, done.data["answer"].as_str().unwrap());
            assert!(!streamed.is_empty());
            assert_eq!(events[0].data["conversation_id"], done.data["conversation_id"]);
        }
    }
}

#[tokio::test]
async fn conversations_need_their_token() {
    let app = spawn_app().await;
    let first = app.ask("What is the annual fee for the Gold card?").await;
    let id = first["conversation_id"].as_str().unwrap();
    let token = first["conversation_token"].as_str().unwrap();

    let (status, body) = app
        .chat(json!({ "conversation_id": id, "message": "and platinum?" }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_conversation_token");
    let (status, body) = app
        .chat(json!({ "conversation_id": id, "conversation_token": "guess", "message": "and platinum?" }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "conversation_not_found");

    let second = app.follow_up(&first, "ok, and for the platinum card?").await;
    assert_eq!(second["conversation_id"], first["conversation_id"]);
    assert!(second["answer"].as_str().unwrap().contains("LTD 1,500"), "{second}");

    let (status, transcript) = app.get(&format!("/v1/conversations/{id}"), Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let messages = transcript["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[3]["content"], second["answer"]);

    let (status, body) = app.get(&format!("/v1/conversations/{id}"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("conversation_token_required"))
    );
    let other = app.ask("How long does delivery of a replacement card take?").await;
    let (status, _) = app
        .get(&format!("/v1/conversations/{id}"), other["conversation_token"].as_str())
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another customer's token must not open this conversation"
    );
}

#[tokio::test]
async fn bad_input_gets_documented_error_codes() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "message": "   " }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "message_empty",
        ),
        (
            json!({ "message": "a".repeat(2_001) }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "message_too_long",
        ),
        ("{\"message\": ".to_string(), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            json!({ "message": 5 }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({ "text": "hi" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({ "message": "hi", "lang": "fr" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({ "message": "hi", "conversation_id": "not-a-uuid", "conversation_token": "x" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({ "message": "hi", "conversation_id": uuid::Uuid::new_v4(), "conversation_token": "x" }).to_string(),
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
        (
            json!({ "message": "x".repeat(40_000) }).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in cases {
        for path in ["/v1/chat", "/v1/chat/stream"] {
            let (got, reply) = app.post_raw(path, body.clone(), "application/json").await;
            assert_eq!(
                (got, reply["error"]["code"].as_str()),
                (status, Some(code)),
                "{path} {}",
                &body[..body.len().min(80)]
            );
            assert!(reply["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    let (status, reply) = app
        .post_raw("/v1/chat", json!({ "message": "hi" }).to_string(), "text/plain")
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let (status, reply) = app.get("/v1/nothing-here", None).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn a_model_that_does_not_answer_in_time_falls_back_within_the_deadline() {
    let standin = StandInServer::start(Script {
        first_token_delay: Duration::from_secs(20),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(AppOptions {
        llm: Some(standin.base_url.clone()),
        tweak: |s| {
            s.llm_first_token_timeout_ms = 300;
            s.request_timeout_ms = 3_000;
        },
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let reply = app
        .ask("I lost the key to my safe deposit box - what does it cost to have the lock drilled?")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(reply["mode"], "extractive", "{reply}");
    assert!(reply["answer"].as_str().unwrap().contains("LTD 350"));

    // A failing model (HTTP 500) falls back the same way.
    standin.set_script(Script {
        fail_status: Some(500),
        ..Default::default()
    });
    let reply = app
        .ask("what does drilling the lock of a safe deposit box cost when the key is lost?")
        .await;
    assert_eq!(reply["mode"], "extractive", "{reply}");
}

#[tokio::test]
async fn history_given_to_the_model_is_bounded_by_its_token_budget() {
    let standin = StandInServer::start(Script::default()).await;
    let app = spawn_app_with(AppOptions {
        llm: Some(standin.base_url.clone()),
        tweak: |s| s.history_tokens = 200,
        ..Default::default()
    })
    .await;
    let long =
        "Please tell me what happens when I lose the key of my safe deposit box and the lock is drilled, ".repeat(4);
    let mut reply = app.ask(&long).await;
    for _ in 0..4 {
        reply = app.follow_up(&reply, &long).await;
    }
    let last = standin.recorder.requests().pop().unwrap();
    let messages = last["messages"].as_array().unwrap();
    let history: Vec<_> = messages[1..messages.len() - 1].iter().collect();
    assert!(!history.is_empty(), "some history is given");
    let history_chars: usize = history.iter().map(|m| m["content"].as_str().unwrap().len()).sum();
    // 200 tokens of English is well under 1,200 characters; four earlier questions alone
    // would be over 1,300.
    assert!(
        history_chars < 1_200,
        "history of {history_chars} characters exceeds the budget"
    );
    assert_eq!(history.last().unwrap()["role"], "assistant");
}

#[tokio::test]
async fn turns_beyond_the_concurrency_limit_are_shed_with_retry_after() {
    let standin = StandInServer::start(Script {
        first_token_delay: Duration::from_millis(1_500),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(AppOptions {
        llm: Some(standin.base_url.clone()),
        tweak: |s| s.max_concurrent_turns = 1,
        ..Default::default()
    })
    .await;
    // A document question, so the (slow) model is asked rather than an approved FAQ served.
    let question = "I lost the key to my safe deposit box - what does it cost to have the lock drilled?";
    let slow = app.chat(json!({ "message": question }));
    let fast = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.client
            .post(format!("{}/v1/chat", app.address))
            .json(&json!({ "message": question }))
            .send()
            .await
            .unwrap()
    };
    let ((slow_status, _), shed) = tokio::join!(slow, fast);
    assert_eq!(slow_status, StatusCode::OK);
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
}

#[tokio::test]
async fn a_client_that_disconnects_stops_generation() {
    let standin = StandInServer::start(Script {
        reply: "word ".repeat(200),
        token_interval: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with_llm(&standin).await;
    let response = app
        .client
        .post(format!("{}/v1/chat/stream", app.address))
        .json(&json!({ "message": "what's the interest rate on the savings account" }))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    use futures::StreamExt;
    let _ = body.next().await; // meta
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(body);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sent = standin.recorder.tokens_sent();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        standin.recorder.tokens_sent(),
        sent,
        "generation continued after the client left"
    );
    assert!(sent < 100, "{sent} of 200 tokens were generated");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    app.ask("What is the annual fee for the Gold card?").await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["chunks"].as_u64().unwrap() > 0);
    let (status, body) = app.get("/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("teller_chat_turns_total{mode=\"approved\"}"), "{text}");
    assert!(text.contains("teller_stage_seconds_bucket{stage=\"retrieval\""));
    // The latency target's edge is a bucket of its own.
    assert!(
        text.contains("teller_stage_seconds_bucket{stage=\"total\",le=\"0.02\"}"),
        "{text}"
    );
    assert!(text.contains("teller_http_requests_total"));
}

#[tokio::test]
async fn invented_http_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, format!("{}/v1/chat", app.address))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let (_, body) = app.get("/metrics", None).await;
    let text = body.as_str().unwrap();
    assert!(!text.contains("INVENTED"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn card_numbers_never_reach_the_model_or_the_record() {
    let standin = StandInServer::start(Script::default()).await;
    let app = spawn_app_with_llm(&standin).await;
    let message = "my card is 4111 1111 1111 1111 - what does it cost to have the safe deposit box lock drilled?";
    let (status, events) = app.chat_stream(json!({ "message": message })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    let requests = standin.recorder.requests();
    assert!(!requests.is_empty(), "the model was asked");
    for request in requests {
        let body = request.to_string();
        assert!(
            !body.contains("4111 1111 1111 1111") && !body.contains("4111111111111111"),
            "{body}"
        );
        assert!(body.contains("[CARD ••••1111]"), "{body}");
    }
    let export = app.audit_export().await;
    assert!(
        !export.contains("4111 1111 1111 1111") && !export.contains("1111 1111 1111"),
        "{export}"
    );
    assert!(
        export.contains("[CARD ••••1111]") && export.contains("\"masked\":[\"card\"]"),
        "{export}"
    );
}
