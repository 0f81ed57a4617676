//! The Kafka pipeline: one consumer thread, N worker threads, one producer.
//!
//! ```text
//! BaseConsumer (group) --poll--> dispatch by partition --> worker k (Processor) --send--> ThreadedProducer
//!        ^                                                                                   |
//!        '--- store_offsets(contiguous done) <-- OffsetTracker <-- delivery acks ------------'
//! ```
//! - per-partition order: a partition always goes to the same worker, through a bounded channel;
//! - at-least-once: an input offset is done when every output it caused is acknowledged; only
//!   the contiguous done prefix of each partition is stored, and auto-commit commits it;
//! - backpressure: at most `max_in_flight` alerts between consume and ack;
//! - rebalance: on revoke, in-flight alerts of the revoked partitions are drained, their offsets
//!   stored and committed synchronously before the partitions go;
//! - shutdown: stop consuming, drain until `drain_timeout_ms`, commit, flush, exit;
//! - exactly-once (`kafka.exactly_once`): outputs and input offsets commit in one transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use crate::config::Config;
use crate::intel::IntelStore;
use crate::pipeline::offsets::{OffsetTracker, Partition};
use crate::pipeline::{Outcome, Processor, ProcessorOptions};
use crate::telemetry::metrics as m;

/// Per-process failures of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("kafka client setup failed: {0}")]
    Setup(#[source] KafkaError),
    #[error("cannot subscribe to topic {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
    #[error("delivery to topic {topic} failed: {reason}; stopping without committing past the failed alert")]
    Delivery { topic: String, reason: String },
    #[error("exactly-once transaction failed: {0}")]
    Transaction(String),
    #[error("worker thread died")]
    Worker,
}

impl PipelineError {
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Setup(_) => "setup",
            PipelineError::Subscribe { .. } => "subscribe",
            PipelineError::Delivery { .. } => "delivery",
            PipelineError::Transaction(_) => "transaction",
            PipelineError::Worker => "worker",
        }
    }
}

/// Counters of one run (the demo and the tests read them; metrics are exported separately).
#[derive(Debug, Default)]
pub struct RunStats {
    pub consumed: AtomicUsize,
    pub enriched: AtomicUsize,
    pub unmatched: AtomicUsize,
    pub dead_lettered: AtomicUsize,
    pub produced: AtomicUsize,
}

/// State shared by the consumer thread, the workers and the producer's delivery callback.
pub struct Shared {
    tracker: Mutex<OffsetTracker>,
    in_flight: AtomicUsize,
    fatal: Mutex<Option<PipelineError>>,
    pub stats: RunStats,
    pub assigned: AtomicUsize,
    /// Set once the first assignment arrives (for `/readyz`).
    pub has_assignment: AtomicBool,
    /// Set when the consumer is being closed: offsets were already committed by the
    /// shutdown path, and committing again from the close-time revoke would block.
    closing: AtomicBool,
    topic: String,
    drain_timeout: Duration,
    /// Stored offsets that have not reached the consumer yet, by partition.
    dirty: Mutex<HashMap<Partition, i64>>,
    lag: Mutex<HashMap<Partition, i64>>,
}

