//! Teller: a retrieval-augmented customer-service backend for retail banks.
//!
//! The crate is organised along the data flow (see `docs/ARCHITECTURE.md`):
//! `knowledge` loads and chunks bank documents; `retrieval` indexes and searches them in
//! Qdrant and reads passages against a question; `guard` screens what comes in and goes
//! out; `chat` answers a customer turn stage by stage; `audit` is the hash-chained record
//! every turn is committed to; `handoff` the path to a person (queue, take-over, live
//! messages both ways, suggested replies); `insights` what the record says the knowledge
//! base fails to answer; `conversation` holds the types they share; `auth` the
//! tokens; `http` the API over them; `eval` measures retrieval and answers; `config`,
//! `startup` and `cli` wire it all to the `teller` binary.

pub mod audit;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod eval;
pub mod guard;
pub mod handoff;
pub mod http;
pub mod identity;
pub mod insights;
pub mod knowledge;
pub mod lang;
pub mod retrieval;
pub mod server;
pub mod startup;
pub mod telemetry;
