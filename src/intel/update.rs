//! Keeping the indicator set current (DESIGN.md "Keeping the indicator set current"):
//!
//! - a **full** build at start and every `misp.full_sync_interval_secs`: files, cached feeds
//!   and a complete MISP pull; it catches what nothing else can (hard deletions, attributes
//!   leaving the configured filters);
//! - an **incremental** pull every `misp.sync_interval_secs`: attributes, and attributes of
//!   events, changed since the last pull, deleted and non-IDS ones included, so removals and
//!   `to_ids` flips apply;
//! - MISP's own Kafka **notifications** (`misp_attribute`, `misp_event_publish`), applied
//!   within `misp.notifications.apply_delay_ms`;
//! - a **local** rebuild when `intel.files` or a feed changed, keeping the MISP part.
//!
//! Every change is a [`Delta`] applied to the current snapshot: the changed attributes are
//! loaded first, then every attribute of the old snapshot the delta does not touch is copied,
//! and the new snapshot is swapped in whole. One task owns the [`IntelUpdater`], so changes
//! are applied in arrival order and never overwrite each other.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::feeds::FeedFetcher;
use super::load::{LoadError, Loader};
use super::snapshot::{parse_uuid, Attribute, SnapshotBuilder};
use super::sync::{persist, SyncError};
use super::{IntelError, IntelSnapshot, IntelStore};
use crate::config::Config;
use crate::misp::{parse_attribute_page, MispClient};
use crate::telemetry::metrics as m;

/// Pulls overlap the previous one by this much, for clock skew between MISP and us.
const PULL_OVERLAP_SECS: i64 = 300;
/// After notifications, the snapshot is persisted at most this often.
const PERSIST_EVERY: Duration = Duration::from_secs(60);

/// Changes to apply to a snapshot: attributes to (re)load and attribute uuids to drop.
#[derive(Default)]
pub struct Delta {
    /// restSearch bodies (`{"response":{"Attribute":[...]}}`) of changed attributes.
    docs: Vec<Vec<u8>>,
    /// Attribute uuids (lower case) that the delta replaces or removes.
    touched: HashSet<String>,
    /// Event uuids whose MISP attributes the delta gives in full (event publish): MISP
    /// attributes of these events that the delta does not list are dropped.
    replaced_events: HashSet<String>,
}

impl std::fmt::Debug for Delta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delta")
            .field("docs", &self.docs.len())
            .field("touched", &self.touched.len())
            .field("replaced_events", &self.replaced_events.len())
            .finish()
    }
}

/// What one notification was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// An attribute added or changed (and accepted by the filters).
    Upsert,
    /// An attribute deleted, soft-deleted, or no longer accepted by the filters.
    Remove,
    /// A published event: its attributes, in full.
    EventPublished,
    /// Another kind of message (sighting, tag, ...): nothing to do.
    Ignored,
}

