//! Shared test set-up: fixture paths, temporary knowledge bases and one `Index` per
//! vector-store backend (Qdrant Edge always; a Qdrant server when `QDRANT_URL` is set).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use teller::knowledge::{ingest, Chunker, IngestOptions, IngestSummary};
use teller::retrieval::edge::EdgeStore;
use teller::retrieval::server::ServerStore;
use teller::retrieval::store::VectorStore;
use teller::retrieval::Index;
use tempfile::TempDir;

pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// Copies a fixture folder into a fresh temporary directory the test may edit.
pub fn copy_fixture(relative: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    copy_dir(&fixture(relative), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// An index on one backend, with the temporary data it owns.
pub struct TestIndex {
    pub index: Index,
    pub backend: &'static str,
    _data: TempDir,
}

/// One index per available backend. The Qdrant server backend needs `QDRANT_URL`; without
/// it the test says so on stderr and runs on Qdrant Edge alone.
pub async fn indexes(test: &str) -> Vec<TestIndex> {
    let mut out = Vec::new();
    let data = TempDir::new().unwrap();
    let edge = EdgeStore::open(data.path().join("edge"), None).await.unwrap();
    out.push(TestIndex {
        index: Index::new(Arc::new(edge), None),
        backend: "qdrant-edge",
        _data: data,
    });
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => {
            let collection = format!("teller-test-{test}-{}", uuid::Uuid::new_v4().simple());
            let server = ServerStore::connect(&url, None, &collection, None).await.unwrap();
            out.push(TestIndex {
                index: Index::new(Arc::new(server) as Arc<dyn VectorStore>, None),
                backend: "qdrant-server",
                _data: TempDir::new().unwrap(),
            });
        }
        _ => eprintln!("{test}: qdrant-server backend skipped (QDRANT_URL not set)"),
    }
    out
}

pub fn chunker() -> Chunker {
    Chunker::new(300, 40)
}

pub async fn ingest_dir(index: &Index, dir: &Path, prune: bool) -> IngestSummary {
    ingest(
        index,
        &chunker(),
        &IngestOptions {
            kb_dir: dir.to_path_buf(),
            prune,
            progress: false,
        },
    )
    .await
    .unwrap()
}

/// Tests that load the machine (the fault scenarios, the contract fuzz run) take turns:
/// on two shared cores each would skew the other's timings and request counts.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}
