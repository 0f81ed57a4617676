//! The per-alert pipeline: decode → extract → match → enrich, in [`Processor::process`].
//! Synchronous, free of IO, never panics on input. The same processor runs under `run`
//! (Kafka), `enrich` (files) and `demo`.

pub mod bytemask;
pub mod decode;
pub mod enrich;
pub mod extract;
pub mod fields;
pub mod matcher;
pub mod normalize;
pub mod offsets;
pub mod text;

use std::time::{Duration, Instant};

use simd_json::{Buffers, Tape};

use crate::intel::IntelSnapshot;
use crate::model::observable::IocKind;
use decode::{locate_alert, AlertLocation, DecodeError};
use enrich::{write_enriched, EnrichOptions};
use extract::{Extraction, Extractor};
use matcher::{Hit, Matcher};

/// Settings of the per-alert pipeline.
#[derive(Debug, Clone)]
pub struct ProcessorOptions {
    /// Top-level keys an alert may be nested under, tried in order.
    pub nested_keys: Vec<String>,
    /// Larger messages are dead letters.
    pub max_message_bytes: usize,
    pub enrich: EnrichOptions,
    /// Read the envelope (rule level, agent, ids) and write the observables' field paths of
    /// unmatched alerts too, not only of matched ones: live queries, IOC sharing and
    /// pass-through record keys read them.
    pub describe_unmatched: bool,
}

impl Default for ProcessorOptions {
    fn default() -> Self {
        ProcessorOptions {
            nested_keys: vec!["json".to_string(), "alert".to_string(), "wazuh".to_string()],
            // Wazuh caps an event at 64 KiB; alerts with previous_output can be larger.
            max_message_bytes: 1 << 20,
            enrich: EnrichOptions::default(),
            describe_unmatched: false,
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// At least one attribute matched; `Processor::output` holds the enriched alert.
    Enriched { matches: usize },
    /// No match; `Processor::output` holds the alert unchanged.
    Unmatched,
    /// The message is not a usable alert.
    DeadLetter(DecodeError),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Enriched { .. } => "enriched",
            Outcome::Unmatched => "unmatched",
            Outcome::DeadLetter(_) => "dead_lettered",
        }
    }
}

/// Per-worker state: reused buffers for every stage.
pub struct Processor {
    options: ProcessorOptions,
    buffers: Buffers,
    input: Vec<u8>,
    inner_input: Vec<u8>,
    nested: Vec<u8>,
    tape: Option<Tape<'static>>,
    inner_tape: Option<Tape<'static>>,
    stages: Stages,
    /// Observables extracted since the last `take_counts`, by kind.
    observable_counts: [u64; 8],
    /// The last alert was unmatched and is the payload itself (no copy made).
    output_is_payload: bool,
    /// Alerts processed; every `TIMING_SAMPLE`-th one is timed stage by stage.
    processed: u64,
    /// Stage timings of sampled alerts since the last `take_timings` (decode, extract, match, enrich).
    timings: Vec<[Duration; 4]>,
}

/// One alert in this many has its stages timed (timing every alert would cost ~80 ns).
pub const TIMING_SAMPLE: u64 = 64;

/// Stage names, in the order of the timing arrays.
pub const STAGES: [&str; 4] = ["decode", "extract", "match", "enrich"];

impl Processor {
    pub fn new(options: ProcessorOptions) -> Self {
        Processor {
            options,
            buffers: Buffers::new(4096),
            input: Vec::with_capacity(4096),
            inner_input: Vec::new(),
            nested: Vec::new(),
            tape: Some(Tape::null().reset()),
            inner_tape: Some(Tape::null().reset()),
            stages: Stages {
                extractor: Extractor::default(),
                extraction: Extraction::default(),
                matcher: Matcher::default(),
                hits: Vec::new(),
                output: Vec::with_capacity(8192),
            },
            observable_counts: [0; 8],
            processed: 0,
            output_is_payload: false,
            timings: Vec::new(),
        }
    }

    /// The enriched alert of the last `process` that returned `Outcome::Enriched`.
    pub fn output(&self) -> &[u8] {
        &self.stages.output
    }

    /// The output record of the last `process` of `payload`: the enriched alert, or for an
    /// unmatched alert the alert itself (the payload, or the alert a shipper wrapped in it).
    pub fn output_for<'a>(&'a self, payload: &'a [u8]) -> &'a [u8] {
        if self.output_is_payload {
            payload
        } else {
            &self.stages.output
        }
    }

