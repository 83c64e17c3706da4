//! The path to a person, as the store keeps it: each conversation's state (who answers it
//! now, derived from the state events in the chain), the queue, and the ordered table of
//! what clients are told after a reply (`live_events`, one row per audit event it derives
//! from, keyed by that event's seq and written in the same transaction).
//!
//! Seqs are assigned under the append lock of every process and each append commits before
//! the next one starts, so a reader that has seen seq N has seen every live row before it:
//! "everything after N" is a complete answer to a notification, a lagging receiver and a
//! client that reconnects with `Last-Event-ID`.

use super::store::{now, AuditError, AuditStore, DbKind};
use crate::conversation::{ConversationState, HandoffReason, Origin, Outcome};
use serde::Serialize;
use sqlx::AnyConnection;
use uuid::Uuid;

/// The PostgreSQL channel that carries the seq of each commit with live rows (only ids:
/// receivers re-read the table).
pub const LIVE_CHANNEL: &str = "teller_live";

/// What a live row tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LiveKind {
    /// The conversation's state changed (data: [`StateData`]).
    State,
    /// The customer wrote while a person owns the conversation (data: [`MessageData`]).
    CustomerMessage,
    /// A colleague wrote to the customer (data: [`MessageData`]).
    AgentMessage,
    /// An internal note (data: [`MessageData`]); staff only.
    Note,
}

/// A live row to write with the batch's event at `event_index`.
#[derive(Debug, Clone)]
pub struct NewLiveEvent {
    pub conversation_id: Uuid,
    pub kind: LiveKind,
    pub data: serde_json::Value,
    pub event_index: usize,
}

impl NewLiveEvent {
    pub fn new(conversation_id: Uuid, kind: LiveKind, data: &impl Serialize, event_index: usize) -> Self {
        Self {
            conversation_id,
            kind,
            data: serde_json::to_value(data).expect("live data serialises"),
            event_index,
        }
    }
}

/// A conversation's state as its row holds it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub conversation_id: Uuid,
    pub state: ConversationState,
    pub reason: Option<HandoffReason>,
    /// Lower is served first (see [`HandoffReason::priority`]).
    pub priority: Option<i64>,
    pub queued_at: Option<String>,
    /// The colleague who holds it (their display name).
    pub agent: Option<String>,
    pub claimed_at: Option<String>,
    #[serde(skip)]
    pub first_reply_at: Option<String>,
    pub outcome: Option<Outcome>,
    pub lang: String,
}

/// The state columns an event sets (written with the batch, in its transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    pub conversation_id: Uuid,
    pub state: ConversationState,
    pub reason: Option<HandoffReason>,
    pub priority: Option<i64>,
    pub queued_at: Option<String>,
    pub agent: Option<String>,
    pub claimed_at: Option<String>,
    pub first_reply_at: Option<String>,
    pub outcome: Option<Outcome>,
    /// The batch's event that sets it.
    pub event_index: usize,
}

impl StateUpdate {
    /// An update that leaves the status as it is (to change some columns of).
    pub fn unchanged(status: &Status) -> Self {
        Self {
            conversation_id: status.conversation_id,
            state: status.state,
            reason: status.reason,
            priority: status.priority,
            queued_at: status.queued_at.clone(),
            agent: status.agent.clone(),
            claimed_at: status.claimed_at.clone(),
            first_reply_at: status.first_reply_at.clone(),
            outcome: status.outcome,
            event_index: 0,
        }
    }

    /// The status this update leaves the conversation in.
    pub fn status(&self, lang: &str) -> Status {
        Status {
            conversation_id: self.conversation_id,
            state: self.state,
            reason: self.reason,
            priority: self.priority,
            queued_at: self.queued_at.clone(),
            agent: self.agent.clone(),
            claimed_at: self.claimed_at.clone(),
            first_reply_at: self.first_reply_at.clone(),
            outcome: self.outcome,
            lang: lang.to_string(),
        }
    }
}

/// The data of a `state` live row: the new state and, for the queue, what a colleague
/// sees of the conversation before opening it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StateData {
    pub state: ConversationState,
    pub reason: Option<HandoffReason>,
    pub priority: Option<i64>,
    pub queued_at: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<Outcome>,
    /// The customer's first message (masked), for the queue.
    pub first_message: Option<String>,
    pub lang: String,
    /// The previous state (`agent_joined` is told on the step to `with_agent`).
    pub from: ConversationState,
}

