//! The live feed: each process reads `live_events` in seq order once and hands every row
//! to the streams open on it (customers' and colleagues'). It is woken by this process's
//! commits and, on PostgreSQL, by `NOTIFY` from every instance; notifications carry only
//! a seq and are lost while a listener is down, so every wake-up — and a timer, and a
//! listener that reconnects — re-reads the table from the last row seen. A stream whose
//! receiver lags, or that resumes from a `Last-Event-ID`, re-reads the table too.

use crate::audit::live::{LiveRow, LIVE_CHANNEL};
use crate::audit::AuditStore;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

/// Rows read per query.
const PAGE: i64 = 500;
/// Re-read the table this often even without a wake-up (a lost notification costs at
/// most this much delay).
const POLL: Duration = Duration::from_secs(1);
/// Rows a slow stream may fall behind before it re-reads from the table.
const CAPACITY: usize = 4096;

/// What the feed hands to streams.
#[derive(Debug, Clone)]
pub enum FeedItem {
    Row(Arc<LiveRow>),
    /// Someone is typing in a conversation (not kept: it is stale a moment later).
    Typing {
        conversation_id: Uuid,
        who: &'static str,
    },
}

pub struct LiveFeed {
    store: Arc<AuditStore>,
    tx: broadcast::Sender<FeedItem>,
    wake: Notify,
    /// PostgreSQL: typing goes through `NOTIFY`, so every instance hears it once.
    notify_typing: bool,
}

impl LiveFeed {
    /// Starts the feed (and, with PostgreSQL at `listen_url`, its listener).
    pub fn start(store: Arc<AuditStore>, listen_url: Option<String>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(CAPACITY);
        let feed = Arc::new(Self {
            store,
            tx,
            wake: Notify::new(),
            notify_typing: listen_url.is_some(),
        });
        tokio::spawn(feed.clone().read_loop());
        if let Some(url) = listen_url {
            tokio::spawn(feed.clone().listen(url));
        }
        feed
    }

    /// Reads new rows whenever something may have committed, and broadcasts them in order.
    async fn read_loop(self: Arc<Self>) {
        let mut commits = self.store.live_commits();
        let mut last = loop {
            match self.store.live_head().await {
                Ok(head) => break head,
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: cannot read the head yet");
                    tokio::time::sleep(POLL).await;
                }
            }
        };
        loop {
            tokio::select! {
                _ = commits.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            loop {
                let rows = match self.store.live_since(last, None, PAGE).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed: read failed; retrying");
                        break;
                    }
                };
                let full = rows.len() as i64 == PAGE;
                let queue_changed = rows.iter().any(|r| r.kind == crate::audit::live::LiveKind::State);
                for row in rows {
                    last = row.seq;
                    // No receivers is fine: nobody is watching.
                    let _ = self.tx.send(FeedItem::Row(Arc::new(row)));
                }
                if queue_changed {
                    super::metrics::queue_changed(&self.store).await;
                }
                if !full {
                    break;
                }
            }
        }
    }

    /// PostgreSQL `LISTEN`: each notification wakes the reader; a reconnect re-reads.
    async fn listen(self: Arc<Self>, url: String) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen(LIVE_CHANNEL).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        // Whatever was committed while no one listened.
                        self.wake.notify_one();
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) => self.on_notification(n.payload()),
                                // The connection dropped; sqlx reconnects on the next call,
                                // and anything missed meanwhile is re-read.
                                Ok(None) => self.wake.notify_one(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "live feed: listener failed");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "live feed: LISTEN failed"),
                },
                Err(e) => tracing::warn!(error = %e, "live feed: cannot connect the listener"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    fn on_notification(&self, payload: &str) {
        match payload.strip_prefix("typing ") {
            Some(rest) => {
                let mut parts = rest.split(' ');
                if let (Some(Ok(conversation_id)), Some(who)) = (parts.next().map(str::parse), parts.next()) {
                    let who = if who == "customer" { "customer" } else { "agent" };
                    let _ = self.tx.send(FeedItem::Typing { conversation_id, who });
                }
            }
            None => self.wake.notify_one(),
        }
    }

    /// Tells every stream (on every instance) that someone is typing.
    pub async fn typing(&self, conversation_id: Uuid, who: &'static str) {
        if self.notify_typing {
            if let Err(e) = self.store.notify(&format!("typing {conversation_id} {who}")).await {
                tracing::debug!(error = %e, "typing notification failed");
            }
        } else {
            let _ = self.tx.send(FeedItem::Typing { conversation_id, who });
        }
    }

    /// Every row after `after` (of one conversation, when given, for the rows read back
    /// from the table), then everything new, in order, each once.
    pub fn follow(self: &Arc<Self>, after: i64, conversation: Option<Uuid>) -> Follower {
        Follower {
            rx: self.tx.subscribe(),
            feed: self.clone(),
            backlog: VecDeque::new(),
            last: after,
            conversation,
            caught_up: false,
        }
    }
}

/// One stream's place in the feed.
pub struct Follower {
    feed: Arc<LiveFeed>,
    rx: broadcast::Receiver<FeedItem>,
    backlog: VecDeque<LiveRow>,
    last: i64,
    conversation: Option<Uuid>,
    caught_up: bool,
}

impl Follower {
    /// The next item; rows come in seq order, none twice, none skipped (of the followed
    /// conversation: other conversations' rows are passed on as they come, for what they
    /// change of this one's place in the queue).
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(row) = self.backlog.pop_front() {
                self.last = self.last.max(row.seq);
                return Some(FeedItem::Row(Arc::new(row)));
            }
            if !self.caught_up {
                match self.feed.store.live_since(self.last, self.conversation, PAGE).await {
                    Ok(rows) => {
                        self.caught_up = (rows.len() as i64) < PAGE;
                        self.backlog.extend(rows);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream: read failed; retrying");
                        tokio::time::sleep(POLL).await;
                    }
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(FeedItem::Row(row)) if row.seq <= self.last => continue,
                Ok(FeedItem::Row(row)) => {
                    self.last = row.seq;
                    return Some(FeedItem::Row(row));
                }
                Ok(typing) => return Some(typing),
                Err(broadcast::error::RecvError::Lagged(_)) => self.caught_up = false,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
