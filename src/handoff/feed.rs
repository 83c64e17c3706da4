//! The live feed: each process reads `live_events` in seq order once and hands each row
//! to the streams open on it that it may concern (a customer's stream gets its own
//! conversation; a colleague's gets the queue and the conversations they hold), so a row
//! wakes a stream or two rather than every stream there is. It is woken by this process's
//! commits and, on PostgreSQL, by `NOTIFY` from every instance; notifications carry only
//! a seq and are lost while a listener is down, so every wake-up — and a timer, and a
//! listener that reconnects — re-reads the table from the last row seen. A stream whose
//! receiver lags, or that resumes from a `Last-Event-ID`, re-reads the table too.

use crate::audit::live::{LiveKind, LiveRow, LIVE_CHANNEL};
use crate::audit::AuditStore;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
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

/// What a stream follows; the feed hands it only what this says it may concern.
#[derive(Debug, Clone)]
pub enum Interest {
    /// A customer's events stream: its conversation, and while it waits, every state
    /// change (another conversation claimed or queued may move its place in the queue).
    Customer {
        conversation: Uuid,
        waiting: Arc<AtomicBool>,
    },
    /// A colleague's live stream: the queue (state changes, notes, waiting customers'
    /// words) and what is said in the conversations they hold.
    Colleague { name: String },
}

impl Interest {
    fn wants(&self, row: &LiveRow) -> bool {
        match self {
            Self::Customer { conversation, waiting } => {
                row.conversation_id == *conversation || (row.kind == LiveKind::State && waiting.load(Ordering::Acquire))
            }
            Self::Colleague { name } => {
                let agent = row.data.get("agent").and_then(serde_json::Value::as_str);
                match row.kind {
                    LiveKind::State | LiveKind::Note => true,
                    LiveKind::CustomerMessage => agent.is_none_or(|a| a == name),
                    LiveKind::AgentMessage => agent == Some(name.as_str()),
                }
            }
        }
    }

    fn wants_typing(&self, conversation_id: Uuid, who: &str) -> bool {
        matches!(self, Self::Customer { conversation, .. } if *conversation == conversation_id && who == "agent")
    }

    /// The conversation whose rows alone it reads back from the table.
    fn conversation(&self) -> Option<Uuid> {
        match self {
            Self::Customer { conversation, .. } => Some(*conversation),
            Self::Colleague { .. } => None,
        }
    }
}

/// A stream's place in the feed's routing: its channel, and whether the feed had to drop
/// a row for it (it then re-reads the table).
struct Subscriber {
    id: u64,
    interest: Interest,
    tx: mpsc::Sender<FeedItem>,
    lagged: Arc<AtomicBool>,
}

impl Subscriber {
    fn offer(&self, item: &FeedItem) {
        // A closed channel's follower is being dropped and takes itself out.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(item.clone()) {
            self.lagged.store(true, Ordering::Release);
        }
    }
}

/// The open streams: customers' by conversation, colleagues' in one list.
#[derive(Default)]
struct Routes {
    customers: HashMap<Uuid, Vec<Subscriber>>,
    colleagues: Vec<Subscriber>,
}

impl Routes {
    fn dispatch(&self, item: &FeedItem) {
        match item {
            // A state change may move every waiting customer's place in the queue.
            FeedItem::Row(row) if row.kind == LiveKind::State => {
                for s in self.customers.values().flatten().chain(&self.colleagues) {
                    if s.interest.wants(row) {
                        s.offer(item);
                    }
                }
            }
            FeedItem::Row(row) => {
                let own = self.customers.get(&row.conversation_id).into_iter().flatten();
                for s in own.chain(&self.colleagues) {
                    if s.interest.wants(row) {
                        s.offer(item);
                    }
                }
            }
            FeedItem::Typing { conversation_id, who } => {
                for s in self.customers.get(conversation_id).into_iter().flatten() {
                    if s.interest.wants_typing(*conversation_id, who) {
                        s.offer(item);
                    }
                }
            }
        }
    }

    fn remove(&mut self, id: u64, interest: &Interest) {
        match interest {
            Interest::Customer { conversation, .. } => {
                if let Some(list) = self.customers.get_mut(conversation) {
                    list.retain(|s| s.id != id);
                    if list.is_empty() {
                        self.customers.remove(conversation);
                    }
                }
            }
            Interest::Colleague { .. } => self.colleagues.retain(|s| s.id != id),
        }
    }
}