/// The data of a message or note live row.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MessageData {
    pub id: Uuid,
    pub text: String,
    pub created_at: String,
    /// The colleague who wrote it (agent messages and notes), or who held the
    /// conversation when the customer wrote (customer messages).
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// A live row as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRow {
    pub seq: i64,
    pub conversation_id: Uuid,
    pub kind: LiveKind,
    pub data: serde_json::Value,
    pub created_at: String,
}

/// A conversation in the queue of colleagues.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QueueEntry {
    pub conversation_id: Uuid,
    pub state: ConversationState,
    pub reason: Option<HandoffReason>,
    pub priority: Option<i64>,
    pub queued_at: Option<String>,
    pub waiting_seconds: f64,
    /// The customer's first message, masked.
    pub first_message: Option<String>,
    pub lang: String,
    pub agent: Option<String>,
}

impl QueueEntry {
    /// The entry a `state` live row describes, waiting time as of now.
    pub fn from_state(conversation_id: Uuid, data: StateData) -> Self {
        Self {
            conversation_id,
            waiting_seconds: waiting_seconds(data.queued_at.as_deref()),
            state: data.state,
            reason: data.reason,
            priority: data.priority,
            queued_at: data.queued_at,
            first_message: data.first_message,
            lang: data.lang,
            agent: data.agent,
        }
    }
}

/// Seconds since `queued_at`, 0 when unknown.
pub fn waiting_seconds(queued_at: Option<&str>) -> f64 {
    queued_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| ((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1e3).max(0.0))
        .unwrap_or(0.0)
}

/// A draft reply as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSuggestion {
    pub id: Uuid,
    pub agent: String,
    pub text: String,
}

const STATUS_COLUMNS: &str =
    "id, state, handoff_reason, priority, queued_at, agent, claimed_at, first_reply_at, outcome, lang";

