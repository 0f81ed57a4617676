//! Live look-ups for incident response: a MISP restSearch on a local miss, behind a moka
//! cache (positive and negative TTL, one request in flight per value), a concurrency limit
//! and a circuit breaker, so a slow or dead MISP never piles up requests.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::Value;

use super::MispClient;
use crate::telemetry::metrics as m;

/// Live look-up settings.
#[derive(Debug, Clone)]
pub struct LiveLookupOptions {
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    pub max_concurrent: usize,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open.
    pub breaker_cooldown: Duration,
    pub include_non_ids: bool,
    pub reference_base: Option<String>,
    /// The configured restSearch filters (`misp.tags`, ...), so a live answer never holds
    /// what the sync would leave out.
    pub filter: serde_json::Map<String, Value>,
}

impl Default for LiveLookupOptions {
    fn default() -> Self {
        LiveLookupOptions {
            positive_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(300),
            max_concurrent: 4,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            include_non_ids: false,
            reference_base: None,
            filter: serde_json::Map::new(),
        }
    }
}

/// MISP's attributes for one value, as restSearch returned them (with their Event).
#[derive(Clone)]
struct Answer {
    attributes: Arc<Vec<Value>>,
}

pub struct LiveLookup {
    client: MispClient,
    options: LiveLookupOptions,
    positive: Cache<String, Answer>,
    negative: Cache<String, ()>,
    permits: tokio::sync::Semaphore,
    failures: AtomicU32,
    open_until_ms: AtomicU64,
}

impl LiveLookup {
    pub fn new(client: MispClient, options: LiveLookupOptions) -> Self {
        LiveLookup {
            client,
            positive: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(options.positive_ttl)
                .build(),
            negative: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(options.negative_ttl)
                .build(),
            permits: tokio::sync::Semaphore::new(options.max_concurrent.max(1)),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            options,
        }
    }

    fn now_ms() -> u64 {
        chrono::Utc::now().timestamp_millis().max(0) as u64
    }

    /// Enrichment objects MISP knows for `value` (empty when unknown). Errors are short texts.
    pub async fn lookup(&self, value: &str) -> Result<Vec<Value>, String> {
        let attributes = self.attributes(value).await?;
        if attributes.is_empty() {
            return Ok(Vec::new());
        }
        let snapshot = attributes_snapshot(&attributes, self.options.include_non_ids, None)
            .map_err(|err| err.to_string())?;
        Ok(crate::commands::lookup::lookup_local(
            &snapshot,
            value.trim(),
            self.options.reference_base.as_deref(),
        ))
    }

    /// MISP's attributes for `value` (restSearch objects with their Event; empty when
    /// unknown), from the cache when fresh.
    pub async fn attributes(&self, value: &str) -> Result<Arc<Vec<Value>>, String> {
        let key = value.trim().to_string();
        if self.negative.contains_key(&key) {
            metrics::counter!(m::LOOKUP_CACHE_HITS).increment(1);
            return Ok(Arc::new(Vec::new()));
        }
        if Self::now_ms() < self.open_until_ms.load(Ordering::Acquire) {
            return Err("misp circuit breaker open after repeated failures".to_string());
        }
        let mut missed = false;
        let result = self
            .positive
            .try_get_with(key.clone(), async {
                missed = true;
                metrics::counter!(m::LOOKUP_CACHE_MISSES).increment(1);
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|err| err.to_string())?;
                self.fetch(&key).await.map(|attributes| Answer {
                    attributes: Arc::new(attributes),
                })
            })
            .await;
        if !missed {
            metrics::counter!(m::LOOKUP_CACHE_HITS).increment(1);
        }
        match result {
            Ok(answer) => {
                self.failures.store(0, Ordering::Release);
                if answer.attributes.is_empty() {
                    self.positive.invalidate(&key).await;
                    self.negative.insert(key, ()).await;
                }
                Ok(answer.attributes)
            }
            Err(err) => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if failures >= self.options.breaker_threshold {
                    self.open_until_ms.store(
                        Self::now_ms() + self.options.breaker_cooldown.as_millis() as u64,
                        Ordering::Release,
                    );
                    tracing::warn!(failures, "MISP look-ups failing; circuit breaker open.");
                }
                Err(err.to_string())
            }
        }
    }

    async fn fetch(&self, value: &str) -> Result<Vec<Value>, String> {
        let mut filter = crate::intel::sync::with_filters(
            crate::intel::sync::full_sync_filter(self.options.include_non_ids),
            &self.options.filter,
        );
        filter["value"] = Value::String(value.to_string());
        self.client
            .rest_search_attributes(&filter)
            .await
            .map_err(|err| err.to_string())
    }
}

