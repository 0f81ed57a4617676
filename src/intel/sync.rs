//! Sync: fetch → build → sanity-check → swap; on failure keep the old snapshot and say why.
//!
//! Sources, in order: the persisted last good snapshot (at start only, so a restart is ready
//! without MISP), `intel.files` (files and feed directories), and MISP restSearch (paged).
//! A build whose attribute count is under `intel.min_indicators` is refused.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::load::{Loader, RawAttribute};
use super::snapshot::SnapshotBuilder;
use super::{IntelError, IntelSnapshot, IntelSources, IntelStore, Warninglists};
use crate::config::Config;
use crate::misp::{parse_attribute_page, MispClient, MispClientConfig, MispError};
use crate::telemetry::metrics as m;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Intel(#[from] IntelError),
    #[error(transparent)]
    Misp(#[from] MispError),
    #[error("cannot persist snapshot to {path}: {source}")]
    Persist {
        path: String,
        source: std::io::Error,
    },
}

impl SyncError {
    pub fn code(&self) -> &'static str {
        match self {
            SyncError::Intel(err) => err.code(),
            SyncError::Misp(err) => err.code(),
            SyncError::Persist { .. } => "persist",
        }
    }
}

/// Builds a MISP client from the config, if `misp.url` is set.
pub fn misp_client(config: &Config) -> Result<Option<MispClient>, SyncError> {
    let Some(url) = &config.misp.url else {
        return Ok(None);
    };
    let api_key = config
        .misp_api_key()
        .map_err(|err| SyncError::Misp(MispError::Config(err.to_string())))?
        .unwrap_or_default();
    let client = MispClient::new(MispClientConfig {
        url: url.clone(),
        api_key,
        ca_file: config.misp.ca_file.clone(),
        verify_tls: config.misp.verify_tls,
        timeout: std::time::Duration::from_secs(config.misp.timeout_secs),
        page_size: config.misp.page_size,
        ..MispClientConfig::default()
    })?;
    Ok(Some(client))
}

/// The restSearch filter of a full sync: IDS attributes (unless non-IDS are wanted), not
/// deleted, event context included so enrichments carry the event.
pub fn full_sync_filter(include_non_ids: bool) -> Value {
    let mut filter =
        json!({ "deleted": 0, "includeEventTags": 1, "includeContext": 1, "includeEventUuid": 1 });
    if !include_non_ids {
        filter["to_ids"] = json!(1);
    }
    filter
}

/// `base` with the configured restSearch filters added.
pub fn with_filters(mut base: Value, extra: &serde_json::Map<String, Value>) -> Value {
    if let Value::Object(object) = &mut base {
        for (key, value) in extra {
            object.insert(key.clone(), value.clone());
        }
    }
    base
}

/// Pulls every attribute matching `filter` from MISP into the builder, page by page.
pub async fn fetch_misp(
    client: &MispClient,
    filter: &Value,
    builder: &mut SnapshotBuilder,
    loader: &mut Loader,
) -> Result<usize, MispError> {
    let source = format!("{}/attributes/restSearch", client.base_url());
    let stats = client
        .rest_search_attributes_pages(filter, |body| {
            let attributes: Vec<RawAttribute<'_>> = parse_attribute_page(body)?;
            loader.add_attributes(builder, &attributes, &source);
            Ok(attributes.len())
        })
        .await?;
    Ok(stats.attributes)
}

/// One full build from every configured source.
pub async fn build_from_sources(
    sources: &IntelSources,
    misp: Option<&MispClient>,
    floor: usize,
) -> Result<IntelSnapshot, SyncError> {
    let warninglists = match &sources.warninglists_dir {
        Some(dir) => Some(Arc::new(
            Warninglists::load_dir(dir).map_err(IntelError::from)?,
        )),
        None => None,
    };
    let mut builder = SnapshotBuilder::new(sources.include_non_ids, warninglists);
    sources.load_local(&mut builder, &mut Loader::default())?;
    if let Some(client) = misp {
        let mut misp_loader = Loader::for_misp(sources.decay_threshold);
        fetch_misp(
            client,
            &with_filters(
                full_sync_filter(sources.include_non_ids),
                &sources.misp_filter,
            ),
            &mut builder,
            &mut misp_loader,
        )
        .await?;
    }
    check_floor(builder.build(), floor)
}

