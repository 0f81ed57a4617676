//! MISP sync bench: a full sync of 1M attributes from a local MISP-shaped server (paged
//! restSearch over HTTP, parse, build), and the per-alert processing latency while snapshots
//! of that size are built and swapped in, against the steady latency.
//!
//! cargo bench --bench sync                     # 1M attributes
//! ATTRIBUTES=200000 cargo bench --bench sync

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use wazuh_misp::config::{Config, Secret};
use wazuh_misp::corpus::{generate_alerts, GenIntel};
use wazuh_misp::intel::sync::{build_from_sources, misp_client};
use wazuh_misp::intel::{IntelSources, IntelStore};
use wazuh_misp::pipeline::{Processor, ProcessorOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Per-alert latencies of `rounds` passes over `lines`, every alert timed.
fn latencies(store: &IntelStore, lines: &[Vec<u8>], stop: Option<&AtomicBool>) -> Vec<Duration> {
    let mut processor = Processor::new(ProcessorOptions::default());
    let mut out = Vec::new();
    loop {
        for line in lines {
            let started = Instant::now();
            let snapshot = store.load();
            black_box(processor.process(line, &snapshot));
            out.push(started.elapsed());
        }
        match stop {
            Some(flag) if !flag.load(Ordering::Acquire) => continue,
            _ => break,
        }
    }
    out.sort();
    out
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sync bench: run with `cargo bench --bench sync`");
        return;
    }
    let count = env("ATTRIBUTES", 1_000_000);
    let intel = GenIntel::generate(count, 5);
    let body = intel.to_restsearch();
    let attributes: Arc<Vec<Value>> = Arc::new(
        body["response"]["Attribute"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let served = attributes.clone();
    let app = Router::new().route(
        "/attributes/restSearch",
        post(move |Json(request): Json<Value>| {
            let served = served.clone();
            async move {
                let limit = request["limit"].as_u64().unwrap_or(5000) as usize;
                let page = request["page"].as_u64().unwrap_or(1).max(1) as usize;
                let slice: Vec<&Value> =
                    served.iter().skip((page - 1) * limit).take(limit).collect();
                Json(serde_json::json!({"response": {"Attribute": slice}}))
            }
        }),
    );
    let url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    let mut config = Config::default();
    config.misp.url = Some(url);
    config.misp.api_key = Some(Secret::new("bench-key"));
    config.misp.page_size = 5000;
    let client = misp_client(&config).unwrap();
    let started = Instant::now();
    let snapshot = runtime
        .block_on(build_from_sources(
            &IntelSources::default(),
            client.as_ref(),
            0,
        ))
        .unwrap();
    let elapsed = started.elapsed();
    println!(
        "full sync of {} attributes from a local MISP-shaped server (pages of 5000): {:.2} s = {:.0} attributes/s (bar: >= 100000/s)",
        snapshot.len(),
        elapsed.as_secs_f64(),
        snapshot.len() as f64 / elapsed.as_secs_f64()
    );

    // Swap latency: one thread processes alerts, another builds and swaps 1M snapshots.
    let store = Arc::new(IntelStore::new(snapshot));
    let alerts = generate_alerts(20_000, &intel, 0.05, 6);
    let lines: Vec<Vec<u8>> = alerts.iter().map(|a| a.json.as_bytes().to_vec()).collect();
    let steady = latencies(&store, &lines, None);
    let swapping = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let builder_store = store.clone();
    let builder_done = done.clone();
    let builder_swapping = swapping.clone();
    let builder = std::thread::spawn(move || {
        let mut swaps = 0;
        builder_swapping.store(true, Ordering::Release);
        for _ in 0..3 {
            builder_store.swap(intel.build());
            swaps += 1;
        }
        builder_done.store(true, Ordering::Release);
        swaps
    });
    while !swapping.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let during = latencies(&store, &lines, Some(&done));
    let swaps = builder.join().unwrap();
    let show = |name: &str, sorted: &[Duration]| {
        println!(
            "{name:<28} p50 {:>7.2} µs  p99 {:>7.2} µs  p99.9 {:>7.2} µs  ({} alerts)",
            percentile(sorted, 0.5).as_secs_f64() * 1e6,
            percentile(sorted, 0.99).as_secs_f64() * 1e6,
            percentile(sorted, 0.999).as_secs_f64() * 1e6,
            sorted.len()
        );
    };
    show("steady", &steady);
    show(&format!("during {swaps} builds+swaps"), &during);
    println!(
        "p99 during swaps = {:.2}x steady (bar: <= 2x)",
        percentile(&during, 0.99).as_secs_f64() / percentile(&steady, 0.99).as_secs_f64()
    );
}