pub struct LiveFeed {
    store: Arc<AuditStore>,
    routes: Mutex<Routes>,
    next_id: AtomicU64,
    wake: Notify,
    /// PostgreSQL: typing goes through `NOTIFY`, so every instance hears it once.
    notify_typing: bool,
}

impl LiveFeed {
    /// Starts the feed (and, with PostgreSQL at `listen_url`, its listener).
    pub fn start(store: Arc<AuditStore>, listen_url: Option<String>) -> Arc<Self> {
        let feed = Arc::new(Self {
            store,
            routes: Mutex::new(Routes::default()),
            next_id: AtomicU64::new(0),
            wake: Notify::new(),
            notify_typing: listen_url.is_some(),
        });
        tokio::spawn(feed.clone().read_loop());
        if let Some(url) = listen_url {
            tokio::spawn(feed.clone().listen(url));
        }
        feed
    }

    /// Hands an item to the streams it may concern.
    fn dispatch(&self, item: FeedItem) {
        self.routes.lock().expect("live routes").dispatch(&item);
    }

    /// Reads new rows whenever something may have committed, and hands them on in order.
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
                    self.dispatch(FeedItem::Row(Arc::new(row)));
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
                    self.dispatch(FeedItem::Typing { conversation_id, who });
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
            self.dispatch(FeedItem::Typing { conversation_id, who });
        }
    }

    /// Every row after `after` that `interest` wants, then everything new it wants, in
    /// order, each once.
    pub fn follow(self: &Arc<Self>, after: i64, interest: Interest) -> Follower {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            id,
            interest: interest.clone(),
            tx,
            lagged: lagged.clone(),
        };
        {
            let mut routes = self.routes.lock().expect("live routes");
            match &interest {
                Interest::Customer { conversation, .. } => {
                    routes.customers.entry(*conversation).or_default().push(subscriber)
                }
                Interest::Colleague { .. } => routes.colleagues.push(subscriber),
            }
        }
        Follower {
            id,
            rx,
            lagged,
            feed: self.clone(),
            backlog: VecDeque::new(),
            last: after,
            interest,
            caught_up: false,
        }
    }
}

/// One stream's place in the feed.
pub struct Follower {
    id: u64,
    feed: Arc<LiveFeed>,
    rx: mpsc::Receiver<FeedItem>,
    /// Set by the feed when this stream's channel was full and a row was dropped.
    lagged: Arc<AtomicBool>,
    backlog: VecDeque<LiveRow>,
    last: i64,
    interest: Interest,
    caught_up: bool,
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Ok(mut routes) = self.feed.routes.lock() {
            routes.remove(self.id, &self.interest);
        }
    }
}

