//! Typed configuration: environment variables (names from design.md), optionally a TOML
//! file (`TELLER_CONFIG`, default `teller.toml` when present). Environment wins.

use crate::chat::llm::LlmLimits;
use crate::chat::pipeline::{MAX_TURNS, RETRIEVED_SOURCES};
use crate::chat::policy::PolicyConfig;
use crate::chat::PipelineOptions;
use crate::http::body::BodyLimits;
use crate::http::{HttpLimits, BODY_LIMIT_BYTES};
use crate::knowledge::Chunker;
use crate::server::ConnectionLimits;
use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the HTTP deadline of a JSON chat turn adds to the turn's own deadline.
const RESPONSE_GRACE: Duration = Duration::from_secs(1);

/// Every setting Teller reads, validated once at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Where the embedded stores live (Qdrant Edge shard, SQLite audit file).
    pub data_dir: PathBuf,
    /// The knowledge base `teller serve` ingests on first start and `teller ingest` reads.
    pub kb_dir: PathBuf,
    /// Audit store; `None` means the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Qdrant server (gRPC, e.g. `http://localhost:6334`); `None` means embedded Qdrant Edge.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<SecretString>,
    /// Collection (server) or shard folder (Edge) name.
    pub collection: String,
    pub openai_base_url: Option<String>,
    pub openai_api_key: Option<SecretString>,
    pub chat_model: Option<String>,
    /// Dense embeddings are used only when a model is named.
    pub embedding_model: Option<String>,
    /// Model for queries when it differs from the passage model (e5, bge).
    pub embedding_query_model: Option<String>,
    pub embedding_dim: Option<usize>,
    pub embedding_batch: usize,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    pub bind: String,
    /// Folder of prompt templates (`prompts.toml`, `en/`, `zh-CN/`); the templates built
    /// into the binary when unset.
    pub prompts_dir: Option<PathBuf>,
    /// Folder of fitted models (`escalation.json`, `advice.json`, `answerability.json`,
    /// `answerability-hybrid.json`, as `teller calibrate` writes them); the models built
    /// into the binary when unset.
    pub models_dir: Option<PathBuf>,
    /// The bank's name as the assistant says it.
    pub bank_name: String,
    /// Chat turns in flight before new ones are shed with 503.
    pub max_concurrent_turns: usize,
    /// Open connections before new ones are closed at once; the descriptor limit less a
    /// reserve when unset.
    pub max_connections: Option<usize>,
    /// A request's head must arrive within this; idle keep-alive connections close after it.
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this.
    pub body_read_timeout_ms: u64,
    /// Deadline of a whole chat turn, in milliseconds.
    pub request_timeout_ms: u64,
    pub llm_first_token_timeout_ms: u64,
    pub llm_timeout_ms: u64,
    pub llm_retries: u32,
    /// Each call to the audit store within a turn, the commit included (at most a quarter
    /// of the turn's deadline).
    pub audit_timeout_ms: u64,
    /// Condensing a follow-up with the model (at most a quarter of the turn's deadline).
    pub condense_timeout_ms: u64,
    /// Where turns wait that the audit store could not take in time; `<data_dir>/spool`
    /// when unset.
    pub spool_dir: Option<PathBuf>,
    /// Tokens of conversation history given to the model.
    pub history_tokens: usize,
    /// Domains the assistant's replies may link to, comma-separated, besides those found
    /// in the knowledge base (`TELLER_LINK_DOMAINS`).
    pub link_domains: Option<String>,
    /// The bank's published phone numbers, comma-separated, besides those found in the
    /// knowledge base: never masked as personal data (`TELLER_PUBLISHED_NUMBERS`).
    pub published_numbers: Option<String>,
    /// `/metrics` answers only with a valid staff token (any role) when set
    /// (`TELLER_METRICS_TOKEN_REQUIRED`).
    #[serde(default)]
    pub metrics_token_required: bool,
    /// Hex key (at least 32 bytes) that seals every commit and checkpoint
    /// (`TELLER_AUDIT_SEAL_KEY_FILE`); keep it off the database's host.
    pub audit_seal_key_file: Option<PathBuf>,
    /// JSON Lines file the server appends sealed checkpoints to, and `verify` checks the
    /// log's tail against (`TELLER_CHECKPOINT_FILE`).
    pub checkpoint_file: Option<PathBuf>,
    /// How often the server writes a checkpoint while the log grows.
    pub checkpoint_interval_ms: u64,
    /// Sites allowed to embed the customer widget's frame, comma-separated origins such as
    /// `https://www.bank.example` (`TELLER_WIDGET_ORIGINS`); Teller's own origin always is.
    pub widget_origins: Option<String>,
    /// Secret shared with the bank's server for signed identity tokens: a file's path, or
    /// the secret itself, at least 32 bytes (`TELLER_IDENTITY_SECRET`).
    pub identity_secret: Option<SecretString>,
    /// Requests per minute from one client IP on the public customer routes; 0 turns the
    /// limit off (`TELLER_RATE_LIMIT_PER_MINUTE`).
    pub rate_limit_per_minute: u32,
    /// Requests per minute in one conversation on the public customer routes; 0 turns the
    /// limit off (`TELLER_CONVERSATION_RATE_LIMIT_PER_MINUTE`).
    pub conversation_rate_limit_per_minute: u32,
    /// When colleagues answer, `[Day-Day ]HH:MM-HH:MM` (`TELLER_STAFFED_HOURS`, e.g.
    /// `Mon-Fri 08:00-20:00`); unset: always. Outside them a waiting customer is told when
    /// someone will be there instead of an estimate.
    pub staffed_hours: Option<String>,
    /// The time zone of the staffed hours, a UTC offset (`TELLER_STAFFED_UTC_OFFSET`,
    /// e.g. `+08:00`; default `+00:00`).
    pub staffed_utc_offset: Option<String>,
    /// Sources whose `effective_date` is more than this many days old are reported stale
    /// by the knowledge insights (`TELLER_STALE_SOURCE_DAYS`, default 365).
    pub stale_source_days: u32,
}

