//! Batch and one-shot commands that run the core without Kafka.

pub mod enrich;
pub mod lookup;

use crate::config::Config;
use crate::intel::{IntelSnapshot, IntelSources};

/// `enrich --config`: the config's sources, feeds (fetched now) and MISP included, loaded as
/// `run` loads them.
pub fn load_configured(config: &Config, sources: &IntelSources) -> anyhow::Result<IntelSnapshot> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if config.intel.feeds.iter().any(|feed| feed.enabled) {
        let mut fetcher = crate::intel::feeds::FeedFetcher::new(config)?;
        let refresh = runtime.block_on(fetcher.refresh(true));
        for error in refresh.errors {
            eprintln!("enrich: warning: feed not refreshed, using its cached copy if any: {error}");
        }
    }
    let client = crate::intel::sync::misp_client(config)?;
    Ok(runtime.block_on(crate::intel::sync::build_from_sources(
        sources,
        client.as_ref(),
        0,
    ))?)
}

/// `lookup` on a local miss: a live restSearch for the value.
pub fn misp_lookup(config: &Config, value: &str) -> anyhow::Result<IntelSnapshot> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let Some(client) = crate::intel::sync::misp_client(config)? else {
        return Ok(IntelSnapshot::empty());
    };
    let mut filter = crate::intel::sync::full_sync_filter(config.intel.include_non_ids);
    filter["value"] = serde_json::json!(value);
    let mut builder = crate::intel::SnapshotBuilder::new(config.intel.include_non_ids, None);
    let mut loader = crate::intel::Loader::default();
    runtime.block_on(crate::intel::sync::fetch_misp(
        &client,
        &filter,
        &mut builder,
        &mut loader,
    ))?;
    Ok(builder.build())
}