#[derive(Deserialize)]
struct UuidOnly<'a> {
    #[serde(borrow, default)]
    uuid: std::borrow::Cow<'a, str>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.touched.is_empty() && self.replaced_events.is_empty()
    }

    /// Attribute uuids the delta replaces or removes.
    pub fn touched(&self) -> usize {
        self.touched.len()
    }

    /// Adds one restSearch page (any attributes: deleted and non-IDS ones are removals).
    pub fn add_restsearch_page(&mut self, body: &[u8]) -> Result<usize, crate::misp::MispError> {
        let attributes: Vec<UuidOnly<'_>> = parse_attribute_page(body)?;
        for attribute in &attributes {
            self.touched.insert(attribute.uuid.to_ascii_lowercase());
        }
        if !attributes.is_empty() {
            self.docs.push(body.to_vec());
        }
        Ok(attributes.len())
    }

    /// Adds one MISP Kafka notification (FORMATS.md F.2). `filter` applies the configured
    /// MISP filters locally: what they refuse is removed.
    pub fn add_notification(
        &mut self,
        payload: &[u8],
        filter: &LocalFilter,
    ) -> Result<Notification, String> {
        let mut message: Map<String, Value> =
            serde_json::from_slice(payload).map_err(|err| format!("not a JSON object: {err}"))?;
        let action = message
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(Value::Object(mut attribute)) = message.remove("Attribute") {
            let uuid = attribute
                .get("uuid")
                .and_then(Value::as_str)
                .filter(|uuid| !uuid.is_empty())
                .ok_or("attribute without uuid")?
                .to_ascii_lowercase();
            self.touched.insert(uuid);
            let event = message.remove("Event");
            if !attribute.contains_key("Event") {
                if let Some(event) = event {
                    attribute.insert("Event".into(), event);
                }
            }
            let removed = matches!(action.as_str(), "delete" | "soft-delete")
                || attribute.get("deleted").is_some_and(truthy);
            if removed || !filter.accepts(&attribute) {
                return Ok(Notification::Remove);
            }
            self.push_attributes(vec![Value::Object(attribute)]);
            return Ok(Notification::Upsert);
        }
        if let Some(Value::Object(mut event)) = message.remove("Event") {
            let event_uuid = event
                .get("uuid")
                .and_then(Value::as_str)
                .filter(|uuid| !uuid.is_empty())
                .ok_or("event without uuid")?
                .to_ascii_lowercase();
            let mut attributes = take_list(&mut event, "Attribute");
            for object in take_list(&mut event, "Object") {
                if let Value::Object(mut object) = object {
                    attributes.extend(take_list(&mut object, "Attribute"));
                }
            }
            for key in ["ShadowAttribute", "RelatedEvent", "Galaxy", "EventReport"] {
                event.remove(key);
            }
            let event = Value::Object(event);
            let mut accepted = Vec::with_capacity(attributes.len());
            for attribute in attributes {
                let Value::Object(mut attribute) = attribute else {
                    continue;
                };
                if let Some(uuid) = attribute.get("uuid").and_then(Value::as_str) {
                    self.touched.insert(uuid.to_ascii_lowercase());
                }
                attribute.insert("Event".into(), event.clone());
                if filter.accepts(&attribute) {
                    accepted.push(Value::Object(attribute));
                }
            }
            self.replaced_events.insert(event_uuid);
            self.push_attributes(accepted);
            return Ok(Notification::EventPublished);
        }
        Ok(Notification::Ignored)
    }

    fn push_attributes(&mut self, attributes: Vec<Value>) {
        if attributes.is_empty() {
            return;
        }
        let body = json!({ "response": { "Attribute": attributes } });
        self.docs
            .push(serde_json::to_vec(&body).expect("a JSON value serialises"));
    }

    /// Adds `other`'s changes after this one's (later changes win).
    pub fn merge(&mut self, other: Delta) {
        // Loading keeps the first of two attributes with one uuid, so later documents go first.
        let mut docs = other.docs;
        docs.append(&mut self.docs);
        self.docs = docs;
        self.touched.extend(other.touched);
        self.replaced_events.extend(other.replaced_events);
    }

    /// The snapshot `old` with this delta applied.
    pub fn apply(
        &self,
        old: &IntelSnapshot,
        include_non_ids: bool,
        decay_threshold: Option<f64>,
    ) -> Result<IntelSnapshot, LoadError> {
        let mut builder = SnapshotBuilder::new(include_non_ids, old.warninglists_arc());
        let mut loader = Loader::for_misp(decay_threshold);
        for doc in &self.docs {
            loader.add_json(&mut builder, doc, Path::new("misp-delta"))?;
        }
        // Canonical uuids compare as bits; only the rare other ones as (lower-case) text, so
        // copying a large snapshot allocates nothing per attribute.
        let (touched_bits, touched_text) = split_uuids(&self.touched);
        let (replaced_bits, replaced_text) = split_uuids(&self.replaced_events);
        builder.add_from(old, |attribute| {
            let touched = match attribute.uuid {
                super::snapshot::UuidRef::Canonical(bits) => touched_bits.contains(&bits),
                super::snapshot::UuidRef::Text(text) => {
                    !touched_text.is_empty()
                        && touched_text.contains(text.to_ascii_lowercase().as_str())
                }
            };
            let replaced = attribute.from_misp
                && !self.replaced_events.is_empty()
                && match parse_uuid(&attribute.event.uuid) {
                    Some(bits) => replaced_bits.contains(&bits),
                    None => {
                        replaced_text.contains(attribute.event.uuid.to_ascii_lowercase().as_str())
                    }
                };
            !touched && !replaced
        });
        Ok(builder.build())
    }
}

/// Lower-case uuid strings → (canonical ones as bits, the others as text).
fn split_uuids(uuids: &HashSet<String>) -> (HashSet<u128>, HashSet<&str>) {
    let mut bits = HashSet::new();
    let mut text = HashSet::new();
    for uuid in uuids {
        match parse_uuid(uuid) {
            Some(parsed) => {
                bits.insert(parsed);
            }
            None => {
                text.insert(uuid.as_str());
            }
        }
    }
    (bits, text)
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => matches!(text.trim(), "1" | "true" | "True"),
        _ => false,
    }
}

fn take_list(object: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match object.remove(key) {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    }
}

