//! `wazuh-misp demo`: the whole `run` pipeline with no outside services.
//!
//! librdkafka's in-process mock cluster stands in for Kafka; the bundled sample alerts,
//! sample MISP feed and sample warninglists (compiled into the binary, so it runs anywhere)
//! stand in for Wazuh and MISP. It produces the samples (and a few bad messages), runs the
//! same pipeline as `run`, reads the output topics back and prints what happened.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::intel::{IntelSnapshot, IntelStore, Loader, SnapshotBuilder, Warninglists};
use crate::kafka::pipeline::{header_pairs, start_pipeline, PipelineDeps};

pub const SAMPLE_ALERTS: &str = include_str!("../../config/samples/alerts.jsonl");
pub const SAMPLE_BAD: &str = include_str!("../../config/samples/bad-messages.txt");
const FEED_EVENTS: [(&str, &str); 3] = [
    (
        "5f1c2a3b-0d6e-4c1a-9f00-a1b2c3d4e5f6.json",
        include_str!("../../config/samples/misp-feed/5f1c2a3b-0d6e-4c1a-9f00-a1b2c3d4e5f6.json"),
    ),
    (
        "6a2d3b4c-1e7f-4d2b-8a11-b2c3d4e5f607.json",
        include_str!("../../config/samples/misp-feed/6a2d3b4c-1e7f-4d2b-8a11-b2c3d4e5f607.json"),
    ),
    (
        "7b3e4c5d-2f80-4e3c-9b22-c3d4e5f60718.json",
        include_str!("../../config/samples/misp-feed/7b3e4c5d-2f80-4e3c-9b22-c3d4e5f60718.json"),
    ),
];
const WARNINGLISTS: [&str; 4] = [
    include_str!("../../config/samples/warninglists/public-dns-v4/list.json"),
    include_str!("../../config/samples/warninglists/rfc1918/list.json"),
    include_str!("../../config/samples/warninglists/empty-hashes/list.json"),
    include_str!("../../config/samples/warninglists/top-hosts/list.json"),
];

/// The bundled sample feed and warninglists as a snapshot.
pub fn sample_snapshot() -> Result<IntelSnapshot, String> {
    let mut lists = Warninglists::default();
    for list in WARNINGLISTS {
        lists.add_json(list.as_bytes())?;
    }
    let mut builder = SnapshotBuilder::new(false, Some(Arc::new(lists)));
    let mut loader = Loader::default();
    for (name, body) in FEED_EVENTS {
        loader
            .add_json(&mut builder, body.as_bytes(), Path::new(name))
            .map_err(|e| e.to_string())?;
    }
    Ok(builder.build())
}

/// What the demo saw.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub produced: usize,
    pub enriched: Vec<String>,
    pub dead_letters: Vec<Record>,
    pub elapsed: Duration,
}

/// Runs the demo and returns its report (the CLI prints it).
pub fn run_demo(repeat: usize) -> Result<DemoReport, String> {
    let started = Instant::now();
    let cluster = MockCluster::new(1).map_err(|e| format!("mock cluster: {e}"))?;
    let brokers = cluster.bootstrap_servers();
    let mut config = Config::default();
    config.kafka.brokers = brokers.clone();
    config.kafka.group_id = "wazuh-misp-demo".to_string();
    config.pipeline.workers = 2;
    config.pipeline.drain_timeout_ms = 5_000;
    config.server.enabled = false;
    for (topic, partitions) in [
        (&config.topics.input, 4),
        (&config.topics.enriched, 4),
        (&config.topics.dlq, 1),
        (&config.topics.iocs, 1),
    ] {
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| format!("create topic {topic}: {e}"))?;
    }

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .map_err(|e| e.to_string())?;
    let mut produced = 0;
    for _ in 0..repeat.max(1) {
        for line in SAMPLE_ALERTS
            .lines()
            .chain(SAMPLE_BAD.lines())
            .filter(|l| !l.trim().is_empty())
        {
            let key = produced.to_string();
            loop {
                match producer.send(BaseRecord::to(&config.topics.input).key(&key).payload(line)) {
                    Ok(()) => break,
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        _,
                    )) => {
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((err, _)) => return Err(format!("produce sample: {err}")),
                }
            }
            produced += 1;
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("flush samples: {e}"))?;

    let store = Arc::new(IntelStore::new(sample_snapshot()?));
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle = start_pipeline(&config, PipelineDeps::new(store, shutdown.clone()))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while handle.shared.stats.produced.load(Ordering::Acquire)
        + handle.shared.stats.unmatched.load(Ordering::Acquire)
        < produced
    {
        if Instant::now() > deadline || handle.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.store(true, Ordering::Release);
    handle.join().map_err(|e| e.to_string())?;

    let enriched = read_all(&brokers, &config.topics.enriched)?
        .into_iter()
        .map(|(payload, _)| payload)
        .collect();
    let dead_letters = read_all(&brokers, &config.topics.dlq)?;
    Ok(DemoReport {
        produced,
        enriched,
        dead_letters,
        elapsed: started.elapsed(),
    })
}

/// A record's payload and headers.
type Record = (String, Vec<(String, String)>);

/// Every record of a topic, with headers.
fn read_all(brokers: &str, topic: &str) -> Result<Vec<Record>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "wazuh-misp-demo-reader")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        remaining += high - low;
        tpl.add_partition_offset(topic, partition.id(), Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (out.len() as i64) < remaining && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let payload = message
                .payload()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            out.push((payload, header_pairs(message.headers())));
        }
    }
    Ok(out)
}

/// `wazuh-misp demo`.
pub fn run(repeat: usize, show: usize) -> anyhow::Result<ExitCode> {
    eprintln!("wazuh-misp demo: starting an in-process Kafka (librdkafka mock cluster) and the bundled MISP sample feed...");
    let report = run_demo(repeat).map_err(anyhow::Error::msg)?;
    println!("== wazuh-misp demo ==");
    println!(
        "{} messages produced to wazuh-alerts -> {} enriched alerts on wazuh-alerts-enriched, {} dead letters on wazuh-alerts-dlq ({:.1} s)",
        report.produced,
        report.enriched.len(),
        report.dead_letters.len(),
        report.elapsed.as_secs_f64()
    );
    println!();
    for payload in report.enriched.iter().take(show) {
        let Ok(alert) = serde_json::from_str::<serde_json::Value>(payload) else {
            continue;
        };
        let description = alert
            .pointer("/rule/description")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let agent = alert
            .pointer("/agent/name")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let score = alert
            .pointer("/wazuh_misp/risk_score")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        println!("* [{agent}] {description}  (risk {score})");
        for enrichment in alert
            .pointer("/threat/enrichments")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            println!(
                "    {} in {} -> MISP {} {} (event \"{}\", tags {})",
                enrichment
                    .pointer("/matched/atomic")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                enrichment
                    .pointer("/matched/field")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                enrichment
                    .pointer("/misp/attribute/type")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                enrichment
                    .pointer("/misp/attribute/value")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                enrichment
                    .pointer("/misp/event/info")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                enrichment
                    .pointer("/misp/tags")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
        }
    }
    if let Some(first) = report.enriched.first() {
        println!();
        println!("First enriched alert, in full:");
        let pretty = serde_json::from_str::<serde_json::Value>(first)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| first.clone());
        println!("{pretty}");
    }
    println!();
    for (payload, headers) in report.dead_letters.iter().take(show) {
        let reason = headers
            .iter()
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v.as_str())
            .unwrap_or("?");
        let preview: String = payload.chars().take(50).collect();
        println!("dead letter: {preview:?} -> {reason}");
    }
    Ok(ExitCode::SUCCESS)
}
