//! Against the real Apache Kafka broker that `kafka/start.sh` runs (`KAFKA_BROKERS`, default
//! 127.0.0.1:9092). Topic and group names are unique per test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use wazuh_misp::config::Config;
use wazuh_misp::corpus::{generate_alerts, GenAlert, GenIntel};
use wazuh_misp::intel::IntelStore;
use wazuh_misp::kafka::admin::{create_config_topics, delete_topics};
use wazuh_misp::kafka::pipeline::{header_pairs, start_pipeline, PipelineDeps, PipelineHandle};

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u32>())
}

/// Deletes a test's topics when the test ends, so repeated runs do not pile partitions onto a
/// developer's broker. A failing test keeps them, to be inspected.
struct Topics {
    brokers: String,
    names: Vec<String>,
}

impl Topics {
    fn add(&mut self, name: &str) {
        self.names.push(name.to_string());
    }
}

impl Drop for Topics {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: topics kept for inspection: {:?}", self.names);
            return;
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let deleted = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| err.to_string())
            .and_then(|runtime| runtime.block_on(delete_topics(&self.brokers, &names)));
        if let Err(err) = deleted {
            eprintln!("warning: test topics not deleted: {err}");
        }
    }
}

/// A config with unique topics and group, created on the broker; the topics go with the guard.
fn setup(partitions: i32) -> (Config, Topics) {
    let mut config = Config::default();
    config.kafka.brokers = brokers();
    config.kafka.group_id = unique("it-group");
    config.topics.input = unique("it-alerts");
    config.topics.enriched = unique("it-enriched");
    config.topics.dlq = unique("it-dlq");
    config.topics.iocs = unique("it-iocs");
    config.topics.indicators = unique("it-indicators");
    config.pipeline.workers = 2;
    config.pipeline.commit_interval_ms = 200;
    config.pipeline.drain_timeout_ms = 10_000;
    config.server.enabled = false;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(create_config_topics(&config, partitions))
        .expect("topics created");
    let topics = &config.topics;
    let guard = Topics {
        brokers: config.kafka.brokers.clone(),
        names: [
            &topics.input,
            &topics.enriched,
            &topics.dlq,
            &topics.iocs,
            &topics.indicators,
        ]
        .map(String::clone)
        .to_vec(),
    };
    (config, guard)
}

fn produce(config: &Config, payloads: &[String]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (idx, payload) in payloads.iter().enumerate() {
        let key = format!("in-{idx}");
        let mut record = BaseRecord::to(&config.topics.input)
            .key(&key)
            .payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Sum of the group's committed offsets on the input topic.
fn committed_total(config: &Config, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.kafka.group_id)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        tpl.add_partition(&config.topics.input, partition);
    }
    // On a fresh broker the group coordinator may still be loading (NotCoordinator,
    // CoordinatorLoadInProgress): retry for a while rather than fail.
    let mut attempts = 0;
    let committed = loop {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(committed) => break committed,
            Err(err) if attempts < 50 => {
                attempts += 1;
                eprintln!("committed offsets not available yet ({err}); retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(err) => panic!(
                "committed offsets of group {}: {err}",
                config.kafka.group_id
            ),
        }
    };
    let total = committed
        .elements()
        .iter()
        .map(|e| {
            if let Offset::Offset(o) = e.offset() {
                o
            } else {
                0
            }
        })
        .sum();
    drop(committed);
    total
}

fn wait_committed(config: &Config, partitions: i32, expected: i64, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let total = committed_total(config, partitions);
        if total >= expected || Instant::now() > deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A record: key, payload, headers.
type Record = (Option<String>, String, Vec<(String, String)>);

/// Every record of a topic.
fn read_topic(config: &Config, topic: &str, read_committed: bool) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", unique("it-reader"))
        .set("enable.auto.commit", "false")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        )
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in metadata.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
            .unwrap();
        ends.insert(partition.id(), high);
        tpl.add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut positions: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends
        .iter()
        .any(|(p, end)| positions.get(p).copied().unwrap_or(0) < *end)
        && Instant::now() < deadline
    {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            positions.insert(message.partition(), message.offset() + 1);
            out.push((
                message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                message
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default(),
                header_pairs(message.headers()),
            ));
        } else if read_committed {
            // Transaction markers take offsets; stop once nothing more arrives.
            let idle_end = consumer.position().ok().map(|tpl| tpl.elements().iter().all(|e| matches!(e.offset(), Offset::Offset(o) if ends.get(&e.partition()).is_some_and(|end| o >= *end))));
            if idle_end == Some(true) {
                break;
            }
        }
    }
    out
}

