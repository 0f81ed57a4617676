//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use wazuh_misp::intel::{IntelSnapshot, Loader, SnapshotBuilder, Warninglists};
use wazuh_misp::pipeline::{Outcome, Processor, ProcessorOptions};

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A snapshot from MISP JSON bodies (restSearch or events) and optional warninglist bodies.
pub fn snapshot_from(
    bodies: &[serde_json::Value],
    warninglists: &[serde_json::Value],
    include_non_ids: bool,
) -> IntelSnapshot {
    let lists = if warninglists.is_empty() {
        None
    } else {
        let mut lists = Warninglists::default();
        for list in warninglists {
            lists
                .add_json(list.to_string().as_bytes())
                .expect("test warninglist is valid");
        }
        Some(std::sync::Arc::new(lists))
    };
    let mut builder = SnapshotBuilder::new(include_non_ids, lists);
    let mut loader = Loader::default();
    for body in bodies {
        loader
            .add_json(&mut builder, body.to_string().as_bytes(), Path::new("test"))
            .expect("test MISP json loads");
    }
    builder.build()
}

/// (atomic, field, misp attribute value) of every enrichment of one alert; panics on a dead letter.
pub fn matches(snapshot: &IntelSnapshot, alert: &str) -> Vec<(String, String, String)> {
    let mut processor = Processor::new(ProcessorOptions::default());
    match processor.process(alert.as_bytes(), snapshot) {
        Outcome::DeadLetter(err) => panic!("alert rejected: {err}: {alert}"),
        Outcome::Unmatched => Vec::new(),
        Outcome::Enriched { .. } => {
            let out: serde_json::Value =
                serde_json::from_slice(processor.output()).expect("output is json");
            out["threat"]["enrichments"]
                .as_array()
                .expect("enrichments array")
                .iter()
                .map(|e| {
                    (
                        e["matched"]["atomic"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        e["matched"]["field"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        e["misp"]["attribute"]["value"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        }
    }
}

/// The JSON Schema of the output, compiled.
pub fn output_validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("config/enriched-alert.schema.json")).expect("schema file"),
    )
    .expect("schema json");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// Every metric name of `telemetry::metrics::ALL` appears in a `/metrics` scrape.
pub fn assert_every_metric(scrape: &str, source: &str) {
    for name in wazuh_misp::telemetry::metrics::ALL {
        assert!(scrape.contains(name), "{name} missing from {source}");
    }
}

/// GET `url` with `client`: the status code.
pub async fn status(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}