/// The configured MISP filters (`misp.tags`, `threat_levels`, `published_only`, `types`),
/// applied locally to notifications, which MISP sends unfiltered.
#[derive(Debug, Clone, Default)]
pub struct LocalFilter {
    allow_tags: Vec<String>,
    deny_tags: Vec<String>,
    threat_levels: Vec<u8>,
    published_only: bool,
    types: Vec<String>,
}

impl LocalFilter {
    pub fn from_config(config: &Config) -> Self {
        let (deny, allow): (Vec<&String>, Vec<&String>) = config
            .misp
            .tags
            .iter()
            .partition(|tag| tag.starts_with('!'));
        LocalFilter {
            allow_tags: allow.iter().map(|tag| tag.to_lowercase()).collect(),
            deny_tags: deny
                .iter()
                .map(|tag| tag.trim_start_matches('!').to_lowercase())
                .collect(),
            threat_levels: config.misp.threat_levels.clone(),
            published_only: config.misp.published_only,
            types: config.misp.types.clone(),
        }
    }

    /// Whether an attribute (with its `Event`) passes, as restSearch would decide.
    pub fn accepts(&self, attribute: &Map<String, Value>) -> bool {
        let event = attribute.get("Event").and_then(Value::as_object);
        if !self.types.is_empty() {
            let misp_type = attribute.get("type").and_then(Value::as_str).unwrap_or("");
            if !self.types.iter().any(|t| t == misp_type) {
                return false;
            }
        }
        if self.published_only && !event.and_then(|e| e.get("published")).is_some_and(truthy) {
            return false;
        }
        if !self.threat_levels.is_empty() {
            let level = event
                .and_then(|e| e.get("threat_level_id"))
                .and_then(|v| match v {
                    Value::String(text) => text.trim().parse::<u8>().ok(),
                    Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
                    _ => None,
                });
            if !level.is_some_and(|level| self.threat_levels.contains(&level)) {
                return false;
            }
        }
        if self.allow_tags.is_empty() && self.deny_tags.is_empty() {
            return true;
        }
        let tags: Vec<String> = [Some(attribute), event]
            .into_iter()
            .flatten()
            .filter_map(|object| object.get("Tag").and_then(Value::as_array))
            .flatten()
            .filter_map(|tag| tag.get("name").and_then(Value::as_str))
            .map(str::to_lowercase)
            .collect();
        let hit = |patterns: &[String]| {
            patterns
                .iter()
                .any(|pattern| tags.iter().any(|tag| like(pattern, tag)))
        };
        if hit(&self.deny_tags) {
            return false;
        }
        self.allow_tags.is_empty() || hit(&self.allow_tags)
    }
}

/// MISP's tag match: exact, or SQL LIKE with `%` at either end.
fn like(pattern: &str, value: &str) -> bool {
    match (pattern.strip_prefix('%'), pattern.strip_suffix('%')) {
        (Some(rest), _) if rest.ends_with('%') && rest.len() > 1 => {
            value.contains(&rest[..rest.len() - 1])
        }
        (Some(rest), _) => value.ends_with(rest),
        (None, Some(rest)) => value.starts_with(rest),
        (None, None) => pattern == value,
    }
}

/// The restSearch filter of an incremental pull: everything changed since `since`
/// (deleted and non-IDS attributes included: they are removals), with event context.
pub fn incremental_filter(since: i64, config: &Config, by_event: bool) -> Value {
    let key = if by_event {
        "event_timestamp"
    } else {
        "timestamp"
    };
    let mut filter = json!({
        "deleted": [0, 1],
        "includeEventTags": 1,
        "includeContext": 1,
        "includeEventUuid": 1,
        key: since,
    });
    if let Value::Object(object) = &mut filter {
        for (key, value) in config.misp_filter() {
            object.insert(key, value);
        }
    }
    filter
}

/// What changed in one [`IntelUpdater::tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Idle,
    Changed,
    Failed,
}

/// Owns the schedule and the order of changes to one [`IntelStore`].
pub struct IntelUpdater {
    config: Config,
    store: Arc<IntelStore>,
    misp: Option<MispClient>,
    feeds: Option<FeedFetcher>,
    fingerprint: Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)>,
    last_files_check: Instant,
    /// Last successful full MISP pull.
    full_at: Option<Instant>,
    /// Last incremental pull attempt.
    incremental_at: Instant,
    /// Our clock at the start of the last successful pull: the next incremental's `since`.
    pulled_since_unix: i64,
    /// Notifications applied and not yet persisted.
    unpersisted: bool,
    last_persist: Instant,
}

