//! tracing subscriber: JSON in production, human-readable locally; level from config, with
//! `RUST_LOG` taking precedence.

use crate::config::LogConfig;

/// The service's logger.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if config.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|err| anyhow::anyhow!("cannot install the logger: {err}"))
}

/// Commands for people (`enrich`, `lookup`, `demo`): warnings and errors only, unless RUST_LOG.
pub fn init_cli() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