impl Shared {
    fn finish(&self, partition: Partition, offset: i64) {
        let moved = self
            .tracker
            .lock()
            .map(|mut tracker| tracker.finish(partition, offset))
            .unwrap_or(None);
        if let Some(next) = moved {
            if let Ok(mut dirty) = self.dirty.lock() {
                dirty.insert(partition, next);
            }
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    fn set_fatal(&self, err: PipelineError) {
        if let Ok(mut fatal) = self.fatal.lock() {
            if fatal.is_none() {
                tracing::error!(error = %err, "Pipeline stopping.");
                *fatal = Some(err);
            }
        }
    }

    fn is_fatal(&self) -> bool {
        self.fatal.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    /// Waits until no alert of `partitions` (all when `None`) is in flight, or the deadline.
    fn drain(&self, partitions: Option<&[Partition]>) -> bool {
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            let pending = match self.tracker.lock() {
                Ok(tracker) => match partitions {
                    None => tracker.in_flight(),
                    Some(list) => list.iter().map(|p| tracker.in_flight_of(*p)).sum(),
                },
                Err(_) => 0,
            };
            if pending == 0 {
                return true;
            }
            if Instant::now() >= deadline || self.is_fatal() {
                tracing::warn!(
                    pending,
                    "Drain deadline reached; those alerts will be consumed again."
                );
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Hands stored offsets to the consumer.
    fn store_offsets(&self, consumer: &BaseConsumer<ConsumerCtx>) {
        let dirty: Vec<(Partition, i64)> = match self.dirty.lock() {
            Ok(mut dirty) => dirty.drain().collect(),
            Err(_) => return,
        };
        if dirty.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in dirty {
            let _ = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(next));
        }
        if let Err(err) = consumer.store_offsets(&tpl) {
            tracing::debug!(error = %err, "Offsets not stored (partition no longer assigned).");
        }
    }

    /// The committable offsets as a list, for a transaction.
    fn committable_tpl(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        if let Ok(tracker) = self.tracker.lock() {
            for partition in tracker.partitions() {
                if let Some(next) = tracker.committable(partition) {
                    let _ = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(next));
                }
            }
        }
        tpl
    }
}

/// Consumer context: rebalances drain and commit; statistics feed the lag gauge.
pub struct ConsumerCtx {
    shared: Arc<Shared>,
    transactional: Option<ThreadedProducer<ProducerCtx>>,
}

impl ClientContext for ConsumerCtx {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.shared.topic) else {
            return;
        };
        if let Ok(mut lag) = self.shared.lag.lock() {
            lag.clear();
            for (partition, stats) in &topic.partitions {
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    lag.insert(*partition, stats.consumer_lag);
                    metrics::gauge!(m::KAFKA_CONSUMER_LAG, "topic" => self.shared.topic.clone(), "partition" => partition.to_string()).set(stats.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if self.shared.closing.load(Ordering::Acquire) {
                return;
            }
            let partitions: Vec<Partition> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(
                ?partitions,
                "Partitions revoked; draining their in-flight alerts."
            );
            self.shared.drain(Some(&partitions));
            if let Some(producer) = &self.transactional {
                if let Err(err) = commit_transaction(&self.shared, consumer, producer) {
                    self.shared.set_fatal(err);
                }
            } else {
                self.shared.store_offsets(consumer);
                if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %err, "Commit on revoke had nothing to commit or failed.");
                }
            }
            if let Ok(mut tracker) = self.shared.tracker.lock() {
                for partition in &partitions {
                    tracker.remove(*partition);
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let count = consumer
                    .assignment()
                    .map(|a| a.count())
                    .unwrap_or(tpl.count());
                self.shared.assigned.store(count, Ordering::Release);
                self.shared.has_assignment.store(true, Ordering::Release);
                metrics::gauge!(m::KAFKA_ASSIGNED_PARTITIONS).set(count as f64);
                tracing::info!(partitions = count, "Partitions assigned.");
            }
            Rebalance::Revoke(_) => {
                let count = consumer.assignment().map(|a| a.count()).unwrap_or(0);
                self.shared.assigned.store(count, Ordering::Release);
                metrics::gauge!(m::KAFKA_ASSIGNED_PARTITIONS).set(count as f64);
            }
            Rebalance::Error(err) => tracing::warn!(error = %err, "Rebalance error."),
        }
    }
}

/// One output's share of an input alert's acknowledgement.
pub struct AckGroup {
    remaining: AtomicU32,
    partition: Partition,
    offset: i64,
    input_timestamp_ms: Option<i64>,
}

/// Producer context: delivery acks finish offsets; failures stop the pipeline.
pub struct ProducerCtx {
    shared: Arc<Shared>,
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Arc<AckGroup>;

    fn delivery(&self, result: &DeliveryResult<'_>, group: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    if let Some(ts) = group.input_timestamp_ms {
                        let now = chrono::Utc::now().timestamp_millis();
                        metrics::histogram!(m::END_TO_END_LATENCY)
                            .record((now - ts).max(0) as f64 / 1000.0);
                    }
                    self.shared.stats.produced.fetch_add(1, Ordering::Relaxed);
                    self.shared.finish(group.partition, group.offset);
                }
            }
            Err((err, message)) => {
                metrics::counter!(m::ERRORS, "stage" => "produce", "error_code" => "delivery")
                    .increment(1);
                self.shared.set_fatal(PipelineError::Delivery {
                    topic: message.topic().to_string(),
                    reason: err.to_string(),
                });
            }
        }
    }
}