/// Defaults, as a serialisable layer under the file and the environment.
#[derive(Serialize)]
struct Defaults {
    data_dir: &'static str,
    kb_dir: &'static str,
    collection: &'static str,
    embedding_batch: usize,
    chunk_tokens: usize,
    chunk_overlap: usize,
    bind: &'static str,
    bank_name: &'static str,
    max_concurrent_turns: usize,
    header_read_timeout_ms: u64,
    body_read_timeout_ms: u64,
    request_timeout_ms: u64,
    llm_first_token_timeout_ms: u64,
    llm_timeout_ms: u64,
    llm_retries: u32,
    audit_timeout_ms: u64,
    condense_timeout_ms: u64,
    history_tokens: usize,
    checkpoint_interval_ms: u64,
    rate_limit_per_minute: u32,
    conversation_rate_limit_per_minute: u32,
    stale_source_days: u32,
}

const DEFAULTS: Defaults = Defaults {
    data_dir: "data",
    kb_dir: "knowledge_base",
    collection: "teller",
    embedding_batch: 64,
    chunk_tokens: 300,
    chunk_overlap: 40,
    bind: "127.0.0.1:8080",
    bank_name: "Lantern Bank",
    max_concurrent_turns: 1024,
    header_read_timeout_ms: 10_000,
    body_read_timeout_ms: 10_000,
    request_timeout_ms: 30_000,
    llm_first_token_timeout_ms: 10_000,
    llm_timeout_ms: 25_000,
    llm_retries: 2,
    audit_timeout_ms: 5_000,
    condense_timeout_ms: 3_000,
    history_tokens: 1_500,
    checkpoint_interval_ms: 10_000,
    rate_limit_per_minute: 120,
    conversation_rate_limit_per_minute: 30,
    stale_source_days: 365,
};

