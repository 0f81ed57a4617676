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
        }
    }
}

#[derive(Clone)]
struct Answer {
    found: Arc<Vec<Value>>,
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
        let key = value.trim().to_string();
        if self.negative.contains_key(&key) {
            metrics::counter!(m::LOOKUP_CACHE_HITS).increment(1);
            return Ok(Vec::new());
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
                self.fetch(&key).await.map(|found| Answer {
                    found: Arc::new(found),
                })
            })
            .await;
        if !missed {
            metrics::counter!(m::LOOKUP_CACHE_HITS).increment(1);
        }
        match result {
            Ok(answer) => {
                self.failures.store(0, Ordering::Release);
                if answer.found.is_empty() {
                    self.positive.invalidate(&key).await;
                    self.negative.insert(key, ()).await;
                }
                Ok(answer.found.as_ref().clone())
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
        let mut filter = crate::intel::sync::full_sync_filter(self.options.include_non_ids);
        filter["value"] = Value::String(value.to_string());
        let mut builder = crate::intel::SnapshotBuilder::new(self.options.include_non_ids, None);
        let mut loader = crate::intel::Loader::default();
        crate::intel::sync::fetch_misp(&self.client, &filter, &mut builder, &mut loader)
            .await
            .map_err(|err| err.to_string())?;
        let snapshot = builder.build();
        Ok(crate::commands::lookup::lookup_local(
            &snapshot,
            value,
            self.options.reference_base.as_deref(),
        ))
    }
}
