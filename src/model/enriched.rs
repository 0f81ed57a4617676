//! The enrichment objects added to an alert: the only types serialised onto the output topic
//! (besides the alert's own bytes, which are passed through untouched).

use serde::Serialize;
use serde_json::{Map, Value};

/// `threat.enrichments[]`: one per matching MISP attribute (ECS threat enrichment).
#[derive(Debug, Serialize)]
pub struct Enrichment<'a> {
    pub matched: Matched<'a>,
    pub indicator: Value,
    pub misp: MispContext<'a>,
}

#[derive(Debug, Serialize)]
pub struct Matched<'a> {
    /// The observable as found in the alert (normalised).
    pub atomic: &'a str,
    /// Dotted path of the alert field.
    pub field: &'a str,
    #[serde(rename = "type")]
    pub match_type: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MispContext<'a> {
    pub attribute: MispAttributeRef<'a>,
    pub event: MispEventRef<'a>,
    pub tags: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct MispAttributeRef<'a> {
    pub uuid: String,
    #[serde(rename = "type")]
    pub misp_type: &'a str,
    pub category: &'a str,
    pub value: &'a str,
    pub to_ids: bool,
}

#[derive(Debug, Serialize)]
pub struct MispEventRef<'a> {
    pub id: &'a str,
    pub uuid: &'a str,
    pub info: &'a str,
    pub threat_level_id: &'a str,
}

/// `wazuh_misp`: the summary block.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub risk_score: u8,
    pub matched_count: usize,
}

/// `misp`: the first match in the shape of the community `custom-misp.py` integration.
#[derive(Debug, Serialize)]
pub struct CompatBlock<'a> {
    pub event_id: &'a str,
    pub category: &'a str,
    pub value: &'a str,
    #[serde(rename = "type")]
    pub misp_type: &'a str,
}

/// ECS `threat.indicator` for a MISP attribute.
#[allow(clippy::too_many_arguments)]
pub fn ecs_indicator(
    ecs_type: &str,
    misp_type: &str,
    value: &str,
    reference: Option<String>,
    tlp: Option<&str>,
    first_seen: Option<&str>,
    last_seen: Option<&str>,
    confidence: &str,
) -> Value {
    let mut indicator = Map::new();
    indicator.insert("type".into(), ecs_type.into());
    indicator.insert("provider".into(), "misp".into());
    let first = value.split('|').next().unwrap_or(value);
    let second = value.split_once('|').map(|(_, rest)| rest);
    let base = misp_type.split('|').next().unwrap_or(misp_type);
    match base {
        "ip-src" | "ip-dst" => {
            indicator.insert("ip".into(), first.into());
            if let Some(port) = second {
                if let Ok(port) = port.trim().parse::<u16>() {
                    indicator.insert("port".into(), port.into());
                }
            }
        }
        "domain" | "hostname" => {
            indicator.insert("url".into(), serde_json::json!({ "domain": first }));
            if let Some(ip) = second.filter(|_| misp_type == "domain|ip") {
                indicator.insert("ip".into(), ip.into());
            }
        }
        "url" | "uri" => {
            indicator.insert("url".into(), serde_json::json!({ "full": value }));
        }
        "email"
        | "email-src"
        | "email-dst"
        | "target-email"
        | "whois-registrant-email"
        | "email-reply-to" => {
            indicator.insert("email".into(), serde_json::json!({ "address": value }));
        }
        "filename" | "malware-sample" => {
            let mut file = Map::new();
            file.insert("name".into(), first.into());
            if let Some(hash) = second {
                let algorithm = misp_type.split_once('|').map_or("md5", |(_, alg)| alg);
                file.insert("hash".into(), serde_json::json!({ algorithm: hash }));
            }
            indicator.insert("file".into(), Value::Object(file));
        }
        "regkey" => {
            indicator.insert("registry".into(), serde_json::json!({ "key": first }));
        }
        _ if ecs_type == "file" => {
            indicator.insert(
                "file".into(),
                serde_json::json!({ "hash": { misp_type: value } }),
            );
        }
        _ => {
            indicator.insert("description".into(), value.into());
        }
    }
    if let Some(reference) = reference {
        indicator.insert("reference".into(), reference.into());
    }
    if let Some(tlp) = tlp {
        indicator.insert("marking".into(), serde_json::json!({ "tlp": tlp }));
    }
    if let Some(first_seen) = first_seen {
        indicator.insert("first_seen".into(), first_seen.into());
    }
    if let Some(last_seen) = last_seen {
        indicator.insert("last_seen".into(), last_seen.into());
    }
    indicator.insert("confidence".into(), confidence.into());
    Value::Object(indicator)
}