/// A snapshot of restSearch attributes (a live answer), optionally on top of the attributes
/// of `base` that `keep` names.
pub fn attributes_snapshot(
    attributes: &[Value],
    include_non_ids: bool,
    base: Option<(&crate::intel::IntelSnapshot, &dyn Fn(u32) -> bool)>,
) -> Result<crate::intel::IntelSnapshot, crate::intel::LoadError> {
    let mut builder = crate::intel::SnapshotBuilder::new(
        include_non_ids,
        base.and_then(|(snapshot, _)| snapshot.warninglists_arc()),
    );
    let body = serde_json::to_vec(&serde_json::json!({ "response": { "Attribute": attributes } }))
        .expect("JSON values serialise");
    crate::intel::Loader::for_misp(None).add_json(
        &mut builder,
        &body,
        std::path::Path::new("misp-live"),
    )?;
    if let Some((snapshot, keep)) = base {
        builder.add_from(snapshot, |attribute| keep(attribute.id));
    }
    Ok(builder.build())
}

/// Live MISP queries from the pipeline (`misp.live_query`): for alerts at or above a rule
/// level, the observables the local set missed are asked about, all at once, within a time
/// budget. A query still running when the budget ends keeps running and fills the cache for
/// the next alert: a partition never waits longer than the budget.
pub struct AlertLiveQuery {
    lookup: Arc<LiveLookup>,
    handle: tokio::runtime::Handle,
    min_rule_level: u8,
    budget: Duration,
    max_values: usize,
}

impl AlertLiveQuery {
    pub fn new(
        lookup: Arc<LiveLookup>,
        handle: tokio::runtime::Handle,
        config: &crate::config::LiveQueryConfig,
    ) -> Self {
        AlertLiveQuery {
            lookup,
            handle,
            min_rule_level: config.min_rule_level,
            budget: Duration::from_millis(config.budget_ms),
            max_values: config.max_values,
        }
    }

    /// A snapshot of the alert's local hits plus what MISP answered within the budget for
    /// its unmatched observables, to process the alert again with; `None` when the alert is
    /// below the level, nothing was asked, or nothing found. Called from pipeline worker
    /// threads (not from the runtime).
    pub fn query(
        &self,
        extraction: &crate::pipeline::extract::Extraction,
        hits: &[crate::pipeline::matcher::Hit],
        snapshot: &crate::intel::IntelSnapshot,
    ) -> Option<crate::intel::IntelSnapshot> {
        if extraction.rule_level.unwrap_or(0) < self.min_rule_level {
            return None;
        }
        let mut values: Vec<String> = Vec::new();
        for (idx, _, _) in super::sharing::unmatched_candidates(extraction, hits, snapshot) {
            let value = extraction.get(idx).value;
            if !values.iter().any(|v| v == value) {
                values.push(value.to_string());
            }
            if values.len() >= self.max_values {
                break;
            }
        }
        if values.is_empty() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + self.budget;
        let tasks: Vec<_> = values
            .into_iter()
            .map(|value| {
                let lookup = self.lookup.clone();
                self.handle
                    .spawn(async move { lookup.attributes(&value).await })
            })
            .collect();
        let answers = self.handle.block_on(async move {
            let mut answers = Vec::with_capacity(tasks.len());
            for task in tasks {
                answers.push(tokio::time::timeout_at(deadline, task).await);
            }
            answers
        });
        let mut found = Vec::new();
        for answer in answers {
            let result = match answer {
                Err(_) => "timeout",
                Ok(Err(_)) | Ok(Ok(Err(_))) => "error",
                Ok(Ok(Ok(attributes))) if attributes.is_empty() => "unknown",
                Ok(Ok(Ok(attributes))) => {
                    found.extend(attributes.iter().cloned());
                    "found"
                }
            };
            metrics::counter!(m::LIVE_QUERIES, "result" => result).increment(1);
        }
        if found.is_empty() {
            return None;
        }
        let keep = |id: u32| hits.iter().any(|hit| hit.attribute == id);
        match attributes_snapshot(
            &found,
            self.lookup.options.include_non_ids,
            Some((snapshot, &keep)),
        ) {
            Ok(combined) => Some(combined),
            Err(err) => {
                tracing::warn!(error = %err, "Live MISP answer not usable.");
                None
            }
        }
    }
}
