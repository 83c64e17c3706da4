//! `spawn_app`: a real server on port 0 with its own data dir and audit database, plus
//! typed helpers for the HTTP API.

use crate::helpers::fixture;
use crate::standin::StandInServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use teller::config::Settings;
use teller::startup::Application;
use tempfile::TempDir;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    _data: TempDir,
}

/// How to build the app under test.
pub struct AppOptions {
    pub llm: Option<String>,
    pub database_url: Option<String>,
    pub tweak: fn(&mut Settings),
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            llm: None,
            database_url: None,
            tweak: |_| {},
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with_llm(standin: &StandInServer) -> TestApp {
    spawn_app_with(AppOptions {
        llm: Some(standin.base_url.clone()),
        ..Default::default()
    })
    .await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let data = TempDir::new().unwrap();
    let mut settings = Settings::for_data_dir(data.path());
    settings.kb_dir = fixture("kb");
    settings.prompts_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"));
    settings.bind = "127.0.0.1:0".into();
    settings.database_url = options.database_url;
    // Tests send many requests from one address; the rate limits have tests of their own.
    settings.rate_limit_per_minute = 0;
    settings.conversation_rate_limit_per_minute = 0;
    if let Some(base) = options.llm {
        settings.openai_base_url = Some(base);
        settings.openai_api_key = Some("test-key".to_string().into());
        settings.chat_model = Some("stand-in-model".into());
        settings.llm_retries = 0;
    }
    (options.tweak)(&mut settings);
    let app = Application::build(&settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        settings,
        _data: data,
    }
}

/// One parsed server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

impl TestApp {
    /// A staff token of `role` in this app's audit store (shown once, as `teller token
    /// create` prints it).
    pub async fn staff_token(&self, name: &str, role: teller::audit::StaffRole) -> String {
        let url = teller::startup::database_url(&self.settings).unwrap();
        teller::audit::AuditStore::connect(&url)
            .await
            .unwrap()
            .create_token(name, role)
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, path: &str, body: String, content_type: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn chat(&self, body: Value) -> (StatusCode, Value) {
        self.post_raw("/v1/chat", body.to_string(), "application/json").await
    }

    /// Starts a conversation and asserts it succeeded.
    pub async fn ask(&self, message: &str) -> Value {
        let (status, reply) = self.chat(json!({ "message": message })).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        reply
    }

    /// Continues a conversation and asserts it succeeded.
    pub async fn follow_up(&self, previous: &Value, message: &str) -> Value {
        let (status, reply) = self
            .chat(json!({
                "conversation_id": previous["conversation_id"],
                "conversation_token": previous["conversation_token"],
                "message": message,
            }))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        reply
    }

    pub async fn chat_stream(&self, body: Value) -> (StatusCode, Vec<SseEvent>) {
        let response = self
            .client
            .post(format!("{}/v1/chat/stream", self.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, parse_sse(&text))
    }

    /// The whole audit log as the compliance export writes it (JSON Lines).
    pub async fn audit_export(&self) -> String {
        let url = teller::startup::database_url(&self.settings).unwrap();
        let store = teller::audit::AuditStore::connect(&url).await.unwrap();
        let mut export = Vec::new();
        store
            .export(
                "2000-01-01T00:00:00Z",
                "2999-01-01T00:00:00Z",
                teller::audit::ExportFormat::Jsonl,
                &mut export,
            )
            .await
            .unwrap();
        String::from_utf8(export).unwrap()
    }

    /// Audit events of one kind, parsed.
    pub async fn audit_events(&self, kind: &str) -> Vec<Value> {
        self.audit_export()
            .await
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["kind"] == kind)
            .collect()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// The text of a stream's `delta` events, joined.
pub fn streamed_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["text"].as_str().unwrap())
        .collect()
}

pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            Some(SseEvent {
                event: event?,
                data: serde_json::from_str(&data).ok()?,
            })
        })
        .collect()
}