/// A consumed message, detached from the consumer.
struct Job {
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    partition: Partition,
    offset: i64,
    timestamp_ms: Option<i64>,
}

/// Everything `run_pipeline` needs that is not in the config.
pub struct PipelineDeps {
    pub store: Arc<IntelStore>,
    /// Set to stop: drain, commit, exit.
    pub shutdown: Arc<AtomicBool>,
    /// Benchmark baseline only: forward each input record unprocessed to `topics.enriched`,
    /// with the same threads, offsets and client settings.
    pub passthrough: bool,
    /// New IOCs to `topics.iocs` (`sharing.enabled`).
    pub sharing: Option<Arc<crate::misp::sharing::IocSharing>>,
    /// Sightings of matched attributes to MISP (`sightings.enabled`).
    pub sightings: Option<crate::misp::sightings::SightingsSender>,
    /// Live MISP queries for high-level alerts (`misp.live_query`).
    pub live_query: Option<Arc<crate::misp::lookup::AlertLiveQuery>>,
}

/// The processor's options. The envelope (rule level, agent, ids) and field paths of an
/// unmatched alert are read only when something here reads them: IOC sharing and live
/// queries (rule level, agent, fields), or pass-through records (keyed by agent).
fn processor_options(config: &Config, deps: &PipelineDeps) -> ProcessorOptions {
    ProcessorOptions {
        describe_unmatched: config.output.pass_through
            || deps.sharing.is_some()
            || deps.live_query.is_some(),
        ..config.processor_options()
    }
}

impl PipelineDeps {
    /// The usual dependencies: no passthrough baseline, no IOC sharing, no sightings.
    pub fn new(store: Arc<IntelStore>, shutdown: Arc<AtomicBool>) -> Self {
        PipelineDeps {
            store,
            shutdown,
            passthrough: false,
            sharing: None,
            sightings: None,
            live_query: None,
        }
    }
}

/// A running pipeline: its shared state (for health and tests) and its thread.
pub struct PipelineHandle {
    pub shared: Arc<Shared>,
    thread: JoinHandle<Result<(), PipelineError>>,
}

impl PipelineHandle {
    pub fn join(self) -> Result<(), PipelineError> {
        self.thread.join().map_err(|_| PipelineError::Worker)?
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// librdkafka settings common to every client.
pub fn base_client_config(config: &Config) -> Result<ClientConfig, crate::config::ConfigError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers);
    client.set("statistics.interval.ms", "5000");
    for (key, value) in &config.kafka.librdkafka {
        client.set(key, value);
    }
    if let Some(password) = config.sasl_password()? {
        client.set("sasl.password", password.expose());
    }
    Ok(client)
}

/// The producer settings (our defaults, then passthrough, then enforced keys).
pub fn producer_config(config: &Config) -> Result<ClientConfig, crate::config::ConfigError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers);
    client.set("compression.type", &config.kafka.compression);
    client.set("linger.ms", config.kafka.linger_ms.to_string());
    client.set("batch.size", "1000000");
    client.set("queue.buffering.max.messages", "500000");
    client.set("enable.idempotence", "true");
    client.set("acks", "all");
    for (key, value) in &config.kafka.librdkafka {
        if !key.starts_with("group.")
            && !key.starts_with("auto.")
            && !key.starts_with("enable.auto")
            && !key.starts_with("isolation.")
            && !key.starts_with("fetch.")
            && !key.starts_with("partition.assignment")
            && !key.starts_with("session.")
            && !key.starts_with("max.poll")
        {
            client.set(key, value);
        }
    }
    if let Some(password) = config.sasl_password()? {
        client.set("sasl.password", password.expose());
    }
    if config.kafka.exactly_once {
        let id = config.kafka.transactional_id.clone().unwrap_or_else(|| {
            let host = hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "local".to_string());
            format!("{}-{host}", config.kafka.group_id)
        });
        client.set("transactional.id", id);
    }
    Ok(client)
}

