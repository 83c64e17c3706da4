//! The chat pipeline: one core, independent of HTTP, driven by the JSON and SSE
//! endpoints, `teller eval --answers` and the tests alike.
//!
//! A turn, stage by stage (`pipeline.rs` calls them in order):
//! receive (`inbound.rs`: mask and screen the message, authorise it into its conversation,
//! load the history) → gather evidence (`evidence.rs`: condense a follow-up, retrieve, read
//! the passages) → decide (`policy.rs`) → answer (`answer.rs`; `generate.rs` through the
//! model and the output chain of `output.rs`, or `extractive.rs` without one) → record
//! (`record.rs`) → reply, through a [`ReplySink`] (`sink.rs`).

mod answer;
pub mod answerability;
pub mod citations;
pub mod decline;
mod evidence;
pub mod extractive;
mod generate;
mod inbound;
pub mod llm;
mod metrics;
mod output;
pub mod pipeline;
pub mod policy;
pub mod prompts;
mod record;
mod relay;
pub mod sink;
mod suggest;
pub mod types;

pub use crate::conversation::{Citation, Handoff, Mode};
pub use pipeline::{Pipeline, PipelineOptions, PipelineParts};
pub use sink::{ReplySink, StreamEvent, Streamed, WholeReply};
pub use suggest::Suggestion;
pub use types::{ChatError, ChatReply, ChatRequest, UserMessage};