/// Environment variables and the setting each one fills. Only these are read, so an
/// unrelated `TELLER_*` variable in a shell never changes behaviour by accident.
const ENV_KEYS: &[(&str, &str)] = &[
    ("TELLER_DATA_DIR", "data_dir"),
    ("TELLER_KB_DIR", "kb_dir"),
    ("DATABASE_URL", "database_url"),
    ("QDRANT_URL", "qdrant_url"),
    ("QDRANT_API_KEY", "qdrant_api_key"),
    ("TELLER_COLLECTION", "collection"),
    ("OPENAI_BASE_URL", "openai_base_url"),
    ("OPENAI_API_KEY", "openai_api_key"),
    ("TELLER_CHAT_MODEL", "chat_model"),
    ("TELLER_EMBEDDING_MODEL", "embedding_model"),
    ("TELLER_EMBEDDING_QUERY_MODEL", "embedding_query_model"),
    ("TELLER_EMBEDDING_DIM", "embedding_dim"),
    ("TELLER_EMBEDDING_BATCH", "embedding_batch"),
    ("TELLER_CHUNK_TOKENS", "chunk_tokens"),
    ("TELLER_CHUNK_OVERLAP", "chunk_overlap"),
    ("TELLER_BIND", "bind"),
    ("TELLER_PROMPTS_DIR", "prompts_dir"),
    ("TELLER_MODELS_DIR", "models_dir"),
    ("TELLER_BANK_NAME", "bank_name"),
    ("TELLER_MAX_CONCURRENT_TURNS", "max_concurrent_turns"),
    ("TELLER_MAX_CONNECTIONS", "max_connections"),
    ("TELLER_HEADER_READ_TIMEOUT_MS", "header_read_timeout_ms"),
    ("TELLER_BODY_READ_TIMEOUT_MS", "body_read_timeout_ms"),
    ("TELLER_REQUEST_TIMEOUT_MS", "request_timeout_ms"),
    ("TELLER_LLM_FIRST_TOKEN_TIMEOUT_MS", "llm_first_token_timeout_ms"),
    ("TELLER_LLM_TIMEOUT_MS", "llm_timeout_ms"),
    ("TELLER_LLM_RETRIES", "llm_retries"),
    ("TELLER_AUDIT_TIMEOUT_MS", "audit_timeout_ms"),
    ("TELLER_CONDENSE_TIMEOUT_MS", "condense_timeout_ms"),
    ("TELLER_SPOOL_DIR", "spool_dir"),
    ("TELLER_HISTORY_TOKENS", "history_tokens"),
    ("TELLER_LINK_DOMAINS", "link_domains"),
    ("TELLER_PUBLISHED_NUMBERS", "published_numbers"),
    ("TELLER_METRICS_TOKEN_REQUIRED", "metrics_token_required"),
    ("TELLER_AUDIT_SEAL_KEY_FILE", "audit_seal_key_file"),
    ("TELLER_CHECKPOINT_FILE", "checkpoint_file"),
    ("TELLER_CHECKPOINT_INTERVAL_MS", "checkpoint_interval_ms"),
    ("TELLER_WIDGET_ORIGINS", "widget_origins"),
    ("TELLER_IDENTITY_SECRET", "identity_secret"),
    ("TELLER_STAFFED_HOURS", "staffed_hours"),
    ("TELLER_STAFFED_UTC_OFFSET", "staffed_utc_offset"),
    ("TELLER_STALE_SOURCE_DAYS", "stale_source_days"),
    ("TELLER_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute"),
    (
        "TELLER_CONVERSATION_RATE_LIMIT_PER_MINUTE",
        "conversation_rate_limit_per_minute",
    ),
];

