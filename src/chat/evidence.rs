//! The middle stages of a turn: the standalone retrieval query (follow-ups condensed),
//! retrieval, and the passages read against the question, which is what the answer
//! policy decides on and every answer is built from.

use super::answerability::{Answerability, Signals};
use super::extractive;
use super::inbound::Inbound;
use super::llm::LlmMessage;
use super::metrics;
use super::pipeline::Pipeline;
use super::policy::Grounding;
use super::prompts::TemplateRef;
use super::types::ChatError;
use crate::conversation::Speaker;
use crate::lang::Lang;
use crate::retrieval::passages::Reading;
use crate::retrieval::query::{retrieval_query, Turn};
use crate::retrieval::{distinct_sources, Hit, SearchOptions};
use tokio::time::{timeout_at, Instant};

/// What retrieval found for a query.
pub(super) struct Retrieved {
    /// The best chunk of each of the top sources, best first: citations and prompts.
    pub sources: Vec<Hit>,
    /// Every chunk candidate of the sources an extractive answer may quote, several per
    /// source: where extractive answers look.
    pub chunks: Vec<Hit>,
}

/// The retrieval query, and the template that condensed it when a model did.
pub(super) struct StandaloneQuery {
    pub text: String,
    pub template: Option<TemplateRef>,
}

/// What a turn's answer is decided on and built from.
pub(super) struct Evidence<'p> {
    pub query: StandaloneQuery,
    pub retrieved: Retrieved,
    /// The query read against the passages.
    pub question: Reading<'p>,
    pub grounding: Grounding,
    /// Whether the passages answer the question, with the signals that say so.
    pub answerability: Answerability,
    pub condense_ms: f64,
    pub retrieval_ms: f64,
}

impl Pipeline {
    /// Condenses the query, retrieves, and reads the passages against it. Retrieval runs
    /// for handoffs too: the record shows what the bank's documents said about the
    /// customer's situation, and safety information comes from there.
    #[tracing::instrument(name = "gather_evidence", skip_all)]
    pub(super) async fn gather_evidence(&self, turn: &Inbound) -> Result<Evidence<'_>, ChatError> {
        let stage = Instant::now();
        // A flagged message never reaches the model, not even to be condensed.
        let query = if turn.screened.injection {
            StandaloneQuery {
                text: retrieval_query(&turn.history, turn.message()),
                template: None,
            }
        } else {
            self.standalone_query(&turn.history, turn.message(), turn.lang, turn.deadline)
                .await
        };
        let condense_ms = stage.elapsed().as_secs_f64() * 1e3;
        let stage = Instant::now();
        let retrieved = self.retrieve(&query.text, turn.lang, turn.deadline).await?;
        let retrieval_ms = stage.elapsed().as_secs_f64() * 1e3;
        metrics::stage("retrieval", retrieval_ms / 1e3);
        let question = self.reading(&query.text, turn.lang);
        let grounding = Grounding::measure(&question, &retrieved.sources);
        let signals = Signals::measure(&question, &retrieved.sources, &self.discounted);
        let answerability = self.answerability.judge(&query.text, signals);
        Ok(Evidence {
            query,
            retrieved,
            question,
            grounding,
            answerability,
            condense_ms,
            retrieval_ms,
        })
    }

    /// The best sources for `query`, and the chunks of those an extractive answer may
    /// quote.
    pub(super) async fn retrieve(&self, query: &str, lang: Lang, deadline: Instant) -> Result<Retrieved, ChatError> {
        let options = SearchOptions {
            k: self.options.k,
            lang: Some(lang),
            ..Default::default()
        };
        let chunks = timeout_at(deadline, self.index.search_chunks(query, &options))
            .await
            .map_err(|_| ChatError::Deadline)?
            .map_err(ChatError::RetrievalUnavailable)?;
        let sources = distinct_sources(chunks.clone(), self.options.k);
        // Only the chunks of the sources an extractive answer may quote are kept for the
        // rest of the turn (a streamed turn holds them until it ends).
        let quotable: Vec<&str> = sources
            .iter()
            .take(extractive::MAX_SOURCES)
            .map(|h| h.chunk.source_id.as_str())
            .collect();
        let chunks = chunks
            .into_iter()
            .filter(|c| quotable.contains(&c.chunk.source_id.as_str()))
            .collect();
        Ok(Retrieved { sources, chunks })
    }

    /// A question read against this index's passages.
    pub(super) fn reading<'a>(&'a self, question: &str, lang: Lang) -> Reading<'a> {
        Reading::new(
            question,
            lang,
            &self.index.bm25,
            self.index.vocabulary(),
            &self.passages,
        )
    }

    /// The retrieval query: condensed by the model when one is configured and there is
    /// history, deterministically otherwise (and whenever the model fails).
    async fn standalone_query(
        &self,
        history: &[Turn],
        message: &str,
        lang: Lang,
        deadline: Instant,
    ) -> StandaloneQuery {
        let fallback = StandaloneQuery {
            text: retrieval_query(history, message),
            template: None,
        };
        let (Some(llm), false) = (&self.llm, history.is_empty()) else {
            return fallback;
        };
        let turns: Vec<(String, String)> = history
            .iter()
            .map(|t| {
                let who = if t.role == Speaker::Customer {
                    "customer"
                } else {
                    "assistant"
                };
                (who.to_string(), t.content.clone())
            })
            .collect();
        let Ok(prompt) = self.prompts.condense(lang, &turns, message) else {
            return fallback;
        };
        // The condensation has a budget of its own, so a hung model leaves the rest of the
        // turn its time: past it, the deterministic query.
        let limits = self.limits(deadline.min(Instant::now() + self.options.condense_budget));
        let mut ignore = |_: &str| true;
        match llm.complete(vec![LlmMessage::User(prompt)], limits, &mut ignore).await {
            // The customer's own words stay in the query: a condensation that drops them
            // can only lose recall.
            Ok(c) if !c.text.trim().is_empty() => StandaloneQuery {
                text: format!("{}\n{message}", c.text.trim()),
                template: Some(self.prompts.reference("condense")),
            },
            Ok(_) => fallback,
            Err(e) => {
                tracing::warn!(error = %e, "condense failed; using the deterministic query");
                fallback
            }
        }
    }
}