fn consumer_config(config: &Config) -> Result<ClientConfig, crate::config::ConfigError> {
    let mut client = base_client_config(config)?;
    client.set("group.id", &config.kafka.group_id);
    client.set("partition.assignment.strategy", "cooperative-sticky");
    client.set("auto.offset.reset", "earliest");
    // Fetches carry at least 256 KiB or wait at most 10 ms: far fewer, fuller fetch requests
    // than librdkafka's fetch.min.bytes=1 (which answers every fetch with whatever a few
    // records arrived), so the broker spends less CPU per alert, for ≤ 10 ms of latency.
    client.set("fetch.min.bytes", "262144");
    client.set("fetch.wait.max.ms", "10");
    client.set("fetch.queue.backoff.ms", "100");
    client.set("queued.min.messages", "20000");
    // kafka.librdkafka overrides these tuned defaults (the enforced keys below it cannot set).
    for (key, value) in &config.kafka.librdkafka {
        client.set(key, value);
    }
    // Enforced: offsets are stored by us after delivery acks.
    client.set("enable.auto.offset.store", "false");
    if config.kafka.exactly_once {
        client.set("enable.auto.commit", "false");
        client.set("isolation.level", "read_committed");
    } else {
        client.set("enable.auto.commit", "true");
        client.set(
            "auto.commit.interval.ms",
            config.pipeline.commit_interval_ms.to_string(),
        );
    }
    Ok(client)
}

/// Starts the pipeline threads. Returns once the consumer is subscribed.
pub fn start_pipeline(
    config: &Config,
    deps: PipelineDeps,
) -> Result<PipelineHandle, PipelineError> {
    let shared = Arc::new(Shared {
        tracker: Mutex::new(OffsetTracker::default()),
        in_flight: AtomicUsize::new(0),
        fatal: Mutex::new(None),
        stats: RunStats::default(),
        assigned: AtomicUsize::new(0),
        has_assignment: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        topic: config.topics.input.clone(),
        drain_timeout: Duration::from_millis(config.pipeline.drain_timeout_ms),
        dirty: Mutex::new(HashMap::new()),
        lag: Mutex::new(HashMap::new()),
    });
    let setup = |err: crate::config::ConfigError| {
        PipelineError::Setup(KafkaError::ClientCreation(err.to_string()))
    };
    let producer: ThreadedProducer<ProducerCtx> = producer_config(config)
        .map_err(setup)?
        .create_with_context(ProducerCtx {
            shared: shared.clone(),
        })
        .map_err(PipelineError::Setup)?;
    if config.kafka.exactly_once {
        producer
            .init_transactions(Duration::from_secs(30))
            .map_err(|e| PipelineError::Transaction(e.to_string()))?;
        producer
            .begin_transaction()
            .map_err(|e| PipelineError::Transaction(e.to_string()))?;
    }
    let consumer: BaseConsumer<ConsumerCtx> = consumer_config(config)
        .map_err(setup)?
        .create_with_context(ConsumerCtx {
            shared: shared.clone(),
            transactional: config.kafka.exactly_once.then(|| producer.clone()),
        })
        .map_err(PipelineError::Setup)?;
    consumer
        .subscribe(&[&config.topics.input])
        .map_err(|source| PipelineError::Subscribe {
            topic: config.topics.input.clone(),
            source,
        })?;

    let n_workers = config.workers().max(1);
    let mut senders = Vec::with_capacity(n_workers);
    let mut workers = Vec::with_capacity(n_workers);
    for worker_idx in 0..n_workers {
        let (tx, rx) = sync_channel::<Job>(1024);
        senders.push(tx);
        let worker = Worker {
            rx,
            producer: producer.clone(),
            shared: shared.clone(),
            store: deps.store.clone(),
            processor: Processor::new(processor_options(config, &deps)),
            topics: config.topics.clone(),
            pass_through: config.output.pass_through,
            passthrough_baseline: deps.passthrough,
            sharing: deps.sharing.clone(),
            sightings: deps.sightings.clone(),
            live_query: deps.live_query.clone(),
        };
        workers.push(
            std::thread::Builder::new()
                .name(format!("wazuh-misp-worker-{worker_idx}"))
                .spawn(move || worker.run())
                .map_err(|_| PipelineError::Worker)?,
        );
    }
    let loop_shared = shared.clone();
    let max_in_flight = config.pipeline.max_in_flight;
    let exactly_once = config.kafka.exactly_once;
    let commit_interval = Duration::from_millis(config.pipeline.commit_interval_ms.max(10));
    let input_topic = config.topics.input.clone();
    let thread = std::thread::Builder::new()
        .name("wazuh-misp-consumer".to_string())
        .spawn(move || {
            let result = consume_loop(
                &consumer,
                &producer,
                &loop_shared,
                &senders,
                &deps.shutdown,
                max_in_flight,
                exactly_once,
                commit_interval,
                &input_topic,
            );
            drop(senders);
            for worker in workers {
                let _ = worker.join();
            }
            // Final flush and commit.
            let flushed = producer.flush(Duration::from_millis(5_000));
            if exactly_once {
                if result.is_ok() && !loop_shared.is_fatal() {
                    if let Err(err) = commit_transaction(&loop_shared, &consumer, &producer) {
                        loop_shared.set_fatal(err);
                    }
                }
            } else {
                loop_shared.store_offsets(&consumer);
                if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %err, "Final commit had nothing to commit or failed.");
                }
            }
            if let Err(err) = flushed {
                tracing::warn!(error = %err, "Producer flush incomplete at shutdown.");
            }
            loop_shared.closing.store(true, Ordering::Release);
            consumer.unsubscribe();
            drop(consumer);
            tracing::info!(
                consumed = loop_shared.stats.consumed.load(Ordering::Relaxed),
                "Pipeline stopped."
            );
            let fatal = loop_shared.fatal.lock().ok().and_then(|mut f| f.take());
            match (result, fatal) {
                (Err(err), _) | (Ok(()), Some(err)) => Err(err),
                (Ok(()), None) => Ok(()),
            }
        })
        .map_err(|_| PipelineError::Worker)?;
    Ok(PipelineHandle { shared, thread })
}