fn start(config: &Config, store: &Arc<IntelStore>) -> (PipelineHandle, Arc<AtomicBool>) {
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle =
        start_pipeline(config, PipelineDeps::new(store.clone(), shutdown.clone())).unwrap();
    (handle, shutdown)
}

fn corpus(count: usize, hit_rate: f64) -> (Arc<IntelStore>, Vec<GenAlert>) {
    let intel = GenIntel::generate(20_000, 77);
    let alerts = generate_alerts(count, &intel, hit_rate, 78);
    (Arc::new(IntelStore::new(intel.build())), alerts)
}

fn alert_id(payload: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(payload).expect("output is json");
    value["id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn mixed_alerts_end_to_end() {
    let (config, _topics) = setup(4);
    let (store, alerts) = corpus(400, 0.3);
    let bad = [
        "{\"rule\":",
        "not json at all",
        "{\"message\":\"plain log line\"}",
        "[]",
        "",
    ];
    let mut payloads: Vec<String> = alerts.iter().map(|a| a.json.clone()).collect();
    payloads.extend(bad.iter().map(|b| b.to_string()));
    produce(&config, &payloads);
    let (handle, shutdown) = start(&config, &store);
    let committed = wait_committed(&config, 4, payloads.len() as i64, Duration::from_secs(60));
    shutdown.store(true, Ordering::Release);
    handle.join().unwrap();
    assert_eq!(
        committed,
        payloads.len() as i64,
        "committed offsets reach the end"
    );

    let expected: HashMap<String, &GenAlert> = alerts
        .iter()
        .filter(|a| !a.planted.is_empty())
        .map(|a| (alert_id(&a.json), a))
        .collect();
    let enriched = read_topic(&config, &config.topics.enriched, false);
    let mut seen = HashMap::new();
    for (key, payload, _) in &enriched {
        let value: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(
            key.as_deref(),
            value["agent"]["id"].as_str(),
            "record key is agent.id"
        );
        *seen.entry(alert_id(payload)).or_insert(0) += 1;
    }
    for id in expected.keys() {
        assert!(seen.contains_key(id), "enriched alert {id} missing");
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "only alerts with a match are written"
    );

    let dlq = read_topic(&config, &config.topics.dlq, false);
    let mut dlq_payloads: Vec<&str> = dlq.iter().map(|(_, payload, _)| payload.as_str()).collect();
    dlq_payloads.sort_unstable();
    let mut want: Vec<&str> = bad.to_vec();
    want.sort_unstable();
    assert_eq!(dlq_payloads, want, "the DLQ holds exactly the bad messages");
    for (_, _, headers) in &dlq {
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        for header in [
            "error",
            "error_code",
            "source_topic",
            "source_partition",
            "source_offset",
        ] {
            assert!(names.contains(&header), "{header} missing: {headers:?}");
        }
    }
}

#[test]
fn two_instances_split_partitions_and_lose_nothing() {
    let (mut config, _topics) = setup(4);
    config.output.pass_through = true;
    let (store, alerts) = corpus(3_000, 0.2);
    let payloads: Vec<String> = alerts.iter().map(|a| a.json.clone()).collect();
    let (first, stop_first) = start(&config, &store);
    let (second, stop_second) = start(&config, &store);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (first.shared.assigned.load(Ordering::Acquire) == 0
        || second.shared.assigned.load(Ordering::Acquire) == 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let split = (
        first.shared.assigned.load(Ordering::Acquire),
        second.shared.assigned.load(Ordering::Acquire),
    );
    produce(&config, &payloads);
    let committed = wait_committed(&config, 4, payloads.len() as i64, Duration::from_secs(90));
    stop_first.store(true, Ordering::Release);
    stop_second.store(true, Ordering::Release);
    let consumed = (
        first.shared.stats.consumed.load(Ordering::Acquire),
        second.shared.stats.consumed.load(Ordering::Acquire),
    );
    first.join().unwrap();
    second.join().unwrap();
    assert_eq!(
        split.0 + split.1,
        4,
        "the two instances split the 4 partitions: {split:?}"
    );
    assert!(
        split.0 > 0 && split.1 > 0,
        "both instances got partitions: {split:?}"
    );
    assert!(
        consumed.0 > 0 && consumed.1 > 0,
        "both consumed: {consumed:?}"
    );
    assert_eq!(committed, payloads.len() as i64);
    let outputs = read_topic(&config, &config.topics.enriched, false);
    let distinct: std::collections::HashSet<String> =
        outputs.iter().map(|(_, p, _)| alert_id(p)).collect();
    assert_eq!(distinct.len(), payloads.len(), "every alert came out");
    eprintln!(
        "two instances: {} outputs for {} inputs ({} duplicates)",
        outputs.len(),
        payloads.len(),
        outputs.len() - distinct.len()
    );
}

#[test]
fn shutdown_mid_stream_and_restart_loses_nothing() {
    let (mut config, _topics) = setup(3);
    config.output.pass_through = true;
    let (store, alerts) = corpus(6_000, 0.1);
    let payloads: Vec<String> = alerts.iter().map(|a| a.json.clone()).collect();
    produce(&config, &payloads);
    let (first, stop_first) = start(&config, &store);
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.shared.stats.consumed.load(Ordering::Acquire) < 1_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_first.store(true, Ordering::Release);
    let consumed_first = first.shared.stats.consumed.load(Ordering::Acquire);
    first.join().unwrap();
    let committed_after_stop = committed_total(&config, 3);
    assert!(
        committed_after_stop > 0,
        "the drained alerts were committed at shutdown"
    );

    let (second, stop_second) = start(&config, &store);
    let committed = wait_committed(&config, 3, payloads.len() as i64, Duration::from_secs(90));
    stop_second.store(true, Ordering::Release);
    second.join().unwrap();
    assert_eq!(committed, payloads.len() as i64);
    let outputs = read_topic(&config, &config.topics.enriched, false);
    let distinct: std::collections::HashSet<String> =
        outputs.iter().map(|(_, p, _)| alert_id(p)).collect();
    assert_eq!(
        distinct.len(),
        payloads.len(),
        "nothing lost across the restart"
    );
    let duplicates = outputs.len() - distinct.len();
    eprintln!("restart: first instance consumed {consumed_first}, committed {committed_after_stop} at stop; {duplicates} duplicates after restart");
    assert!(
        duplicates as i64
            <= consumed_first as i64 - committed_after_stop.min(consumed_first as i64) + 1,
        "duplicates only from the uncommitted window"
    );
}

#[test]
fn exactly_once_has_no_duplicates() {
    let (mut config, _topics) = setup(2);
    config.output.pass_through = true;
    config.kafka.exactly_once = true;
    config.kafka.transactional_id = Some(unique("it-txn"));
    let (store, alerts) = corpus(4_000, 0.2);
    let payloads: Vec<String> = alerts.iter().map(|a| a.json.clone()).collect();
    produce(&config, &payloads);
    let (first, stop_first) = start(&config, &store);
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.shared.stats.consumed.load(Ordering::Acquire) < 1_500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_first.store(true, Ordering::Release);
    first.join().unwrap();
    let (second, stop_second) = start(&config, &store);
    let committed = wait_committed(&config, 2, payloads.len() as i64, Duration::from_secs(90));
    stop_second.store(true, Ordering::Release);
    second.join().unwrap();
    assert_eq!(
        committed,
        payloads.len() as i64,
        "transactional offsets committed to the end"
    );
    let outputs = read_topic(&config, &config.topics.enriched, true);
    let distinct: std::collections::HashSet<String> =
        outputs.iter().map(|(_, p, _)| alert_id(p)).collect();
    assert_eq!(
        distinct.len(),
        payloads.len(),
        "every alert visible to read_committed"
    );
    assert_eq!(
        outputs.len(),
        payloads.len(),
        "zero duplicates in exactly-once mode"
    );
}

#[test]
fn indicator_changelog_feeds_processors() {
    let (config, _topics) = setup(1);
    let snapshot = wazuh_misp::kafka::demo::sample_snapshot().unwrap();
    let records = wazuh_misp::kafka::changelog::snapshot_records(&snapshot);
    let producer: rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        ClientConfig::new()
            .set("bootstrap.servers", &config.kafka.brokers)
            .create()
            .unwrap();
    let (upserts, tombstones) = wazuh_misp::kafka::changelog::publish_diff(
        &producer,
        &config.topics.indicators,
        &HashMap::new(),
        &records,
    )
    .unwrap();
    assert_eq!((upserts, tombstones), (records.len(), 0));
    let read = wazuh_misp::kafka::changelog::read_topic(&config, Duration::from_secs(30)).unwrap();
    assert_eq!(read, records);
    let rebuilt = wazuh_misp::kafka::changelog::build_from_records(&read, &config).unwrap();
    assert_eq!(
        rebuilt.len(),
        snapshot.len(),
        "a processor rebuilds the same set from the topic"
    );

    // A removal becomes a tombstone; unchanged records are not re-sent.
    let mut fewer = records.clone();
    let removed = fewer.keys().next().unwrap().clone();
    fewer.remove(&removed);
    let (upserts, tombstones) = wazuh_misp::kafka::changelog::publish_diff(
        &producer,
        &config.topics.indicators,
        &records,
        &fewer,
    )
    .unwrap();
    assert_eq!((upserts, tombstones), (0, 1));
    let read = wazuh_misp::kafka::changelog::read_topic(&config, Duration::from_secs(30)).unwrap();
    assert_eq!(read.len(), records.len() - 1);
    assert!(!read.contains_key(&removed));
}

/// The real binary: `wazuh-misp run` on the broker, scraped while it runs, then SIGTERM.
#[test]
fn binary_run_scrape_and_sigterm() {
    let (config, _topics) = setup(2);
    let dir = tempfile::tempdir().unwrap();
    let port = 20_000 + (rand::random::<u16>() % 20_000);
    let config_path = dir.path().join("config.toml");
    let repo = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        &config_path,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\n[topics]\ninput = \"{input}\"\nenriched = \"{enriched}\"\ndlq = \"{dlq}\"\niocs = \"{iocs}\"\nindicators = \"{indicators}\"\n[pipeline]\ncommit_interval_ms = 200\n[intel]\nfiles = [\"{repo}/config/samples/misp-feed\"]\nwarninglists_dir = \"{repo}/config/samples/warninglists\"\nsnapshot_path = \"{snapshot}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\nformat = \"json\"\n",
            brokers = config.kafka.brokers,
            group = config.kafka.group_id,
            input = config.topics.input,
            enriched = config.topics.enriched,
            dlq = config.topics.dlq,
            iocs = config.topics.iocs,
            indicators = config.topics.indicators,
            snapshot = dir.path().join("snapshot.json").display(),
        ),
    )
    .unwrap();
    let mut payloads: Vec<String> = Vec::new();
    for _ in 0..20 {
        payloads.extend(
            wazuh_misp::kafka::demo::SAMPLE_ALERTS
                .lines()
                .map(str::to_string),
        );
    }
    payloads.push("{broken".to_string());
    produce(&config, &payloads);
    let mut child = ChildGuard(
        std::process::Command::new(env!("CARGO_BIN_EXE_wazuh-misp"))
            .args(["run", "--config"])
            .arg(&config_path)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read its log as it is written: a child blocked on a full stderr pipe would stall, and a
    // failure below shows the log.
    let mut stderr = child.0.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut logs = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut logs);
        logs
    });
    let committed = wait_committed(&config, 2, payloads.len() as i64, Duration::from_secs(60));
    if committed != payloads.len() as i64 {
        let _ = child.0.kill();
        let _ = child.0.wait();
        let logs = log_reader.join().unwrap_or_default();
        panic!(
            "the binary consumed and committed {committed} of {} records; its log:\n{logs}",
            payloads.len()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (metrics_text, ready) = runtime.block_on(async {
        let client = reqwest::Client::new();
        // Consumer lag comes from librdkafka statistics, every 5 s.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut metrics = String::new();
        while Instant::now() < deadline {
            metrics = client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if metrics.contains("wazuh_misp_kafka_consumer_lag{") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let ready =
            crate::support::status(&client, &format!("http://127.0.0.1:{port}/readyz")).await;
        (metrics, ready)
    });
    assert_eq!(ready, 200);
    crate::support::assert_every_metric(&metrics_text, "the running binary's /metrics");
    assert!(
        metrics_text.contains("wazuh_misp_alerts_processed_total{outcome=\"enriched\"} 300"),
        "{metrics_text}"
    );
    assert!(metrics_text.contains("wazuh_misp_dlq_records_total{reason=\"invalid_json\"} 1"));
    if let Ok(path) = std::env::var("METRICS_SCRAPE_OUT") {
        std::fs::write(path, &metrics_text).unwrap();
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    let logs = log_reader.join().unwrap();
    assert!(exit.success(), "exit {exit:?}; logs:\n{logs}");
    assert!(
        logs.contains("Shutdown requested") && logs.contains("Pipeline stopped"),
        "{logs}"
    );
    assert!(
        dir.path().join("snapshot.json").is_file(),
        "the last good indicator set was persisted"
    );
    let enriched = read_topic(&config, &config.topics.enriched, false);
    assert_eq!(enriched.len(), 300, "15 enriched samples x 20");
}

/// Kills the child process if the test fails before it exits.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MISP's own Kafka notifications (FORMATS.md F.2, as MISP's KafkaPubTool produces them: no
/// key, JSON with `action`) update the indicator set within seconds, on the real broker.
#[test]
fn misp_kafka_notifications_update_the_indicator_set() {
    let (mut config, mut topics) = setup(1);
    config.misp.notifications.enabled = true;
    config.misp.notifications.attribute_topic = unique("misp_attribute");
    config.misp.notifications.event_publish_topic = unique("misp_event_publish");
    topics.add(&config.misp.notifications.attribute_topic);
    topics.add(&config.misp.notifications.event_publish_topic);
    config.misp.notifications.apply_delay_ms = 100;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let notify = &config.misp.notifications;
    runtime
        .block_on(wazuh_misp::kafka::admin::create_topics(
            &config.kafka.brokers,
            &[
                wazuh_misp::kafka::admin::TopicSpec {
                    name: &notify.attribute_topic,
                    partitions: 2,
                    compact: false,
                },
                wazuh_misp::kafka::admin::TopicSpec {
                    name: &notify.event_publish_topic,
                    partitions: 1,
                    compact: false,
                },
            ],
        ))
        .unwrap();
    let store = Arc::new(IntelStore::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let started =
        wazuh_misp::kafka::start_updater(&runtime, &config, &store, None, &shutdown).unwrap();
    assert!(started.first_error.is_none());
    let task = runtime.spawn(started.into_future(|_| {}));
    assert_eq!(store.load().len(), 0);

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()
        .unwrap();
    let send = |topic: &str, payload: &str| {
        producer
            .send(BaseRecord::<(), str>::to(topic).payload(payload))
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    let event = r#"{"id":"12","uuid":"5e000000-0000-4000-8000-000000000012","info":"MISP notified","threat_level_id":"2","published":false,"Orgc":{"name":"ORGNAME"}}"#;
    let attribute = |value: &str, action: &str| {
        format!(
            r#"{{"Attribute":{{"id":"77","event_id":"12","object_id":"0","category":"Network activity","type":"ip-dst","value":"{value}","to_ids":true,"uuid":"5a000000-0000-4000-8000-000000000077","timestamp":"1764000000","distribution":"5","deleted":false,"Tag":[{{"name":"tlp:green"}}]}},"Event":{event},"action":"{action}"}}"#
        )
    };
    let matches_ip = |ip: &str| {
        let mut hits = 0;
        store
            .load()
            .match_ip(ip.parse().unwrap(), &mut |_| hits += 1);
        hits
    };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "not applied within 20 s: {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    };

    send(&notify.attribute_topic, "this is not JSON");
    send(&notify.attribute_topic, &attribute("198.51.100.77", "add"));
    let took = wait_for("attribute add", &|| matches_ip("198.51.100.77") == 1);
    eprintln!("attribute add applied after {took:?}");
    send(&notify.attribute_topic, &attribute("198.51.100.78", "edit"));
    wait_for("attribute edit", &|| {
        matches_ip("198.51.100.78") == 1 && matches_ip("198.51.100.77") == 0
    });
    send(
        &notify.attribute_topic,
        &attribute("198.51.100.78", "soft-delete"),
    );
    wait_for("attribute soft-delete", &|| store.load().is_empty());

    let publish = r#"{"Event":{"id":"13","uuid":"5e000000-0000-4000-8000-000000000013","info":"Published","threat_level_id":"1","published":true,"Orgc":{"name":"ORGNAME"},"Tag":[{"name":"tlp:white"}],
        "Attribute":[{"type":"domain","category":"Network activity","value":"published.example","to_ids":true,"uuid":"5a000000-0000-4000-8000-000000000081","timestamp":"1764000000"}],
        "Object":[{"name":"url","Attribute":[{"type":"url","category":"Network activity","value":"http://published.example/payload","to_ids":true,"uuid":"5a000000-0000-4000-8000-000000000082","timestamp":"1764000000"}]}]},"action":"publish"}"#;
    send(&notify.event_publish_topic, publish);
    wait_for("event publish", &|| store.load().len() == 2);
    let snapshot = store.load_full();
    let mut host_hits = 0;
    snapshot.match_host("sub.published.example", &mut |_| host_hits += 1);
    assert_eq!(
        host_hits, 1,
        "domain from the published event, parent-domain match"
    );
    let mut url_hits = 0;
    snapshot.match_url("http://published.example/payload", &mut |_| url_hits += 1);
    assert_eq!(url_hits, 1, "object attribute from the published event");

    shutdown.store(true, Ordering::Release);
    runtime.block_on(task).unwrap();
}
