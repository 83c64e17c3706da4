//! The live rows as each side sees them: a customer's events stream (`state`,
//! `agent_joined`, `message`, `typing`) and a colleague's (`snapshot`, `queue`,
//! `customer_message`, `agent_message`, `note`, `typing`). Every event carries an id; a
//! client that reconnects with the last id it saw gets exactly the events after it.
//!
//! Ids are the seq of the live row an event comes from, `<seq>.<n>` for the n-th further
//! event of one row (a claim tells the customer both the new state and who joined).

use super::feed::{FeedItem, Follower, Interest};
use super::Desk;
use crate::audit::live::{LiveKind, LiveRow, MessageData, QueueEntry, StateData};
use crate::audit::{AuditError, Staff};
use crate::conversation::ConversationState;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// One server-sent event, before it is framed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: String,
    pub event: &'static str,
    pub data: Value,
}

/// Where a client resumes: after event `n` of row `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub seq: i64,
    pub n: usize,
}

impl Cursor {
    /// A `Last-Event-ID` as sent back; anything unreadable is no cursor.
    pub fn parse(id: &str) -> Option<Self> {
        let (seq, n) = match id.trim().split_once('.') {
            Some((seq, n)) => (seq, n.parse().ok()?),
            None => (id.trim(), 0),
        };
        let seq: i64 = seq.parse().ok()?;
        (seq >= 0).then_some(Self { seq, n })
    }

    fn id(seq: i64, n: usize) -> String {
        if n == 0 {
            seq.to_string()
        } else {
            format!("{seq}.{n}")
        }
    }
}

/// Rows of row `seq` already sent before a resume are skipped.
fn resumed(events: Vec<Outgoing>, seq: i64, cursor: Option<Cursor>) -> Vec<Outgoing> {
    match cursor {
        Some(c) if c.seq == seq => events.into_iter().skip(c.n + 1).collect(),
        _ => events,
    }
}

/// A message or note row as a colleague's event: its data and the conversation.
fn message_event(row: &LiveRow) -> Option<Value> {
    let data: MessageData = serde_json::from_value(row.data.clone()).ok()?;
    let mut value = serde_json::to_value(&data).ok()?;
    value["conversation_id"] = json!(row.conversation_id);
    Some(value)
}

/// A customer's events stream.
pub struct CustomerStream {
    desk: Desk,
    follower: Follower,
    conversation: Uuid,
    cursor: Option<Cursor>,
    pending: VecDeque<Outgoing>,
    /// The last place in the queue told, while waiting.
    position: Option<usize>,
    /// Shared with the feed, which passes on other conversations' state changes only
    /// while it is set.
    waiting: Arc<AtomicBool>,
    last_id: String,
}

impl CustomerStream {
    pub(super) fn new(desk: Desk, conversation: Uuid, cursor: Option<Cursor>, waiting: bool) -> Self {
        // Without a cursor the stream starts with the conversation's first live row: a
        // client that opens it after its reply misses nothing.
        // A resumed row is read again, and what was sent of it skipped.
        let after = cursor.map_or(0, |c| c.seq - 1);
        let waiting = Arc::new(AtomicBool::new(waiting));
        let follower = desk.feed.follow(
            after,
            Interest::Customer {
                conversation,
                waiting: waiting.clone(),
            },
        );
        Self {
            desk,
            follower,
            conversation,
            cursor,
            pending: VecDeque::new(),
            position: None,
            waiting,
            last_id: Cursor::id(after, 0),
        }
    }

    pub async fn next(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(out) = self.pending.pop_front() {
                self.last_id = out.id.clone();
                return Some(out);
            }
            match self.follower.next().await? {
                FeedItem::Row(row) if row.conversation_id == self.conversation => {
                    let events = self.render(&row).await;
                    self.pending.extend(resumed(events, row.seq, self.cursor));
                }
                // Another conversation left the queue or joined it: this one's place may
                // have changed.
                FeedItem::Row(row) if row.kind == LiveKind::State && self.waiting.load(Ordering::Acquire) => {
                    if let Some(out) = self.position_changed(row.seq).await {
                        self.pending.push_back(out);
                    }
                }
                FeedItem::Row(_) => {}
                // The feed passes on only the colleague's typing in this conversation.
                FeedItem::Typing { .. } => {
                    self.pending.push_back(Outgoing {
                        id: self.last_id.clone(),
                        event: "typing",
                        data: json!({ "who": "agent" }),
                    });
                }
            }
        }
    }

    async fn position(&self) -> Option<usize> {
        self.desk.audit.queue_position(self.conversation).await.ok().flatten()
    }

    /// The wait at the place last told, while waiting.
    async fn wait(&self) -> Option<super::wait::Wait> {
        match self.position {
            Some(position) => Some(self.desk.wait(position).await),
            None => None,
        }
    }

    async fn position_changed(&mut self, seq: i64) -> Option<Outgoing> {
        let position = self.position().await;
        if position == self.position {
            return None;
        }
        self.position = position;
        let wait = self.wait().await;
        Some(Outgoing {
            id: Cursor::id(seq, 0),
            event: "state",
            data: json!({ "state": ConversationState::Waiting, "queue_position": position, "wait": wait }),
        })
    }

    async fn render(&mut self, row: &LiveRow) -> Vec<Outgoing> {
        let id = |n| Cursor::id(row.seq, n);
        match row.kind {
            LiveKind::State => {
                let Ok(data) = serde_json::from_value::<StateData>(row.data.clone()) else {
                    return Vec::new();
                };
                // Set before the place is read: a state change the feed passes over
                // while it was unset committed before this read, so the place counts it.
                let waiting = data.state == ConversationState::Waiting;
                self.waiting.store(waiting, Ordering::Release);
                self.position = if waiting { self.position().await } else { None };
                let wait = self.wait().await;
                let mut events = vec![Outgoing {
                    id: id(0),
                    event: "state",
                    data: json!({
                        "state": data.state, "queue_position": self.position, "reason": data.reason, "wait": wait,
                    }),
                }];
                if data.state == ConversationState::WithAgent && data.from != ConversationState::WithAgent {
                    events.push(Outgoing {
                        id: id(1),
                        event: "agent_joined",
                        // The display name only.
                        data: json!({ "name": data.agent }),
                    });
                }
                events
            }
            LiveKind::AgentMessage => {
                let Ok(data) = serde_json::from_value::<MessageData>(row.data.clone()) else {
                    return Vec::new();
                };
                vec![Outgoing {
                    id: id(0),
                    event: "message",
                    data: json!({ "id": data.id, "text": data.text, "created_at": data.created_at, "name": data.agent }),
                }]
            }
            // The customer's own messages and colleagues' notes are not told back.
            LiveKind::CustomerMessage | LiveKind::Note => Vec::new(),
        }
    }
}

