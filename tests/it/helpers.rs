//! Shared test set-up: fixture paths, temporary knowledge bases and one `Index` per
//! vector-store backend (Qdrant Edge always; a Qdrant server when `QDRANT_URL` is set).

use qdrant_client::Qdrant;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use teller::knowledge::{ingest, Chunker, IngestOptions, IngestSummary};
use teller::retrieval::edge::EdgeStore;
use teller::retrieval::embed::Embedder;
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

/// The Qdrant server the suite runs against as well as Qdrant Edge, if `QDRANT_URL` names
/// one.
pub fn qdrant_url() -> Option<String> {
    std::env::var("QDRANT_URL").ok().filter(|url| !url.trim().is_empty())
}

/// A collection name of a test's own (`teller-test-<test>-<uuid>`), never the default
/// `teller`, so the suite cannot write into a deployment's index. On a Qdrant server the
/// collection, and every collection named after it (`teller eval` makes
/// `<name>-eval-<hash>`), is deleted when this is dropped, also when the test panics.
pub struct TestCollection {
    pub name: String,
    server: Option<String>,
}

impl TestCollection {
    pub fn new(test: &str) -> Self {
        Self {
            name: format!("teller-test-{test}-{}", uuid::Uuid::new_v4().simple()),
            server: qdrant_url(),
        }
    }
}

impl Drop for TestCollection {
    fn drop(&mut self) {
        let Some(url) = self.server.take() else {
            return;
        };
        let name = std::mem::take(&mut self.name);
        // Drop cannot await, and may run on a runtime's thread: the deletion gets a thread
        // and a runtime of its own.
        let deleted = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = Qdrant::from_url(&url).skip_compatibility_check().build()?;
                let ours = |c: &str| c == name || c.starts_with(&format!("{name}-"));
                for collection in client.list_collections().await?.collections {
                    if ours(&collection.name) {
                        client.delete_collection(&collection.name).await?;
                    }
                }
                Ok(())
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => {}
            // Not a panic: this may run while the test is already unwinding.
            Ok(Err(e)) => eprintln!("test collection not deleted: {e:#}"),
            Err(_) => eprintln!("test collection not deleted: the cleanup thread panicked"),
        }
    }
}

/// An index on one backend, with the temporary data (or server collection) it owns.
pub struct TestIndex {
    pub index: Index,
    pub backend: &'static str,
    _data: TempDir,
    _collection: Option<TestCollection>,
}

/// One index per available backend. The Qdrant server backend needs `QDRANT_URL`; without
/// it the test says so on stderr and runs on Qdrant Edge alone.
pub async fn indexes(test: &str) -> Vec<TestIndex> {
    indexes_with(test, None).await
}

/// [`indexes`], with dense vectors from `embedder` (hybrid search) when given.
pub async fn indexes_with(test: &str, embedder: Option<Arc<dyn Embedder>>) -> Vec<TestIndex> {
    let dense_dim = embedder.as_ref().map(|e| e.dim());
    let mut out = Vec::new();
    let data = TempDir::new().unwrap();
    let edge = EdgeStore::open(data.path().join("edge"), dense_dim).await.unwrap();
    out.push(TestIndex {
        index: Index::new(Arc::new(edge), embedder.clone()),
        backend: "qdrant-edge",
        _data: data,
        _collection: None,
    });
    if let Some((server, collection)) = server_store(test, dense_dim).await {
        out.push(TestIndex {
            index: Index::new(server, embedder),
            backend: "qdrant-server",
            _data: TempDir::new().unwrap(),
            _collection: Some(collection),
        });
    }
    out
}

/// A store on the Qdrant server in a collection of the test's own, which goes when the
/// returned guard does; `None` (said on stderr) without `QDRANT_URL`.
pub async fn server_store(test: &str, dense_dim: Option<usize>) -> Option<(Arc<dyn VectorStore>, TestCollection)> {
    let Some(url) = qdrant_url() else {
        eprintln!("{test}: qdrant-server backend skipped (QDRANT_URL not set)");
        return None;
    };
    // The guard first: a connect that fails half-way still has its collection deleted.
    let collection = TestCollection::new(test);
    let server = ServerStore::connect(&url, None, &collection.name, dense_dim)
        .await
        .unwrap();
    Some((Arc::new(server), collection))
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
