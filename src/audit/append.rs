//! Appending to the chain: group commit, gapless seqs, and the multi-row INSERTs that
//! write a group's events and derived rows in one transaction.

use super::chain::{canonical, event_hash, payload_hash, GENESIS_HASH};
use super::derived::{self, MessageFields};
use super::live::{self, NewLiveEvent, Requires, StateUpdate};
use super::records::{Actor, EventBatch, EventKind, NewEvent, EVENT_COLUMNS};
use super::store::{now, AuditError, AuditStore, DbKind};
use sqlx::{Any, Execute, QueryBuilder, Transaction};
use uuid::Uuid;

/// Lock key for serialising appends across server instances (PostgreSQL advisory lock).
const APPEND_LOCK_KEY: i64 = 0x7465_6c6c_6572; // "teller"

/// Rows per INSERT statement: far below both databases' limits on bound parameters.
const ROWS_PER_INSERT: usize = 300;

const CONVERSATION_COLUMNS: &str = "id, token_hash, lang, created_at";
const MESSAGE_COLUMNS: &str =
    "id, conversation_id, turn, role, content, mode, citations, handoff_reason, created_at, event_seq";

/// The process's side of appending: one appender at a time, and the batches waiting for
/// the next group commit. Across processes PostgreSQL's advisory lock decides.
#[derive(Default)]
pub(super) struct Appender {
    lock: tokio::sync::Mutex<()>,
    pending: std::sync::Mutex<Vec<PendingBatch>>,
}

type PendingBatch = (
    PreparedBatch,
    tokio::sync::oneshot::Sender<Result<Vec<i64>, AuditError>>,
);

/// A batch with each event's payload already in canonical form and hashed. Only the
/// chain hash depends on the events before it, so the payload work is done before the
/// append lock is taken, not while every other turn waits for it.
#[derive(Debug, Clone)]
struct PreparedBatch {
    conversation: Option<ConversationRow>,
    events: Vec<PreparedEvent>,
    messages: Vec<PreparedMessage>,
    live: Vec<NewLiveEvent>,
    state: Option<StateUpdate>,
    requires: Option<Requires>,
    customer: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct ConversationRow {
    id: String,
    token_hash: String,
    lang: String,
}

#[derive(Debug, Clone)]
struct PreparedEvent {
    actor: String,
    kind: &'static str,
    conversation_id: Option<String>,
    /// Canonical JSON of the payload, and its SHA-256.
    payload: String,
    digest: String,
}

#[derive(Debug, Clone)]
struct PreparedMessage {
    id: String,
    conversation_id: String,
    turn: i64,
    role: &'static str,
    content: String,
    mode: Option<&'static str>,
    citations: Option<String>,
    handoff_reason: Option<&'static str>,
    event_index: usize,
}

impl PreparedMessage {
    fn fields(&self) -> MessageFields<'_> {
        MessageFields {
            id: &self.id,
            conversation_id: &self.conversation_id,
            turn: self.turn,
            role: self.role,
            content: &self.content,
            mode: self.mode,
            citations: self.citations.as_deref(),
            handoff_reason: self.handoff_reason,
        }
    }
}