    /// The observables of the last processed alert. Its envelope (rule level, agent, ids) and
    /// its observables' fields are there for a matched alert, and for an unmatched one only
    /// with [`ProcessorOptions::describe_unmatched`] (otherwise fields read empty).
    pub fn extraction(&self) -> &Extraction {
        &self.stages.extraction
    }

    /// Matches of the last processed alert.
    pub fn hits(&self) -> &[Hit] {
        &self.stages.hits
    }

    /// Observable counts by kind since the last call, for metrics.
    pub fn take_counts(&mut self) -> [(IocKind, u64); 8] {
        let counts = std::mem::take(&mut self.observable_counts);
        IocKind::ALL.map(|kind| (kind, counts[kind.index()]))
    }

    /// Stage timings of the sampled alerts since the last call.
    pub fn take_timings(&mut self) -> Vec<[Duration; 4]> {
        std::mem::take(&mut self.timings)
    }

    /// Runs one message through decode → extract → match → enrich.
    pub fn process(&mut self, payload: &[u8], snapshot: &IntelSnapshot) -> Outcome {
        self.processed += 1;
        self.output_is_payload = false;
        let mut clock = (self.processed % TIMING_SAMPLE == 0).then(|| StageClock {
            started: Instant::now(),
            stages: [Duration::ZERO; 4],
        });
        if payload.is_empty() {
            return Outcome::DeadLetter(DecodeError::Empty);
        }
        if payload.len() > self.options.max_message_bytes {
            return Outcome::DeadLetter(DecodeError::TooLarge {
                len: payload.len(),
                max: self.options.max_message_bytes,
            });
        }
        self.stages.extractor.collect_texts = snapshot.has_automaton();
        self.input.clear();
        self.input.extend_from_slice(payload);
        let mut raw = false;
        let mut tape = self
            .tape
            .take()
            .unwrap_or_else(|| Tape::null().reset())
            .reset();
        let result = match simd_json::fill_tape(&mut self.input, &mut self.buffers, &mut tape) {
            // Whitespace alone is not JSON: told apart only here, so that valid messages are
            // not read an extra time.
            Err(_) if payload.iter().all(|b| b.is_ascii_whitespace()) => {
                Outcome::DeadLetter(DecodeError::Empty)
            }
            Err(err) => Outcome::DeadLetter(DecodeError::InvalidJson(err.to_string())),
            Ok(()) => match locate_alert(&tape.0, &self.options.nested_keys) {
                Err(err) => Outcome::DeadLetter(err),
                Ok(AlertLocation::Raw) => {
                    raw = true;
                    self.stages
                        .run(&tape.0, 0, payload, snapshot, &self.options, &mut clock)
                }
                Ok(AlertLocation::Nested { idx, .. }) => {
                    self.nested.clear();
                    decode::write_json(&tape.0, idx, &mut self.nested);
                    let outcome = self.stages.run(
                        &tape.0,
                        idx,
                        &self.nested,
                        snapshot,
                        &self.options,
                        &mut clock,
                    );
                    if outcome == Outcome::Unmatched {
                        self.stages.output.extend_from_slice(&self.nested);
                    }
                    outcome
                }
                Ok(AlertLocation::MessageString(text)) => {
                    self.inner_input.clear();
                    self.inner_input.extend_from_slice(text.as_bytes());
                    let mut inner = self
                        .inner_tape
                        .take()
                        .unwrap_or_else(|| Tape::null().reset())
                        .reset();
                    let outcome = match simd_json::fill_tape(
                        &mut self.inner_input,
                        &mut self.buffers,
                        &mut inner,
                    ) {
                        Err(err) => {
                            Outcome::DeadLetter(DecodeError::InvalidMessage(err.to_string()))
                        }
                        Ok(()) => match inner.0.first() {
                            Some(simd_json::Node::Object { .. }) => self.stages.run(
                                &inner.0,
                                0,
                                text.as_bytes(),
                                snapshot,
                                &self.options,
                                &mut clock,
                            ),
                            _ => Outcome::DeadLetter(DecodeError::InvalidMessage(
                                "not a json object".to_string(),
                            )),
                        },
                    };
                    if outcome == Outcome::Unmatched {
                        self.stages.output.extend_from_slice(text.as_bytes());
                    }
                    self.inner_tape = Some(inner.reset());
                    outcome
                }
            },
        };
        self.tape = Some(tape.reset());
        self.output_is_payload = raw && result == Outcome::Unmatched;
        if let Some(clock) = clock {
            if !matches!(result, Outcome::DeadLetter(_)) {
                self.timings.push(clock.stages);
            }
        }
        if !matches!(result, Outcome::DeadLetter(_)) {
            for kind in self.stages.extraction.kinds() {
                self.observable_counts[kind.index()] += 1;
            }
        }
        result
    }
}