impl Settings {
    /// Loads from `TELLER_CONFIG` (or `./teller.toml` if it exists) and the environment.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var_os("TELLER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("teller.toml")).filter(|p| p.exists()));
        Self::from_sources(file.as_deref(), Env::raw())
    }

    fn from_sources(file: Option<&Path>, env: Env) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(DEFAULTS));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let env = env.filter_map(|key| {
            ENV_KEYS
                .iter()
                .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
                .map(|(_, field)| (*field).into())
        });
        let settings: Settings = figment.merge(env).extract().context("invalid configuration")?;
        settings.validated()
    }

    fn validated(mut self) -> anyhow::Result<Self> {
        // Empty variables mean "unset", as they do for most tools.
        for value in [
            &mut self.database_url,
            &mut self.qdrant_url,
            &mut self.openai_base_url,
            &mut self.chat_model,
            &mut self.embedding_model,
            &mut self.embedding_query_model,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        if self.chunk_tokens < 50 {
            bail!("TELLER_CHUNK_TOKENS must be at least 50 (got {})", self.chunk_tokens);
        }
        if self.chunk_overlap >= self.chunk_tokens / 2 {
            bail!(
                "TELLER_CHUNK_OVERLAP ({}) must be less than half of TELLER_CHUNK_TOKENS ({})",
                self.chunk_overlap,
                self.chunk_tokens
            );
        }
        if self.embedding_model.is_some() && self.embedding_dim.is_none() {
            bail!("TELLER_EMBEDDING_DIM is required when TELLER_EMBEDDING_MODEL is set");
        }
        if self.embedding_dim == Some(0) {
            bail!("TELLER_EMBEDDING_DIM must be positive");
        }
        if self.max_concurrent_turns == 0 {
            bail!("TELLER_MAX_CONCURRENT_TURNS must be positive");
        }
        if self.max_connections == Some(0) {
            bail!("TELLER_MAX_CONNECTIONS must be positive");
        }
        if self.header_read_timeout_ms < 100 || self.body_read_timeout_ms < 100 {
            bail!("TELLER_HEADER_READ_TIMEOUT_MS and TELLER_BODY_READ_TIMEOUT_MS must be at least 100");
        }
        if self.request_timeout_ms < 100 || self.llm_first_token_timeout_ms == 0 || self.llm_timeout_ms == 0 {
            bail!("timeouts must be positive (TELLER_REQUEST_TIMEOUT_MS at least 100)");
        }
        if self.checkpoint_interval_ms == 0 {
            anyhow::bail!("checkpoint_interval_ms must be positive");
        }
        if self.audit_timeout_ms == 0 || self.condense_timeout_ms == 0 {
            bail!("TELLER_AUDIT_TIMEOUT_MS and TELLER_CONDENSE_TIMEOUT_MS must be positive");
        }
        if self.embedding_batch == 0 {
            bail!("TELLER_EMBEDDING_BATCH must be positive");
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:")) {
                bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite: (got {url:?})");
            }
        }
        if let Err(why) = self.staffed_hours() {
            bail!("TELLER_STAFFED_HOURS / TELLER_STAFFED_UTC_OFFSET: {why}");
        }
        for origin in self.widget_origins() {
            if !valid_origin(&origin) {
                bail!("TELLER_WIDGET_ORIGINS: {origin:?} is not an origin (scheme://host[:port], no path)");
            }
        }
        if let Some(url) = &self.qdrant_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("QDRANT_URL must be an http(s) URL of Qdrant's gRPC port, e.g. http://localhost:6334");
            }
        }
        Ok(self)
    }

    /// Limits of every model call.
    pub fn llm_limits(&self) -> LlmLimits {
        LlmLimits {
            first_token: Duration::from_millis(self.llm_first_token_timeout_ms),
            total: Duration::from_millis(self.llm_timeout_ms),
            retries: self.llm_retries,
        }
    }

    /// The deadline of a whole chat turn.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The chat pipeline's tunables.
    pub fn pipeline_options(&self) -> PipelineOptions {
        PipelineOptions {
            k: RETRIEVED_SOURCES,
            history_tokens: self.history_tokens,
            max_turns: MAX_TURNS,
            deadline: self.request_timeout(),
            audit_budget: Duration::from_millis(self.audit_timeout_ms).min(self.request_timeout() / 4),
            condense_budget: Duration::from_millis(self.condense_timeout_ms).min(self.request_timeout() / 4),
            llm: self.llm_limits(),
            policy: PolicyConfig::default(),
        }
    }

    /// The HTTP layer's limits. A JSON turn's HTTP deadline leaves the pipeline a second
    /// past its own, so the pipeline's 504 (with the turn's outcome decided) comes first.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            max_concurrent_turns: self.max_concurrent_turns,
            request_timeout: self.request_timeout() + RESPONSE_GRACE,
            body: BodyLimits {
                max_bytes: BODY_LIMIT_BYTES,
                read_timeout: Duration::from_millis(self.body_read_timeout_ms),
            },
        }
    }

    pub fn insights_options(&self) -> crate::insights::InsightsOptions {
        crate::insights::InsightsOptions {
            stale_after_days: self.stale_source_days,
        }
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }

    /// Where turns wait that the audit store could not take in time.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| self.data_dir.join("spool"))
    }

    /// Limits of the connections themselves.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_connections: self
                .max_connections
                .unwrap_or_else(ConnectionLimits::default_max_connections),
            max_streams_per_connection: 100,
        }
    }

    /// Splits documents into chunks of the configured size.
    pub fn chunker(&self) -> Chunker {
        Chunker::new(self.chunk_tokens, self.chunk_overlap)
    }

    pub fn link_domains(&self) -> Vec<String> {
        split_list(self.link_domains.as_deref())
    }

    /// The contact centre's staffed hours, if configured.
    pub fn staffed_hours(&self) -> Result<Option<crate::handoff::wait::StaffedHours>, String> {
        self.staffed_hours
            .as_deref()
            .map(|h| {
                crate::handoff::wait::StaffedHours::parse(h, self.staffed_utc_offset.as_deref().unwrap_or("+00:00"))
            })
            .transpose()
    }

    /// The origins allowed to frame the widget, as configured.
    pub fn widget_origins(&self) -> Vec<String> {
        split_list(self.widget_origins.as_deref())
            .into_iter()
            .map(|o| o.trim_end_matches('/').to_string())
            .collect()
    }

    /// The verifier of identity tokens, when a secret is configured.
    pub fn identity_verifier(&self) -> anyhow::Result<Option<crate::identity::IdentityVerifier>> {
        use secrecy::ExposeSecret;
        self.identity_secret
            .as_ref()
            .filter(|s| !s.expose_secret().trim().is_empty())
            .map(|s| crate::identity::IdentityVerifier::from_setting(s.expose_secret()))
            .transpose()
    }

    /// The public routes' rate limits.
    pub fn rate_limits(&self) -> crate::http::ratelimit::RateLimitSettings {
        crate::http::ratelimit::RateLimitSettings {
            per_ip_per_minute: self.rate_limit_per_minute,
            per_conversation_per_minute: self.conversation_rate_limit_per_minute,
        }
    }

    pub fn published_numbers(&self) -> Vec<String> {
        split_list(self.published_numbers.as_deref())
    }

    /// The embedded Qdrant Edge shard folder.
    pub fn edge_path(&self) -> PathBuf {
        self.data_dir.join("qdrant-edge").join(&self.collection)
    }

    /// Settings for tests and tools: defaults rooted at `data_dir`, no environment.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let mut settings = Self::from_sources(None, Env::raw().only(&[] as &[&str])).expect("defaults are valid");
        settings.data_dir = data_dir.to_path_buf();
        settings
    }
}

