//! End-to-end Kafka bench on the real broker: throughput of the `run` pipeline against a
//! passthrough baseline (same threads and client settings, consume → produce the same bytes),
//! then latency (input produce time → enriched record consumed) at half the measured rate.
//!
//! KAFKA_PORT=39092 bash kafka/start.sh
//! KAFKA_BROKERS=127.0.0.1:39092 cargo bench --features broker-tests --bench e2e
//! (N=200000 alerts, P=6 partitions, 1M indicators by default; env N, P, INDICATORS, SECONDS)
//!
//! Latency experiments: LATENCY_RATE=N (latency run only), LATENCY_SERIES=1 (per-second
//! p50/p99), DIRECT=1 (load straight to the output topic: broker and clients alone),
//! PASSTHROUGH=1, WORKERS, MAX_IN_FLIGHT, LINGER_MS, RDKAFKA="k=v,..." (pipeline clients), GEN_LINGER_MS
//! (load generator, default 5), GEN_COMPRESSION (load generator, default lz4),
//! READER_FETCH_MIN_BYTES (reader, default 65536),
//! THROUGHPUT_ONLY=1 (skip the latency runs), THROUGHPUT_MODE=pass|enrich (one mode only).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use wazuh_misp::config::Config;
use wazuh_misp::corpus::{generate_alerts, GenIntel};
use wazuh_misp::intel::IntelStore;
use wazuh_misp::kafka::admin::{create_config_topics, delete_topics};
use wazuh_misp::kafka::pipeline::{start_pipeline, PipelineDeps};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(brokers: &str, partitions: i32, run: &str) -> Config {
    let mut config = Config::default();
    let suffix = format!("{run}-{}-{}", std::process::id(), rand::random::<u32>());
    config.kafka.brokers = brokers.to_string();
    config.kafka.group_id = format!("bench-{suffix}");
    config.topics.input = format!("bench-in-{suffix}");
    config.topics.enriched = format!("bench-out-{suffix}");
    config.topics.dlq = format!("bench-dlq-{suffix}");
    config.output.pass_through = true;
    config.server.enabled = false;
    // RDKAFKA="key=value,key=value": extra librdkafka settings for the pipeline's clients.
    if let Ok(extra) = std::env::var("RDKAFKA") {
        for pair in extra.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').expect("RDKAFKA is key=value,...");
            config.kafka.librdkafka.insert(key.into(), value.into());
        }
    }
    if let Ok(workers) = std::env::var("WORKERS") {
        config.pipeline.workers = workers.parse().expect("WORKERS is a number");
    }
    if let Ok(limit) = std::env::var("MAX_IN_FLIGHT") {
        config.pipeline.max_in_flight = limit.parse().expect("MAX_IN_FLIGHT is a number");
    }
    if let Ok(linger) = std::env::var("LINGER_MS") {
        config.kafka.linger_ms = linger.parse().expect("LINGER_MS is a number");
    }
    runtime()
        .block_on(create_config_topics(&config, partitions))
        .expect("topics");
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Deletes a run's topics, so that repeated runs do not pile partitions onto the broker.
fn drop_topics(config: &Config) {
    let topics = &config.topics;
    // Only the per-run names (iocs and indicators keep their shared defaults).
    let names = [
        topics.input.as_str(),
        topics.enriched.as_str(),
        topics.dlq.as_str(),
    ];
    if let Err(err) = runtime().block_on(delete_topics(&config.kafka.brokers, &names)) {
        eprintln!("warning: {err}");
    }
}

fn producer(brokers: &str, linger_ms: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger_ms)
        .set(
            "compression.type",
            std::env::var("GEN_COMPRESSION").unwrap_or_else(|_| "lz4".into()),
        )
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap()
}

fn send(producer: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(1));
            }
        }
    }
}

/// CPU ticks (1/100 s) used so far by each thread of this process, by thread id.
fn thread_ticks() -> HashMap<String, (String, u64)> {
    let mut ticks = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return ticks;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some(parsed) = parse_stat(&stat) {
            ticks.insert(task.file_name().to_string_lossy().into_owned(), parsed);
        }
    }
    ticks
}

