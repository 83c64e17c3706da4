//! The knowledge base: loading bank documents from disk, cleaning them, cutting them into
//! token-bounded chunks, and ingesting those chunks into the vector index.

pub mod chunk;
pub mod clean;
pub mod ingest;
pub mod load;

pub use chunk::{Chunk, Chunker};
pub use ingest::{ingest, IngestOptions, IngestSummary};
pub use load::{load_dir, Content, LoadError, LoadReport, Section, Source, SourceKind};
