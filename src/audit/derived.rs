//! The query tables (`conversations`, `messages`) are what transcripts and the compliance
//! view show, so `verify` must prove them too. Each row is re-derived from the event it
//! was written with: the event names it in its (hashed) payload, a message by the digest
//! of its columns, a conversation by its token hash and language. A rewritten message, a
//! swapped token hash, a deleted or an inserted row then no longer matches the chain.

use super::chain::canonical;
use super::records::StoredEvent;
use super::store::{AuditError, AuditStore};
use super::verify::PAGE;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Payload key of the digest of the message row an event derives.
pub(super) const MESSAGE_DIGEST: &str = "message_digest";
/// Payload key of the conversation row an event opens.
pub(super) const OPENS_CONVERSATION: &str = "opens_conversation";

/// A message row's columns, as stored (what its digest covers; `created_at` and
/// `event_seq` are checked against the event itself).
#[derive(Serialize)]
pub(super) struct MessageFields<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub turn: i64,
    pub role: &'a str,
    pub content: &'a str,
    pub mode: Option<&'a str>,
    pub citations: Option<&'a str>,
    pub handoff_reason: Option<&'a str>,
}

/// SHA-256 of the row's canonical JSON.
pub(super) fn message_digest(fields: &MessageFields<'_>) -> String {
    let json = canonical(&serde_json::to_value(fields).expect("message fields serialise"));
    hex::encode(Sha256::digest(json.as_bytes()))
}

/// What an event records of the conversation row it opens.
pub(super) fn opening(token_hash: &str, lang: &str) -> serde_json::Value {
    serde_json::json!({ "token_hash": token_hash, "lang": lang })
}

/// Adds `key` to an event's payload. Payloads are JSON objects (typed structs); one
/// that is not is kept under `payload`.
pub(super) fn attach(payload: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if !payload.is_object() {
        *payload = serde_json::json!({ "payload": payload.take() });
    }
    payload
        .as_object_mut()
        .expect("an object")
        .insert(key.to_string(), value);
}

/// What the derived-row check found, across the whole log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DerivedCheck {
    /// Message rows proven equal to their events.
    pub messages: u64,
    /// Conversation rows proven equal to the events that opened them.
    pub conversations: u64,
    /// Conversation rows whose opening event a retention purge erased (not checkable).
    pub conversations_purged: u64,
    /// Rows written before events named their rows (before this check existed): listed
    /// so that nobody mistakes them for proven.
    pub legacy_rows: u64,
}

/// A row that does not match the chain: the event seq it belongs to, and why.
pub(super) type Mismatch = (i64, String);

/// The check's state while the log is walked page by page.
#[derive(Default)]
pub(super) struct DerivedRows {
    pub report: DerivedCheck,
    /// The first event that names a derived row: rows of events before it are legacy.
    naming_from: Option<i64>,
    opened: HashSet<String>,
    erased_conversations: HashSet<String>,
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    conversation_id: String,
    turn: i64,
    role: String,
    content: String,
    mode: Option<String>,
    citations: Option<String>,
    handoff_reason: Option<String>,
    created_at: String,
    event_seq: i64,
}

impl MessageRow {
    fn fields(&self) -> MessageFields<'_> {
        MessageFields {
            id: &self.id,
            conversation_id: &self.conversation_id,
            turn: self.turn,
            role: &self.role,
            content: &self.content,
            mode: self.mode.as_deref(),
            citations: self.citations.as_deref(),
            handoff_reason: self.handoff_reason.as_deref(),
        }
    }
}

/// What one event says about derived rows.
#[derive(Default)]
struct Named {
    message_digest: Option<String>,
    opens: Option<(String, String)>,
}