/// The stages after decode, with their reused state.
struct Stages {
    extractor: Extractor,
    extraction: Extraction,
    matcher: Matcher,
    hits: Vec<Hit>,
    output: Vec<u8>,
}

impl Stages {
    /// Extract, match and (on a match) enrich the alert object at tape index `root`, whose
    /// JSON text is `alert_bytes`. An unmatched alert leaves `output` empty: the caller knows
    /// whether the alert is the payload itself or must be copied.
    fn run(
        &mut self,
        nodes: &[simd_json::Node<'_>],
        root: usize,
        alert_bytes: &[u8],
        snapshot: &IntelSnapshot,
        options: &ProcessorOptions,
        clock: &mut Option<StageClock>,
    ) -> Outcome {
        tick(clock, 0);
        let nodes = &nodes[root..];
        self.extractor
            .extract_prefetching(nodes, &mut self.extraction, snapshot);
        if options.describe_unmatched {
            // Done here, it also gives the prefetches of the last observables time to land.
            self.extractor.describe(nodes, &mut self.extraction);
        }
        tick(clock, 1);
        self.matcher
            .match_all(snapshot, &self.extraction, &mut self.hits);
        tick(clock, 2);
        self.output.clear();
        if !options.describe_unmatched && !self.hits.is_empty() {
            self.extractor.describe(nodes, &mut self.extraction);
        }
        let outcome = if self.hits.is_empty() {
            Outcome::Unmatched
        } else {
            write_enriched(
                alert_bytes,
                &self.extraction,
                &self.hits,
                snapshot,
                &options.enrich,
                &mut self.output,
            );
            Outcome::Enriched {
                matches: self.hits.len(),
            }
        };
        tick(clock, 3);
        outcome
    }
}

/// Per-stage timing of one sampled alert.
pub struct StageClock {
    started: Instant,
    stages: [Duration; 4],
}

#[inline]
fn tick(clock: &mut Option<StageClock>, stage: usize) {
    if let Some(clock) = clock {
        let now = Instant::now();
        clock.stages[stage] = now - clock.started;
        clock.started = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATCHED: &str = r#"{"timestamp":"2026-11-25T10:15:30.123+0000","rule":{"level":12,"id":"5712","description":"brute force"},"agent":{"id":"007","name":"web-01"},"id":"1.2","data":{"srcip":"185.220.101.47"}}"#;
    const UNMATCHED: &str = r#"{"timestamp":"2026-11-25T10:15:31.123+0000","rule":{"level":9,"id":"5710","description":"invalid user"},"agent":{"id":"008","name":"web-02"},"id":"1.3","data":{"srcip":"10.1.2.3"}}"#;

    #[test]
    fn envelope_and_fields_are_there_for_matched_alerts_and_on_request_for_unmatched_ones() {
        let snapshot = crate::kafka::demo::sample_snapshot().unwrap();
        for describe_unmatched in [false, true] {
            let mut processor = Processor::new(ProcessorOptions {
                describe_unmatched,
                ..ProcessorOptions::default()
            });
            let outcome = processor.process(MATCHED.as_bytes(), &snapshot);
            assert!(matches!(outcome, Outcome::Enriched { .. }), "{outcome:?}");
            let extraction = processor.extraction();
            assert_eq!(extraction.rule_level, Some(12));
            assert_eq!(extraction.agent_id(), Some("007"));
            assert_eq!(extraction.meta().rule_id, Some("5712"));
            assert_eq!(extraction.get(0).field, "data.srcip");
            let enriched: serde_json::Value = serde_json::from_slice(processor.output()).unwrap();
            assert_eq!(enriched["wazuh_misp"]["risk_score"], 70, "{enriched}");

            let outcome = processor.process(UNMATCHED.as_bytes(), &snapshot);
            assert_eq!(outcome, Outcome::Unmatched);
            let extraction = processor.extraction();
            assert_eq!(extraction.get(0).value, "10.1.2.3");
            if describe_unmatched {
                assert_eq!(extraction.get(0).field, "data.srcip");
                assert_eq!(extraction.rule_level, Some(9));
                assert_eq!(extraction.agent_id(), Some("008"));
                assert_eq!(extraction.meta().agent_name, Some("web-02"));
            } else {
                // Not read, and nothing left over from the matched alert before it.
                assert_eq!(extraction.get(0).field, "");
                assert_eq!(extraction.rule_level, None);
                assert_eq!(extraction.agent_id(), None);
                assert_eq!(extraction.meta().agent_name, None);
            }
        }
    }
}
