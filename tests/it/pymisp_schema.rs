//! The request bodies we send to MISP, validated against PyMISP's event JSON schema
//! (`pymisp/data/schema.json`, draft-04, "Validator for misp events"), fetched by
//! tests/pymisp/fetch-schema.sh; tests/run.sh exports its path as `PYMISP_SCHEMA`.
//!
//! The bodies come from the functions the production code sends them with. Where the schema
//! and MISP disagree, the test pins the exact disagreement (see the comments).

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};

use wazuh_misp::config::SharingConfig;
use wazuh_misp::misp::push::{attribute_body, daily_event_body, PushOptions};
use wazuh_misp::misp::sharing::IocSharing;
use wazuh_misp::misp::sightings_body;
use wazuh_misp::pipeline::{Processor, ProcessorOptions};

fn schema() -> Value {
    let path = std::env::var("PYMISP_SCHEMA").expect(
        "PYMISP_SCHEMA is not set: run `export PYMISP_SCHEMA=$(bash tests/pymisp/fetch-schema.sh)` (tests/run.sh does)",
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    assert_eq!(schema["title"], "Validator for misp events", "{path}");
    // PyMISP's schema has `"required": ["uuid"]` inside `defs/sharing_group/properties` as well
    // as next to it: a "property" whose schema is an array, which draft-04 forbids. Python's
    // jsonschema lets it pass; jsonschema-rs refuses to compile it. Drop the stray copy.
    if let Some(properties) = schema
        .pointer_mut("/defs/sharing_group/properties")
        .and_then(Value::as_object_mut)
    {
        if properties.get("required").is_some_and(Value::is_array) {
            properties.remove("required");
        }
    }
    schema
}

/// The schema with its root replaced by `{"<key>": <$ref to defs/<def>>}`, so one def can be
/// checked with the schema's own `defs` (and `id`) in place.
fn validator_for_def(def: &str, key: &str) -> jsonschema::Validator {
    let mut schema = schema();
    assert!(
        schema["defs"].get(def).is_some(),
        "no defs/{def} in the schema"
    );
    schema["properties"] = json!({ key: {"$ref": format!("#/defs/{def}")} });
    schema["required"] = json!([key]);
    jsonschema::draft4::new(&schema).expect("schema compiles")
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at '{}'", e, e.instance_path))
        .collect()
}

/// The records IocSharing builds for `topics.iocs` from one alert with several IOC kinds.
fn shared_records() -> Vec<Value> {
    let snapshot = wazuh_misp::kafka::demo::sample_snapshot().unwrap();
    let sharing = IocSharing::new(10, Duration::from_secs(3600));
    // As the pipeline sets it when it shares IOCs: sharing reads the alert's envelope.
    let mut processor = Processor::new(ProcessorOptions {
        describe_unmatched: true,
        ..ProcessorOptions::default()
    });
    let alert = r#"{"timestamp":"2026-11-25T10:15:30.123+0000","rule":{"level":12,"id":"5712","description":"brute force"},"agent":{"id":"001","name":"web-01"},"id":"1.2",
        "data":{"srcip":"77.88.99.10","url":"http://new-bad.example/x","hash":"0123456789abcdef0123456789abcdef","email":"crook@new-bad.example","dns":{"rrname":"fresh-c2.example"}}}"#;
    processor.process(alert.as_bytes(), &snapshot);
    let records: Vec<Value> = sharing
        .collect(processor.extraction(), processor.hits(), &snapshot)
        .iter()
        .map(|ioc| serde_json::from_slice(&ioc.payload).unwrap())
        .collect();
    assert!(records.len() >= 4, "{records:?}");
    records
}

#[test]
fn the_daily_event_body_is_valid() {
    let validator = jsonschema::draft4::new(&schema()).expect("schema compiles");
    let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let default = PushOptions::from_config(&SharingConfig::default());
    let custom = PushOptions {
        distribution: 3,
        threat_level: 1,
        tags: vec![
            "wazuh-misp".into(),
            "tlp:green".into(),
            "misp-galaxy:x=\"y\"".into(),
        ],
        ..default.clone()
    };
    for options in [default, custom] {
        let body = daily_event_body(day, &options);
        assert_eq!(errors(&validator, &body), Vec::<String>::new(), "{body}");
    }
    // The check has teeth: MISP's numbers as JSON numbers are refused by the schema.
    let mut numbers = daily_event_body(day, &PushOptions::default());
    numbers["Event"]["distribution"] = json!(0);
    assert_eq!(errors(&validator, &numbers).len(), 1);
}

#[test]
fn the_pushed_attributes_are_valid_except_first_seen() {
    let validator = validator_for_def("attribute", "Attribute");
    for record in shared_records() {
        let attribute = attribute_body(&record, 1_764_065_730).expect("attribute");
        // PyMISP's schema predates first_seen/last_seen (MISP 2.4.124+ accepts them, PyMISP's
        // own MISPAttribute sends them): `additionalProperties: false` refuses the key.
        let found = errors(&validator, &json!({ "Attribute": attribute }));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("first_seen"), "{found:?}");
        let mut without = attribute.clone();
        without.as_object_mut().unwrap().remove("first_seen");
        assert_eq!(
            errors(&validator, &json!({ "Attribute": without })),
            Vec::<String>::new(),
            "{attribute}"
        );
        // As sent: in a list to /attributes/add, and inline in an event.
        let event = json!({"Event": {"info": "x", "Attribute": [without]}});
        let full = jsonschema::draft4::new(&schema()).unwrap();
        assert!(full.is_valid(&event), "{event}");
    }
}

#[test]
fn the_ioc_topic_records_have_the_attribute_shape() {
    let validator = validator_for_def("attribute", "Attribute");
    for record in shared_records() {
        // Not sent to MISP as is: the topic record carries our `wazuh` context and first_seen,
        // both outside the schema. Everything else is a valid MISP attribute.
        let found = errors(&validator, &json!({ "Attribute": record }));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("first_seen") && found[0].contains("wazuh"),
            "{found:?}"
        );
        let mut misp_part = record.clone();
        let map = misp_part.as_object_mut().unwrap();
        map.remove("wazuh");
        map.remove("first_seen");
        assert_eq!(
            errors(&validator, &json!({ "Attribute": misp_part })),
            Vec::<String>::new(),
            "{record}"
        );
        for key in ["type", "value", "category", "comment"] {
            assert!(record[key].is_string(), "{key} in {record}");
        }
    }
}

#[test]
fn the_sightings_body_has_the_fields_misp_reads() {
    let schema = schema();
    // PyMISP's schema has no sighting definition (defs: org, orgc, sharing_group, ..., tag,
    // galaxy, galaxy_cluster), and neither event nor attribute lists a Sighting key. So the
    // body is checked against the fields MISP's SightingsController::add reads instead.
    let defs: Vec<&String> = schema["defs"].as_object().unwrap().keys().collect();
    assert!(
        !defs.iter().any(|d| d.contains("sighting")),
        "the schema now defines sightings ({defs:?}): validate the body against it"
    );
    let sighting_fields = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["values", "source"],
        "properties": {
            "values": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "source": {"type": "string"},
            "timestamp": {"type": "integer"}
        }
    });
    let validator = jsonschema::draft4::new(&sighting_fields).unwrap();
    let values = vec!["1.2.3.4".to_string(), "evil.example".to_string()];
    for body in [
        sightings_body(&values, "wazuh", None),
        sightings_body(&values, "wazuh", Some(1_764_065_730)),
    ] {
        assert_eq!(errors(&validator, &body), Vec::<String>::new(), "{body}");
    }
}