/// A colleague's live stream: the queue as it changes, and what is said in the
/// conversations they hold.
pub struct AgentStream {
    follower: Follower,
    pending: VecDeque<Outgoing>,
}

impl AgentStream {
    /// Opens it: resuming after `cursor`, or from now with a `snapshot` of the queue.
    pub(super) async fn open(desk: &Desk, staff: &Staff, cursor: Option<Cursor>) -> Result<Self, AuditError> {
        let mut pending = VecDeque::new();
        let after = match cursor {
            Some(c) => c.seq,
            None => {
                // The head first, then the queue: whatever changes after the snapshot
                // was read comes as events after it.
                let head = desk.audit.live_head().await?;
                let queue = desk.audit.queue().await?;
                pending.push_back(Outgoing {
                    id: Cursor::id(head, 0),
                    event: "snapshot",
                    data: json!({ "conversations": queue }),
                });
                head
            }
        };
        Ok(Self {
            follower: desk.feed.follow(
                after,
                Interest::Colleague {
                    name: staff.name.clone(),
                },
            ),
            pending,
        })
    }

    pub async fn next(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(out) = self.pending.pop_front() {
                return Some(out);
            }
            let FeedItem::Row(row) = self.follower.next().await? else {
                continue;
            };
            if let Some(out) = self.render(&row) {
                return Some(out);
            }
        }
    }

    /// The feed hands over only what concerns this colleague (see [`Interest`]).
    fn render(&self, row: &LiveRow) -> Option<Outgoing> {
        let (event, data) = match row.kind {
            LiveKind::State => {
                let data: StateData = serde_json::from_value(row.data.clone()).ok()?;
                let entry = QueueEntry::from_state(row.conversation_id, data);
                ("queue", serde_json::to_value(entry).ok()?)
            }
            // A waiting customer's words go to everyone (the queue); a held
            // conversation's to the colleague who holds it.
            LiveKind::CustomerMessage => ("customer_message", message_event(row)?),
            LiveKind::AgentMessage => ("agent_message", message_event(row)?),
            LiveKind::Note => ("note", message_event(row)?),
        };
        Some(Outgoing {
            id: Cursor::id(row.seq, 0),
            event,
            data,
        })
    }
}

impl Desk {
    /// A customer's events stream (their token checked first).
    pub async fn customer_stream(
        &self,
        id: Uuid,
        token: &str,
        cursor: Option<Cursor>,
    ) -> Result<CustomerStream, crate::chat::ChatError> {
        let state = self.pipeline.authorise(id, token).await?;
        Ok(CustomerStream::new(
            self.clone(),
            id,
            cursor,
            state == ConversationState::Waiting,
        ))
    }

    /// A colleague's live stream (recorded as opened).
    pub async fn agent_stream(&self, staff: &Staff, cursor: Option<Cursor>) -> Result<AgentStream, AuditError> {
        self.stream_opened(staff).await?;
        AgentStream::open(self, staff, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_read_back_as_cursors() {
        assert_eq!(Cursor::parse("42"), Some(Cursor { seq: 42, n: 0 }));
        assert_eq!(Cursor::parse("42.1"), Some(Cursor { seq: 42, n: 1 }));
        assert_eq!(Cursor::parse("x"), None);
        assert_eq!(Cursor::parse("-3"), None);
        assert_eq!(Cursor::id(42, 1), "42.1");
    }

    #[test]
    fn a_resume_skips_what_was_sent_of_its_row() {
        let events = |n| {
            (0..n)
                .map(|i| Outgoing {
                    id: Cursor::id(7, i),
                    event: "state",
                    data: Value::Null,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(resumed(events(2), 7, Some(Cursor { seq: 7, n: 0 })).len(), 1);
        assert_eq!(resumed(events(2), 7, Some(Cursor { seq: 7, n: 1 })).len(), 0);
        assert_eq!(resumed(events(2), 8, Some(Cursor { seq: 7, n: 0 })).len(), 2);
    }
}
