//! Enrich: alert bytes + hits → the output record. The enrichment is spliced into the
//! original bytes (`...}` → `...,"threat":{...},"wazuh_misp":{...},"misp":{...}}`), so the
//! alert's own keys and values pass through untouched. Only when the alert already has a
//! `threat` or `wazuh_misp` key is it re-serialised, to merge instead of duplicating keys.

use serde_json::Value;

use super::extract::Extraction;
use super::matcher::Hit;
use crate::intel::snapshot::Attribute;
use crate::intel::types::ecs_indicator_type;
use crate::intel::IntelSnapshot;
use crate::model::enriched::{
    CompatBlock, Enrichment, Indicator, Matched, MispAttributeRef, MispContext, MispEventRef,
    Summary,
};

/// Settings of the enrich stage.
#[derive(Debug, Clone, Default)]
pub struct EnrichOptions {
    /// MISP base URL for `indicator.reference` (`<url>/events/view/<id>`).
    pub reference_base: Option<String>,
}

/// The risk score of an enriched alert, 0-100:
/// rule level (0-15 → 0-40) + the highest MISP threat level among the hits (High 40,
/// Medium 28, Low 16, Undefined 8) + 10 when a hit carries a galaxy or kill-chain tag
/// (attributed to an actor or malware family) + 5 per extra matching attribute (at most 10).
pub fn risk_score(rule_level: Option<u8>, hits: &[Attribute<'_>]) -> u8 {
    let level = u32::from(rule_level.unwrap_or(0).min(15)) * 40 / 15;
    let threat = hits
        .iter()
        .map(|attribute| match attribute.event.threat_level_id.as_ref() {
            "1" => 40,
            "2" => 28,
            "3" => 16,
            _ => 8,
        })
        .max()
        .unwrap_or(0);
    let attributed = hits.iter().any(|attribute| {
        attribute
            .tags()
            .any(|tag| tag.starts_with("misp-galaxy:") || tag.starts_with("kill-chain:"))
    });
    let extra = (hits.len().saturating_sub(1).min(2) * 5) as u32;
    (level + threat + if attributed { 10 } else { 0 } + extra).min(100) as u8
}

/// TLP of an attribute: its own tag first, then the event's.
fn tlp<'a>(attribute: &Attribute<'a>) -> Option<&'a str> {
    attribute.tags().find_map(|tag| tag.strip_prefix("tlp:"))
}

fn confidence(threat_level_id: &str) -> &'static str {
    match threat_level_id {
        "1" => "High",
        "2" => "Medium",
        "3" => "Low",
        _ => "Not Specified",
    }
}

/// Writes the enriched alert into `out`. `alert` is the alert object's JSON text.
pub fn write_enriched(
    alert: &[u8],
    extraction: &Extraction,
    hits: &[Hit],
    snapshot: &IntelSnapshot,
    options: &EnrichOptions,
    out: &mut Vec<u8>,
) {
    out.clear();
    // What the enrichment reads lies scattered over a large snapshot: start the loads early,
    // so that they overlap with each other and with copying the alert.
    for hit in hits {
        snapshot.prefetch_attribute(hit.attribute);
    }
    let attributes: Vec<Attribute<'_>> = hits
        .iter()
        .map(|hit| snapshot.attribute(hit.attribute))
        .collect();
    for attribute in &attributes {
        snapshot.prefetch_attribute_data(attribute);
    }
    let summary = || Summary {
        risk_score: risk_score(extraction.rule_level, &attributes),
        matched_count: hits.len(),
    };
    let compat = || {
        attributes
            .first()
            .filter(|_| !extraction.has_misp_key)
            .map(|first| CompatBlock {
                event_id: first.event.reference_id(),
                category: first.category,
                value: first.value,
                misp_type: first.misp_type,
            })
    };
    let write_enrichments = |out: &mut Vec<u8>| {
        out.push(b'[');
        for (idx, (hit, attribute)) in hits.iter().zip(&attributes).enumerate() {
            if idx > 0 {
                out.push(b',');
            }
            enrichment(extraction, hit, attribute, options).write(attribute.tags(), out);
        }
        out.push(b']');
    };

    if extraction.has_threat_key {
        let mut enrichments = Vec::new();
        write_enrichments(&mut enrichments);
        merge_reserialized(alert, &enrichments, &summary(), compat().as_ref(), out);
        return;
    }
    let end = alert
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if alert.get(end) != Some(&b'}') {
        // Cannot happen for an object the decoder accepted; keep the alert whole.
        out.extend_from_slice(alert);
        return;
    }
    let body = &alert[..end];
    out.extend_from_slice(body);
    let empty_object = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map(|idx| body[idx])
        == Some(b'{');
    if !empty_object {
        out.push(b',');
    }
    out.extend_from_slice(b"\"threat\":{\"enrichments\":");
    write_enrichments(out);
    out.extend_from_slice(b"},\"wazuh_misp\":");
    summary().write(out);
    if let Some(compat) = &compat() {
        out.extend_from_slice(b",\"misp\":");
        compat.write(out);
    }
    out.push(b'}');
}

