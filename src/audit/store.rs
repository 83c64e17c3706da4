//! The connection to the audit database (PostgreSQL, or a SQLite file by default), its
//! migrations, and the store's one error type.

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::str::FromStr;
use std::time::Duration;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Everything the audit store can fail with. The rule: a failure to reach the database or
/// to commit is [`AuditError::Unavailable`] (callers answer 503 and give no answer that
/// would go unrecorded); a write the data forbids has its own variant (callers answer 4xx);
/// a row the code cannot read back is [`AuditError::InvalidRecord`].
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("audit store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A unique name is taken (a staff token of that name exists); says what to do.
    #[error("{0}")]
    Duplicate(String),
    /// A turn's number is already recorded in its conversation (another message, sent at
    /// the same time, committed it first): nothing of the batch was written, and writing
    /// it again would fail the same way, so it must never be retried or spooled as is.
    #[error("the turn's number is already recorded in its conversation")]
    Conflict,
    /// An assistant's reply whose conversation a person owns by the time it would commit
    /// (handed off or taken over meanwhile): nothing of the batch was written.
    #[error("a person owns this conversation")]
    HumanOwned,
    #[error("unreadable audit record: {0}")]
    InvalidRecord(String),
    /// The conversation an action names does not exist.
    #[error("no such conversation")]
    NotFound,
    /// What a colleague asked for does not fit the conversation's state (a stable code
    /// and words for them); nothing was written.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
}

/// The unique index on `messages (conversation_id, turn, role)` (migration 0004).
const TURN_INDEX: &str = "messages_turn_unique";
/// How SQLite names that index in its error: by its columns.
const TURN_INDEX_COLUMNS: &str = "messages.conversation_id, messages.turn, messages.role";

/// Every database error is the store being unavailable, except a turn whose number is
/// taken: the one constraint a well-formed append can hit, so every write path that `?`s
/// a database error (the group commit and its retry of each batch alone included) tells
/// it apart without mapping it at each call.
impl From<sqlx::Error> for AuditError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(e)
                if e.is_unique_violation()
                    && (e.constraint() == Some(TURN_INDEX) || e.message().contains(TURN_INDEX_COLUMNS)) =>
            {
                AuditError::Conflict
            }
            _ => AuditError::Unavailable(error),
        }
    }
}

impl AuditError {
    /// Maps a unique-key violation to [`AuditError::Duplicate`] naming `what`.
    pub(super) fn on_unique(error: sqlx::Error, what: impl FnOnce() -> String) -> Self {
        match &error {
            sqlx::Error::Database(e) if e.is_unique_violation() => AuditError::Duplicate(what()),
            _ => AuditError::Unavailable(error),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    Sqlite,
}

/// The audit log and its query tables.
pub struct AuditStore {
    pub(super) pool: AnyPool,
    pub(super) kind: DbKind,
    pub(super) appender: super::append::Appender,
    /// Seals every commit's last event; `verify` checks seals with it.
    pub(super) seal_key: Option<super::seal::SealKey>,
    /// The checkpoint sink `verify` checks the log's tail against.
    pub(super) checkpoint_file: Option<std::path::PathBuf>,
    /// A transaction in flight wrote live rows ([`super::live`]).
    pub(super) live_pending: std::sync::atomic::AtomicBool,
    /// Bumped after each commit with live rows: wakes this process's live feed.
    pub(super) live_committed: tokio::sync::watch::Sender<u64>,
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
            appender: Default::default(),
            seal_key: None,
            checkpoint_file: None,
            live_pending: Default::default(),
            live_committed: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Seals commits with `key`, and checks seals when verifying.
    pub fn with_seal_key(mut self, key: super::seal::SealKey) -> Self {
        self.seal_key = Some(key);
        self
    }

    /// Verifies the log's tail against the checkpoint file at `path`.
    pub fn with_checkpoint_file(mut self, path: std::path::PathBuf) -> Self {
        self.checkpoint_file = Some(path);
        self
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), AuditError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Now, as stored: RFC 3339 UTC with microseconds.
pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
