//! The compacted indicator topic for scale-out (`topics.indicators`).
//!
//! - `wazuh-misp sync` (one replica) builds the indicator set from files, feeds and MISP and
//!   writes it: key = attribute uuid, value = the attribute as MISP restSearch JSON (with its
//!   Event and Tags), a tombstone (null value) for every uuid that disappeared. Unchanged
//!   attributes are not re-sent.
//! - processors with `intel.source = "topic"` read the topic from the beginning, build their
//!   snapshot once caught up, and rebuild when new records arrive — without calling MISP.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::intel::{IntelSnapshot, IntelStore, Loader, SnapshotBuilder};
use crate::telemetry::metrics as m;

/// The records of a snapshot, by attribute uuid.
pub fn snapshot_records(snapshot: &IntelSnapshot) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::with_capacity(snapshot.len());
    let mut buffer = Vec::new();
    crate::intel::sync::write_restsearch(snapshot, &mut buffer).ok();
    // Re-split the single response into one record per attribute.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&buffer) {
        if let Some(list) = value
            .pointer("/response/Attribute")
            .and_then(|v| v.as_array())
        {
            for record in list {
                let uuid = record
                    .get("uuid")
                    .and_then(|u| u.as_str())
                    .unwrap_or_default()
                    .to_string();
                if let Ok(bytes) = serde_json::to_vec(record) {
                    out.insert(uuid, bytes);
                }
            }
        }
    }
    out
}

/// Reads the whole topic (latest value per key, tombstones applied) up to its current end.
pub fn read_topic(config: &Config, timeout: Duration) -> Result<HashMap<String, Vec<u8>>, String> {
    let mut records = HashMap::new();
    let consumer = follower_consumer(config)?;
    let ends = assign_from_beginning(&consumer, &config.topics.indicators, timeout)?;
    let deadline = Instant::now() + timeout;
    let mut positions: HashMap<i32, i64> = HashMap::new();
    while !caught_up(&ends, &positions) {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out reading topic {}",
                config.topics.indicators
            ));
        }
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            let message = result.map_err(|err| err.to_string())?;
            apply(&mut records, &message);
            positions.insert(message.partition(), message.offset() + 1);
        }
    }
    Ok(records)
}

fn apply(records: &mut HashMap<String, Vec<u8>>, message: &rdkafka::message::BorrowedMessage<'_>) {
    let Some(key) = message
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned())
    else {
        return;
    };
    match message.payload() {
        Some(payload) if !payload.is_empty() => {
            records.insert(key, payload.to_vec());
        }
        _ => {
            records.remove(&key);
        }
    }
}

fn caught_up(ends: &HashMap<i32, i64>, positions: &HashMap<i32, i64>) -> bool {
    ends.iter()
        .all(|(partition, end)| *end <= 0 || positions.get(partition).copied().unwrap_or(0) >= *end)
}

fn follower_consumer(config: &Config) -> Result<BaseConsumer, String> {
    let mut client: ClientConfig =
        crate::kafka::pipeline::base_client_config(config).map_err(|e| e.to_string())?;
    client.set(
        "group.id",
        format!(
            "{}-indicators-{}",
            config.kafka.group_id,
            std::process::id()
        ),
    );
    client.set("enable.auto.commit", "false");
    client.set("enable.partition.eof", "false");
    client
        .create()
        .map_err(|err| format!("indicator consumer: {err}"))
}

/// Assigns every partition from the beginning; returns each partition's end offset.
fn assign_from_beginning(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, String> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|err| format!("metadata of {topic}: {err}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions (does it exist?)"));
    }
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|err| format!("watermarks of {topic}/{partition}: {err}"))?;
        ends.insert(partition, high);
        tpl.add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|err| err.to_string())?;
    }
    consumer.assign(&tpl).map_err(|err| err.to_string())?;
    Ok(ends)
}