/// (comm, utime + stime) from a /proc stat line.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((stat[open + 1..close].to_string(), utime + stime))
}

/// CPU ticks of the local Kafka broker JVM (found by its main class), if there is one.
fn broker_ticks() -> Option<u64> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.windows(11).any(|w| w == b"kafka.Kafka") {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            return parse_stat(&stat).map(|(_, ticks)| ticks);
        }
    }
    None
}

/// CPU per alert between two snapshots, grouped by thread name: where the cores went.
fn cpu_report(
    label: &str,
    alerts: usize,
    before: &HashMap<String, (String, u64)>,
    broker_before: Option<u64>,
) {
    let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
    for (tid, (name, ticks)) in thread_ticks() {
        let start = before.get(&tid).map_or(0, |(_, t)| *t);
        let group = match name.as_str() {
            n if n.starts_with("rdk:") => "librdkafka",
            n if n.starts_with("wazuh-misp-work") => "workers",
            n if n.starts_with("wazuh-misp-cons") => "consumer",
            n if n.starts_with("producer pollin") => "delivery callbacks",
            _ => "other",
        };
        *by_name.entry(group.to_string()).or_default() += ticks.saturating_sub(start);
    }
    if let (Some(start), Some(end)) = (broker_before, broker_ticks()) {
        by_name.insert("broker (JVM)".to_string(), end.saturating_sub(start));
    }
    let per_alert = |ticks: u64| ticks as f64 * 10_000.0 / alerts as f64; // µs
    let total: u64 = by_name.values().sum();
    let parts: Vec<String> = by_name
        .iter()
        .map(|(name, ticks)| format!("{name} {:.2}", per_alert(*ticks)))
        .collect();
    println!(
        "  {label} CPU µs/alert: total {:.2} = {}",
        per_alert(total),
        parts.join(", ")
    );
}

