//! MISP's own Kafka notifications (`Plugin.Kafka_*`, FORMATS.md F.2) as indicator deltas.
//!
//! MISP produces `{"Attribute":{…},"Event":{…},"action":"add|edit|soft-delete|delete"}` to
//! `misp_attribute` and `{"Event":{… full event …},"action":"publish"}` to
//! `misp_event_publish`, with no key and best effort. Every process that keeps an indicator
//! set needs every notification, so partitions are assigned (no consumer group): existing
//! partitions from their end (the full pull at start covers the past), partitions that
//! appear later (a topic MISP creates after we started) from their beginning. Notifications
//! are one input among others: the periodic pulls repair anything lost.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::intel::update::{Delta, LocalFilter, Notification};
use crate::telemetry::metrics as m;

/// How often topic metadata is re-read for new partitions or topics.
const METADATA_EVERY: Duration = Duration::from_secs(30);
/// A batch is handed over after this long or this many notifications.
const BATCH_TIME: Duration = Duration::from_millis(200);
const BATCH_MAX: usize = 5_000;

/// The running notification consumer.
pub struct Notifications {
    pub deltas: mpsc::Receiver<Delta>,
    /// Set once the existing partitions are assigned (tests wait for it before producing).
    /// The consumer thread ends on shutdown or when `deltas` is dropped.
    pub ready: Arc<AtomicBool>,
}

/// The topics to follow.
fn topics(config: &Config) -> Vec<String> {
    let n = &config.misp.notifications;
    [&n.attribute_topic, &n.event_publish_topic]
        .into_iter()
        .filter(|topic| !topic.trim().is_empty())
        .cloned()
        .collect()
}

fn consumer(config: &Config) -> anyhow::Result<BaseConsumer> {
    let mut client = crate::kafka::pipeline::base_client_config(config)?;
    if let Some(brokers) = &config.misp.notifications.brokers {
        client.set("bootstrap.servers", brokers);
    }
    client.set(
        "group.id",
        format!("{}-misp-notifications", config.kafka.group_id),
    );
    client.set("enable.auto.commit", "false");
    client.set("enable.partition.eof", "false");
    client.set("allow.auto.create.topics", "false");
    Ok(client.create()?)
}

/// Starts the consumer thread; deltas arrive on the returned channel.
pub fn spawn(config: &Config, shutdown: Arc<AtomicBool>) -> anyhow::Result<Notifications> {
    let consumer = consumer(config)?;
    let filter = LocalFilter::from_config(config);
    let topics = topics(config);
    let (sender, deltas) = mpsc::channel(64);
    let ready = Arc::new(AtomicBool::new(false));
    let ready_flag = ready.clone();
    std::thread::Builder::new()
        .name("misp-notifications".into())
        .spawn(move || {
            follow(&consumer, &topics, &filter, &sender, &shutdown, &ready_flag);
        })?;
    Ok(Notifications { deltas, ready })
}

fn follow(
    consumer: &BaseConsumer,
    topics: &[String],
    filter: &LocalFilter,
    sender: &mpsc::Sender<Delta>,
    shutdown: &AtomicBool,
    ready: &AtomicBool,
) {
    let mut assigned: HashSet<(String, i32)> = HashSet::new();
    let mut last_metadata: Option<Instant> = None;
    let mut batch = Delta::default();
    let mut batch_len = 0usize;
    let mut batch_started = Instant::now();
    while !shutdown.load(Ordering::Acquire) {
        if last_metadata.is_none_or(|at| at.elapsed() >= METADATA_EVERY) {
            let first = last_metadata.is_none();
            last_metadata = Some(Instant::now());
            match assign_new(consumer, topics, &mut assigned, first) {
                Ok(added) if added > 0 => {
                    tracing::info!(partitions = assigned.len(), topics = ?topics, "Following MISP notifications.");
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "MISP notification topics: metadata not read; retrying.")
                }
            }
            ready.store(true, Ordering::Release);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let outcome = match message.payload() {
                    Some(payload) => batch.add_notification(payload, filter),
                    None => Err("empty message".to_string()),
                };
                let kind = match &outcome {
                    Ok(Notification::Upsert) => "upsert",
                    Ok(Notification::Remove) => "remove",
                    Ok(Notification::EventPublished) => "event_published",
                    Ok(Notification::Ignored) => "ignored",
                    Err(_) => "invalid",
                };
                metrics::counter!(m::MISP_NOTIFICATIONS, "kind" => kind).increment(1);
                if let Err(reason) = outcome {
                    tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), reason = %reason, "MISP notification skipped.");
                }
                if batch_len == 0 {
                    batch_started = Instant::now();
                }
                batch_len += 1;
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "MISP notification consumer error.");
            }
            None => {}
        }
        let due =
            batch_len >= BATCH_MAX || (batch_len > 0 && batch_started.elapsed() >= BATCH_TIME);
        if due {
            let delta = std::mem::take(&mut batch);
            batch_len = 0;
            if !delta.is_empty() && sender.blocking_send(delta).is_err() {
                return;
            }
        }
    }
}

/// Assigns partitions not assigned yet: from the end at start, from the beginning later.
fn assign_new(
    consumer: &BaseConsumer,
    topics: &[String],
    assigned: &mut HashSet<(String, i32)>,
    first: bool,
) -> anyhow::Result<usize> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for topic_metadata in metadata.topics() {
            if topic_metadata.error().is_some() {
                continue;
            }
            for partition in topic_metadata.partitions() {
                let key = (topic.clone(), partition.id());
                if assigned.contains(&key) {
                    continue;
                }
                // A concrete end offset, so nothing produced after `ready` is skipped.
                let offset = if first {
                    let (_, high) = consumer.fetch_watermarks(
                        topic,
                        partition.id(),
                        Duration::from_secs(10),
                    )?;
                    Offset::Offset(high)
                } else {
                    Offset::Beginning
                };
                tpl.add_partition_offset(topic, partition.id(), offset)?;
                assigned.insert(key);
            }
        }
    }
    let added = tpl.count();
    if added > 0 {
        consumer.incremental_assign(&tpl)?;
    }
    Ok(added)
}