impl IntelUpdater {
    pub fn new(config: Config, store: Arc<IntelStore>, misp: Option<MispClient>) -> Self {
        let feeds = if config.intel.feeds.iter().any(|feed| feed.enabled) {
            match FeedFetcher::new(&config) {
                Ok(fetcher) => Some(fetcher),
                Err(err) => {
                    tracing::error!(error = %err, "Feed client not built; intel.feeds are not fetched.");
                    None
                }
            }
        } else {
            None
        };
        IntelUpdater {
            feeds,
            fingerprint: super::sync::files_fingerprint(&config.intel_sources()),
            config,
            store,
            misp,
            last_files_check: Instant::now(),
            full_at: None,
            incremental_at: Instant::now(),
            pulled_since_unix: 0,
            unpersisted: false,
            last_persist: Instant::now(),
        }
    }

    pub fn store(&self) -> &Arc<IntelStore> {
        &self.store
    }

    /// A full build from every source (due feeds fetched first); swapped in when it passes
    /// the floor.
    pub async fn full(&mut self) -> Result<(), SyncError> {
        self.refresh_feeds().await;
        let started_unix = chrono::Utc::now().timestamp();
        let started = Instant::now();
        self.fingerprint = super::sync::files_fingerprint(&self.config.intel_sources());
        let result = super::sync::build_from_sources(
            &self.config.intel_sources(),
            self.misp.as_ref(),
            self.config.intel.min_indicators,
        )
        .await;
        let snapshot = self.record("full", started, result)?;
        if self.misp.is_some() {
            self.full_at = Some(Instant::now());
            self.incremental_at = Instant::now();
            self.pulled_since_unix = started_unix;
        }
        self.install(snapshot, true);
        Ok(())
    }

    /// Pulls what changed in MISP since the last pull and applies it. Returns the number of
    /// attributes the pull touched.
    pub async fn incremental(&mut self) -> Result<usize, SyncError> {
        let Some(client) = self.misp.clone() else {
            return Ok(0);
        };
        let started_unix = chrono::Utc::now().timestamp();
        let started = Instant::now();
        self.incremental_at = Instant::now();
        let since = (self.pulled_since_unix - PULL_OVERLAP_SECS).max(0);
        let mut delta = Delta::default();
        let pulled: Result<(), SyncError> = async {
            for by_event in [false, true] {
                let filter = incremental_filter(since, &self.config, by_event);
                client
                    .rest_search_attributes_pages(&filter, |body| delta.add_restsearch_page(body))
                    .await?;
            }
            Ok(())
        }
        .await;
        if let Err(err) = pulled {
            return self.record("incremental", started, Err(err));
        }
        self.pulled_since_unix = started_unix;
        let touched = delta.touched();
        if delta.is_empty() {
            metrics::counter!(m::INTEL_SYNC, "kind" => "incremental", "result" => "unchanged")
                .increment(1);
            tracing::debug!("Incremental MISP pull: nothing changed.");
            return Ok(0);
        }
        let result = self.build_delta(&delta);
        let snapshot = self.record("incremental", started, result)?;
        tracing::info!(
            touched,
            attributes = snapshot.len(),
            "Incremental MISP pull applied."
        );
        self.install(snapshot, true);
        Ok(touched)
    }

    /// Applies notifications (or any delta) now.
    pub fn apply(&mut self, delta: &Delta) -> Result<(), SyncError> {
        if delta.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.build_delta(delta);
        let snapshot = self.record("notification", started, result)?;
        tracing::info!(
            touched = delta.touched(),
            attributes = snapshot.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "MISP notifications applied."
        );
        self.install(snapshot, false);
        self.unpersisted = true;
        Ok(())
    }

    /// Fetches the due feeds into their cache; true when one changed.
    async fn refresh_feeds(&mut self) -> bool {
        let Some(fetcher) = self.feeds.as_mut() else {
            return false;
        };
        if fetcher.next_due() != Some(Duration::ZERO) {
            return false;
        }
        let refresh = fetcher.refresh(false).await;
        for error in &refresh.errors {
            tracing::warn!(error = %error, "Feed not refreshed; its last good copy stays.");
        }
        refresh.changed
    }

