//! The chat pipeline: one core, independent of HTTP, driven by the JSON and SSE
//! endpoints, `teller eval --answers` and the tests alike.
//!
//! validate → guardrails screen (mask personal data, escalation, advice, injection) →
//! condense follow-up → retrieve → answer policy (handoff | refusal | approved |
//! generated | extractive) → citation check and output guard → audit commit → reply.

pub mod citations;
pub mod decline;
pub mod extractive;
pub mod llm;
pub mod passages;
pub mod pipeline;
pub mod policy;
pub mod prompts;
pub mod types;

pub use pipeline::{Pipeline, PipelineOptions};
pub use types::{ChatError, ChatReply, ChatRequest, Citation, Handoff, Mode, StreamEvent, UserMessage};
