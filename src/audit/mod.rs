//! The audit store: an append-only, hash-chained event log (the record of truth) plus
//! the query tables derived from it, in PostgreSQL or, by default, SQLite.
//!
//! Every write goes through [`AuditStore::append`] (a turn's events and derived rows in one
//! transaction, group-committed) or, for changes beyond the log, through one transaction
//! that also appends the events recording them. A reply is sent only after its commit.
//!
//! By job: `append` (the chain's writer), `chain` (hashing), `seal` (signing the head with
//! a key the database does not hold), `checkpoints` (sealed heads written outside the
//! database), `verify` (proving it all), `derived` (the query tables re-derived from the
//! events), `export`, `retention` (purges, legal holds), `staff` (tokens, staff actions),
//! `sessions` (agent console sign-ins), `insights` (what the knowledge-gap report reads),
//! `search` (reading conversations back), `records` (what the log holds), `period`
//! (times), `spool` (turns recorded late, when the store could not take them in time).

mod append;
pub mod chain;
mod checkpoints;
mod derived;
mod export;
mod feedback;
mod insights;
pub mod live;
mod period;
mod records;
mod retention;
mod seal;
mod search;
mod sessions;
pub mod spool;
mod staff;
mod store;
mod verify;

pub use append::new_record_id;
pub use chain::{event_hash, verify_chain, ChainBreak, GENESIS_HASH};
pub use checkpoints::{CheckpointWriter, SealedCheckpoint};
pub use derived::DerivedCheck;
pub use export::{ExportFormat, ExportPage};
pub use feedback::{FeedbackRecorded, Rating, StoredFeedback};
pub use insights::{ChainStatus, DayCount, GapQuestion, InsightsRead, LastVerification, RatedDown};
pub use period::{InvalidTime, Timestamp};
pub use records::{
    Actor, EventBatch, EventKind, NewConversation, NewEvent, NewMessage, Payload, StoredEvent, StoredMessage,
};
pub use retention::{LegalHold, PurgeReport};
pub use seal::{SealKey, SealKeyError};
pub use search::CustomerConversation;
pub use search::{ConversationQuery, ConversationSummary};
pub use sessions::{csrf_token_for, OpenedSession, Session, SESSION_HOURS};
pub use staff::{AuditExported, AuditVerified, ConversationRead, Staff, StaffRole};
pub use store::{AuditError, AuditStore, DbKind};
pub use verify::{Checkpoint, SealCheck, Verification};