#[allow(clippy::too_many_arguments)]
fn consume_loop(
    consumer: &BaseConsumer<ConsumerCtx>,
    producer: &ThreadedProducer<ProducerCtx>,
    shared: &Arc<Shared>,
    senders: &[SyncSender<Job>],
    shutdown: &AtomicBool,
    max_in_flight: usize,
    exactly_once: bool,
    commit_interval: Duration,
    input_topic: &str,
) -> Result<(), PipelineError> {
    let mut last_store = Instant::now();
    let mut last_txn = Instant::now();
    let mut consumed_since_metric = 0u64;
    while !shutdown.load(Ordering::Acquire) && !shared.is_fatal() {
        if exactly_once {
            if last_txn.elapsed() >= commit_interval {
                shared.drain(None);
                commit_transaction(shared, consumer, producer)?;
                last_txn = Instant::now();
            }
        } else if last_store.elapsed() >= Duration::from_millis(50) {
            shared.store_offsets(consumer);
            last_store = Instant::now();
        }
        if shared.in_flight.load(Ordering::Acquire) >= max_in_flight {
            std::thread::sleep(Duration::from_millis(1));
            // Keep serving rebalances and statistics while waiting.
            if let Some(Ok(message)) = consumer.poll(Duration::ZERO) {
                // A message arrived while full: it must still be handled in order.
                dispatch(shared, senders, message)?;
                consumed_since_metric += 1;
            }
            continue;
        }
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Err(err)) => {
                metrics::counter!(m::ERRORS, "stage" => "consume", "error_code" => "poll")
                    .increment(1);
                tracing::warn!(error = %err, "Consumer error.");
            }
            Some(Ok(message)) => {
                dispatch(shared, senders, message)?;
                consumed_since_metric += 1;
            }
        }
        if consumed_since_metric >= 256 {
            metrics::counter!(m::ALERTS_CONSUMED, "topic" => input_topic.to_string())
                .increment(consumed_since_metric);
            metrics::gauge!(m::KAFKA_PRODUCER_QUEUE).set(producer.in_flight_count() as f64);
            consumed_since_metric = 0;
        }
    }
    metrics::counter!(m::ALERTS_CONSUMED, "topic" => input_topic.to_string())
        .increment(consumed_since_metric);
    // Drain what is in flight before the caller commits.
    shared.drain(None);
    Ok(())
}

