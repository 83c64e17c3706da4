use super::chain::{canonical, event_hash, payload_hash, GENESIS_HASH};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Lock key for serialising appends across server instances (PostgreSQL advisory lock).
const APPEND_LOCK_KEY: i64 = 0x7465_6c6c_6572; // "teller"

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store could not be reached or could not commit; callers answer 503.
    #[error("audit store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("audit store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    Sqlite,
}

/// An event to append; seq, time and hashes are assigned by the store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<Uuid>,
    /// Already masked: nothing personal may reach the log.
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: Uuid,
    pub token_hash: String,
    pub lang: String,
}

/// A message row derived from the event at `event_index` within the same batch.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub turn: i64,
    pub role: String,
    pub content: String,
    pub mode: Option<String>,
    pub citations: Option<serde_json::Value>,
    pub handoff_reason: Option<String>,
    pub event_index: usize,
}

/// Everything one turn writes, committed together or not at all.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub conversation: Option<NewConversation>,
    pub events: Vec<NewEvent>,
    pub messages: Vec<NewMessage>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub kind: String,
    pub conversation_id: Option<String>,
    /// Canonical JSON; `None` once a retention purge erased it.
    pub payload: Option<String>,
    pub payload_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredMessage {
    pub id: String,
    pub turn: i64,
    pub role: String,
    pub content: String,
    pub mode: Option<String>,
    pub citations: Option<serde_json::Value>,
    pub handoff_reason: Option<String>,
    pub created_at: String,
}

/// The audit log and its query tables.
pub struct AuditStore {
    pool: AnyPool,
    kind: DbKind,
    /// One appender per process at a time; across processes PostgreSQL's advisory lock
    /// decides.
    append_lock: tokio::sync::Mutex<()>,
    /// Batches waiting for the next group commit.
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
    conversation: Option<NewConversation>,
    events: Vec<PreparedEvent>,
    messages: Vec<NewMessage>,
}

#[derive(Debug, Clone)]
struct PreparedEvent {
    actor: String,
    kind: String,
    conversation_id: Option<String>,
    /// Canonical JSON of the payload, and its SHA-256.
    payload: String,
    digest: String,
}