/// Refuses a snapshot with fewer attributes than `floor` (`intel.min_indicators`).
pub fn check_floor(snapshot: IntelSnapshot, floor: usize) -> Result<IntelSnapshot, SyncError> {
    if snapshot.len() < floor {
        return Err(IntelError::TooSmall {
            count: snapshot.len(),
            floor,
        }
        .into());
    }
    Ok(snapshot)
}

/// Writes the snapshot as a MISP restSearch response (so it loads back with the same code),
/// atomically (temp file, then rename).
pub fn persist(snapshot: &IntelSnapshot, path: &Path) -> Result<(), SyncError> {
    let err = |source: std::io::Error| SyncError::Persist {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut writer = std::io::BufWriter::new(file);
    write_restsearch(snapshot, &mut writer).map_err(err)?;
    std::io::Write::flush(&mut writer).map_err(err)?;
    drop(writer);
    std::fs::rename(&tmp, path).map_err(err)
}

/// The snapshot's attributes as `{"response":{"Attribute":[...]}}` with Event and Tag.
pub fn write_restsearch(
    snapshot: &IntelSnapshot,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    out.write_all(b"{\"response\":{\"Attribute\":[")?;
    for (idx, attribute) in snapshot.attributes().enumerate() {
        if idx > 0 {
            out.write_all(b",")?;
        }
        let tags: Vec<Value> = attribute
            .tags()
            .map(|name| json!({ "name": name }))
            .collect();
        let event = attribute.event;
        let record = json!({
            "uuid": attribute.uuid.to_string(),
            "type": attribute.misp_type,
            "category": attribute.category,
            "value": attribute.value,
            "to_ids": attribute.to_ids,
            "deleted": false,
            "timestamp": attribute.timestamp.to_string(),
            "first_seen": attribute.first_seen,
            "last_seen": attribute.last_seen,
            "Tag": tags,
            "wazuh_misp_origin": if attribute.from_misp { "misp" } else { "local" },
            "Event": {"id": &*event.id, "uuid": &*event.uuid, "info": &*event.info, "threat_level_id": &*event.threat_level_id, "date": &*event.date, "Orgc": {"name": &*event.orgc}},
        });
        serde_json::to_writer(&mut *out, &record)?;
    }
    out.write_all(b"]}}\n")
}

/// One full build from every source, swapped in and persisted; on failure the store keeps
/// its snapshot. (The service keeps it current with [`super::update::IntelUpdater`].)
pub async fn sync_once(
    config: &Config,
    store: &Arc<IntelStore>,
    misp: Option<&MispClient>,
) -> Result<(), SyncError> {
    super::update::IntelUpdater::new(config.clone(), store.clone(), misp.cloned())
        .full()
        .await
}

/// At start: the persisted snapshot, if any, so the pipeline is ready without MISP.
pub fn load_persisted(config: &Config, store: &IntelStore) -> bool {
    let Some(path) = config.intel.snapshot_path.as_ref().filter(|p| p.is_file()) else {
        return false;
    };
    let mut sources = config.intel_sources();
    sources.files = vec![path.clone()];
    match super::load_snapshot(&sources) {
        Ok(snapshot) => {
            tracing::info!(attributes = snapshot.len(), path = %path.display(), "Loaded the persisted indicator set.");
            let stats = snapshot.stats().clone();
            store.swap(snapshot);
            m::record_snapshot(&stats, store.last_success_unix());
            true
        }
        Err(err) => {
            tracing::warn!(error = %err, "Persisted indicator set unreadable; ignoring it.");
            false
        }
    }
}

/// Modification times of the intel files, to notice changes.
pub fn files_fingerprint(
    sources: &IntelSources,
) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)> {
    let mut out = Vec::new();
    for path in sources.files.iter().chain(sources.warninglists_dir.iter()) {
        let mut stack = vec![path.clone()];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    stack.extend(entries.flatten().map(|e| e.path()));
                }
            } else {
                let meta = std::fs::metadata(&path).ok();
                out.push((
                    path,
                    meta.as_ref().and_then(|m| m.modified().ok()),
                    meta.map_or(0, |m| m.len()),
                ));
            }
        }
    }
    out.sort();
    out
}
