//! Teller: a retrieval-augmented customer-service backend for retail banks.
//!
//! The crate is organised along the data flow (see `docs/ARCHITECTURE.md`):
//! `knowledge` loads and chunks bank documents, `retrieval` indexes and searches
//! them in Qdrant, `eval` measures retrieval against labelled questions, and
//! `cli` wires it all to the `teller` binary.

pub mod audit;
pub mod chat;
pub mod cli;
pub mod config;
pub mod eval;
pub mod guard;
pub mod http;
pub mod knowledge;
pub mod lang;
pub mod retrieval;
pub mod startup;
pub mod telemetry;