fn dispatch(
    shared: &Arc<Shared>,
    senders: &[SyncSender<Job>],
    message: rdkafka::message::BorrowedMessage<'_>,
) -> Result<(), PipelineError> {
    let partition = message.partition();
    let offset = message.offset();
    let job = Job {
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        key: message.key().map(<[u8]>::to_vec),
        partition,
        offset,
        timestamp_ms: message.timestamp().to_millis(),
    };
    if let Ok(mut tracker) = shared.tracker.lock() {
        tracker.start(partition, offset);
    }
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    shared.stats.consumed.fetch_add(1, Ordering::Relaxed);
    let worker = partition.unsigned_abs() as usize % senders.len();
    // A full queue is retried after a pause instead of blocking in `send`: a blocked sender is
    // woken for every slot the worker frees, one context switch per alert.
    let mut job = job;
    loop {
        match senders[worker].try_send(job) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(returned)) => {
                job = returned;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(TrySendError::Disconnected(_)) => return Err(PipelineError::Worker),
        }
    }
}

/// Commits the open transaction with the committable offsets, then opens the next.
fn commit_transaction(
    shared: &Shared,
    consumer: &BaseConsumer<ConsumerCtx>,
    producer: &ThreadedProducer<ProducerCtx>,
) -> Result<(), PipelineError> {
    let txn = |e: KafkaError| PipelineError::Transaction(e.to_string());
    // Deliveries first (avoids the 100 ms flush slices of commit_transaction).
    let deadline = Instant::now() + Duration::from_secs(30);
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let tpl = shared.committable_tpl();
    if tpl.count() > 0 {
        let metadata = consumer
            .group_metadata()
            .ok_or_else(|| PipelineError::Transaction("no consumer group metadata".to_string()))?;
        producer
            .send_offsets_to_transaction(&tpl, &metadata, Duration::from_secs(30))
            .map_err(txn)?;
    }
    producer
        .commit_transaction(Duration::from_secs(30))
        .map_err(txn)?;
    producer.begin_transaction().map_err(txn)?;
    Ok(())
}

struct Worker {
    rx: Receiver<Job>,
    producer: ThreadedProducer<ProducerCtx>,
    shared: Arc<Shared>,
    store: Arc<IntelStore>,
    processor: Processor,
    topics: crate::config::TopicsConfig,
    pass_through: bool,
    passthrough_baseline: bool,
    sharing: Option<Arc<crate::misp::sharing::IocSharing>>,
    sightings: Option<crate::misp::sightings::SightingsSender>,
    live_query: Option<Arc<crate::misp::lookup::AlertLiveQuery>>,
}

/// Local counters, flushed to `metrics` in batches.
#[derive(Default)]
struct LocalCounts {
    outcomes: [u64; 3],
    hits: [u64; 8],
    dlq: HashMap<&'static str, u64>,
    n: u64,
    iocs: u64,
}

impl Worker {
    fn run(mut self) {
        let mut counts = LocalCounts::default();
        let mut last_flush = Instant::now();
        loop {
            let job = match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => job,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.flush_metrics(&mut counts);
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            self.handle(job, &mut counts);
            if counts.n >= 1024 || last_flush.elapsed() > Duration::from_millis(500) {
                self.flush_metrics(&mut counts);
                last_flush = Instant::now();
            }
        }
        self.flush_metrics(&mut counts);
    }