/// Builds a snapshot from changelog records.
pub fn build_from_records(
    records: &HashMap<String, Vec<u8>>,
    config: &Config,
) -> Result<IntelSnapshot, String> {
    let warninglists = match &config.intel.warninglists_dir {
        Some(dir) => Some(Arc::new(
            crate::intel::Warninglists::load_dir(dir).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let mut body = Vec::with_capacity(records.values().map(Vec::len).sum::<usize>() + 64);
    body.extend_from_slice(b"{\"response\":{\"Attribute\":[");
    for (idx, record) in records.values().enumerate() {
        if idx > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record);
    }
    body.extend_from_slice(b"]}}");
    let mut builder = SnapshotBuilder::new(config.intel.include_non_ids, warninglists);
    Loader::default()
        .add_json(
            &mut builder,
            &body,
            std::path::Path::new(&config.topics.indicators),
        )
        .map_err(|e| e.to_string())?;
    Ok(builder.build())
}

/// Publishes the difference between `previous` and `next`; returns (upserts, tombstones).
pub fn publish_diff(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    previous: &HashMap<String, Vec<u8>>,
    next: &HashMap<String, Vec<u8>>,
) -> Result<(usize, usize), String> {
    let mut upserts = 0;
    let mut tombstones = 0;
    for (uuid, record) in next {
        if previous.get(uuid) != Some(record) {
            send_retrying(
                producer,
                BaseRecord::to(topic)
                    .key(uuid.as_bytes())
                    .payload(record.as_slice()),
            )?;
            upserts += 1;
        }
    }
    for uuid in previous.keys() {
        if !next.contains_key(uuid) {
            send_retrying(
                producer,
                BaseRecord::<[u8], [u8]>::to(topic).key(uuid.as_bytes()),
            )?;
            tombstones += 1;
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|err| format!("flush to {topic}: {err}"))?;
    Ok((upserts, tombstones))
}

fn send_retrying(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), String> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                returned,
            )) => {
                record = returned;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((err, _)) => return Err(err.to_string()),
        }
    }
}