impl Follower {
    /// The next item; the rows its interest wants come in seq order, none twice, none
    /// skipped (a customer's other conversations' state changes, while waiting, as they
    /// come: for what they change of this one's place in the queue).
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(row) = self.backlog.pop_front() {
                self.last = self.last.max(row.seq);
                return Some(FeedItem::Row(Arc::new(row)));
            }
            if !self.caught_up {
                match self
                    .feed
                    .store
                    .live_since(self.last, self.interest.conversation(), PAGE)
                    .await
                {
                    Ok(rows) => {
                        self.caught_up = (rows.len() as i64) < PAGE;
                        // Past every row read, wanted or not, so the next page follows.
                        if let Some(row) = rows.last() {
                            self.last = row.seq;
                        }
                        let interest = &self.interest;
                        self.backlog.extend(rows.into_iter().filter(|r| interest.wants(r)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream: read failed; retrying");
                        tokio::time::sleep(POLL).await;
                    }
                }
                continue;
            }
            let item = self.rx.recv().await?;
            // A row was dropped for this stream (its channel was full) before this item
            // was sent: read the table again, this item's row included.
            if self.lagged.swap(false, Ordering::AcqRel) {
                self.caught_up = false;
                continue;
            }
            match item {
                FeedItem::Row(row) if row.seq <= self.last => continue,
                FeedItem::Row(row) => {
                    self.last = row.seq;
                    return Some(FeedItem::Row(row));
                }
                typing => return Some(typing),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(seq: i64, conversation_id: Uuid, kind: LiveKind, agent: Option<&str>) -> LiveRow {
        LiveRow {
            seq,
            conversation_id,
            kind,
            data: json!({ "agent": agent }),
            created_at: String::new(),
        }
    }

    fn colleague(name: &str) -> Interest {
        Interest::Colleague { name: name.into() }
    }

    #[test]
    fn a_colleague_gets_the_queue_and_the_conversations_they_hold() {
        let c = Uuid::new_v4();
        let (ana, bo) = (colleague("ana"), colleague("bo"));
        for kind in [LiveKind::State, LiveKind::Note] {
            assert!(ana.wants(&row(1, c, kind, Some("bo"))));
        }
        // A waiting customer's words go to everyone; a held conversation's to its holder.
        assert!(ana.wants(&row(2, c, LiveKind::CustomerMessage, None)));
        assert!(bo.wants(&row(3, c, LiveKind::CustomerMessage, Some("bo"))));
        assert!(!ana.wants(&row(3, c, LiveKind::CustomerMessage, Some("bo"))));
        assert!(bo.wants(&row(4, c, LiveKind::AgentMessage, Some("bo"))));
        assert!(!ana.wants(&row(4, c, LiveKind::AgentMessage, Some("bo"))));
        assert!(!ana.wants_typing(c, "customer"));
    }

    #[test]
    fn a_customer_gets_their_conversation_and_while_waiting_the_queues_moves() {
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        let waiting = Arc::new(AtomicBool::new(false));
        let me = Interest::Customer {
            conversation: mine,
            waiting: waiting.clone(),
        };
        assert!(me.wants(&row(1, mine, LiveKind::AgentMessage, Some("bo"))));
        assert!(!me.wants(&row(2, other, LiveKind::AgentMessage, Some("bo"))));
        assert!(!me.wants(&row(3, other, LiveKind::State, None)));
        waiting.store(true, Ordering::Release);
        assert!(me.wants(&row(3, other, LiveKind::State, None)));
        assert!(!me.wants(&row(4, other, LiveKind::CustomerMessage, None)));
        assert!(me.wants_typing(mine, "agent"));
        assert!(!me.wants_typing(mine, "customer"));
        assert!(!me.wants_typing(other, "agent"));
    }

    #[test]
    fn rows_reach_only_the_streams_they_concern_and_a_full_stream_is_told_it_lagged() {
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut routes = Routes::default();
        let mut subscribe = |id, interest: Interest, capacity| {
            let (tx, rx) = mpsc::channel(capacity);
            let lagged = Arc::new(AtomicBool::new(false));
            let s = Subscriber {
                id,
                interest: interest.clone(),
                tx,
                lagged: lagged.clone(),
            };
            match interest {
                Interest::Customer { conversation, .. } => routes.customers.entry(conversation).or_default().push(s),
                Interest::Colleague { .. } => routes.colleagues.push(s),
            }
            (rx, lagged)
        };
        let customer = Interest::Customer {
            conversation: mine,
            waiting: Arc::new(AtomicBool::new(false)),
        };
        let (mut customer_rx, customer_lagged) = subscribe(0, customer.clone(), 1);
        let (mut bo_rx, _) = subscribe(1, colleague("bo"), 8);
        let (mut ana_rx, _) = subscribe(2, colleague("ana"), 8);
        let send = |r: LiveRow| FeedItem::Row(Arc::new(r));
        routes.dispatch(&send(row(1, mine, LiveKind::CustomerMessage, Some("bo"))));
        routes.dispatch(&send(row(2, other, LiveKind::AgentMessage, Some("ana"))));
        let seqs = |rx: &mut mpsc::Receiver<FeedItem>| {
            std::iter::from_fn(|| match rx.try_recv() {
                Ok(FeedItem::Row(r)) => Some(r.seq),
                _ => None,
            })
            .collect::<Vec<_>>()
        };
        assert_eq!(seqs(&mut bo_rx), [1]);
        assert_eq!(seqs(&mut ana_rx), [2]);
        // The customer's channel holds one item, row 1: row 3 is dropped, and marked.
        assert!(!customer_lagged.load(Ordering::Acquire));
        routes.dispatch(&send(row(3, mine, LiveKind::AgentMessage, Some("bo"))));
        assert!(customer_lagged.load(Ordering::Acquire));
        assert_eq!(seqs(&mut customer_rx), [1]);
        routes.remove(0, &customer);
        assert!(routes.customers.is_empty());
    }
}
