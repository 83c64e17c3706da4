//! `teller search`: the best passages for a query.

use crate::config::Settings;
use crate::lang::Lang;
use crate::retrieval::store::SearchFilter;
use crate::retrieval::{Hit, Index, SearchOptions};
use std::fmt;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    query: String,
    /// Only passages in this language (en, zh-CN).
    #[arg(long)]
    lang: Option<Lang>,
    /// Only passages about this product.
    #[arg(long)]
    product: Option<String>,
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let index = Index::open(settings).await?;
    let options = SearchOptions {
        k: args.k,
        lang: args.lang,
        filter: SearchFilter {
            lang: args.lang,
            product: args.product,
        },
    };
    let hits = index.search(&args.query, &options).await?;
    if args.json {
        let out: Vec<_> = hits
            .iter()
            .enumerate()
            .map(|(rank, hit)| {
                serde_json::json!({
                    "rank": rank + 1,
                    "score": hit.score,
                    "source_id": hit.chunk.source_id,
                    "chunk_index": hit.chunk.chunk_index,
                    "title": hit.chunk.title,
                    "section": hit.chunk.section,
                    "lang": hit.chunk.lang,
                    "text": hit.chunk.text,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", Results(&hits));
    }
    Ok(ExitCode::SUCCESS)
}

/// Ranked passages, one numbered entry each with the start of its text.
struct Results<'a>(&'a [Hit]);

impl fmt::Display for Results<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no matching passages");
        }
        for (rank, hit) in self.0.iter().enumerate() {
            let section = hit
                .chunk
                .section
                .as_deref()
                .map(|s| format!(" › {s}"))
                .unwrap_or_default();
            writeln!(
                f,
                "{}. [{:.3}] {} — {}{}",
                rank + 1,
                hit.score,
                hit.chunk.source_id,
                hit.chunk.title,
                section
            )?;
            writeln!(f, "   {}", snippet(hit.chunk.body(), 200))?;
        }
        Ok(())
    }
}

fn snippet(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        format!("{}…", flat.chars().take(max_chars).collect::<String>())
    }
}