/// `scheme://host[:port]` with an http(s) scheme and nothing after the authority.
fn valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

fn split_list(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = Settings::for_data_dir(Path::new("/tmp/x"));
        assert_eq!(s.chunk_tokens, 300);
        assert!(s.qdrant_url.is_none());
        assert_eq!(s.edge_path(), Path::new("/tmp/x/qdrant-edge/teller"));
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "figment::Jail fixes the closure's error type")]
    fn env_overrides_file_and_is_validated() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("teller.toml", "chunk_tokens = 200\nbind = \"0.0.0.0:9000\"")?;
            jail.set_env("TELLER_CHUNK_TOKENS", "250");
            jail.set_env("QDRANT_URL", "");
            let s = Settings::from_sources(Some(Path::new("teller.toml")), Env::raw()).map_err(|e| e.to_string())?;
            assert_eq!(s.chunk_tokens, 250);
            assert_eq!(s.bind, "0.0.0.0:9000");
            assert!(s.qdrant_url.is_none());

            jail.set_env("TELLER_EMBEDDING_MODEL", "e5");
            let err = Settings::from_sources(None, Env::raw()).unwrap_err();
            assert!(err.to_string().contains("TELLER_EMBEDDING_DIM"));

            jail.set_env("TELLER_EMBEDDING_MODEL", "");
            jail.set_env(
                "TELLER_WIDGET_ORIGINS",
                "https://www.bank.example, http://127.0.0.1:8000/",
            );
            let s = Settings::from_sources(None, Env::raw()).map_err(|e| e.to_string())?;
            assert_eq!(
                s.widget_origins(),
                ["https://www.bank.example", "http://127.0.0.1:8000"]
            );
            jail.set_env("TELLER_WIDGET_ORIGINS", "https://bank.example/path");
            let err = Settings::from_sources(None, Env::raw()).unwrap_err();
            assert!(err.to_string().contains("TELLER_WIDGET_ORIGINS"), "{err}");
            jail.set_env("TELLER_WIDGET_ORIGINS", "'unsafe-inline'");
            assert!(Settings::from_sources(None, Env::raw()).is_err());
            jail.set_env("TELLER_WIDGET_ORIGINS", "");
            jail.set_env("TELLER_EMBEDDING_MODEL", "e5");

            jail.set_env("TELLER_EMBEDDING_DIM", "many");
            let err = Settings::from_sources(None, Env::raw()).unwrap_err();
            assert!(format!("{err:#}").contains("EMBEDDING_DIM"), "{err:#}");
            Ok(())
        });
    }
}
