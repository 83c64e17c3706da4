//! Logging: `tracing` to stderr, filtered by `RUST_LOG`, JSON when
//! `TELLER_LOG_FORMAT=json` (for log shippers). Message text is never logged here;
//! callers log ids, counts and timings.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is unset:
/// `info` for the server, `warn` for one-shot commands whose stdout is the product.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("TELLER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