    fn flush_metrics(&mut self, counts: &mut LocalCounts) {
        for (idx, outcome) in m::OUTCOMES.iter().enumerate() {
            if counts.outcomes[idx] > 0 {
                metrics::counter!(m::ALERTS_PROCESSED, "outcome" => *outcome)
                    .increment(counts.outcomes[idx]);
            }
        }
        for (kind, count) in self.processor.take_counts() {
            if count > 0 {
                metrics::counter!(m::OBSERVABLES_EXTRACTED, "kind" => kind.as_str())
                    .increment(count);
            }
        }
        for kind in crate::model::observable::IocKind::ALL {
            let count = counts.hits[kind.index()];
            if count > 0 {
                metrics::counter!(m::INTEL_HITS, "kind" => kind.as_str()).increment(count);
            }
        }
        if counts.iocs > 0 {
            metrics::counter!(m::IOCS_SHARED).increment(counts.iocs);
        }
        for (reason, count) in counts.dlq.drain() {
            metrics::counter!(m::DLQ_RECORDS, "reason" => reason).increment(count);
        }
        for timing in self.processor.take_timings() {
            for (stage, duration) in crate::pipeline::STAGES.iter().zip(timing) {
                metrics::histogram!(m::STAGE_DURATION, "stage" => *stage)
                    .record(duration.as_secs_f64());
            }
        }
        let age = chrono::Utc::now().timestamp() - self.store.last_success_unix();
        metrics::gauge!(m::INTEL_SYNC_AGE).set(age.max(0) as f64);
        *counts = LocalCounts::default();
    }

    fn handle(&mut self, job: Job, counts: &mut LocalCounts) {
        if self.passthrough_baseline {
            let group = Arc::new(AckGroup {
                remaining: AtomicU32::new(1),
                partition: job.partition,
                offset: job.offset,
                input_timestamp_ms: job.timestamp_ms,
            });
            let record = BaseRecord::with_opaque_to(&self.topics.enriched, group)
                .payload(job.payload.as_slice());
            let record = match &job.key {
                Some(key) => record.key(key.as_slice()),
                None => record,
            };
            self.send(record);
            return;
        }
        let current = self.store.load();
        let mut outcome = self.processor.process(&job.payload, &current);
        // High-level alerts: ask MISP about what the local set missed, within the budget,
        // and process the alert again with the answer.
        let live = match (&self.live_query, &outcome) {
            (_, Outcome::DeadLetter(_)) | (None, _) => None,
            (Some(live), _) => {
                live.query(self.processor.extraction(), self.processor.hits(), &current)
            }
        };
        if let Some(live) = &live {
            outcome = self.processor.process(&job.payload, live);
        }
        let snapshot: &crate::intel::IntelSnapshot = live.as_ref().unwrap_or(&current);
        counts.n += 1;
        let group = |outputs: u32| {
            Arc::new(AckGroup {
                remaining: AtomicU32::new(outputs),
                partition: job.partition,
                offset: job.offset,
                input_timestamp_ms: job.timestamp_ms,
            })
        };
        if let Outcome::DeadLetter(_) = outcome {
        } else {
            let enriched = matches!(outcome, Outcome::Enriched { .. });
            if enriched {
                counts.outcomes[0] += 1;
                self.shared.stats.enriched.fetch_add(1, Ordering::Relaxed);
                let extraction = self.processor.extraction();
                for hit in self.processor.hits() {
                    let observable = (hit.observable as usize) < extraction.len();
                    let kind = if observable {
                        extraction.get(hit.observable as usize).kind
                    } else {
                        crate::model::observable::IocKind::Text
                    };
                    counts.hits[kind.index()] += 1;
                    if let Some(sightings) = &self.sightings {
                        let attribute = snapshot.attribute(hit.attribute);
                        let atomic = if observable {
                            extraction.get(hit.observable as usize).value
                        } else {
                            attribute.value
                        };
                        // Sight by the attribute's own value; for composites, the matched part.
                        let value = match attribute.value.split_once('|') {
                            Some((first, second)) => {
                                if second.eq_ignore_ascii_case(atomic) {
                                    second
                                } else {
                                    first
                                }
                            }
                            None => attribute.value,
                        };
                        sightings.sight(value);
                    }
                }
            } else {
                counts.outcomes[1] += 1;
                self.shared.stats.unmatched.fetch_add(1, Ordering::Relaxed);
            }
            let iocs = match &self.sharing {
                Some(sharing) => {
                    sharing.collect(self.processor.extraction(), self.processor.hits(), snapshot)
                }
                None => Vec::new(),
            };
            let write_alert = enriched || self.pass_through;
            let outputs = u32::from(write_alert) + iocs.len() as u32;
            if outputs == 0 {
                self.shared.finish(job.partition, job.offset);
                return;
            }
            let ack = group(outputs);
            if write_alert {
                let key = self.processor.extraction().agent_id().map(str::as_bytes);
                let payload = self.processor.output_for(&job.payload);
                let record =
                    BaseRecord::with_opaque_to(&self.topics.enriched, ack.clone()).payload(payload);
                let record = match key {
                    Some(key) => record.key(key),
                    None => record,
                };
                self.send(record);
            }
            counts.iocs += iocs.len() as u64;
            for ioc in &iocs {
                let record = BaseRecord::with_opaque_to(&self.topics.iocs, ack.clone())
                    .key(ioc.key.as_bytes())
                    .payload(ioc.payload.as_slice());
                self.send(record);
            }
            return;
        }
        match outcome {
            Outcome::Enriched { .. } | Outcome::Unmatched => unreachable!("handled above"),
            Outcome::DeadLetter(err) => {
                counts.outcomes[2] += 1;
                *counts.dlq.entry(err.code()).or_default() += 1;
                self.shared
                    .stats
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(partition = job.partition, offset = job.offset, error = %err, "Alert sent to dead-letter topic.");
                let reason = err.to_string();
                let partition = job.partition.to_string();
                let offset = job.offset.to_string();
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "error",
                        value: Some(reason.as_str()),
                    })
                    .insert(Header {
                        key: "error_code",
                        value: Some(err.code()),
                    })
                    .insert(Header {
                        key: "source_topic",
                        value: Some(self.shared.topic.as_str()),
                    })
                    .insert(Header {
                        key: "source_partition",
                        value: Some(partition.as_str()),
                    })
                    .insert(Header {
                        key: "source_offset",
                        value: Some(offset.as_str()),
                    });
                let record = BaseRecord::with_opaque_to(&self.topics.dlq, group(1))
                    .payload(job.payload.as_slice())
                    .headers(headers);
                let record = match &job.key {
                    Some(key) => record.key(key.as_slice()),
                    None => record,
                };
                self.send(record);
            }
        }
    }

    /// Sends, retrying while the producer queue is full (backpressure).
    fn send(&self, mut record: BaseRecord<'_, [u8], [u8], Arc<AckGroup>>) {
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    returned,
                )) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((err, returned)) => {
                    self.shared.set_fatal(PipelineError::Delivery {
                        topic: returned.topic.to_string(),
                        reason: err.to_string(),
                    });
                    return;
                }
            }
        }
    }
}