/// `wazuh-misp sync`: the scale-out intel role.
pub fn run_sync(config: Config, once: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let metrics_handle = crate::server::install_recorder()?;
    m::describe(&config.topics.input);
    let store = Arc::new(IntelStore::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    if config.server.enabled && !once {
        let state = crate::server::ServerState {
            metrics: metrics_handle,
            store: store.clone(),
            has_assignment: Arc::new(|| true),
            reference_base: config.misp.url.clone(),
            lookup: None,
            shutting_down: shutdown.clone(),
        };
        runtime.block_on(crate::server::serve(
            &config.server.listen,
            state,
            std::future::pending(),
        ))?;
    }
    let producer: ThreadedProducer<DefaultProducerContext> =
        crate::kafka::pipeline::producer_config(&Config {
            kafka: crate::config::KafkaConfig {
                exactly_once: false,
                ..config.kafka.clone()
            },
            ..config.clone()
        })?
        .create()?;
    let mut published = read_topic(&config, Duration::from_secs(60)).map_err(anyhow::Error::msg)?;
    tracing::info!(records = published.len(), topic = %config.topics.indicators, "Read the current indicator topic.");
    let misp = crate::intel::sync::misp_client(&config)?;
    if !once {
        let flag = shutdown.clone();
        runtime.spawn(async move {
            super::wait_for_signal().await;
            tracing::info!("Shutdown requested.");
            flag.store(true, Ordering::Release);
        });
    }
    let updater = super::start_updater(&runtime, &config, &store, misp, &shutdown);
    let mut publish = |store: &IntelStore| -> Result<(), String> {
        let next = snapshot_records(&store.load_full());
        let (upserts, tombstones) =
            publish_diff(&producer, &config.topics.indicators, &published, &next)?;
        tracing::info!(
            attributes = next.len(),
            upserts,
            tombstones,
            "Indicator topic updated."
        );
        published = next;
        Ok(())
    };
    let updater = match updater {
        Ok(updater) if once && updater.first_error.is_some() => {
            anyhow::bail!("sync failed: {}", updater.first_error.unwrap_or_default())
        }
        Ok(updater) if store.is_loaded() => {
            publish(&store).map_err(anyhow::Error::msg)?;
            updater
        }
        Ok(_) => anyhow::bail!("no indicator set to publish"),
        Err(err) => return Err(err),
    };
    if once {
        return Ok(ExitCode::SUCCESS);
    }
    runtime.block_on(updater.into_future(|store| {
        if let Err(err) = publish(store) {
            metrics::counter!(m::ERRORS, "stage" => "sync", "error_code" => "publish").increment(1);
            tracing::warn!(error = %err, "Indicator topic not updated; retried at the next change.");
        }
    }));
    Ok(ExitCode::SUCCESS)
}

/// Processors with `intel.source = "topic"`: read the topic, build, swap; keep following.
/// Blocks until the first snapshot is built (or a persisted one loads), up to 120 s.
pub fn spawn_follower(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    store: Arc<IntelStore>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    crate::intel::sync::load_persisted(config, &store);
    let config = config.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let ready_flag = ready.clone();
    let follower_store = store.clone();
    let task = runtime.spawn_blocking(move || {
        if let Err(err) = follow(&config, &follower_store, &shutdown, &ready_flag) {
            tracing::error!(error = %err, "Indicator topic follower stopped.");
        }
        ready_flag.store(true, Ordering::Release);
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !store.is_loaded() {
        anyhow::bail!(
            "no indicator set from the indicator topic within 120 s and no persisted snapshot"
        );
    }
    Ok(Some(task))
}

fn follow(
    config: &Config,
    store: &IntelStore,
    shutdown: &AtomicBool,
    ready: &AtomicBool,
) -> Result<(), String> {
    let consumer = follower_consumer(config)?;
    let ends = assign_from_beginning(
        &consumer,
        &config.topics.indicators,
        Duration::from_secs(30),
    )?;
    let mut records = HashMap::new();
    let mut positions: HashMap<i32, i64> = HashMap::new();
    let mut built_once = false;
    let mut dirty_since: Option<Instant> = None;
    while !shutdown.load(Ordering::Acquire) {
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            match result {
                Ok(message) => {
                    apply(&mut records, &message);
                    positions.insert(message.partition(), message.offset() + 1);
                    dirty_since.get_or_insert_with(Instant::now);
                }
                Err(err) => tracing::warn!(error = %err, "Indicator topic consumer error."),
            }
        }
        let initial_done = !built_once && caught_up(&ends, &positions);
        let settled = dirty_since.is_some_and(|since| since.elapsed() > Duration::from_secs(1));
        if initial_done || (built_once && settled) {
            match build_from_records(&records, config) {
                Ok(snapshot) if snapshot.len() >= config.intel.min_indicators => {
                    tracing::info!(
                        attributes = snapshot.len(),
                        "Indicator set built from the indicator topic."
                    );
                    let stats = snapshot.stats().clone();
                    store.swap(snapshot);
                    m::record_snapshot(&stats, store.last_success_unix());
                    metrics::counter!(m::INTEL_SYNC, "kind" => "topic", "result" => "success")
                        .increment(1);
                }
                Ok(snapshot) => {
                    metrics::counter!(m::INTEL_SYNC, "kind" => "topic", "result" => "failure")
                        .increment(1);
                    tracing::warn!(
                        attributes = snapshot.len(),
                        floor = config.intel.min_indicators,
                        "Indicator set from topic below the floor; keeping the previous one."
                    );
                }
                Err(err) => {
                    metrics::counter!(m::INTEL_SYNC, "kind" => "topic", "result" => "failure")
                        .increment(1);
                    tracing::warn!(error = %err, "Indicator set from topic not built; keeping the previous one.");
                }
            }
            built_once = true;
            dirty_since = None;
            ready.store(true, Ordering::Release);
        }
    }
    Ok(())
}