impl From<EventBatch> for PreparedBatch {
    /// Canonical payloads, with what `verify` re-derives the batch's rows from: a new
    /// conversation's token hash and language go into the first event about it (or an
    /// event of their own), and each message row's digest into the event it derives from.
    fn from(mut batch: EventBatch) -> Self {
        if let Some(c) = &batch.conversation {
            let opening = derived::opening(&c.token_hash, &c.lang);
            let id = Some(c.id);
            match batch.events.iter_mut().find(|e| e.conversation_id == id) {
                Some(first) => derived::attach(&mut first.payload, derived::OPENS_CONVERSATION, opening),
                None => {
                    let mut payload = serde_json::json!({});
                    derived::attach(&mut payload, derived::OPENS_CONVERSATION, opening);
                    batch.events.insert(
                        0,
                        NewEvent {
                            actor: Actor::System,
                            kind: EventKind::ConversationOpened,
                            conversation_id: id,
                            payload,
                        },
                    );
                    batch.messages.iter_mut().for_each(|m| m.event_index += 1);
                    batch.live.iter_mut().for_each(|l| l.event_index += 1);
                    if let Some(s) = &mut batch.state {
                        s.event_index += 1;
                    }
                }
            }
        }
        let messages: Vec<PreparedMessage> = batch
            .messages
            .into_iter()
            .map(|m| PreparedMessage {
                id: m.id.to_string(),
                conversation_id: m.conversation_id.to_string(),
                turn: m.turn,
                role: m.speaker.into(),
                content: m.content,
                mode: m.mode.map(Into::into),
                citations: m
                    .citations
                    .map(|c| canonical(&serde_json::to_value(c).expect("citations serialise"))),
                handoff_reason: m.handoff_reason.map(Into::into),
                event_index: m.event_index,
            })
            .collect();
        for m in &messages {
            let digest = derived::message_digest(&m.fields());
            derived::attach(
                &mut batch.events[m.event_index].payload,
                derived::MESSAGE_DIGEST,
                digest.into(),
            );
        }
        let events = batch
            .events
            .into_iter()
            .map(|event| {
                let payload = canonical(&event.payload);
                PreparedEvent {
                    actor: event.actor.to_string(),
                    kind: event.kind.into(),
                    conversation_id: event.conversation_id.map(|c| c.to_string()),
                    digest: payload_hash(&payload),
                    payload,
                }
            })
            .collect();
        Self {
            conversation: batch.conversation.map(|c| ConversationRow {
                id: c.id.to_string(),
                token_hash: c.token_hash,
                lang: c.lang,
            }),
            events,
            messages,
            live: batch.live,
            state: batch.state,
            requires: batch.requires,
            customer: batch.customer.map(|(id, customer)| (id.to_string(), customer)),
        }
    }
}

/// A new id for a conversation or message row: a UUIDv7 (RFC 9562), the time in
/// milliseconds first, then a counter and random bits, so ids sort by creation. Those
/// tables are keyed and indexed by these ids. Random (v4) keys spread every second's
/// inserts over all the leaf pages of each index, and after each checkpoint PostgreSQL
/// logs a whole 8 KiB image of every page it touches first, so once the tables are large
/// nearly every insert cost a page image in the WAL. Time-ordered keys keep inserts on the
/// rightmost pages.
pub fn new_record_id() -> Uuid {
    Uuid::now_v7()
}