/// The enrichment of one hit.
fn enrichment<'a>(
    extraction: &'a Extraction,
    hit: &Hit,
    attribute: &Attribute<'a>,
    options: &'a EnrichOptions,
) -> Enrichment<'a> {
    let (atomic, field) = if (hit.observable as usize) < extraction.len() {
        let observable = extraction.get(hit.observable as usize);
        (observable.value, observable.field)
    } else {
        (
            attribute.value,
            extraction.free_text_field((u32::MAX - hit.observable) as usize),
        )
    };
    enrichment_object(atomic, field, attribute, options.reference_base.as_deref())
}

/// The enrichment object (`threat.enrichments[]` of the output schema) of `attribute`,
/// matched as `atomic` in `field`; `reference_base` is MISP's URL for `indicator.reference`.
/// `lookup` answers with the same objects.
pub fn enrichment_object<'a>(
    atomic: &'a str,
    field: &'a str,
    attribute: &Attribute<'a>,
    reference_base: Option<&'a str>,
) -> Enrichment<'a> {
    let ecs_type = match (
        ecs_indicator_type(attribute.misp_type),
        attribute.value.contains(':'),
    ) {
        ("ipv4-addr", true)
            if !attribute.value.contains('.') || attribute.value.matches(':').count() > 1 =>
        {
            "ipv6-addr"
        }
        (other, _) => other,
    };
    let event = attribute.event;
    let reference_id = event.reference_id();
    let reference = match (reference_base, reference_id.is_empty()) {
        (Some(base), false) => Some((base, reference_id)),
        _ => None,
    };
    Enrichment {
        matched: Matched {
            atomic,
            field,
            match_type: "indicator_match_rule",
        },
        indicator: Indicator {
            ecs_type,
            misp_type: attribute.misp_type,
            value: attribute.value,
            reference,
            tlp: tlp(attribute),
            first_seen: attribute.first_seen,
            last_seen: attribute.last_seen,
            confidence: confidence(&event.threat_level_id),
        },
        misp: MispContext {
            attribute: MispAttributeRef {
                uuid: attribute.uuid,
                misp_type: attribute.misp_type,
                category: attribute.category,
                value: attribute.value,
                to_ids: attribute.to_ids,
            },
            event: MispEventRef {
                id: &event.id,
                uuid: &event.uuid,
                info: &event.info,
                threat_level_id: &event.threat_level_id,
            },
        },
    }
}

/// The slow path: the alert already has `threat`/`wazuh_misp`; merge into them.
fn merge_reserialized(
    alert: &[u8],
    enrichments: &[u8],
    summary: &Summary,
    compat: Option<&CompatBlock<'_>>,
    out: &mut Vec<u8>,
) {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(alert) else {
        out.extend_from_slice(alert);
        return;
    };
    let parse = |json: &[u8]| serde_json::from_slice::<Value>(json).unwrap_or(Value::Null);
    let new_enrichments = parse(enrichments);
    let threat = object
        .entry("threat")
        .or_insert_with(|| Value::Object(Default::default()));
    if !threat.is_object() {
        *threat = Value::Object(Default::default());
    }
    if let Value::Object(threat) = threat {
        let existing = threat
            .entry("enrichments")
            .or_insert_with(|| Value::Array(Vec::new()));
        match (existing, new_enrichments) {
            (Value::Array(existing), Value::Array(new)) => existing.extend(new),
            (existing, new) => *existing = new,
        }
    }
    let mut json = Vec::new();
    summary.write(&mut json);
    object.insert("wazuh_misp".into(), parse(&json));
    if let Some(compat) = compat {
        json.clear();
        compat.write(&mut json);
        object.insert("misp".into(), parse(&json));
    }
    let _ = serde_json::to_writer(&mut *out, &Value::Object(object));
}
