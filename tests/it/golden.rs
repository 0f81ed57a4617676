//! The bundled samples through `enrich`: golden output, the output schema, and the rule that
//! the input alert passes through unchanged.

use std::io::Cursor;

use wazuh_misp::commands::enrich::run_stream;
use wazuh_misp::intel::{load_snapshot, IntelSources};
use wazuh_misp::pipeline::ProcessorOptions;

use crate::support::{output_validator, repo};

fn sample_snapshot() -> wazuh_misp::intel::IntelSnapshot {
    load_snapshot(&IntelSources {
        files: vec![repo("config/samples/misp-feed")],
        warninglists_dir: Some(repo("config/samples/warninglists")),
        include_non_ids: false,
        ..IntelSources::default()
    })
    .expect("samples load")
}

fn sample_output(
    all: bool,
) -> (
    String,
    wazuh_misp::commands::enrich::EnrichSummary,
    Vec<(u64, String)>,
) {
    let snapshot = sample_snapshot();
    let mut input = std::fs::read_to_string(repo("config/samples/alerts.jsonl")).unwrap();
    input.push_str(&std::fs::read_to_string(repo("config/samples/bad-messages.txt")).unwrap());
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let summary = run_stream(
        Cursor::new(input),
        &mut out,
        all,
        &snapshot,
        ProcessorOptions::default(),
        &mut |line, reason| bad.push((line, reason.to_string())),
        &mut |_| {},
    )
    .expect("enrich runs");
    (String::from_utf8(out).unwrap(), summary, bad)
}

#[test]
fn samples_match_golden_output() {
    let (out, summary, bad) = sample_output(false);
    let golden_path = repo("tests/fixtures/expected/samples-enriched.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &out).unwrap();
    }
    let golden =
        std::fs::read_to_string(&golden_path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    let got: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<serde_json::Value> = golden
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "number of enriched alerts");
    for (idx, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            got, want,
            "enriched alert {idx} differs from the golden file"
        );
    }
    assert_eq!(summary.read, 26);
    assert_eq!(summary.matched, 15);
    assert_eq!(summary.bad, 4);
    assert_eq!(
        bad.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        vec![23, 24, 25, 26],
        "bad lines reported with their numbers"
    );
    assert!(bad[0].1.contains("invalid json"), "{:?}", bad[0]);
    assert!(bad[2].1.contains("not a wazuh alert"), "{:?}", bad[2]);
    assert!(bad[3].1.contains("not an object"), "{:?}", bad[3]);
}

#[test]
fn outputs_validate_against_the_schema() {
    let validator = output_validator();
    let (out, _, _) = sample_output(false);
    for line in out.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:?} in {line}");
    }
    // And the schema rejects what it must.
    let bad = serde_json::json!({"rule": {}, "threat": {"enrichments": []}, "wazuh_misp": {"risk_score": 101, "matched_count": 0}});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn lookup_answers_are_the_enrichment_objects() {
    let snapshot = sample_snapshot();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("config/enriched-alert.schema.json")).unwrap(),
    )
    .unwrap();
    let item = serde_json::json!({"$ref": "#/$defs/enrichment", "$defs": schema["$defs"]});
    let validator = jsonschema::validator_for(&item).expect("enrichment schema compiles");
    let (out, _, _) = sample_output(false);
    let mut checked = 0;
    for line in out.lines() {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        for enrichment in alert["threat"]["enrichments"].as_array().unwrap() {
            let atomic = enrichment["matched"]["atomic"].as_str().unwrap();
            let answers = wazuh_misp::commands::lookup::lookup_local(&snapshot, atomic, None);
            for answer in &answers {
                let errors: Vec<String> = validator
                    .iter_errors(answer)
                    .map(|e| format!("{e} at {}", e.instance_path))
                    .collect();
                assert!(errors.is_empty(), "{errors:?} in {answer}");
            }
            // The same object as the alert's, but for the field it was matched in.
            let uuid = &enrichment["misp"]["attribute"]["uuid"];
            let answer = answers
                .iter()
                .find(|answer| answer["misp"]["attribute"]["uuid"] == *uuid)
                .unwrap_or_else(|| panic!("lookup {atomic} misses attribute {uuid}"));
            let mut want = enrichment.clone();
            want["matched"]["field"] = "lookup".into();
            assert_eq!(answer, &want, "lookup {atomic}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} enrichments checked");
}

#[test]
fn input_alert_passes_through_unchanged() {
    let (out, _, _) = sample_output(true);
    let inputs: Vec<serde_json::Value> =
        std::fs::read_to_string(repo("config/samples/alerts.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let outputs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(inputs.len(), outputs.len(), "--all writes every alert");
    for (input, output) in inputs.iter().zip(&outputs) {
        let mut stripped = output.clone();
        let object = stripped.as_object_mut().unwrap();
        object.remove("threat");
        object.remove("wazuh_misp");
        object.remove("misp");
        // The message-string and nested forms output the inner alert.
        let expected = if let Some(text) = input.get("message").and_then(|m| m.as_str()) {
            serde_json::from_str(text).unwrap()
        } else if let Some(inner) = input.get("json") {
            inner.clone()
        } else {
            input.clone()
        };
        assert_eq!(stripped, expected);
        // Key order is kept too (the splice does not re-serialise).
        let got_keys: Vec<&String> = stripped.as_object().unwrap().keys().collect();
        let want_keys: Vec<&String> = expected.as_object().unwrap().keys().collect();
        assert_eq!(got_keys, want_keys);
    }
}

#[test]
fn existing_misp_key_is_left_alone() {
    let snapshot = crate::support::snapshot_from(
        &[
            serde_json::json!({"Event": {"id": "1", "uuid": "u", "info": "i", "threat_level_id": "1", "Attribute": [{"uuid": "a", "type": "ip-dst", "value": "1.2.3.4", "to_ids": true}]}}),
        ],
        &[],
        false,
    );
    let mut processor = wazuh_misp::pipeline::Processor::new(ProcessorOptions::default());
    let alert = r#"{"rule":{"level":3},"agent":{"id":"001"},"data":{"srcip":"1.2.3.4"},"misp":{"event_id":"old"}}"#;
    processor.process(alert.as_bytes(), &snapshot);
    let out: serde_json::Value = serde_json::from_slice(processor.output()).unwrap();
    assert_eq!(out["misp"], serde_json::json!({"event_id": "old"}));
    assert_eq!(out["threat"]["enrichments"].as_array().unwrap().len(), 1);
    // An alert that already has threat.enrichments gets ours appended, not a duplicate key.
    let alert = r#"{"rule":{"level":3},"data":{"srcip":"1.2.3.4"},"threat":{"enrichments":[{"x":1}],"framework":"MITRE"}}"#;
    processor.process(alert.as_bytes(), &snapshot);
    let text = std::str::from_utf8(processor.output()).unwrap();
    assert_eq!(text.matches("\"threat\"").count(), 1, "{text}");
    let out: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(out["threat"]["enrichments"].as_array().unwrap().len(), 2);
    assert_eq!(out["threat"]["framework"], "MITRE");
}