fn named(event: &StoredEvent) -> Named {
    let Some(payload) = event.payload.as_deref() else {
        return Named::default();
    };
    // Most events name no row: skip parsing those.
    if !payload.contains(MESSAGE_DIGEST) && !payload.contains(OPENS_CONVERSATION) {
        return Named::default();
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(payload) else {
        return Named::default();
    };
    let text = |v: &serde_json::Value, key: &str| v.get(key).and_then(|s| s.as_str()).map(str::to_string);
    Named {
        message_digest: text(&value, MESSAGE_DIGEST),
        opens: value
            .get(OPENS_CONVERSATION)
            .and_then(|o| Some((text(o, "token_hash")?, text(o, "lang")?))),
    }
}

impl DerivedRows {
    /// Checks the rows derived from one verified page of events.
    pub(super) async fn check_page(
        &mut self,
        store: &AuditStore,
        page: &[StoredEvent],
    ) -> Result<Result<(), Mismatch>, AuditError> {
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(Ok(()));
        };
        let names: Vec<Named> = page.iter().map(named).collect();
        if self.naming_from.is_none() {
            self.naming_from = page
                .iter()
                .zip(&names)
                .find(|(_, n)| n.message_digest.is_some() || n.opens.is_some())
                .map(|(e, _)| e.seq);
        }
        let naming_from = self.naming_from;
        let legacy = |seq: i64| naming_from.is_none_or(|from| seq < from);
        let event = |seq: i64| &page[(seq - first.seq) as usize];

        // Messages: every row matches the digest its event names, and every named row exists.
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT id, conversation_id, turn, role, content, mode, citations, handoff_reason, created_at, event_seq \
             FROM messages WHERE event_seq >= $1 AND event_seq <= $2 ORDER BY event_seq",
        )
        .bind(first.seq)
        .bind(last.seq)
        .fetch_all(&store.pool)
        .await?;
        let mut found = HashSet::new();
        if let Some(pair) = rows.windows(2).find(|w| w[0].event_seq == w[1].event_seq) {
            return Ok(Err((
                pair[0].event_seq,
                format!(
                    "messages {} and {} claim one event (a row inserted)",
                    pair[0].id, pair[1].id
                ),
            )));
        }
        for row in &rows {
            let seq = row.event_seq;
            let e = event(seq);
            let wrong = |why: &str| Ok(Err((seq, format!("message {} {why}", row.id))));
            found.insert(seq);
            if e.payload.is_none() {
                return wrong("outlived the purge that erased its event");
            }
            match &names[(seq - first.seq) as usize].message_digest {
                Some(digest) if *digest == message_digest(&row.fields()) => {}
                Some(_) => return wrong("differs from the event it was recorded with (row rewritten)"),
                None if legacy(seq) => {
                    self.report.legacy_rows += 1;
                    continue;
                }
                None => return wrong("belongs to an event that records no message (row inserted)"),
            }
            if row.created_at != e.occurred_at
                || row.conversation_id.as_str() != e.conversation_id.as_deref().unwrap_or("")
            {
                return wrong("differs from its event in time or conversation (row rewritten)");
            }
            self.report.messages += 1;
        }
        if let Some((e, _)) = page
            .iter()
            .zip(&names)
            .find(|(e, n)| n.message_digest.is_some() && !found.contains(&e.seq))
        {
            return Ok(Err((
                e.seq,
                "the message row this event recorded is missing (row deleted)".into(),
            )));
        }

        // Conversations: each row an event opens is there, unchanged.
        let opened: HashMap<&str, (&StoredEvent, &(String, String))> = page
            .iter()
            .zip(&names)
            .filter_map(|(e, n)| Some((e.conversation_id.as_deref()?, (e, n.opens.as_ref()?))))
            .collect();
        for e in page.iter().filter(|e| e.payload.is_none()) {
            if let Some(c) = &e.conversation_id {
                self.erased_conversations.insert(c.clone());
            }
        }
        for ids in opened.keys().copied().collect::<Vec<_>>().chunks(PAGE as usize / 5) {
            let rows = store.conversation_rows(ids).await?;
            let rows: HashMap<&str, &(String, String, String, String)> =
                rows.iter().map(|r| (r.0.as_str(), r)).collect();
            for id in ids {
                let (e, (token_hash, lang)) = opened[id];
                let wrong = |why: &str| Ok(Err((e.seq, format!("conversation {id} {why}"))));
                match rows.get(id) {
                    None => return wrong("that this event opened is missing (row deleted)"),
                    Some((_, t, l, at)) if t == token_hash && l == lang && *at == e.occurred_at => {}
                    Some(_) => return wrong("differs from the event that opened it (row rewritten)"),
                }
                self.opened.insert(id.to_string());
                self.report.conversations += 1;
            }
        }
        Ok(Ok(()))
    }

    /// After the walk: every conversation row was opened by an event of the log.
    pub(super) async fn check_unopened(&mut self, store: &AuditStore) -> Result<Result<(), Mismatch>, AuditError> {
        let mut after = String::new();
        loop {
            let page: Vec<(String, String)> =
                sqlx::query_as("SELECT id, created_at FROM conversations WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(&after)
                    .bind(PAGE)
                    .fetch_all(&store.pool)
                    .await?;
            let Some((last, _)) = page.last() else {
                return Ok(Ok(()));
            };
            after = last.clone();
            for (id, _) in page.iter().filter(|(id, _)| !self.opened.contains(id)) {
                if self.erased_conversations.contains(id) {
                    self.report.conversations_purged += 1;
                } else if self.naming_from.is_none() {
                    self.report.legacy_rows += 1;
                } else {
                    // A row no event opened: inserted, or a legacy row once the log names rows.
                    let first: Option<(i64,)> =
                        sqlx::query_as("SELECT seq FROM audit_events WHERE conversation_id = $1 ORDER BY seq LIMIT 1")
                            .bind(id)
                            .fetch_optional(&store.pool)
                            .await?;
                    match first {
                        Some((seq,)) if self.naming_from.is_some_and(|from| seq < from) => self.report.legacy_rows += 1,
                        _ => {
                            return Ok(Err((
                                first.map_or(0, |(seq,)| seq),
                                format!("conversation {id} was opened by no event of the log (row inserted)"),
                            )))
                        }
                    }
                }
            }
        }
    }
}

impl AuditStore {
    /// (id, token_hash, lang, created_at) of the named conversations.
    async fn conversation_rows(&self, ids: &[&str]) -> Result<Vec<(String, String, String, String)>, AuditError> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Any>::new(
            "SELECT id, token_hash, lang, created_at FROM conversations WHERE id IN (",
        );
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        let sql = super::append::numbered_for(self.kind, qb.sql());
        let arguments = sqlx::Execute::take_arguments(&mut qb.build())
            .map_err(sqlx::Error::Encode)?
            .unwrap_or_default();
        Ok(sqlx::query_as_with(&sql, arguments).fetch_all(&self.pool).await?)
    }
}
