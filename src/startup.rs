//! Building and running the server: stores, index (ingesting the sample knowledge base
//! on first start), prompts, model, router and listener.

use crate::audit::spool::Spool;
use crate::audit::{AuditStore, CheckpointWriter, DbKind, SealKey};
use crate::chat::answerability;
use crate::chat::llm::{ChatModel, OpenAiChat};
use crate::chat::prompts::Prompts;
use crate::chat::{Pipeline, PipelineParts};
use crate::config::Settings;
use crate::guard::{Guard, ScreenModels};
use crate::handoff::feed::LiveFeed;
use crate::handoff::Desk;
use crate::http::{api_router, AppState};
use crate::knowledge::{ingest, load_dir, IngestOptions};
use crate::lang::Lang;
use crate::retrieval::embed::openai_client;
use crate::retrieval::Index;
use crate::server::{self, ConnectionLimits};
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;

/// A built server, bound to its port but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
}

/// The process-wide Prometheus recorder (installed once, shared by every app in tests).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // A bucket edge at the chat latency target (20 ms), so the share of turns that
            // meet it is read off exactly rather than interpolated between 10 and 25 ms.
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// The audit database URL: `DATABASE_URL`, or a SQLite file in the data dir.
pub fn database_url(settings: &Settings) -> anyhow::Result<String> {
    if let Some(url) = &settings.database_url {
        return Ok(url.clone());
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    Ok(format!("sqlite://{}", settings.data_dir.join("teller.db").display()))
}

/// Opens the audit store the settings name.
/// Opens the audit store with its seal key and checkpoint file, as configured.
pub async fn open_audit(settings: &Settings) -> anyhow::Result<AuditStore> {
    let url = database_url(settings)?;
    let mut store = AuditStore::connect(&url)
        .await
        .with_context(|| format!("cannot open the audit store ({})", redact(&url)))?;
    if let Some(path) = &settings.audit_seal_key_file {
        store = store.with_seal_key(SealKey::load(path)?);
    }
    if let Some(path) = &settings.checkpoint_file {
        store = store.with_checkpoint_file(path.clone());
    }
    Ok(store)
}

/// Builds the chat pipeline from settings over an index and an audit store (used by
/// `serve` and `eval --answers`).
pub fn build_pipeline(settings: &Settings, index: Index, audit: Arc<AuditStore>) -> anyhow::Result<Pipeline> {
    let prompts = load_prompts(settings)?;
    let llm_limits = settings.llm_limits();
    let llm: Option<Arc<dyn ChatModel>> = settings.chat_model.as_ref().map(|model| {
        Arc::new(OpenAiChat::new(
            openai_client(settings, llm_limits.total),
            model.clone(),
        )) as Arc<dyn ChatModel>
    });
    let guard = guard_for(settings, &prompts)?;
    let answerability = answerability_model(settings, index.embedder.is_some())?;
    let spool = Spool::open(&settings.spool_dir(), audit.clone())
        .with_context(|| format!("cannot open the audit spool in {}", settings.spool_dir().display()))?;
    let parts = PipelineParts {
        index,
        audit,
        spool,
        llm,
        prompts: Arc::new(prompts),
        guard: Arc::new(guard),
        chunker: settings.chunker(),
        answerability,
        bank_name: settings.bank_name.clone(),
    };
    Ok(Pipeline::new(parts, settings.pipeline_options()))
}

/// The guardrails for the configured bank (its knowledge base, numbers, domains, prompts).
pub fn build_guard(settings: &Settings) -> anyhow::Result<Guard> {
    guard_for(settings, &load_prompts(settings)?)
}

fn guard_for(settings: &Settings, prompts: &Prompts) -> anyhow::Result<Guard> {
    let system_prompts = [Lang::En, Lang::ZhCn]
        .into_iter()
        .map(|lang| prompts.text("system", lang))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut guard = Guard::for_bank(
        &knowledge_texts(settings),
        &settings.published_numbers(),
        &settings.link_domains(),
        &system_prompts,
    );
    if let Some(dir) = &settings.models_dir {
        guard.models = ScreenModels::load(dir)?;
    }
    Ok(guard)
}

/// The answerability model for the retrieval mode: the configured folder's, or the one
/// built in.
fn answerability_model(settings: &Settings, hybrid: bool) -> anyhow::Result<Arc<answerability::Model>> {
    let Some(dir) = &settings.models_dir else {
        return Ok(answerability::built_in(hybrid));
    };
    let path = dir.join(answerability::file_name(hybrid));
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Arc::new(serde_json::from_str(&text).with_context(|| {
        format!("{} is not an answerability model", path.display())
    })?))
}