/// Pre-loads `payloads`, then times the pipeline until every output is acknowledged.
fn throughput(
    brokers: &str,
    partitions: i32,
    payloads: &[Vec<u8>],
    store: &Arc<IntelStore>,
    passthrough: bool,
) -> f64 {
    let config = config(
        brokers,
        partitions,
        if passthrough { "pass" } else { "enrich" },
    );
    let producer = producer(brokers, "5");
    for (idx, payload) in payloads.iter().enumerate() {
        send(&producer, &config.topics.input, &idx.to_string(), payload);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let (cpu_before, broker_before) = (thread_ticks(), broker_ticks());
    let started = Instant::now();
    let handle = start_pipeline(
        &config,
        PipelineDeps {
            passthrough,
            ..PipelineDeps::new(store.clone(), shutdown.clone())
        },
    )
    .unwrap();
    let total = payloads.len();
    let mut first: Option<Instant> = None;
    while handle.shared.stats.produced.load(Ordering::Acquire) < total {
        if first.is_none() && handle.shared.stats.consumed.load(Ordering::Acquire) > 0 {
            first = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let end = Instant::now();
    cpu_report(
        if passthrough {
            "passthrough"
        } else {
            "pipeline"
        },
        total,
        &cpu_before,
        broker_before,
    );
    shutdown.store(true, Ordering::Release);
    handle.join().unwrap();
    drop_topics(&config);
    let from = first.unwrap_or(started);
    total as f64 / (end - from).as_secs_f64()
}

/// Produces at `rate` alerts/s for `seconds`; returns sorted latencies in ms.
fn latency(
    brokers: &str,
    partitions: i32,
    lines: &[String],
    store: &Arc<IntelStore>,
    rate: f64,
    seconds: u64,
) -> Vec<f64> {
    let config = config(brokers, partitions, "latency");
    let shutdown = Arc::new(AtomicBool::new(false));
    let deps = PipelineDeps {
        passthrough: std::env::var("PASSTHROUGH").is_ok_and(|v| v == "1"),
        ..PipelineDeps::new(store.clone(), shutdown.clone())
    };
    let handle = start_pipeline(&config, deps).unwrap();
    while !handle.shared.has_assignment.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reader of the output topic (fresh for this run, so from its beginning: `End` would be
    // resolved only at the first fetch and miss what was written before), fetching as
    // wazuh-misp itself does (at least 64 KiB or 10 ms; READER_FETCH_MIN_BYTES=1 answers
    // every fetch at once).
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{}-reader", config.kafka.group_id))
        .set("fetch.wait.max.ms", "10")
        .set(
            "fetch.min.bytes",
            std::env::var("READER_FETCH_MIN_BYTES").unwrap_or_else(|_| "65536".into()),
        )
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        tpl.add_partition_offset(&config.topics.enriched, partition, Offset::Beginning)
            .unwrap();
    }
    reader.assign(&tpl).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader_done = done.clone();
    let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader_read = read.clone();
    let warm = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader_warm = warm.clone();
    let reader_thread = std::thread::spawn(move || {
        let mut latencies = Vec::new();
        while !reader_done.load(Ordering::Acquire) {
            if let Some(Ok(message)) = reader.poll(Duration::from_millis(10)) {
                let now = chrono::Utc::now().timestamp_micros();
                let payload = message.payload().unwrap_or_default();
                // "bench_sent_us":<micros> was put at the start of the alert by the producer.
                if let Some(pos) = payload.windows(16).position(|w| w == b"\"bench_sent_us\":") {
                    let digits: String = payload[pos + 16..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .map(|b| *b as char)
                        .collect();
                    if let Ok(sent) = digits.parse::<i64>() {
                        latencies.push((sent, (now - sent) as f64 / 1000.0));
                        reader_read.fetch_add(1, Ordering::Release);
                    }
                } else {
                    reader_warm.fetch_add(1, Ordering::Release);
                }
            }
        }
        latencies
    });
    // The load generator batches like a shipper (Filebeat's Kafka output does): 5 ms, the
    // pipeline's own default. Its delay is inside the measured latency.
    let gen_linger = std::env::var("GEN_LINGER_MS").unwrap_or_else(|_| "5".into());
    let producer = producer(brokers, &gen_linger);
    // DIRECT=1: the load goes straight to the output topic (the broker and clients alone).
    let target = if std::env::var("DIRECT").is_ok_and(|v| v == "1") {
        &config.topics.enriched
    } else {
        &config.topics.input
    };
    // Payloads built once with a 16-digit send-time slot, patched in place per send, so the
    // generator spends its CPU on producing, not formatting.
    const PREFIX: &[u8] = b"{\"bench_sent_us\":";
    let mut payloads: Vec<Vec<u8>> = lines
        .iter()
        .map(|line| {
            let mut payload = PREFIX.to_vec();
            payload.extend_from_slice(b"0000000000000000,");
            payload.extend_from_slice(&line.as_bytes()[1..]);
            payload
        })
        .collect();
    // Warm-up: one alert without a send time into every partition, and the clock starts only
    // once the reader has them all, so neither the pipeline's nor the reader's first fetches are
    // inside the measured latencies.
    for partition in 0..partitions {
        let record = BaseRecord::<str, [u8]>::to(target)
            .partition(partition)
            .payload(lines[0].as_bytes());
        producer.send(record).map_err(|(err, _)| err).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    while warm.load(Ordering::Acquire) < partitions as usize && Instant::now() < warm_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut key = String::new();
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        while sent < due {
            let index = sent % payloads.len();
            let payload = &mut payloads[index];
            let mut micros = chrono::Utc::now().timestamp_micros().max(0) as u64;
            for digit in payload[PREFIX.len()..PREFIX.len() + 16].iter_mut().rev() {
                *digit = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            key.clear();
            write!(key, "{sent}").unwrap();
            send(&producer, target, &key, payload);
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_micros(500));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.shared.stats.produced.load(Ordering::Acquire) < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every record the pipeline wrote is waited for, so the slowest ones are in the sample.
    while read.load(Ordering::Acquire) < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, Ordering::Release);
    let timed = reader_thread.join().unwrap();
    shutdown.store(true, Ordering::Release);
    handle.join().unwrap();
    drop_topics(&config);
    if std::env::var_os("LATENCY_SERIES").is_some() {
        print_series(&timed);
    }
    let mut latencies: Vec<f64> = timed.iter().map(|(_, l)| *l).collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "latency run: {sent} alerts produced at {rate:.0}/s for {seconds} s, {} measured",
        latencies.len()
    );
    latencies
}

/// Per-second p50/p99/max by send time (LATENCY_SERIES=1): where the tail sits in the run.
fn print_series(timed: &[(i64, f64)]) {
    let Some(first) = timed.iter().map(|(sent, _)| *sent).min() else {
        return;
    };
    let mut buckets: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for (sent, latency) in timed {
        buckets
            .entry((sent - first) / 1_000_000)
            .or_default()
            .push(*latency);
    }
    for (second, mut values) in buckets {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "  second {second:>3}: {:>7} alerts, p50 {:>6.1} ms, p99 {:>6.1} ms, max {:>6.1} ms",
            values.len(),
            pct(&values, 0.5),
            pct(&values, 0.99),
            pct(&values, 1.0)
        );
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("e2e bench: run with `cargo bench --features broker-tests --bench e2e`");
        return;
    }
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string());
    let n = env("N", 200_000);
    let partitions = env("P", 6) as i32;
    let n_indicators = env("INDICATORS", 1_000_000);
    let seconds = env("SECONDS", 20) as u64;
    let intel = GenIntel::generate(n_indicators, 11);
    let store = Arc::new(IntelStore::new(intel.build()));
    let alerts = generate_alerts(20_000, &intel, 0.05, 12);
    drop(intel);
    let lines: Vec<String> = alerts.iter().map(|a| a.json.clone()).collect();
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| lines[i % lines.len()].as_bytes().to_vec())
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    println!(
        "e2e: {n} alerts ({} MB), {partitions} partitions, {} indicators, broker {brokers}",
        bytes >> 20,
        store.load().len()
    );

    // LATENCY_RATE=N: only a latency run at N alerts/s (for tuning experiments).
    if let Ok(rate) = std::env::var("LATENCY_RATE") {
        let rate: f64 = rate.parse().expect("LATENCY_RATE is a number");
        let latencies = latency(&brokers, partitions, &lines, &store, rate, seconds);
        println!(
            "latency at {rate:.0} alerts/s: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(&latencies, 0.50),
            pct(&latencies, 0.90),
            pct(&latencies, 0.99),
            pct(&latencies, 1.0)
        );
        return;
    }
    // Alternate the two modes (the first run warms the broker), best of two each.
    let mut pass: f64 = 0.0;
    let mut enrich: f64 = 0.0;
    // THROUGHPUT_MODE=pass|enrich: one mode only (to profile it).
    let mode = std::env::var("THROUGHPUT_MODE").unwrap_or_default();
    for round in 0..2 {
        let p = match mode.as_str() {
            "enrich" => f64::NAN,
            _ => throughput(&brokers, partitions, &payloads, &store, true),
        };
        let e = match mode.as_str() {
            "pass" => f64::NAN,
            _ => throughput(&brokers, partitions, &payloads, &store, false),
        };
        println!("round {round}: passthrough {p:.0}/s, pipeline {e:.0}/s");
        pass = pass.max(p);
        enrich = enrich.max(e);
    }
    println!("passthrough baseline: {pass:>9.0} alerts/s (best of 2)");
    if std::env::var("THROUGHPUT_ONLY").is_ok_and(|v| v == "1") {
        println!(
            "wazuh-misp pipeline:  {enrich:>9.0} alerts/s (best of 2) = {:.0}% of passthrough",
            100.0 * enrich / pass
        );
        return;
    }
    println!("wazuh-misp pipeline:  {enrich:>9.0} alerts/s (best of 2) = {:.0}% of passthrough (bar: >= 85%)", 100.0 * enrich / pass);

    for divisor in [2.0, 4.0, 8.0] {
        let rate = enrich / divisor;
        let latencies = latency(&brokers, partitions, &lines, &store, rate, seconds);
        println!(
            "latency at {rate:.0} alerts/s (1/{divisor} of the maximum): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(&latencies, 0.50),
            pct(&latencies, 0.99),
            pct(&latencies, 1.0)
        );
    }
}
