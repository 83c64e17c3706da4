//! Guardrails applied to every customer message before anything else sees it (retrieval,
//! the model, logs, the audit record).

pub mod pii;

pub use pii::{mask, Masked};