impl AuditStore {
    /// Appends a batch atomically: events get consecutive seqs chained to the last
    /// committed event, and derived rows are written in the same transaction.
    /// Returns the seq of each event, in order.
    ///
    /// Group commit: batches that arrive while a commit is in flight are written together
    /// in the next transaction, so many concurrent turns share one durable flush. Whoever
    /// takes the append lock commits everything waiting, its own batch included.
    #[tracing::instrument(skip_all, fields(events = batch.events.len()))]
    pub async fn append(&self, batch: EventBatch) -> Result<Vec<i64>, AuditError> {
        let (reply, mut outcome) = tokio::sync::oneshot::channel();
        let batch = PreparedBatch::from(batch);
        self.appender
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((batch, reply));
        let _local = self.appender.lock.lock().await;
        // The holder of the lock before us may have committed our batch with its group:
        // then return at once and let the batches queued since wait for their owners, so
        // they accumulate into one larger group instead of a chain of small ones.
        if let Ok(done) = outcome.try_recv() {
            return done;
        }
        let group = std::mem::take(&mut *self.appender.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.commit_group(group).await;
        outcome
            .await
            .unwrap_or(Err(AuditError::Unavailable(sqlx::Error::PoolClosed)))
    }

    /// Commits a group in one transaction. If that fails, each batch is retried on its
    /// own, so one bad batch cannot fail the turns grouped with it.
    async fn commit_group(&self, group: Vec<PendingBatch>) {
        metrics::histogram!("teller_audit_group_size").record(group.len() as f64);
        if group.len() > 1 {
            let batches: Vec<PreparedBatch> = group.iter().map(|(b, _)| b.clone()).collect();
            if let Ok(all) = self.commit_batches(batches).await {
                for ((_, reply), seqs) in group.into_iter().zip(all) {
                    let _ = reply.send(Ok(seqs));
                }
                return;
            }
        }
        for (batch, reply) in group {
            let outcome = self.commit_batches(vec![batch]).await.map(|mut all| all.remove(0));
            let _ = reply.send(outcome);
        }
    }

    async fn commit_batches(&self, batches: Vec<PreparedBatch>) -> Result<Vec<Vec<i64>>, AuditError> {
        let mut tx = self.begin_append().await?;
        match self.write_batches(&mut tx, batches).await {
            Ok(all) => {
                tx.commit().await?;
                self.live_committed_now();
                Ok(all)
            }
            Err(e) => {
                // Rolled back before returning: sqlx rolls a dropped transaction back
                // later, in the background, and until then SQLite keeps the database
                // locked against the retries that follow a failed group (seen as 1–2
                // good turns failing with the bad one in 3 of 30 runs of the test).
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Runs one logical write that changes more than the log (a purge, a legal hold, a
    /// staff token): `write` gets a transaction holding the append lock of every process
    /// and returns its result with the events that record it, which are appended in the
    /// same transaction before it commits. `write` must not append itself (the append
    /// lock is not re-entrant).
    pub(super) async fn write_with_record<T>(
        &self,
        write: impl for<'t> AsyncFnOnce(&'t mut sqlx::AnyConnection) -> Result<(T, EventBatch), AuditError>,
    ) -> Result<T, AuditError> {
        let _local = self.exclusive().await;
        let mut tx = self.begin_append().await?;
        let written = match write(&mut *tx).await {
            Ok((value, batch)) => self.append_in(&mut tx, batch).await.map(|_| value),
            Err(e) => Err(e),
        };
        self.finish(tx, written).await
    }

    /// The process's append lock, for a write that runs its own append transaction.
    pub(super) async fn exclusive(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.appender.lock.lock().await
    }

    /// Appends a batch within an append transaction; returns its events' seqs.
    pub(super) async fn append_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        batch: EventBatch,
    ) -> Result<Vec<i64>, AuditError> {
        let mut all = self.write_batches(tx, vec![batch.into()]).await?;
        Ok(all.remove(0))
    }

    /// Commits an append transaction whose work succeeded, or rolls it back now (as in
    /// `commit_batches`, not later in the background).
    pub(super) async fn finish<T>(
        &self,
        tx: Transaction<'static, Any>,
        written: Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        match written {
            Ok(value) => {
                tx.commit().await?;
                self.live_committed_now();
                Ok(value)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// A transaction holding the database's append lock (every process), so events get
    /// gapless, ordered seqs. Callers hold the process's append lock.
    pub(super) async fn begin_append(&self) -> Result<Transaction<'static, Any>, AuditError> {
        let mut tx = self.pool.begin().await?;
        if self.kind == DbKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Chains the batches' events to the last committed one and inserts them with their
    /// derived rows: a handful of round trips per group, not one per event.
    async fn write_batches(
        &self,
        tx: &mut sqlx::AnyConnection,
        batches: Vec<PreparedBatch>,
    ) -> Result<Vec<Vec<i64>>, AuditError> {
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut seq, mut prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_string()));
        // An assistant's reply to a conversation a person took meanwhile, or a colleague's
        // to one they no longer hold, is refused: the whole group, so that each batch is
        // retried alone and only that one fails.
        let required: Vec<&Requires> = batches.iter().filter_map(|b| b.requires.as_ref()).collect();
        live::check(tx, self.kind, &required).await?;
        let occurred_at = now();
        let mut rows = Rows::default();
        let mut all_seqs = Vec::with_capacity(batches.len());
        for batch in batches {
            rows.conversations.extend(batch.conversation);
            rows.customers.extend(batch.customer);
            let mut seqs = Vec::with_capacity(batch.events.len());
            for event in batch.events {
                seq += 1;
                let hash = event_hash(
                    &prev_hash,
                    seq,
                    &occurred_at,
                    &event.actor,
                    event.kind,
                    event.conversation_id.as_deref(),
                    &event.digest,
                );
                rows.events
                    .push((seq, std::mem::replace(&mut prev_hash, hash.clone()), hash, event));
                seqs.push(seq);
            }
            rows.messages
                .extend(batch.messages.into_iter().map(|m| (seqs[m.event_index], m)));
            rows.live
                .extend(batch.live.into_iter().map(|l| (seqs[l.event_index], l)));
            rows.states
                .extend(batch.state.into_iter().map(|s| (seqs[s.event_index], s)));
            all_seqs.push(seqs);
        }
        // The commit's last event carries the seal of everything before it.
        if let (Some(key), Some((seq, _, hash, _))) = (&self.seal_key, rows.events.last()) {
            rows.seal = Some(key.seal(*seq, hash));
        }
        rows.insert(tx, self.kind, &occurred_at).await?;
        for (id, customer) in &rows.customers {
            sqlx::query("UPDATE conversations SET customer_ref = $1 WHERE id = $2 AND customer_ref IS NULL")
                .bind(customer.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if !rows.live.is_empty() || !rows.states.is_empty() {
            let states: Vec<(i64, &StateUpdate)> = rows.states.iter().map(|(seq, s)| (*seq, s)).collect();
            let live: Vec<(i64, &NewLiveEvent)> = rows.live.iter().map(|(seq, l)| (*seq, l)).collect();
            live::write_live(tx, self.kind, &states, &live, &occurred_at).await?;
            if !live.is_empty() {
                self.live_pending.store(true, std::sync::atomic::Ordering::Release);
            }
        }
        Ok(all_seqs)
    }
}

/// The rows a group writes, table by table, in the order their foreign keys need.
#[derive(Default)]
struct Rows {
    conversations: Vec<ConversationRow>,
    /// (seq, prev_hash, hash, event)
    events: Vec<(i64, String, String, PreparedEvent)>,
    /// (event_seq, message)
    messages: Vec<(i64, PreparedMessage)>,
    /// The seal of the last event.
    seal: Option<String>,
    /// (seq, live row), written after the events they derive from.
    live: Vec<(i64, NewLiveEvent)>,
    /// (seq of the event that sets it, state update)
    states: Vec<(i64, StateUpdate)>,
    /// (conversation id, verified customer reference)
    customers: Vec<(String, String)>,
}

/// Which table a part of an INSERT writes.
#[derive(Clone, Copy)]
enum Table {
    Conversations,
    Events,
    Messages,
}

impl Rows {
    /// On PostgreSQL, when every table's rows fit one statement, all of them go in a single
    /// statement, the earlier tables' INSERTs as data-modifying `WITH` clauses (foreign
    /// keys are checked at the end of the statement, so they see the rows of their sibling
    /// clauses): one round trip instead of three once sqlx has the statement prepared on
    /// the connection (its text depends on the row counts, and sqlx keeps the last 100 per
    /// connection). Every round trip is made while all other turns wait for the append
    /// lock. SQLite has no data-modifying `WITH`, and very large groups are paged: there,
    /// one statement per table and page.
    async fn insert(&self, tx: &mut sqlx::AnyConnection, kind: DbKind, at: &str) -> Result<(), sqlx::Error> {
        let tables: Vec<(Table, usize)> = [
            (Table::Conversations, self.conversations.len()),
            (Table::Events, self.events.len()),
            (Table::Messages, self.messages.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        if tables.is_empty() {
            return Ok(());
        }
        if kind == DbKind::Postgres && tables.iter().all(|(_, n)| *n <= ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Any>::new("");
            let last = tables.len().saturating_sub(1);
            for (i, (table, n)) in tables.iter().enumerate() {
                if i < last {
                    qb.push(if i == 0 { "WITH " } else { ", " });
                    qb.push(format_args!("w{i} AS ("));
                }
                self.push_insert(&mut qb, *table, 0..*n, at);
                if i < last {
                    qb.push(") ");
                }
            }
            return execute(tx, kind, qb).await;
        }
        for (table, n) in tables {
            for start in (0..n).step_by(ROWS_PER_INSERT) {
                let mut qb = QueryBuilder::<Any>::new("");
                self.push_insert(&mut qb, table, start..n.min(start + ROWS_PER_INSERT), at);
                execute(tx, kind, qb).await?;
            }
        }
        Ok(())
    }

    /// `INSERT INTO <table> (<columns>) VALUES (...), ...` for the rows in `range`.
    fn push_insert<'a>(
        &'a self,
        qb: &mut QueryBuilder<'a, Any>,
        table: Table,
        range: std::ops::Range<usize>,
        at: &'a str,
    ) {
        match table {
            Table::Conversations => {
                qb.push(format_args!("INSERT INTO conversations ({CONVERSATION_COLUMNS}) "));
                qb.push_values(&self.conversations[range], |mut row, c| {
                    row.push_bind(c.id.as_str())
                        .push_bind(c.token_hash.as_str())
                        .push_bind(c.lang.as_str())
                        .push_bind(at);
                });
            }
            Table::Events => {
                qb.push(format_args!("INSERT INTO audit_events ({EVENT_COLUMNS}) "));
                let last_seq = self.events.last().map(|(seq, ..)| *seq);
                qb.push_values(&self.events[range], |mut row, (seq, prev_hash, hash, e)| {
                    let seal = self.seal.as_deref().filter(|_| Some(*seq) == last_seq);
                    row.push_bind(*seq)
                        .push_bind(at)
                        .push_bind(e.actor.as_str())
                        .push_bind(e.kind)
                        .push_bind(e.conversation_id.as_deref())
                        .push_bind(e.payload.as_str())
                        .push_bind(e.digest.as_str())
                        .push_bind(prev_hash.as_str())
                        .push_bind(hash.as_str())
                        .push_bind(seal);
                });
            }
            Table::Messages => {
                qb.push(format_args!("INSERT INTO messages ({MESSAGE_COLUMNS}) "));
                qb.push_values(&self.messages[range], |mut row, (event_seq, m)| {
                    row.push_bind(m.id.as_str())
                        .push_bind(m.conversation_id.as_str())
                        .push_bind(m.turn)
                        .push_bind(m.role)
                        .push_bind(m.content.as_str())
                        .push_bind(m.mode)
                        .push_bind(m.citations.as_deref())
                        .push_bind(m.handoff_reason)
                        .push_bind(at)
                        .push_bind(*event_seq);
                });
            }
        }
    }
}

/// Runs a built statement. sqlx's `Any` driver writes `?` placeholders whatever the
/// database (sqlx issue #3000): PostgreSQL needs them numbered. The statement is ours and
/// holds no other `?`.
pub(super) async fn execute(
    tx: &mut sqlx::AnyConnection,
    kind: DbKind,
    mut qb: QueryBuilder<'_, Any>,
) -> Result<(), sqlx::Error> {
    let sql = numbered_for(kind, qb.sql());
    let arguments = qb
        .build()
        .take_arguments()
        .map_err(sqlx::Error::Encode)?
        .unwrap_or_default();
    sqlx::query_with(&sql, arguments).execute(&mut *tx).await?;
    Ok(())
}

/// A built statement's text as `kind` needs it.
pub(super) fn numbered_for(kind: DbKind, sql: &str) -> String {
    match kind {
        DbKind::Postgres => numbered_placeholders(sql),
        DbKind::Sqlite => sql.to_string(),
    }
}

/// `?, ?` → `$1, $2`.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 4);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn record_ids_are_version_7_and_sort_by_creation_time_as_text() {
        let first = new_record_id();
        std::thread::sleep(Duration::from_millis(2));
        let later: Vec<Uuid> = (0..100).map(|_| new_record_id()).collect();
        assert_eq!(first.get_version_num(), 7);
        // The columns are TEXT: their string order must follow time.
        assert!(later.iter().all(|id| first.to_string() < id.to_string()));
        assert_eq!(later.iter().collect::<HashSet<_>>().len(), 100);
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(numbered_placeholders("VALUES (?, ?), (?)"), "VALUES ($1, $2), ($3)");
    }
}
