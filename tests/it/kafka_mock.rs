//! The `run` pipeline on librdkafka's mock cluster: a poison message followed by good ones,
//! committed offsets, DLQ headers, and the demo end to end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use wazuh_misp::config::Config;
use wazuh_misp::intel::IntelStore;
use wazuh_misp::kafka::pipeline::{header_pairs, start_pipeline, PipelineDeps};

#[test]
fn poison_then_good_commits_past_both() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let mut config = Config::default();
    config.kafka.brokers = brokers.clone();
    config.kafka.group_id = "mock-poison".to_string();
    config.pipeline.workers = 2;
    config.pipeline.commit_interval_ms = 100;
    config.server.enabled = false;
    cluster.create_topic(&config.topics.input, 1, 1).unwrap();
    cluster.create_topic(&config.topics.enriched, 1, 1).unwrap();
    cluster.create_topic(&config.topics.dlq, 1, 1).unwrap();

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let good = r#"{"rule":{"level":5},"agent":{"id":"007"},"data":{"srcip":"185.220.101.9"}}"#;
    for (key, payload) in [("k0", "{not json"), ("k1", good), ("k2", good)] {
        producer
            .send(
                BaseRecord::to(&config.topics.input)
                    .key(key)
                    .payload(payload),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let store = Arc::new(IntelStore::new(
        wazuh_misp::kafka::demo::sample_snapshot().unwrap(),
    ));
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle = start_pipeline(&config, PipelineDeps::new(store, shutdown.clone())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.shared.stats.produced.load(Ordering::Acquire) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.store(true, Ordering::Release);
    handle.join().unwrap();

    // Committed offset is past the poison and both good messages.
    let checker: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "mock-poison")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&config.topics.input, 0);
    let committed = checker
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    let offset = committed
        .find_partition(&config.topics.input, 0)
        .unwrap()
        .offset();
    drop(committed);
    assert_eq!(offset, Offset::Offset(3));

    // The DLQ holds the poison, with its key and the error headers.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "mock-reader")
        .create()
        .unwrap();
    let mut assign = TopicPartitionList::new();
    assign
        .add_partition_offset(&config.topics.dlq, 0, Offset::Beginning)
        .unwrap();
    assign
        .add_partition_offset(&config.topics.enriched, 0, Offset::Beginning)
        .unwrap();
    reader.assign(&assign).unwrap();
    let mut dlq = Vec::new();
    let mut enriched = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (dlq.is_empty() || enriched.len() < 2) && Instant::now() < deadline {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(100)) {
            let record = (
                message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                message
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
                header_pairs(message.headers()),
            );
            if message.topic() == config.topics.dlq {
                dlq.push(record);
            } else {
                enriched.push(record);
            }
        }
    }
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].0.as_deref(), Some("k0"));
    assert_eq!(dlq[0].1.as_deref(), Some("{not json"));
    let headers = &dlq[0].2;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("error_code").as_deref(), Some("invalid_json"));
    assert_eq!(header("source_topic").as_deref(), Some("wazuh-alerts"));
    assert_eq!(header("source_partition").as_deref(), Some("0"));
    assert_eq!(header("source_offset").as_deref(), Some("0"));
    assert!(header("error").unwrap().starts_with("invalid json"));
    assert_eq!(enriched.len(), 2);
    for (key, payload, _) in &enriched {
        assert_eq!(key.as_deref(), Some("007"), "output key is agent.id");
        assert!(payload
            .as_deref()
            .unwrap()
            .contains("\"threat\":{\"enrichments\""));
    }
}

#[test]
fn demo_runs_end_to_end() {
    let report = wazuh_misp::kafka::demo::run_demo(2).unwrap();
    assert_eq!(report.produced, 52);
    assert_eq!(report.enriched.len(), 30);
    assert_eq!(report.dead_letters.len(), 8);
    let validator = crate::support::output_validator();
    for payload in &report.enriched {
        let value: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert!(validator.is_valid(&value), "{payload}");
    }
}

#[test]
fn new_iocs_go_to_the_ioc_topic_once() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let mut config = Config::default();
    config.kafka.brokers = brokers.clone();
    config.kafka.group_id = "mock-iocs".to_string();
    config.pipeline.workers = 1;
    config.server.enabled = false;
    for topic in [
        &config.topics.input,
        &config.topics.enriched,
        &config.topics.dlq,
        &config.topics.iocs,
    ] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let alert = r#"{"rule":{"level":12,"id":"100","description":"x"},"agent":{"id":"009","name":"h"},"data":{"srcip":"77.88.99.10","url":"http://fresh-bad.example/a"}}"#;
    for _ in 0..3 {
        producer
            .send(BaseRecord::<str, str>::to(&config.topics.input).payload(alert))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let store = Arc::new(IntelStore::new(
        wazuh_misp::kafka::demo::sample_snapshot().unwrap(),
    ));
    let shutdown = Arc::new(AtomicBool::new(false));
    let sharing = Arc::new(wazuh_misp::misp::sharing::IocSharing::new(
        10,
        Duration::from_secs(60),
    ));
    let handle = start_pipeline(
        &config,
        PipelineDeps {
            sharing: Some(sharing),
            ..PipelineDeps::new(store, shutdown.clone())
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.shared.stats.consumed.load(Ordering::Acquire) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    shutdown.store(true, Ordering::Release);
    handle.join().unwrap();
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "mock-iocs-reader")
        .create()
        .unwrap();
    let mut assign = TopicPartitionList::new();
    assign
        .add_partition_offset(&config.topics.iocs, 0, Offset::Beginning)
        .unwrap();
    reader.assign(&assign).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(100)) {
            let value: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap()).unwrap();
            records.push((
                String::from_utf8_lossy(message.key().unwrap()).into_owned(),
                value,
            ));
        }
    }
    let mut keys: Vec<&str> = records.iter().map(|(key, _)| key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "77.88.99.10",
            "fresh-bad.example",
            "http://fresh-bad.example/a"
        ],
        "each new IOC once, keyed by value"
    );
    for (key, value) in &records {
        assert_eq!(value["value"], key.as_str());
        assert_eq!(value["to_ids"], false);
        assert_eq!(value["wazuh"]["agent"]["id"], "009");
    }
}
