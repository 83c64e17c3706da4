//! Integration tests, in one binary so the heavy dependency graph (Qdrant Edge) links
//! once. Every store-facing test runs against each available backend.

mod app;
mod audit;
mod blind;
mod browser;
mod chat;
mod cli;
mod compliance;
mod console;
mod contract;
mod embed;
mod faults;
mod guard;
mod handoff;
mod helpers;
mod ingest;
mod insights;
mod refusals;
mod retrieval;
mod review;
mod sse;
mod standin;
mod traces;
mod turns;
mod widget;
