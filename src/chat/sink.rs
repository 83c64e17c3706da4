//! Where a reply goes while a turn produces it. The JSON endpoint and `teller eval` take
//! the reply whole once it is recorded; the SSE endpoint shows it as it comes. Stages
//! write to a [`ReplySink`] and never ask which one they have.

use crate::conversation::{Citation, Mode};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Progress of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Sent once retrieval and the policy decision are done, before any text.
    Meta {
        conversation_id: Uuid,
        message_id: Uuid,
        mode: Mode,
        citations: Vec<Citation>,
    },
    Delta(String),
}

/// Receives a turn's reply as it is produced.
pub trait ReplySink: Send {
    /// Whether text reaches the client as it is produced (and so must never be taken
    /// back), or only whole, after the record is committed.
    fn is_live(&self) -> bool;

    /// Passes an event on; `false` once the client has gone.
    fn send(&mut self, event: StreamEvent) -> bool;

    /// Passes text on; `false` once the client has gone. Nothing is sent for no text.
    fn text(&mut self, piece: &str) -> bool {
        piece.is_empty() || self.send(StreamEvent::Delta(piece.to_string()))
    }
}

/// The whole reply at the end: nothing is shown while the turn runs.
#[derive(Debug, Default)]
pub struct WholeReply;

impl ReplySink for WholeReply {
    fn is_live(&self) -> bool {
        false
    }

    fn send(&mut self, _: StreamEvent) -> bool {
        true
    }
}

/// A reply streamed to a client; the receiving end dropped means the client went away.
pub struct Streamed(pub mpsc::UnboundedSender<StreamEvent>);

impl ReplySink for Streamed {
    fn is_live(&self) -> bool {
        true
    }

    fn send(&mut self, event: StreamEvent) -> bool {
        self.0.send(event).is_ok()
    }
}

/// Passes everything on to a sink and keeps the text that reached it, for the record of
/// a turn that ends without its answer committed.
pub struct Watched<'s> {
    inner: &'s mut dyn ReplySink,
    shown: String,
}

impl<'s> Watched<'s> {
    pub fn new(inner: &'s mut dyn ReplySink) -> Self {
        Self {
            inner,
            shown: String::new(),
        }
    }

    /// The text the client was sent so far.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl ReplySink for Watched<'_> {
    fn is_live(&self) -> bool {
        self.inner.is_live()
    }

    fn send(&mut self, event: StreamEvent) -> bool {
        let text = match (&event, self.inner.is_live()) {
            (StreamEvent::Delta(text), true) => Some(text.clone()),
            _ => None,
        };
        let sent = self.inner.send(event);
        if let (true, Some(text)) = (sent, text) {
            self.shown.push_str(&text);
        }
        sent
    }
}

/// Splits a finished answer into word-sized deltas for clients that render progressively.
pub fn split_for_stream(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if (c.is_whitespace() && current.len() >= 24) || crate::lang::is_han(c) && current.chars().count() >= 8 {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}
