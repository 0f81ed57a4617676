//! IOC sharing: observables from alerts at or above a rule level that MISP does not know,
//! that are not private or reserved addresses and not warninglisted, become MISP-attribute
//! shaped records for `topics.iocs` (key: the value), de-duplicated over a TTL window.
//!
//! Free text is noisy (every `word.word` token looks like a domain), so from free text only
//! URLs and IP addresses are shared; domains, e-mails, hashes and file names are shared when
//! they come from a typed field.

use std::time::Duration;

use moka::sync::Cache;
use serde_json::json;

use super::push::IocPushSender;
use crate::intel::IntelSnapshot;
use crate::model::observable::{IocKind, Observable};
use crate::pipeline::extract::Extraction;
use crate::pipeline::matcher::Hit;
use crate::pipeline::normalize;

/// Decides which observables are new IOCs, and remembers what was shared.
pub struct IocSharing {
    min_rule_level: u8,
    shared: Cache<String, ()>,
    pusher: Option<IocPushSender>,
}

/// One record for the IOC topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedIoc {
    pub key: String,
    pub payload: Vec<u8>,
}

impl IocSharing {
    pub fn new(min_rule_level: u8, dedup_ttl: Duration) -> Self {
        IocSharing {
            min_rule_level,
            shared: Cache::builder()
                .max_capacity(2_000_000)
                .time_to_live(dedup_ttl)
                .build(),
            pusher: None,
        }
    }

    /// Also hands every shared record to `pusher` (MISP push; never blocks).
    pub fn with_pusher(mut self, pusher: IocPushSender) -> Self {
        self.pusher = Some(pusher);
        self
    }

    /// The MISP type and category an observable would have as an attribute.
    pub fn misp_type(observable: &Observable<'_>) -> Option<(&'static str, &'static str)> {
        let field = observable.field.to_ascii_lowercase();
        match observable.kind {
            IocKind::Ip => {
                let source = ["src", "source", "client", "actor", "caller", "remote"]
                    .iter()
                    .any(|hint| field.contains(hint))
                    && !field.contains("dest");
                Some((if source { "ip-src" } else { "ip-dst" }, "Network activity"))
            }
            IocKind::Domain if !observable.free_text => Some(("domain", "Network activity")),
            IocKind::Url => Some(("url", "Network activity")),
            IocKind::Hash if !observable.free_text => Some((
                normalize::hash_type_for_len(observable.value.len()),
                "Payload delivery",
            )),
            IocKind::Email if !observable.free_text => Some(("email-src", "Payload delivery")),
            IocKind::Filename => Some(("filename", "Payload delivery")),
            _ => None,
        }
    }

    /// New IOCs of one processed alert (empty below the rule level).
    pub fn collect(
        &self,
        extraction: &Extraction,
        hits: &[Hit],
        snapshot: &IntelSnapshot,
    ) -> Vec<SharedIoc> {
        let mut out = Vec::new();
        if extraction.rule_level.unwrap_or(0) < self.min_rule_level {
            return out;
        }
        for (idx, misp_type, category) in unmatched_candidates(extraction, hits, snapshot) {
            let observable = extraction.get(idx);
            let key = format!("{misp_type}|{}", observable.value);
            if self.shared.contains_key(&key) {
                continue;
            }
            self.shared.insert(key, ());
            let meta = extraction.meta();
            let comment = format!(
                "seen by Wazuh agent {} ({}), rule {} level {}: {}",
                meta.agent_name.unwrap_or("?"),
                extraction.agent_id().unwrap_or("?"),
                meta.rule_id.unwrap_or("?"),
                extraction.rule_level.unwrap_or(0),
                meta.rule_description.unwrap_or("")
            );
            let record = json!({
                "type": misp_type,
                "value": observable.value,
                "category": category,
                "to_ids": false,
                "comment": comment,
                "first_seen": meta.timestamp.and_then(iso_timestamp),
                "wazuh": {
                    "agent": {"id": extraction.agent_id(), "name": meta.agent_name},
                    "rule": {"id": meta.rule_id, "level": extraction.rule_level, "description": meta.rule_description},
                    "alert_id": meta.alert_id,
                    "field": observable.field,
                },
            });
            if let Some(pusher) = &self.pusher {
                pusher.push(record.clone());
            }
            out.push(SharedIoc {
                key: observable.value.to_string(),
                payload: serde_json::to_vec(&record).unwrap_or_default(),
            });
        }
        out
    }
}

