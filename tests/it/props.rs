//! Property tests: no input makes decode or extract panic; whatever is enriched is valid JSON
//! that keeps the input and validates against the output schema; what the processor reads of
//! the envelope and fields only on demand is there when asked for, however the alert came.

use proptest::prelude::*;
use serde_json::Value;

use wazuh_misp::pipeline::extract::{Extraction, Extractor};
use wazuh_misp::pipeline::{Outcome, Processor, ProcessorOptions};

fn snapshot() -> &'static wazuh_misp::intel::IntelSnapshot {
    static SNAPSHOT: std::sync::OnceLock<wazuh_misp::intel::IntelSnapshot> =
        std::sync::OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        crate::support::snapshot_from(
            &[serde_json::json!({"Event": {"id": "1", "uuid": "u", "info": "i", "threat_level_id": "2", "Attribute": [
                {"uuid": "a1", "type": "ip-dst", "value": "1.2.3.4", "to_ids": true},
                {"uuid": "a2", "type": "domain", "value": "evil.com", "to_ids": true},
                {"uuid": "a3", "type": "ip-src", "value": "10.0.0.0/8", "to_ids": true},
                {"uuid": "a4", "type": "user-agent", "value": "badbot/1.0", "to_ids": true},
                {"uuid": "a5", "type": "md5", "value": "5d41402abc4b2a76b9719d911017c592", "to_ids": true}]}})],
            &[],
            false,
        )
    })
}

/// Strings that look like what alerts carry, IOCs and near-IOCs included.
fn ioc_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.2.3.4".to_string()),
        Just("evil.com".to_string()),
        Just("sub.evil.com.".to_string()),
        Just("hxxp://evil[.]com/a?b=c".to_string()),
        Just("::ffff:1.2.3.4".to_string()),
        Just("[::1]:80".to_string()),
        Just("SHA1=AA,MD5=5D41402ABC4B2A76B9719D911017C592".to_string()),
        Just("C:\\\\x\\\\y.exe".to_string()),
        Just("badbot/1.0".to_string()),
        "[a-zA-Z0-9 .:/@\\[\\]()\\-_%?=&#\\\\\"']{0,60}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ioc_string().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("srcip".to_string()),
                        Just("data".to_string()),
                        Just("full_log".to_string()),
                        Just("url".to_string()),
                        Just("hashes".to_string()),
                        Just("queryName".to_string()),
                        Just("image".to_string()),
                        "[a-zA-Z_@.]{1,12}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `alert` as a shipper may send it: raw (0), nested under `json` (1), or as a JSON string in
/// `message` (2).
fn wrapped(alert: &Value, wrap: u8) -> String {
    match wrap {
        0 => alert.to_string(),
        1 => serde_json::json!({"@timestamp": "x", "json": alert}).to_string(),
        _ => serde_json::json!({"message": alert.to_string()}).to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut processor = Processor::new(ProcessorOptions::default());
        let outcome = processor.process(&bytes, snapshot());
        if let Outcome::Enriched { .. } = outcome {
            prop_assert!(serde_json::from_slice::<Value>(processor.output()).is_ok());
        }
    }

    #[test]
    fn fields_and_envelope_are_there_when_asked_for(data in json_value(), full_log in ioc_string(), wrap in 0u8..3) {
        let alert = serde_json::json!({"rule": {"level": 7}, "agent": {"id": "004"}, "data": data, "full_log": full_log});
        let payload = wrapped(&alert, wrap);
        // What the extractor finds in the bare alert, envelope and field paths included ...
        let mut bytes = alert.to_string().into_bytes();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let mut whole = Extraction::default();
        Extractor::default().extract(&tape.0, &mut whole);
        // ... is what the processor has when asked for it, matched or not, raw, nested or in a
        // message string.
        let mut processor = Processor::new(ProcessorOptions {
            describe_unmatched: true,
            ..ProcessorOptions::default()
        });
        prop_assert!(!matches!(processor.process(payload.as_bytes(), snapshot()), Outcome::DeadLetter(_)));
        let lazy = processor.extraction();
        let facts = |e: &Extraction| e.iter().map(|o| (o.kind, o.value.to_string(), o.field.to_string())).collect::<Vec<_>>();
        prop_assert_eq!(facts(lazy), facts(&whole));
        prop_assert!(facts(&whole).iter().all(|(_, _, field)| field.starts_with("data") || field == "full_log"));
        prop_assert_eq!(lazy.rule_level, Some(7));
        prop_assert_eq!(lazy.agent_id(), Some("004"));
    }

    #[test]
    fn arbitrary_alerts_never_panic_and_enrich_validly(data in json_value(), full_log in ioc_string(), wrap in 0u8..3) {
        let alert = serde_json::json!({"rule": {"level": 5}, "agent": {"id": "001"}, "data": data, "full_log": full_log});
        let payload = wrapped(&alert, wrap);
        let mut processor = Processor::new(ProcessorOptions::default());
        match processor.process(payload.as_bytes(), snapshot()) {
            Outcome::DeadLetter(err) => prop_assert!(false, "valid alert rejected: {err}"),
            Outcome::Unmatched => {}
            Outcome::Enriched { matches } => {
                let out: Value = serde_json::from_slice(processor.output()).expect("enriched output is json");
                prop_assert_eq!(out["wazuh_misp"]["matched_count"].as_u64(), Some(matches as u64));
                prop_assert_eq!(&out["data"], &alert["data"]);
                let validator = crate::support::output_validator();
                prop_assert!(validator.is_valid(&out), "schema: {}", out);
            }
        }
    }
}