impl From<EventBatch> for PreparedBatch {
    fn from(batch: EventBatch) -> Self {
        let events = batch
            .events
            .into_iter()
            .map(|event| {
                let payload = canonical(&event.payload);
                PreparedEvent {
                    actor: event.actor,
                    kind: event.kind,
                    conversation_id: event.conversation_id.map(|c| c.to_string()),
                    digest: payload_hash(&payload),
                    payload,
                }
            })
            .collect();
        Self {
            conversation: batch.conversation,
            events,
            messages: batch.messages,
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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl AuditStore {
    /// Connects (creating a SQLite file if needed) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, AuditError> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else {
            DbKind::Postgres
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        let pool = match kind {
            DbKind::Postgres => options.max_connections(16).connect(url).await?,
            DbKind::Sqlite => {
                // Make sure the file can be created and is written with WAL journaling.
                let sqlite = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .foreign_keys(true);
                drop(sqlx::SqlitePool::connect_with(sqlite).await?);
                options.max_connections(4).connect(url).await?
            }
        };
        match kind {
            DbKind::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
            DbKind::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            pool,
            kind,
            append_lock: tokio::sync::Mutex::new(()),
            pending: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), AuditError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Appends a batch atomically: events get consecutive seqs chained to the last
    /// committed event, and derived rows are written in the same transaction.
    /// Returns the seq of each event, in order.
    #[tracing::instrument(skip_all, fields(events = batch.events.len()))]
    ///
    /// Group commit: batches that arrive while a commit is in flight are written together
    /// in the next transaction, so many concurrent turns share one durable flush. Whoever
    /// takes the append lock commits everything waiting, its own batch included.
    pub async fn append(&self, batch: EventBatch) -> Result<Vec<i64>, AuditError> {
        let (reply, mut outcome) = tokio::sync::oneshot::channel();
        let batch = PreparedBatch::from(batch);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((batch, reply));
        let _local = self.append_lock.lock().await;
        // The holder of the lock before us may have committed our batch with its group:
        // then return at once and let the batches queued since wait for their owners, so
        // they accumulate into one larger group instead of a chain of small ones.
        if let Ok(done) = outcome.try_recv() {
            return done;
        }
        let group = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
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

    /// Runs `f` holding this process's append lock, so nothing else appends meanwhile.
    pub(super) async fn with_append_lock<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let _local = self.append_lock.lock().await;
        f.await
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

    /// Writes a batch inside a transaction from [`Self::begin_append`].
    pub(super) async fn write_batch(
        &self,
        tx: &mut sqlx::AnyConnection,
        batch: EventBatch,
    ) -> Result<Vec<i64>, AuditError> {
        let mut all = self.write_batches(tx, vec![batch.into()]).await?;
        Ok(all.remove(0))
    }

    /// Writes batches with multi-row INSERTs, so a group of turns costs a handful of round
    /// trips, not one per event (see [`insert_all`]).
    async fn write_batches(
        &self,
        tx: &mut sqlx::AnyConnection,
        batches: Vec<PreparedBatch>,
    ) -> Result<Vec<Vec<i64>>, AuditError> {
        let last: Option<AnyRow> = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (mut seq, mut prev_hash) = match last {
            Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
            None => (0, GENESIS_HASH.to_string()),
        };
        let occurred_at = now();
        let mut conversations = Vec::new();
        let mut events = Vec::new();
        let mut messages = Vec::new();
        let mut all_seqs = Vec::with_capacity(batches.len());
        for batch in batches {
            if let Some(c) = batch.conversation {
                conversations.push(vec![
                    Param::Text(c.id.to_string()),
                    Param::Text(c.token_hash),
                    Param::Text(c.lang),
                    Param::Text(occurred_at.clone()),
                ]);
            }
            let mut seqs = Vec::with_capacity(batch.events.len());
            for event in batch.events {
                seq += 1;
                let hash = event_hash(
                    &prev_hash,
                    seq,
                    &occurred_at,
                    &event.actor,
                    &event.kind,
                    event.conversation_id.as_deref(),
                    &event.digest,
                );
                events.push(vec![
                    Param::Int(seq),
                    Param::Text(occurred_at.clone()),
                    Param::Text(event.actor),
                    Param::Text(event.kind),
                    Param::Null(event.conversation_id),
                    Param::Text(event.payload),
                    Param::Text(event.digest),
                    Param::Text(std::mem::replace(&mut prev_hash, hash.clone())),
                    Param::Text(hash),
                ]);
                seqs.push(seq);
            }
            for m in batch.messages {
                messages.push(vec![
                    Param::Text(m.id.to_string()),
                    Param::Text(m.conversation_id.to_string()),
                    Param::Int(m.turn),
                    Param::Text(m.role),
                    Param::Text(m.content),
                    Param::Null(m.mode),
                    Param::Null(m.citations.as_ref().map(canonical)),
                    Param::Null(m.handoff_reason),
                    Param::Text(occurred_at.clone()),
                    Param::Int(seqs[m.event_index]),
                ]);
            }
            all_seqs.push(seqs);
        }
        let tables = vec![
            ("conversations (id, token_hash, lang, created_at)", conversations),
            (
                "audit_events (seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash)",
                events,
            ),
            (
                "messages (id, conversation_id, turn, role, content, mode, citations, handoff_reason, created_at, event_seq)",
                messages,
            ),
        ];
        insert_all(tx, self.kind, tables).await?;
        Ok(all_seqs)
    }

    /// The stored token hash of a conversation, if it exists.
    pub async fn conversation_token_hash(&self, id: Uuid) -> Result<Option<String>, AuditError> {
        let row = sqlx::query("SELECT token_hash FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// A conversation's messages in order (the customer-visible transcript).
    pub async fn messages(&self, conversation_id: Uuid) -> Result<Vec<StoredMessage>, AuditError> {
        let rows = sqlx::query(
            "SELECT id, turn, role, content, mode, citations, handoff_reason, created_at \
             FROM messages WHERE conversation_id = $1 ORDER BY turn, role DESC",
        )
        .bind(conversation_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let citations: Option<String> = r.try_get(5)?;
                Ok(StoredMessage {
                    id: r.try_get(0)?,
                    turn: r.try_get(1)?,
                    role: r.try_get(2)?,
                    content: r.try_get(3)?,
                    mode: r.try_get(4)?,
                    citations: citations.and_then(|c| serde_json::from_str(&c).ok()),
                    handoff_reason: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Events with `seq >= from`, in order, up to `limit`.
    pub async fn events(&self, from: i64, limit: i64) -> Result<Vec<StoredEvent>, AuditError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2");
        let rows = sqlx::query(&sql).bind(from).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(StoredEvent::from_row)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}

/// A bound value of a multi-row insert.
enum Param {
    Int(i64),
    Text(String),
    Null(Option<String>),
}

/// Rows per INSERT statement: far below both databases' limits on bound parameters.
const ROWS_PER_INSERT: usize = 300;

/// Inserts rows into several tables, in order (a table's rows may reference the rows of
/// the tables before it). On PostgreSQL, when every table's rows fit one statement, all of
/// them go in a single statement, the earlier tables' INSERTs as data-modifying `WITH`
/// clauses (foreign keys are checked at the end of the statement, so they see the rows of
/// their sibling clauses): one round trip instead of three once sqlx has the statement
/// prepared on the connection (its text depends on the row counts, and sqlx keeps the last
/// 100 per connection). Every round trip is made while all other turns wait for the append
/// lock. SQLite has no data-modifying `WITH`, and very large groups are paged: there, one
/// statement per table and page.
async fn insert_all(
    tx: &mut sqlx::AnyConnection,
    kind: DbKind,
    mut tables: Vec<(&str, Vec<Vec<Param>>)>,
) -> Result<(), sqlx::Error> {
    tables.retain(|(_, rows)| !rows.is_empty());
    if kind == DbKind::Postgres && tables.iter().all(|(_, rows)| rows.len() <= ROWS_PER_INSERT) {
        let mut n = 0;
        let mut inserts: Vec<String> = tables
            .iter()
            .map(|(into, rows)| insert_sql(into, rows, &mut n))
            .collect();
        let Some(main) = inserts.pop() else { return Ok(()) };
        let sql = if inserts.is_empty() {
            main
        } else {
            let clauses: Vec<String> = inserts
                .iter()
                .enumerate()
                .map(|(i, s)| format!("w{i} AS ({s})"))
                .collect();
            format!("WITH {} {main}", clauses.join(", "))
        };
        bind_all(&sql, tables.into_iter().flat_map(|(_, rows)| rows))
            .execute(&mut *tx)
            .await?;
        return Ok(());
    }
    for (into, rows) in tables {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let page: Vec<Vec<Param>> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            let sql = insert_sql(into, &page, &mut 0);
            bind_all(&sql, page).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// `INSERT INTO {into} VALUES ($n+1, ...), (...)` with one placeholder per value, numbered
/// on from `n`.
fn insert_sql(into: &str, rows: &[Vec<Param>], n: &mut usize) -> String {
    let mut sql = format!("INSERT INTO {into} VALUES ");
    for (i, row) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for j in 0..row.len() {
            *n += 1;
            sql.push_str(&format!("{}${n}", if j == 0 { "" } else { ", " }));
        }
        sql.push(')');
    }
    sql
}

/// The statement with the rows' values bound in order.
fn bind_all(
    sql: &str,
    rows: impl IntoIterator<Item = Vec<Param>>,
) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
    let mut query = sqlx::query(sql);
    for param in rows.into_iter().flatten() {
        query = match param {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Null(v) => query.bind(v),
        };
    }
    query
}

/// The columns [`StoredEvent::from_row`] reads, in order.
pub(super) const EVENT_COLUMNS: &str =
    "seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash";

impl StoredEvent {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            seq: r.try_get(0)?,
            occurred_at: r.try_get(1)?,
            actor: r.try_get(2)?,
            kind: r.try_get(3)?,
            conversation_id: r.try_get(4)?,
            payload: r.try_get(5)?,
            payload_hash: r.try_get(6)?,
            prev_hash: r.try_get(7)?,
            hash: r.try_get(8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
}