/// Observables of an alert that matched nothing locally and could be IOCs: typed (see
/// [`IocSharing::misp_type`]), not private or reserved addresses, not warninglisted. Yields
/// (observable index, MISP type, category). New-IOC sharing and live MISP queries use it.
pub fn unmatched_candidates<'a>(
    extraction: &'a Extraction,
    hits: &'a [Hit],
    snapshot: &'a IntelSnapshot,
) -> impl Iterator<Item = (usize, &'static str, &'static str)> + 'a {
    (0..extraction.len()).filter_map(move |idx| {
        if hits.iter().any(|hit| hit.observable as usize == idx) {
            return None;
        }
        let observable = extraction.get(idx);
        let (misp_type, category) = IocSharing::misp_type(&observable)?;
        if observable
            .ip
            .is_some_and(|ip| normalize::is_private_or_reserved(&ip))
        {
            return None;
        }
        if snapshot
            .warninglisted(observable.value, misp_type)
            .is_some()
        {
            return None;
        }
        Some((idx, misp_type, category))
    })
}

/// Wazuh's `2026-11-25T10:15:30.123+0000` → RFC 3339 (`...+00:00`), as MISP wants first_seen.
fn iso_timestamp(wazuh: &str) -> Option<String> {
    chrono::DateTime::parse_from_str(wazuh, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .ok()
        .map(|t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Processor, ProcessorOptions};

    #[test]
    fn shares_only_new_public_typed_iocs_once() {
        let snapshot = crate::kafka::demo::sample_snapshot().unwrap();
        let sharing = IocSharing::new(10, Duration::from_secs(3600));
        // As the pipeline sets it when it shares IOCs.
        let mut processor = Processor::new(ProcessorOptions {
            describe_unmatched: true,
            ..ProcessorOptions::default()
        });
        let alert = r#"{"timestamp":"2026-11-25T10:15:30.123+0000","rule":{"level":12,"id":"5712","description":"brute force"},"agent":{"id":"001","name":"web-01"},"id":"1.2",
            "data":{"srcip":"77.88.99.10","dstip":"10.0.0.5","url":"http://new-bad.example/x","hash":"0123456789abcdef0123456789abcdef","dns":{"rrname":"fresh-c2.example"}},
            "full_log":"contact word.thing and 8.8.8.8 and 185.220.101.47"}"#;
        processor.process(alert.as_bytes(), &snapshot);
        let shared = sharing.collect(processor.extraction(), processor.hits(), &snapshot);
        let values: Vec<&str> = shared.iter().map(|ioc| ioc.key.as_str()).collect();
        assert!(values.contains(&"77.88.99.10"), "{values:?}");
        assert!(values.contains(&"http://new-bad.example/x"), "{values:?}");
        assert!(values.contains(&"fresh-c2.example"), "{values:?}");
        assert!(
            values.contains(&"0123456789abcdef0123456789abcdef"),
            "{values:?}"
        );
        assert!(!values.contains(&"10.0.0.5"), "private address shared");
        assert!(!values.contains(&"8.8.8.8"), "warninglisted address shared");
        assert!(
            !values.contains(&"185.220.101.47"),
            "known to MISP, so not new"
        );
        assert!(!values.contains(&"word.thing"), "free-text domain shared");
        let first: serde_json::Value = serde_json::from_slice(&shared[0].payload).unwrap();
        assert_eq!(first["type"], "ip-src");
        assert_eq!(first["to_ids"], false);
        assert_eq!(first["first_seen"], "2026-11-25T10:15:30.123+00:00");
        assert!(first["comment"]
            .as_str()
            .unwrap()
            .contains("web-01 (001), rule 5712 level 12"));
        // The same alert again shares nothing (de-duplicated).
        processor.process(alert.as_bytes(), &snapshot);
        assert!(sharing
            .collect(processor.extraction(), processor.hits(), &snapshot)
            .is_empty());
        // Below the rule level nothing is shared.
        let low = alert
            .replace("\"level\":12", "\"level\":3")
            .replace("77.88.99.10", "77.88.99.11");
        processor.process(low.as_bytes(), &snapshot);
        assert!(sharing
            .collect(processor.extraction(), processor.hits(), &snapshot)
            .is_empty());
    }
}
