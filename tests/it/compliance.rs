//! The compliance API through a spawned server: roles, audited reads, export, verify,
//! and no answer without a committed record.

use crate::app::{spawn_app, spawn_app_with, AppOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use teller::audit::{AuditStore, StaffRole};

#[tokio::test]
async fn only_compliance_tokens_read_the_record_and_every_read_is_recorded() {
    let app = spawn_app().await;
    let reply = app.ask("What is the annual fee for the Gold card?").await;
    let id = reply["conversation_id"].as_str().unwrap().to_string();
    let compliance = app.staff_token("carol", StaffRole::Compliance).await;
    let agent = app.staff_token("adam", StaffRole::Agent).await;
    let customer = reply["conversation_token"].as_str().unwrap();

    for path in [
        "/v1/audit/conversations".to_string(),
        format!("/v1/audit/conversations/{id}"),
        "/v1/audit/verify".into(),
    ] {
        let (status, body) = app.get(&path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("staff_token_required")),
            "{path}"
        );
        let (status, body) = app.get(&path, Some(customer)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_staff_token")),
            "{path}"
        );
        let (status, body) = app.get(&path, Some(&agent)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{path}"
        );
        let (status, _) = app.get(&path, Some(&compliance)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    let (_, list) = app
        .get("/v1/audit/conversations?mode=approved", Some(&compliance))
        .await;
    assert_eq!(list["conversations"][0]["id"], id.as_str());
    assert_eq!(list["conversations"][0]["last_mode"], "approved");
    let (_, list) = app
        .get("/v1/audit/conversations?q=gold%20card", Some(&compliance))
        .await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/v1/audit/conversations?mode=refusal", Some(&compliance)).await;
    assert_eq!(list["conversations"], json!([]));

    let (_, one) = app
        .get(&format!("/v1/audit/conversations/{id}"), Some(&compliance))
        .await;
    let kinds: Vec<&str> = one["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message_received", "retrieval", "answer"]);
    assert_eq!(one["events"][1]["payload"]["hits"][0]["source_id"], "faq-basics-001");
    assert_eq!(one["events"][2]["payload"]["mode"], "approved");

    let (_, verify) = app.get("/v1/audit/verify", Some(&compliance)).await;
    assert_eq!(verify["intact"], true, "{verify}");

    let response = app
        .client
        .get(format!(
            "{}/v1/audit/export?from=2000-01-01&to=2999-01-01&format=csv",
            app.address
        ))
        .bearer_auth(&compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("seq,occurred_at,actor,kind"));

    // Staff reads are in the record, attributed to the officer.
    let url = teller::startup::database_url(&app.settings).unwrap();
    let events = AuditStore::connect(&url).await.unwrap().events(1, 1_000).await.unwrap();
    let staff_kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.actor == "staff:carol")
        .map(|e| e.kind.as_str())
        .collect();
    assert!(
        staff_kinds.contains(&"conversation_read")
            && staff_kinds.contains(&"conversations_searched")
            && staff_kinds.contains(&"audit_exported"),
        "{staff_kinds:?}"
    );
}

#[tokio::test]
async fn when_the_record_cannot_be_written_the_customer_gets_503_and_no_answer() {
    let app = spawn_app_with(AppOptions::default()).await;
    app.ask("What is the annual fee for the Gold card?").await;
    // Break the store under the running server: the messages table disappears.
    let url = teller::startup::database_url(&app.settings).unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("DROP TABLE messages").execute(&pool).await.unwrap();
    for path in ["/v1/chat", "/v1/chat/stream"] {
        let (status, body) = app
            .post_raw(
                path,
                json!({ "message": "What is the annual fee for the Gold card?" }).to_string(),
                "application/json",
            )
            .await;
        if path == "/v1/chat" {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(body["error"]["code"], "audit_unavailable");
            assert!(body.get("answer").is_none());
        } else {
            // The stream starts, but ends in an error event without any answer text.
            let text = app
                .client
                .post(format!("{}{path}", app.address))
                .json(&json!({ "message": "What is the annual fee for the Gold card?" }))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let events = crate::app::parse_sse(&text);
            assert!(
                events.iter().all(|e| e.event != "delta" && e.event != "done"),
                "{events:?}"
            );
            assert_eq!(events.last().unwrap().data["error"]["code"], "audit_unavailable");
            let _: Value = body;
        }
    }
}

#[tokio::test]
async fn a_legal_hold_is_placed_once_with_a_clean_reason_and_released() {
    let app = spawn_app().await;
    let reply = app.ask("What is the annual fee for the Gold card?").await;
    let id = reply["conversation_id"].as_str().unwrap();
    let compliance = app.staff_token("carol", StaffRole::Compliance).await;
    let url = format!("{}/v1/audit/conversations/{id}/hold", app.address);
    let put = |reason: &str| {
        app.client
            .put(&url)
            .bearer_auth(&compliance)
            .json(&json!({ "reason": reason }))
            .send()
    };
    // A control character is refused even where trimming would remove it (NEL, U+0085).
    for reason in ["\u{85}court order", "court\u{7}order", "   "] {
        let response = put(reason).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{reason:?}");
    }
    let response = put("court order 42").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["legal_hold"]["reason"], "court order 42");
    assert_eq!(put("again").await.unwrap().status(), StatusCode::CONFLICT);
    let response = app.client.delete(&url).bearer_auth(&compliance).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["legal_hold"], Value::Null);
}
