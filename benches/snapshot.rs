//! Snapshot bench: build time and memory of the indicator set at 1M and 10M attributes, and
//! the time to load 1M attributes from MISP restSearch JSON (the file format a sync parses).
//!
//! cargo bench --bench snapshot                 # 1M and 10M
//! SIZES=1000000 cargo bench --bench snapshot
//!
//! Each size runs in a child process so resident memory is measured alone: RSS before the
//! build (generated input held), after the build with the input dropped, and the peak.

use std::process::Command;
use std::time::Instant;

use wazuh_misp::corpus::GenIntel;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn child(size: usize) {
    let base = status_kib("VmRSS:");
    let intel = GenIntel::generate(size, 7);
    let with_input = status_kib("VmRSS:");
    let started = Instant::now();
    let snapshot = intel.build();
    let build = started.elapsed();
    let peak = status_kib("VmHWM:");
    drop(intel);
    // Give freed pages back so RSS shows what the snapshot keeps.
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    unsafe {
        malloc_trim(0);
    }
    let after = status_kib("VmRSS:");
    let stats = snapshot.stats();
    println!(
        "{size:>9} attributes: built in {:>6.2} s | snapshot RSS {:>6} MiB (heap estimate {} MiB) | peak RSS {} MiB (generated input {} MiB) | ip {} domain {} url {} hostname {} email {} hash {}",
        build.as_secs_f64(),
        (after.saturating_sub(base)) / 1024,
        snapshot.heap_bytes() / (1 << 20),
        peak / 1024,
        with_input.saturating_sub(base) / 1024,
        stats.ip,
        stats.domain,
        stats.url,
        stats.hostname,
        stats.email,
        stats.hash
    );
    if size <= 1_000_000 {
        // Loading from MISP JSON: what a sync does with each restSearch page.
        let intel = GenIntel::generate(size, 7);
        let body = serde_json::to_vec(&intel.to_restsearch()).expect("serialise");
        drop(intel);
        let started = Instant::now();
        let mut builder = wazuh_misp::intel::SnapshotBuilder::new(false, None);
        wazuh_misp::intel::Loader::default()
            .add_json(&mut builder, &body, std::path::Path::new("bench"))
            .expect("load");
        let snapshot = builder.build();
        let elapsed = started.elapsed();
        println!(
            "{size:>9} attributes from restSearch JSON ({} MiB): parsed and built in {:.2} s = {:.0} attributes/s",
            body.len() >> 20,
            elapsed.as_secs_f64(),
            snapshot.len() as f64 / elapsed.as_secs_f64()
        );
    }
}

fn main() {
    if let Ok(size) = std::env::var("SNAPSHOT_BENCH_CHILD") {
        child(size.parse().expect("size"));
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!("snapshot bench: run with `cargo bench --bench snapshot`");
        return;
    }
    let sizes = std::env::var("SIZES").unwrap_or_else(|_| "1000000,10000000".to_string());
    let exe = std::env::current_exe().expect("own path");
    for size in sizes.split(',') {
        let status = Command::new(&exe)
            .env("SNAPSHOT_BENCH_CHILD", size.trim())
            .status()
            .expect("child runs");
        assert!(status.success(), "bench child for {size} failed");
    }
}