    /// Files changed: reload them (and the cached feeds), keep the MISP part as it is.
    pub fn reload_local(&mut self) -> Result<(), SyncError> {
        let started = Instant::now();
        let sources = self.config.intel_sources();
        self.fingerprint = super::sync::files_fingerprint(&sources);
        let old = self.store.load_full();
        let result = block_in_place(|| -> Result<IntelSnapshot, SyncError> {
            let warninglists = match &sources.warninglists_dir {
                Some(dir) => Some(Arc::new(
                    super::Warninglists::load_dir(dir).map_err(IntelError::from)?,
                )),
                None => None,
            };
            let mut builder = SnapshotBuilder::new(sources.include_non_ids, warninglists);
            sources.load_local(&mut builder, &mut Loader::default())?;
            builder.add_from(&old, |attribute: &Attribute<'_>| attribute.from_misp);
            Ok(builder.build())
        })
        .and_then(|snapshot| self.check_floor(snapshot));
        let snapshot = self.record("files", started, result)?;
        tracing::info!(
            attributes = snapshot.len(),
            "Indicator files reloaded; MISP attributes kept."
        );
        self.install(snapshot, true);
        Ok(())
    }

    fn build_delta(&self, delta: &Delta) -> Result<IntelSnapshot, SyncError> {
        let old = self.store.load_full();
        let snapshot = block_in_place(|| {
            delta.apply(
                &old,
                self.config.intel.include_non_ids,
                self.config.misp.decay_threshold,
            )
        })
        .map_err(IntelError::from)?;
        self.check_floor(snapshot)
    }

    fn check_floor(&self, snapshot: IntelSnapshot) -> Result<IntelSnapshot, SyncError> {
        super::sync::check_floor(snapshot, self.config.intel.min_indicators)
    }

    /// Counts and logs an outcome.
    fn record<T>(
        &self,
        kind: &'static str,
        started: Instant,
        result: Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        match result {
            Ok(value) => {
                metrics::counter!(m::INTEL_SYNC, "kind" => kind, "result" => "success")
                    .increment(1);
                tracing::debug!(
                    kind,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Indicator update built."
                );
                Ok(value)
            }
            Err(err) => {
                metrics::counter!(m::INTEL_SYNC, "kind" => kind, "result" => "failure")
                    .increment(1);
                metrics::counter!(m::ERRORS, "stage" => "sync", "error_code" => err.code())
                    .increment(1);
                tracing::warn!(kind, error = %err, "Indicator update failed; keeping the previous indicator set.");
                Err(err)
            }
        }
    }

    fn install(&mut self, snapshot: IntelSnapshot, persist_now: bool) {
        let stats = snapshot.stats().clone();
        if persist_now {
            self.persist(&snapshot);
        }
        self.store.swap(snapshot);
        m::record_snapshot(&stats, self.store.last_success_unix());
    }

    fn persist(&mut self, snapshot: &IntelSnapshot) {
        if let Some(path) = &self.config.intel.snapshot_path {
            if let Err(err) = block_in_place(|| persist(snapshot, path)) {
                tracing::warn!(error = %err, "Indicator set not persisted.");
            }
        }
        self.unpersisted = false;
        self.last_persist = Instant::now();
    }

    /// Does whatever is due (files changed, full or incremental pull, pending persist).
    pub async fn tick(&mut self) -> Step {
        let mut step = Step::Idle;
        let mut mark = |ok: bool| {
            step = match (step, ok) {
                (Step::Failed, _) | (_, false) => Step::Failed,
                _ => Step::Changed,
            };
        };
        let files_period = Duration::from_secs(self.config.intel.reload_interval_secs.max(1));
        if self.last_files_check.elapsed() >= files_period {
            self.last_files_check = Instant::now();
            let now = super::sync::files_fingerprint(&self.config.intel_sources());
            if now != self.fingerprint {
                tracing::info!("Indicator files changed; reloading.");
                mark(self.reload_local().is_ok());
            }
        }
        if self.refresh_feeds().await {
            tracing::info!("A feed changed; reloading files and feeds.");
            mark(self.reload_local().is_ok());
        }
        if self.misp.is_some() {
            let full_period = Duration::from_secs(self.config.misp.full_sync_interval_secs.max(1));
            let incremental_period =
                Duration::from_secs(self.config.misp.sync_interval_secs.max(1));
            let full_due = self.full_at.is_none_or(|at| at.elapsed() >= full_period);
            if full_due && self.incremental_at.elapsed() >= incremental_period.min(full_period) {
                // Also the retry path after a failed first pull, at the incremental pace.
                self.incremental_at = Instant::now();
                mark(self.full().await.is_ok());
            } else if !full_due && self.incremental_at.elapsed() >= incremental_period {
                match self.incremental().await {
                    Ok(0) => {}
                    Ok(_) => mark(true),
                    Err(_) => mark(false),
                }
            }
        }
        if self.unpersisted && self.last_persist.elapsed() >= PERSIST_EVERY {
            let snapshot = self.store.load_full();
            self.persist(&snapshot);
        }
        step
    }

    /// Until `shutdown`: ticks, and applies notification deltas from `notifications` as
    /// they come (those arriving within `apply_delay_ms` of each other in one rebuild).
    /// `on_change` runs after every swap (the sync role publishes the topic diff there).
    pub async fn run(
        mut self,
        mut notifications: Option<tokio::sync::mpsc::Receiver<Delta>>,
        shutdown: Arc<AtomicBool>,
        mut on_change: impl FnMut(&IntelStore),
    ) {
        let delay = Duration::from_millis(self.config.misp.notifications.apply_delay_ms);
        // A rebuild of a large set costs real CPU: batch for at least twice the last
        // rebuild's time, so notifications never take more than a third of a core.
        let mut last_cost = Duration::ZERO;
        while !shutdown.load(Ordering::Acquire) {
            let received = match notifications.as_mut() {
                Some(rx) => tokio::time::timeout(Duration::from_millis(500), rx.recv())
                    .await
                    .ok()
                    .flatten(),
                None => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    None
                }
            };
            if let (Some(mut delta), Some(rx)) = (received, notifications.as_mut()) {
                let deadline = tokio::time::Instant::now() + delay.max(last_cost * 2);
                while let Ok(Some(more)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    delta.merge(more);
                }
                let started = Instant::now();
                let applied = self.apply(&delta).is_ok();
                last_cost = started.elapsed();
                if applied {
                    on_change(&self.store);
                }
            }
            if self.tick().await == Step::Changed {
                on_change(&self.store);
            }
        }
        if self.unpersisted {
            let snapshot = self.store.load_full();
            self.persist(&snapshot);
        }
    }
}