type StatusRow = (
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn status_from(row: StatusRow) -> Result<Status, AuditError> {
    let invalid =
        |what: &str, value: &str| AuditError::InvalidRecord(format!("conversation {}: {what} {value:?}", row.0));
    Ok(Status {
        conversation_id: row.0.parse().map_err(|_| invalid("id", &row.0))?,
        state: row.1.parse().map_err(|_| invalid("state", &row.1))?,
        reason: row
            .2
            .as_deref()
            .map(|r| r.parse().map_err(|_| invalid("handoff reason", r)))
            .transpose()?,
        priority: row.3,
        queued_at: row.4.clone(),
        agent: row.5.clone(),
        claimed_at: row.6.clone(),
        first_reply_at: row.7.clone(),
        outcome: row
            .8
            .as_deref()
            .map(|o| o.parse().map_err(|_| invalid("outcome", o)))
            .transpose()?,
        lang: row.9.clone(),
    })
}

/// The first customer message of a conversation (the queue's label for it).
const FIRST_MESSAGE: &str = "(SELECT m.content FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user' \
     ORDER BY m.event_seq LIMIT 1)";

impl AuditStore {
    /// A conversation's token hash, state and the colleague holding it, for a customer's
    /// turn.
    pub async fn conversation_access(
        &self,
        id: Uuid,
    ) -> Result<Option<(String, ConversationState, Option<String>)>, AuditError> {
        let row: Option<(String, String, Option<String>)> =
            sqlx::query_as("SELECT token_hash, state, agent FROM conversations WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(hash, state, agent)| {
            let state = state
                .parse()
                .map_err(|_| AuditError::InvalidRecord(format!("conversation {id}: state {state:?}")))?;
            Ok((hash, state, agent))
        })
        .transpose()
    }

    /// A conversation's state.
    pub async fn status(&self, id: Uuid) -> Result<Option<Status>, AuditError> {
        let mut conn = self.pool.acquire().await?;
        status_in(&mut conn, id).await
    }

    /// The conversations waiting for a colleague (priority, then waiting time), then those
    /// a colleague holds (oldest claim first).
    pub async fn queue(&self) -> Result<Vec<QueueEntry>, AuditError> {
        let sql = format!(
            "SELECT c.id, c.state, c.handoff_reason, c.priority, c.queued_at, c.agent, c.lang, {FIRST_MESSAGE} \
             FROM conversations c WHERE c.state IN ('waiting', 'with_agent') \
             ORDER BY CASE c.state WHEN 'waiting' THEN 0 ELSE 1 END, c.priority, c.queued_at, c.id"
        );
        type Row = (
            String,
            String,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|(id, state, reason, priority, queued_at, agent, lang, first_message)| {
                let invalid =
                    |what: &str, v: &str| AuditError::InvalidRecord(format!("conversation {id}: {what} {v:?}"));
                Ok(QueueEntry {
                    conversation_id: id.parse().map_err(|_| invalid("id", &id))?,
                    state: state.parse().map_err(|_| invalid("state", &state))?,
                    reason: reason
                        .as_deref()
                        .map(|r| r.parse().map_err(|_| invalid("handoff reason", r)))
                        .transpose()?,
                    priority,
                    waiting_seconds: waiting_seconds(queued_at.as_deref()),
                    queued_at,
                    first_message,
                    lang,
                    agent,
                })
            })
            .collect()
    }

    /// 1-based place of a waiting conversation in the queue; `None` if it is not waiting.
    pub async fn queue_position(&self, id: Uuid) -> Result<Option<usize>, AuditError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM conversations o WHERE o.state = 'waiting' \
               AND (o.priority < c.priority OR (o.priority = c.priority AND (o.queued_at < c.queued_at \
               OR (o.queued_at = c.queued_at AND o.id < c.id))))) \
             FROM conversations c WHERE c.id = $1 AND c.state = 'waiting'",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(ahead,)| ahead as usize + 1))
    }

    /// How long the `limit` most recent claims waited in the queue, in seconds.
    pub async fn recent_claim_seconds(&self, limit: i64) -> Result<Vec<f64>, AuditError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT queued_at, claimed_at FROM conversations WHERE claimed_at IS NOT NULL AND queued_at IS NOT NULL \
             ORDER BY claimed_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let time = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
        Ok(rows
            .iter()
            .filter_map(|(queued, claimed)| Some((time(claimed)? - time(queued)?).num_milliseconds() as f64 / 1e3))
            .filter(|s| *s >= 0.0)
            .collect())
    }

    /// Waiting conversations per handoff reason (for the queue-length gauge).
    pub async fn waiting_by_reason(&self) -> Result<Vec<(String, i64)>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT COALESCE(handoff_reason, 'customer_request'), COUNT(*) FROM conversations \
             WHERE state = 'waiting' GROUP BY handoff_reason",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Live rows after `after`, in order, of one conversation or of all; at most `limit`.
    pub async fn live_since(
        &self,
        after: i64,
        conversation: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<LiveRow>, AuditError> {
        type Row = (i64, String, String, String, String);
        let rows: Vec<Row> = match conversation {
            Some(id) => sqlx::query_as(
                "SELECT seq, conversation_id, kind, data, created_at FROM live_events \
                 WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(id.to_string())
            .bind(after)
            .bind(limit),
            None => sqlx::query_as(
                "SELECT seq, conversation_id, kind, data, created_at FROM live_events \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit),
        }
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, conversation_id, kind, data, created_at)| {
                let invalid = |what: &str| AuditError::InvalidRecord(format!("live event {seq}: {what}"));
                Ok(LiveRow {
                    seq,
                    conversation_id: conversation_id.parse().map_err(|_| invalid("conversation id"))?,
                    kind: kind.parse().map_err(|_| invalid("kind"))?,
                    data: serde_json::from_str(&data).map_err(|_| invalid("data"))?,
                    created_at,
                })
            })
            .collect()
    }

    /// The seq of the newest live row (0 when there is none).
    pub async fn live_head(&self) -> Result<i64, AuditError> {
        let (head,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM live_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(head.unwrap_or(0))
    }

    /// A conversation's internal notes, oldest first.
    pub async fn notes(&self, id: Uuid) -> Result<Vec<MessageData>, AuditError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT data FROM live_events WHERE conversation_id = $1 AND kind = 'note' ORDER BY seq")
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(data,)| serde_json::from_str(&data).map_err(|e| AuditError::InvalidRecord(format!("note: {e}"))))
            .collect()
    }

    /// Wakes this process's live feed once a commit with live rows is durable.
    pub fn live_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.live_committed.subscribe()
    }

    pub(super) fn live_committed_now(&self) {
        if self.live_pending.swap(false, std::sync::atomic::Ordering::AcqRel) {
            self.live_committed.send_modify(|n| *n += 1);
        }
    }

    /// Runs a change of a conversation's state (or anything a colleague does) as one
    /// append: `decide` gets the conversation's status, read inside the transaction that
    /// holds every process's append lock, so two colleagues acting at once are decided one
    /// after the other, and returns its result with the batch to append (or why not).
    /// `after` then writes what needs the batch's seqs (suggestion rows), in the same
    /// transaction.
    pub async fn act<T>(
        &self,
        id: Uuid,
        decide: impl AsyncFnOnce(Status, &mut AnyConnection) -> Result<(T, super::EventBatch), AuditError>,
        after: impl AsyncFnOnce(&mut AnyConnection, &T, &[i64]) -> Result<(), AuditError>,
    ) -> Result<T, AuditError> {
        let _local = self.exclusive().await;
        let mut tx = self.begin_append().await?;
        let acted = async {
            let status = status_in(&mut tx, id).await?.ok_or(AuditError::NotFound)?;
            let (value, batch) = decide(status, &mut tx).await?;
            let seqs = if batch.events.is_empty() {
                Vec::new()
            } else {
                self.append_in(&mut tx, batch).await?
            };
            after(&mut tx, &value, &seqs).await?;
            Ok(value)
        }
        .await;
        self.finish(tx, acted).await
    }

    /// Tells every instance's live feed `payload` (PostgreSQL `NOTIFY`; nothing to do
    /// for SQLite, whose one instance is told in-process).
    pub async fn notify(&self, payload: &str) -> Result<(), AuditError> {
        if self.kind == DbKind::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(LIVE_CHANNEL)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Drafts not yet sent or discarded in a conversation.
    pub async fn open_suggestions(&self, id: Uuid) -> Result<Vec<StoredSuggestion>, AuditError> {
        let mut conn = self.pool.acquire().await?;
        Self::open_suggestions_in(&mut conn, id).await
    }

    /// The highest turn number recorded in a conversation.
    pub async fn last_turn(&self, id: Uuid) -> Result<i64, AuditError> {
        let mut conn = self.pool.acquire().await?;
        Self::last_turn_in(&mut conn, id).await
    }

    /// The first customer message of a conversation, read in a transaction.
    pub async fn first_message_in(conn: &mut AnyConnection, id: Uuid) -> Result<Option<String>, AuditError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT content FROM messages WHERE conversation_id = $1 AND role = 'user' ORDER BY event_seq LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(c,)| c))
    }

    /// The highest turn number recorded in a conversation, read in a transaction.
    pub async fn last_turn_in(conn: &mut AnyConnection, id: Uuid) -> Result<i64, AuditError> {
        let (turn,): (Option<i64>,) = sqlx::query_as("SELECT MAX(turn) FROM messages WHERE conversation_id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *conn)
            .await?;
        Ok(turn.unwrap_or(0))
    }

    /// Drafts not yet sent or discarded in a conversation, read in a transaction.
    pub async fn open_suggestions_in(conn: &mut AnyConnection, id: Uuid) -> Result<Vec<StoredSuggestion>, AuditError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, agent, text FROM suggestions WHERE conversation_id = $1 AND outcome IS NULL \
             ORDER BY created_at",
        )
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|(sid, agent, text)| {
                Ok(StoredSuggestion {
                    id: sid
                        .parse()
                        .map_err(|_| AuditError::InvalidRecord(format!("suggestion id {sid:?}")))?,
                    agent,
                    text,
                })
            })
            .collect()
    }

    /// Stores a draft made for a colleague.
    pub async fn insert_suggestion_in(
        conn: &mut AnyConnection,
        conversation_id: Uuid,
        suggestion: &StoredSuggestion,
        event_seq: i64,
    ) -> Result<(), AuditError> {
        sqlx::query(
            "INSERT INTO suggestions (id, conversation_id, agent, text, created_at, event_seq) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(suggestion.id.to_string())
        .bind(conversation_id.to_string())
        .bind(suggestion.agent.as_str())
        .bind(suggestion.text.as_str())
        .bind(now())
        .bind(event_seq)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Records what became of drafts (`sent`, `edited`, `discarded`).
    pub async fn settle_suggestions_in(
        conn: &mut AnyConnection,
        settled: &[(Uuid, &str, i64)],
    ) -> Result<(), AuditError> {
        for (id, outcome, seq) in settled {
            sqlx::query("UPDATE suggestions SET outcome = $1, outcome_seq = $2 WHERE id = $3 AND outcome IS NULL")
                .bind(*outcome)
                .bind(*seq)
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

async fn status_in(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Status>, AuditError> {
    let sql = format!("SELECT {STATUS_COLUMNS} FROM conversations WHERE id = $1");
    let row: Option<StatusRow> = sqlx::query_as(&sql)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(status_from).transpose()
}

/// Writes a group's state updates and live rows (after its events), and on PostgreSQL
/// tells every instance's listener the newest seq, delivered when the transaction commits.
pub(super) async fn write_live(
    conn: &mut AnyConnection,
    kind: DbKind,
    updates: &[(i64, &StateUpdate)],
    live: &[(i64, &NewLiveEvent)],
    at: &str,
) -> Result<(), sqlx::Error> {
    for (seq, u) in updates {
        sqlx::query(
            "UPDATE conversations SET state = $1, handoff_reason = $2, priority = $3, queued_at = $4, agent = $5, \
             claimed_at = $6, first_reply_at = $7, outcome = $8, state_seq = $9 WHERE id = $10",
        )
        .bind(u.state.as_str())
        .bind(u.reason.map(|r| r.as_str()))
        .bind(u.priority)
        .bind(u.queued_at.as_deref())
        .bind(u.agent.as_deref())
        .bind(u.claimed_at.as_deref())
        .bind(u.first_reply_at.as_deref())
        .bind(u.outcome.map(|o| -> &'static str { o.into() }))
        .bind(*seq)
        .bind(u.conversation_id.to_string())
        .execute(&mut *conn)
        .await?;
    }
    if live.is_empty() {
        return Ok(());
    }
    let mut qb =
        sqlx::QueryBuilder::<sqlx::Any>::new("INSERT INTO live_events (seq, conversation_id, kind, data, created_at) ");
    qb.push_values(live, |mut row, (seq, e)| {
        let kind: &'static str = e.kind.into();
        row.push_bind(*seq)
            .push_bind(e.conversation_id.to_string())
            .push_bind(kind)
            .push_bind(super::chain::canonical(&e.data))
            .push_bind(at);
    });
    super::append::execute(conn, kind, qb).await?;
    if kind == DbKind::Postgres {
        let newest = live.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LIVE_CHANNEL)
            .bind(newest.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What a batch needs of its conversation when it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requires {
    /// An assistant's reply: no person owns the conversation (else
    /// [`AuditError::HumanOwned`]).
    Bot(Uuid),
    /// A colleague's reply: they hold the conversation (else a refusal saying why); it
    /// sets the time of the first reply from a person, once.
    Holder(Uuid, String),
}

impl Requires {
    fn conversation(&self) -> Uuid {
        match self {
            Requires::Bot(id) | Requires::Holder(id, _) => *id,
        }
    }
}

/// Checks a group's requirements in one query; the first unmet one is the error.
pub(super) async fn check(conn: &mut AnyConnection, kind: DbKind, required: &[&Requires]) -> Result<(), AuditError> {
    if required.is_empty() {
        return Ok(());
    }
    let mut qb = sqlx::QueryBuilder::<sqlx::Any>::new("SELECT id, state, agent FROM conversations WHERE id IN (");
    let mut list = qb.separated(", ");
    for r in required {
        list.push_bind(r.conversation().to_string());
    }
    qb.push(")");
    let sql = super::append::numbered_for(kind, qb.sql());
    let arguments = {
        use sqlx::Execute;
        qb.build()
            .take_arguments()
            .map_err(sqlx::Error::Encode)?
            .unwrap_or_default()
    };
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as_with(&sql, arguments).fetch_all(&mut *conn).await?;
    let now = now();
    for r in required {
        let id = r.conversation().to_string();
        let Some((_, state, agent)) = rows.iter().find(|(row, ..)| *row == id) else {
            return Err(AuditError::NotFound);
        };
        let state: ConversationState = state
            .parse()
            .map_err(|_| AuditError::InvalidRecord(format!("conversation {id}: state {state:?}")))?;
        match r {
            Requires::Bot(_) if state.is_human() => return Err(AuditError::HumanOwned),
            Requires::Bot(_) => {}
            Requires::Holder(_, name) => {
                crate::handoff::state::require_holder_of(state, agent.as_deref(), name)?;
                sqlx::query("UPDATE conversations SET first_reply_at = $1 WHERE id = $2 AND first_reply_at IS NULL")
                    .bind(now.as_str())
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}
