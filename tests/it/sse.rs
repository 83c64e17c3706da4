//! A client for Teller's live streams: server-sent events read as they arrive, with
//! their ids, and reopened with `Last-Event-ID`. Shared by the tests and
//! `benches/handoff.rs`.

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One server-sent event with its id.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// An open events stream, read as events arrive.
pub struct EventStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
    pub last_id: Option<String>,
}

impl EventStream {
    pub async fn open(
        client: &reqwest::Client,
        url: &str,
        token: &str,
        last_id: Option<&str>,
    ) -> (StatusCode, Option<Self>) {
        let mut request = client.get(url).bearer_auth(token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if !status.is_success() {
            return (status, None);
        }
        let stream = Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            last_id: last_id.map(str::to_string),
        };
        (status, Some(stream))
    }

    /// The next event (keep-alive comments skipped), or `None` after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Sse> {
        let until = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                let (Some(event), Ok(data)) = (event, serde_json::from_str(&data)) else {
                    continue;
                };
                let id = id.unwrap_or_default();
                self.last_id = Some(id.clone());
                return Some(Sse { id, event, data });
            }
            match tokio::time::timeout_at(until, self.body.next()).await {
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str, within: Duration) -> Option<Sse> {
        let until = Instant::now() + within;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.next(left).await {
                Some(e) if e.event == name => return Some(e),
                Some(_) => continue,
                None => return None,
            }
        }
        None
    }
}
