//! The audit store: an append-only, hash-chained event log (the record of truth) plus
//! the query tables derived from it, in PostgreSQL or, by default, SQLite.
//!
//! Every write goes through [`AuditStore::append`], which commits a turn's events and
//! derived rows in one transaction; a reply is sent only after that commit.

pub mod chain;
mod ops;
mod store;

pub use chain::{event_hash, verify_chain, ChainBreak, GENESIS_HASH};
pub use ops::{
    Checkpoint, ConversationQuery, ConversationSummary, ExportFormat, PurgeReport, Role, Staff, Verification,
};
pub use store::{
    new_record_id, AuditError, AuditStore, DbKind, EventBatch, NewConversation, NewEvent, NewMessage, StoredEvent,
    StoredMessage,
};