/// Runs CPU-heavy work without starving the runtime's other tasks.
fn block_in_place<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"9","uuid":"5e000000-0000-4000-8000-000000000009","info":"notified event","threat_level_id":"1","published":true,"Orgc":{"name":"CIRCL"},"Tag":[{"name":"tlp:green"}]}"#;

    fn attribute(n: u32, value: &str, misp_type: &str, action: &str) -> Vec<u8> {
        format!(
            r#"{{"Attribute":{{"id":"{n}","event_id":"9","category":"Network activity","type":"{misp_type}","value":"{value}","to_ids":true,"uuid":"5a000000-0000-4000-8000-{n:012}","timestamp":"1764000000","deleted":false}},"Event":{EVENT},"action":"{action}"}}"#
        )
        .into_bytes()
    }

    fn file_snapshot() -> IntelSnapshot {
        let mut builder = SnapshotBuilder::new(false, None);
        Loader::default().add_freetext(
            &mut builder,
            "203.0.113.7\nfile-only.example\n",
            Path::new("local.txt"),
        );
        builder.build()
    }

    fn hits_ip(snapshot: &IntelSnapshot, ip: &str) -> Vec<String> {
        let mut ids = Vec::new();
        snapshot.match_ip(ip.parse().unwrap(), &mut |id| ids.push(id));
        ids.into_iter()
            .map(|id| snapshot.attribute(id).value.to_string())
            .collect()
    }

    fn hits_host(snapshot: &IntelSnapshot, host: &str) -> usize {
        let mut hits = 0;
        snapshot.match_host(host, &mut |_| hits += 1);
        hits
    }

    fn apply(old: &IntelSnapshot, messages: &[Vec<u8>], filter: &LocalFilter) -> IntelSnapshot {
        let mut delta = Delta::default();
        for message in messages {
            delta.add_notification(message, filter).unwrap();
        }
        delta.apply(old, false, None).unwrap()
    }

    #[test]
    fn attribute_add_edit_and_delete_notifications() {
        let filter = LocalFilter::default();
        let base = file_snapshot();
        let added = apply(
            &base,
            &[attribute(1, "198.51.100.1", "ip-dst", "add")],
            &filter,
        );
        assert_eq!(added.len(), 3, "two file values plus the notified one");
        assert_eq!(hits_ip(&added, "198.51.100.1"), ["198.51.100.1"]);
        let id = {
            let mut ids = Vec::new();
            added.match_ip("198.51.100.1".parse().unwrap(), &mut |id| ids.push(id));
            ids[0]
        };
        let attribute_view = added.attribute(id);
        assert!(attribute_view.from_misp);
        assert_eq!(attribute_view.event.info.as_ref(), "notified event");
        assert!(attribute_view.tags().any(|tag| tag == "tlp:green"));

        // An edit replaces the value: the old one stops matching.
        let edited = apply(
            &added,
            &[attribute(1, "198.51.100.2", "ip-dst", "edit")],
            &filter,
        );
        assert_eq!(edited.len(), 3);
        assert!(hits_ip(&edited, "198.51.100.1").is_empty());
        assert_eq!(hits_ip(&edited, "198.51.100.2"), ["198.51.100.2"]);

        // Soft delete and delete remove; the file attributes stay.
        for action in ["soft-delete", "delete"] {
            let removed = apply(
                &edited,
                &[attribute(1, "198.51.100.2", "ip-dst", action)],
                &filter,
            );
            assert_eq!(removed.len(), 2, "{action}");
            assert!(hits_ip(&removed, "198.51.100.2").is_empty(), "{action}");
            assert_eq!(hits_ip(&removed, "203.0.113.7"), ["203.0.113.7"]);
            assert!(!removed.attribute(0).from_misp);
        }
    }

    #[test]
    fn to_ids_flip_and_deleted_flag_remove() {
        let filter = LocalFilter::default();
        let added = apply(
            &file_snapshot(),
            &[attribute(2, "evil.example", "domain", "add")],
            &filter,
        );
        assert_eq!(hits_host(&added, "evil.example"), 1);
        let flipped = String::from_utf8(attribute(2, "evil.example", "domain", "edit"))
            .unwrap()
            .replace("\"to_ids\":true", "\"to_ids\":false");
        let after = apply(&added, &[flipped.into_bytes()], &filter);
        assert_eq!(
            hits_host(&after, "evil.example"),
            0,
            "to_ids=false is dropped"
        );
        let deleted = String::from_utf8(attribute(2, "evil.example", "domain", "edit"))
            .unwrap()
            .replace("\"deleted\":false", "\"deleted\":\"1\"");
        let after = apply(&added, &[deleted.into_bytes()], &filter);
        assert_eq!(
            hits_host(&after, "evil.example"),
            0,
            "deleted flag as a string"
        );
    }

    #[test]
    fn event_publish_replaces_the_events_misp_attributes() {
        let filter = LocalFilter::default();
        let base = apply(
            &file_snapshot(),
            &[
                attribute(3, "198.51.100.3", "ip-dst", "add"),
                attribute(4, "198.51.100.4", "ip-dst", "add"),
            ],
            &filter,
        );
        assert_eq!(base.len(), 4);
        // The published event now holds attribute 3 (changed) and a new object attribute;
        // attribute 4 left the event.
        let publish = r#"{"Event":{"id":"9","uuid":"5E000000-0000-4000-8000-000000000009","info":"notified event v2","threat_level_id":"1","published":true,"Orgc":{"name":"CIRCL"},"Tag":[],
              "Attribute":[{"type":"ip-dst","category":"Network activity","value":"198.51.100.33","to_ids":true,"uuid":"5a000000-0000-4000-8000-000000000003","timestamp":"1764000100"}],
              "Object":[{"name":"domain-ip","Attribute":[{"type":"domain","category":"Network activity","value":"objects.example","to_ids":"1","uuid":"5a000000-0000-4000-8000-000000000005","timestamp":1764000100}]}],
              "RelatedEvent":[],"Galaxy":[]},"action":"publish"}"#;
        let mut delta = Delta::default();
        assert_eq!(
            delta.add_notification(publish.as_bytes(), &filter).unwrap(),
            Notification::EventPublished
        );
        let after = delta.apply(&base, false, None).unwrap();
        assert_eq!(after.len(), 4, "2 file values + 2 attributes of the event");
        assert!(hits_ip(&after, "198.51.100.3").is_empty());
        assert!(hits_ip(&after, "198.51.100.4").is_empty(), "left the event");
        assert_eq!(hits_ip(&after, "198.51.100.33"), ["198.51.100.33"]);
        assert_eq!(
            hits_host(&after, "objects.example"),
            1,
            "object attributes count"
        );
    }

    #[test]
    fn filters_apply_to_notifications_and_other_kinds_are_ignored() {
        let config: Config = {
            let mut config = Config::default();
            config.misp.tags = vec!["tlp:%".into(), "!tlp:red".into()];
            config.misp.threat_levels = vec![1, 2];
            config
        };
        let filter = LocalFilter::from_config(&config);
        let green = apply(
            &file_snapshot(),
            &[attribute(6, "198.51.100.6", "ip-dst", "add")],
            &filter,
        );
        assert_eq!(
            hits_ip(&green, "198.51.100.6").len(),
            1,
            "tlp:green passes tlp:%"
        );
        let red = String::from_utf8(attribute(6, "198.51.100.6", "ip-dst", "edit"))
            .unwrap()
            .replace("tlp:green", "tlp:red");
        let after = apply(&green, &[red.into_bytes()], &filter);
        assert!(
            hits_ip(&after, "198.51.100.6").is_empty(),
            "tlp:red now: removed"
        );
        let low = String::from_utf8(attribute(7, "198.51.100.7", "ip-dst", "add"))
            .unwrap()
            .replace("\"threat_level_id\":\"1\"", "\"threat_level_id\":\"3\"");
        let after = apply(&green, &[low.into_bytes()], &filter);
        assert!(
            hits_ip(&after, "198.51.100.7").is_empty(),
            "threat level 3 filtered"
        );

        let mut delta = Delta::default();
        let sighting = br#"{"Sighting":{"id":"1","attribute_id":"1"},"action":"add"}"#;
        assert_eq!(
            delta.add_notification(sighting, &filter).unwrap(),
            Notification::Ignored
        );
        assert!(delta.is_empty());
        assert!(delta.add_notification(b"not json", &filter).is_err());
        assert!(delta
            .add_notification(br#"{"Attribute":{"value":"x"},"action":"add"}"#, &filter)
            .unwrap_err()
            .contains("uuid"));
    }

    #[test]
    fn restsearch_pages_and_decay_threshold() {
        let page = br#"{"response":{"Attribute":[
            {"uuid":"5a000000-0000-4000-8000-000000000010","type":"ip-dst","category":"Network activity","value":"198.51.100.10","to_ids":true,"timestamp":"1","decay_score":[{"score":12.5,"decayed":false}]},
            {"uuid":"5a000000-0000-4000-8000-000000000011","type":"ip-dst","category":"Network activity","value":"198.51.100.11","to_ids":true,"timestamp":"1","decay_score":[{"score":"80.1","decayed":false}]},
            {"uuid":"5a000000-0000-4000-8000-000000000012","type":"ip-dst","category":"Network activity","value":"198.51.100.12","to_ids":true,"timestamp":"1","deleted":true}]}}"#;
        let mut delta = Delta::default();
        assert_eq!(delta.add_restsearch_page(page).unwrap(), 3);
        assert_eq!(delta.touched(), 3);
        let after = delta.apply(&file_snapshot(), false, Some(30.0)).unwrap();
        assert!(
            hits_ip(&after, "198.51.100.10").is_empty(),
            "decayed under 30"
        );
        assert_eq!(hits_ip(&after, "198.51.100.11").len(), 1);
        assert!(hits_ip(&after, "198.51.100.12").is_empty(), "deleted");
        assert_eq!(after.stats().skipped_decayed, 1);
        let no_threshold = delta.apply(&file_snapshot(), false, None).unwrap();
        assert_eq!(hits_ip(&no_threshold, "198.51.100.10").len(), 1);
    }

    #[test]
    fn later_changes_win_when_merged() {
        let filter = LocalFilter::default();
        let mut first = Delta::default();
        first
            .add_notification(&attribute(8, "198.51.100.8", "ip-dst", "add"), &filter)
            .unwrap();
        let mut second = Delta::default();
        second
            .add_notification(&attribute(8, "198.51.100.80", "ip-dst", "edit"), &filter)
            .unwrap();
        first.merge(second);
        let after = first.apply(&file_snapshot(), false, None).unwrap();
        assert!(hits_ip(&after, "198.51.100.8").is_empty());
        assert_eq!(hits_ip(&after, "198.51.100.80").len(), 1);
    }

    #[test]
    fn non_canonical_uuids_are_replaced_too() {
        let filter = LocalFilter::default();
        let odd = |value: &str, action: &str| {
            String::from_utf8(attribute(9, value, "ip-dst", action))
                .unwrap()
                .replace("5a000000-0000-4000-8000-000000000009", "Legacy-ID-9")
                .into_bytes()
        };
        let added = apply(&file_snapshot(), &[odd("198.51.100.9", "add")], &filter);
        assert_eq!(hits_ip(&added, "198.51.100.9").len(), 1);
        let edited = apply(&added, &[odd("198.51.100.90", "edit")], &filter);
        assert!(hits_ip(&edited, "198.51.100.9").is_empty());
        assert_eq!(hits_ip(&edited, "198.51.100.90").len(), 1);
        assert_eq!(edited.len(), 3, "the file attributes stay");
    }

    #[test]
    fn misp_tag_patterns() {
        assert!(like("tlp:%", "tlp:green"));
        assert!(!like("tlp:%", "pap:green"));
        assert!(like("%green", "tlp:green"));
        assert!(like("%:gr%", "tlp:green"));
        assert!(like("tlp:red", "tlp:red"));
        assert!(!like("tlp:red", "tlp:redx"));
    }
}
