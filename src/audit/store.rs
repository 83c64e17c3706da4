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
    /// One appender per process; across processes PostgreSQL's advisory lock decides.
    append_lock: tokio::sync::Mutex<()>,
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
    pub async fn append(&self, batch: EventBatch) -> Result<Vec<i64>, AuditError> {
        let (_local, mut tx) = self.begin_append().await?;
        let seqs = self.write_batch(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(seqs)
    }

    /// Takes the append lock (this process) and a transaction holding the database's
    /// append lock (every process), so events get gapless, ordered seqs.
    pub(super) async fn begin_append(
        &self,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, Transaction<'static, Any>), AuditError> {
        let local = self.append_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        if self.kind == DbKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        Ok((local, tx))
    }

    /// Writes a batch inside a transaction from [`Self::begin_append`].
    pub(super) async fn write_batch(
        &self,
        tx: &mut sqlx::AnyConnection,
        batch: EventBatch,
    ) -> Result<Vec<i64>, AuditError> {
        let last: Option<AnyRow> = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (mut seq, mut prev_hash) = match last {
            Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
            None => (0, GENESIS_HASH.to_string()),
        };
        let occurred_at = now();
        if let Some(c) = &batch.conversation {
            sqlx::query("INSERT INTO conversations (id, token_hash, lang, created_at) VALUES ($1, $2, $3, $4)")
                .bind(c.id.to_string())
                .bind(&c.token_hash)
                .bind(&c.lang)
                .bind(&occurred_at)
                .execute(&mut *tx)
                .await?;
        }
        let mut seqs = Vec::with_capacity(batch.events.len());
        for event in &batch.events {
            seq += 1;
            let payload = canonical(&event.payload);
            let digest = payload_hash(&payload);
            let conversation_id = event.conversation_id.map(|c| c.to_string());
            let hash = event_hash(
                &prev_hash,
                seq,
                &occurred_at,
                &event.actor,
                &event.kind,
                conversation_id.as_deref(),
                &digest,
            );
            sqlx::query(
                "INSERT INTO audit_events (seq, occurred_at, actor, kind, conversation_id, payload, payload_hash, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(seq)
            .bind(&occurred_at)
            .bind(&event.actor)
            .bind(&event.kind)
            .bind(conversation_id)
            .bind(payload)
            .bind(digest)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            seqs.push(seq);
            prev_hash = hash;
        }
        for m in &batch.messages {
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, turn, role, content, mode, citations, handoff_reason, created_at, event_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(m.id.to_string())
            .bind(m.conversation_id.to_string())
            .bind(m.turn)
            .bind(&m.role)
            .bind(&m.content)
            .bind(&m.mode)
            .bind(m.citations.as_ref().map(canonical))
            .bind(&m.handoff_reason)
            .bind(&occurred_at)
            .bind(seqs[m.event_index])
            .execute(&mut *tx)
            .await?;
        }
        Ok(seqs)
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
