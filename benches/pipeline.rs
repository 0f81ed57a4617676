//! Per-alert pipeline bench: decode, extract, match and whole-alert processing on a realistic
//! mix of alert families with 1M generated indicators loaded, next to a parse-only baseline
//! (simd-json into reused buffers over the same lines), all in one run so the ratio is fair.
//!
//! cargo bench --bench pipeline                      # 1M indicators, 20k alerts
//! INDICATORS=100000 ALERTS=5000 cargo bench --bench pipeline
//! PROCESS_PASSES=2 ...   # only that many whole-alert passes (for callgrind's exact counts)
//!
//! Each variant makes 7 passes over the corpus; the median pass is reported. Parse-only and
//! whole-alert passes alternate (15 of each), so that both see the same machine state: on a
//! shared VM the speed drifts by several percent within seconds, and measuring one after the
//! other would put that drift into the ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use simd_json::{Buffers, Tape};
use wazuh_misp::corpus::{generate_alerts, GenIntel};
use wazuh_misp::intel::snapshot::IntelSnapshot;
use wazuh_misp::pipeline::decode::locate_alert;
use wazuh_misp::pipeline::extract::{Extraction, Extractor};
use wazuh_misp::pipeline::matcher::{Hit, Matcher};
use wazuh_misp::pipeline::{Outcome, Processor, ProcessorOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn measure(name: &str, alerts: usize, bytes: usize, mut pass: impl FnMut()) -> f64 {
    pass(); // warm-up
    let runs: Vec<Duration> = (0..7).map(|_| timed(&mut pass)).collect();
    report(name, alerts, bytes, median(runs))
}

fn timed(pass: &mut impl FnMut()) -> Duration {
    let started = Instant::now();
    pass();
    started.elapsed()
}

/// Passes of `first` and `second`, alternated; the median of each, and the median of the
/// per-round ratios (`second`'s throughput over `first`'s).
fn measure_alternated(
    names: [&str; 2],
    alerts: usize,
    bytes: usize,
    mut first: impl FnMut(),
    mut second: impl FnMut(),
) -> (f64, f64, f64) {
    first(); // warm-up
    second();
    let (mut firsts, mut seconds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        let a = timed(&mut first);
        let b = timed(&mut second);
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
        firsts.push(a);
        seconds.push(b);
    }
    ratios.sort_by(f64::total_cmp);
    let a = report(names[0], alerts, bytes, median(firsts));
    let b = report(names[1], alerts, bytes, median(seconds));
    (a, b, ratios[ratios.len() / 2])
}

fn report(name: &str, alerts: usize, bytes: usize, time: Duration) -> f64 {
    let per_alert_ns = time.as_nanos() as f64 / alerts as f64;
    let rate = alerts as f64 / time.as_secs_f64();
    println!(
        "{name:<34} {per_alert_ns:>9.0} ns/alert {:>10.0} alerts/s {:>8.1} MB/s",
        rate,
        bytes as f64 / time.as_secs_f64() / 1e6
    );
    rate
}

/// One whole-alert pass over `lines`, outcomes discarded (for the diagnostic modes).
fn whole_pass(processor: &mut Processor, lines: &[Vec<u8>], snapshot: &IntelSnapshot) {
    for line in lines {
        black_box(processor.process(line, snapshot));
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with --bench absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline bench: run with `cargo bench --bench pipeline`");
        return;
    }
    let n_indicators = env("INDICATORS", 1_000_000);
    let n_alerts = env("ALERTS", 20_000);
    let started = Instant::now();
    let intel = GenIntel::generate(n_indicators, 42);
    let snapshot = intel.build();
    println!(
        "indicators: {} generated and indexed in {:.2?}",
        snapshot.len(),
        started.elapsed()
    );
    let alerts = generate_alerts(n_alerts, &intel, 0.05, 43);
    drop(intel);
    let lines: Vec<Vec<u8>> = alerts.iter().map(|a| a.json.as_bytes().to_vec()).collect();
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let planted = alerts.iter().filter(|a| !a.planted.is_empty()).count();
    println!(
        "alerts: {n_alerts} (mean {} bytes; {planted} carry an indicator), 12 families",
        bytes / n_alerts
    );
    println!();

    if let Some(passes) = std::env::var("PROCESS_PASSES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // For `valgrind --tool=callgrind --toggle-collect='*Processor::process*'`: exactly
        // this many whole-alert passes, so that instructions per alert are counted exactly.
        let mut processor = Processor::new(ProcessorOptions::default());
        for _ in 0..passes {
            whole_pass(&mut processor, &lines, &snapshot);
        }
        return;
    }
    // Parse-only baseline: copy into a reused buffer and fill a reused tape.
    let mut buffers = Buffers::new(4096);
    let mut input = Vec::with_capacity(8192);
    let mut tape_cache: Option<Tape<'static>> = Some(Tape::null().reset());

    let nested = ProcessorOptions::default().nested_keys;
    measure("decode (parse + locate alert)", n_alerts, bytes, || {
        for line in &lines {
            input.clear();
            input.extend_from_slice(line);
            let mut tape = tape_cache.take().unwrap().reset();
            simd_json::fill_tape(&mut input, &mut buffers, &mut tape).unwrap();
            black_box(locate_alert(&tape.0, &nested).is_ok());
            tape_cache = Some(tape.reset());
        }
    });

    // Extract and match alone, on pre-parsed tapes.
    let mut owned: Vec<Vec<u8>> = lines.clone();
    let tapes: Vec<Tape<'_>> = owned
        .iter_mut()
        .map(|line| simd_json::to_tape(line).unwrap())
        .collect();
    let mut extractor = Extractor::default();
    let mut extraction = Extraction::default();
    let mut extractions: Vec<Extraction> = Vec::new();
    measure("extract (from parsed tape)", n_alerts, bytes, || {
        for tape in &tapes {
            extractor.extract(&tape.0, &mut extraction);
            black_box(extraction.len());
        }
    });
    if std::env::var_os("FAMILY_BREAKDOWN").is_some() {
        for family in wazuh_misp::corpus::FAMILIES {
            let picked: Vec<&Tape<'_>> = tapes
                .iter()
                .zip(&alerts)
                .filter(|(_, a)| a.family == family)
                .map(|(t, _)| t)
                .collect();
            let started = Instant::now();
            for _ in 0..20 {
                for tape in &picked {
                    extractor.extract(&tape.0, &mut extraction);
                    black_box(extraction.len());
                }
            }
            let per = started.elapsed().as_nanos() as f64 / (20 * picked.len()) as f64;
            println!(
                "  extract {family:<12} {per:>7.0} ns/alert ({} observables)",
                extraction.len()
            );
        }
    }
    for tape in &tapes {
        let mut one = Extraction::default();
        extractor.extract(&tape.0, &mut one);
        extractions.push(one);
    }
    let observables: usize = extractions.iter().map(Extraction::len).sum();
    let mut matcher = Matcher::default();
    let mut hits: Vec<Hit> = Vec::new();
    let mut n_hits = 0;
    measure("match (1M-indicator snapshot)", n_alerts, bytes, || {
        n_hits = 0;
        for one in &extractions {
            matcher.match_all(&snapshot, one, &mut hits);
            n_hits += hits.len();
        }
    });
    println!(
        "{:<34} {observables} observables, {n_hits} hits per pass",
        ""
    );

    if let Ok(seconds) = std::env::var("PROFILE_WHOLE_SECS") {
        // For `perf record`: only the whole-alert loop, for a while.
        let mut processor = Processor::new(ProcessorOptions::default());
        let until = Instant::now() + Duration::from_secs(seconds.parse().unwrap_or(10));
        while Instant::now() < until {
            whole_pass(&mut processor, &lines, &snapshot);
        }
        return;
    }
    // The headline pair: the parse-only baseline (copy into a reused buffer, fill a reused
    // tape) and the whole alert, alternated.
    println!();
    let mut processor = Processor::new(ProcessorOptions::default());
    let mut enriched = 0;
    let (parse, whole, round_ratio) = measure_alternated(
        [
            "parse only (simd-json tape)",
            "whole alert (decode..enrich)",
        ],
        n_alerts,
        bytes,
        || {
            for line in &lines {
                input.clear();
                input.extend_from_slice(line);
                let mut tape = tape_cache.take().unwrap().reset();
                simd_json::fill_tape(&mut input, &mut buffers, &mut tape).unwrap();
                black_box(tape.0.len());
                tape_cache = Some(tape.reset());
            }
        },
        || {
            enriched = 0;
            for line in &lines {
                if let Outcome::Enriched { .. } = processor.process(line, &snapshot) {
                    enriched += 1;
                }
                black_box(processor.output().len());
            }
        },
    );
    println!();
    println!("enriched per pass: {enriched} of {n_alerts}");
    println!(
        "whole-alert throughput = {:.1}% of parse-only (medians; median of the 15 rounds' ratios: {:.1}%) (bar: >= 60%)",
        100.0 * whole / parse,
        100.0 * round_ratio
    );
}