/// Reads every header of a DLQ record into pairs (tests and the demo).
pub fn header_pairs(headers: Option<&rdkafka::message::BorrowedHeaders>) -> Vec<(String, String)> {
    let Some(headers) = headers else {
        return Vec::new();
    };
    headers
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                h.value
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_unmatched_alerts_only_when_something_reads_it() {
        let deps = || {
            PipelineDeps::new(
                Arc::new(IntelStore::new(crate::intel::IntelSnapshot::empty())),
                Arc::new(AtomicBool::new(false)),
            )
        };
        let mut config = Config::default();
        assert!(!processor_options(&config, &deps()).describe_unmatched);
        let sharing = PipelineDeps {
            sharing: Some(Arc::new(crate::misp::sharing::IocSharing::new(
                10,
                Duration::from_secs(60),
            ))),
            ..deps()
        };
        assert!(processor_options(&config, &sharing).describe_unmatched);
        config.output.pass_through = true;
        assert!(processor_options(&config, &deps()).describe_unmatched);
    }

    #[test]
    fn librdkafka_settings_override_tuned_defaults_but_not_enforced_keys() {
        let mut config = Config::default();
        config
            .kafka
            .librdkafka
            .insert("fetch.wait.max.ms".into(), "25".into());
        config
            .kafka
            .librdkafka
            .insert("security.protocol".into(), "SASL_SSL".into());
        let consumer = consumer_config(&config).unwrap();
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("25"));
        assert_eq!(
            consumer.get("fetch.min.bytes"),
            Some("262144"),
            "tuned default kept"
        );
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(consumer.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(consumer.get("group.id"), Some("wazuh-misp"));
        let producer = producer_config(&config).unwrap();
        assert_eq!(
            producer.get("fetch.wait.max.ms"),
            None,
            "consumer keys stay off the producer"
        );
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
    }
}
