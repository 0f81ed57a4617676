//! Sightings: every matched attribute is reported back to MISP (`POST /sightings/add`),
//! batched, de-duplicated per value per window. Best effort: a failed batch is logged and
//! counted, never retried into an unbounded backlog, and never slows the pipeline (the
//! workers only `try_send` into a bounded channel).

use std::collections::BTreeSet;
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::mpsc;

use super::MispClient;
use crate::telemetry::metrics as m;

/// How long a value is not sighted again after it was.
pub const SIGHTING_WINDOW: Duration = Duration::from_secs(60);
/// Largest batch sent in one request.
pub const MAX_BATCH: usize = 500;

/// The workers' end: cheap to clone, never blocks.
#[derive(Clone)]
pub struct SightingsSender {
    tx: mpsc::Sender<String>,
    recent: Cache<String, ()>,
}

impl SightingsSender {
    /// Queues a matched value unless it was sighted within the window.
    pub fn sight(&self, value: &str) {
        if self.recent.contains_key(value) {
            return;
        }
        self.recent.insert(value.to_string(), ());
        if self.tx.try_send(value.to_string()).is_err() {
            metrics::counter!(m::ERRORS, "stage" => "sightings", "error_code" => "queue_full")
                .increment(1);
        }
    }
}

/// Creates the channel; run the returned future on the runtime.
pub fn sightings(
    client: MispClient,
    source: String,
    interval: Duration,
) -> (SightingsSender, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(100_000);
    let sender = SightingsSender {
        tx,
        recent: Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(SIGHTING_WINDOW)
            .build(),
    };
    (sender, run(client, source, interval, rx))
}

async fn run(
    client: MispClient,
    source: String,
    interval: Duration,
    mut rx: mpsc::Receiver<String>,
) {
    let mut batch: BTreeSet<String> = BTreeSet::new();
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            value = rx.recv() => match value {
                Some(value) => {
                    batch.insert(value);
                    if batch.len() < MAX_BATCH {
                        continue;
                    }
                }
                None => {
                    flush(&client, &source, &mut batch).await;
                    return;
                }
            },
            _ = ticker.tick() => {}
        }
        flush(&client, &source, &mut batch).await;
    }
}

async fn flush(client: &MispClient, source: &str, batch: &mut BTreeSet<String>) {
    if batch.is_empty() {
        return;
    }
    let values: Vec<String> = std::mem::take(batch).into_iter().collect();
    match client.add_sightings(&values, source, None).await {
        Ok(()) => metrics::counter!(m::SIGHTINGS_SENT).increment(values.len() as u64),
        Err(err) => {
            metrics::counter!(m::ERRORS, "stage" => "sightings", "error_code" => err.code())
                .increment(1);
            tracing::warn!(error = %err, values = values.len(), "Sightings not sent.");
        }
    }
}