fn load_prompts(settings: &Settings) -> anyhow::Result<Prompts> {
    match &settings.prompts_dir {
        Some(dir) => Prompts::load(dir, &settings.bank_name)
            .with_context(|| format!("cannot load prompts from {}", dir.display())),
        None => Prompts::built_in(&settings.bank_name),
    }
}

/// The text of the knowledge base folder, for the guardrails' list of the bank's own
/// numbers and domains. Empty when the folder is absent (an index ingested elsewhere).
fn knowledge_texts(settings: &Settings) -> Vec<String> {
    let Ok(report) = load_dir(&settings.kb_dir) else {
        return Vec::new();
    };
    report.sources.iter().map(|s| s.plain_text()).collect()
}

/// Hides a password in a database URL for messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') && credentials.contains("//") => {
            let scheme = &credentials[..credentials.find("//").unwrap_or(0) + 2];
            format!("{scheme}…@{host}")
        }
        _ => url.to_string(),
    }
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let index = Index::open(settings).await?;
        if index.store.count().await? == 0 && settings.kb_dir.is_dir() {
            let summary = ingest(
                &index,
                &settings.chunker(),
                &IngestOptions {
                    kb_dir: settings.kb_dir.clone(),
                    prune: false,
                    progress: false,
                },
            )
            .await?;
            for error in &summary.errors {
                tracing::error!(%error, "knowledge base file not ingested");
            }
            tracing::info!(%summary, kb = %settings.kb_dir.display(), "ingested the knowledge base on first start");
        }
        let audit = Arc::new(open_audit(settings).await?);
        let pipeline = build_pipeline(settings, index.clone(), audit.clone())?;
        // Turns spooled by an earlier run (or this one) are recorded as soon as the store
        // takes them.
        pipeline.spool().spawn_replayer();
        if let Some(path) = &settings.checkpoint_file {
            CheckpointWriter::new(audit.clone(), path.clone(), settings.checkpoint_interval()).spawn();
        }
        // The live feed: on PostgreSQL every instance listens for the others' commits.
        let listen_url = match audit.kind() {
            DbKind::Postgres => Some(database_url(settings)?),
            DbKind::Sqlite => None,
        };
        let feed = LiveFeed::start(audit.clone(), listen_url);
        let hours = settings.staffed_hours().map_err(anyhow::Error::msg)?;
        let desk = Desk::new(audit.clone(), pipeline.clone(), feed, hours);
        let listener = server::bind(&settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let state = AppState {
            desk,
            pipeline,
            insights: crate::insights::Insights::new(audit.clone(), index.clone(), settings.insights_options()),
            audit,
            index,
            metrics: metrics_handle(),
            metrics_access: crate::http::health::MetricsAccess {
                token_required: settings.metrics_token_required,
            },
            identity: crate::http::customer::Identity(settings.identity_verifier()?),
            rate_limits: crate::http::ratelimit::RateLimits::new(settings.rate_limits()),
            widget: crate::http::widget::WidgetPolicy::new(&settings.widget_origins()),
        };
        Ok(Self {
            listener,
            router: api_router(state, settings.http_limits()),
            limits: settings.connection_limits(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(
            addr = %self.listener.local_addr()?,
            max_connections = self.limits.max_connections,
            "teller listening"
        );
        server::serve(self.listener, self.router, self.limits, shutdown_signal())
            .await
            .context("server failed")
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
