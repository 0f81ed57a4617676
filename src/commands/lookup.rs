//! `wazuh-misp lookup VALUE`: what is known about one value, as JSON on stdout.
//! Exit status 0 when known, 1 when not. The value is classified like an observable of a
//! typed field (IP, domain, URL, URL path, e-mail, hash, file name, other text) and looked up in the
//! local set; with `misp.url` configured, a miss is asked of MISP (restSearch on the value).

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::config::Config;
use crate::intel::{IntelSnapshot, IntelSources};
use crate::model::observable::IocKind;
use crate::pipeline::normalize;

/// Every observable a bare value stands for.
pub fn classify(value: &str) -> Vec<(IocKind, String)> {
    let value = value.trim();
    let mut out = Vec::new();
    if let Some(ip) = normalize::parse_ip(value) {
        out.push((IocKind::Ip, ip.to_string()));
    } else if let Some(url) = normalize::normalize_url(value) {
        out.push((IocKind::Url, url.url.clone()));
        out.push((IocKind::Domain, url.host().to_string()));
    } else if let Some(email) = normalize::normalize_email(value) {
        let domain = email.rsplit('@').next().unwrap_or("").to_string();
        out.push((IocKind::Email, email));
        out.push((IocKind::Domain, domain));
    } else if let Some(hash) = normalize::normalize_hash(value) {
        out.push((IocKind::Hash, hash));
    } else if let Some(domain) = normalize::normalize_domain(value) {
        out.push((IocKind::Domain, domain));
        if let Some(name) = normalize::normalize_filename(value) {
            out.push((IocKind::Filename, name));
        }
    } else {
        // A URL path, as a URL field holding one is matched (MISP's `uri` attributes).
        if value.starts_with('/') {
            out.push((IocKind::UriPath, value.to_string()));
        }
        if let Some(name) = normalize::normalize_filename(value) {
            out.push((IocKind::Filename, name));
        }
        if let Some(text) = normalize::normalize_text(value) {
            out.push((IocKind::Text, text));
        }
    }
    out
}

/// The enrichment-shaped answers of the local set for `value`.
pub fn lookup_local(
    snapshot: &IntelSnapshot,
    value: &str,
    reference_base: Option<&str>,
) -> Vec<Value> {
    let mut ids = Vec::new();
    for (kind, key) in classify(value) {
        let mut found = |id: u32| {
            if !ids.contains(&id) {
                ids.push(id)
            }
        };
        match kind {
            IocKind::Ip => {
                if let Some(ip) = normalize::parse_ip(&key) {
                    snapshot.match_ip(ip, &mut found)
                }
            }
            IocKind::Domain => snapshot.match_host(&key, &mut found),
            IocKind::Url => snapshot.match_url(&key, &mut found),
            IocKind::UriPath => snapshot.match_uri(&key, &mut found),
            IocKind::Email => snapshot.match_email(&key, &mut found),
            IocKind::Hash => snapshot.match_hash(&key, &mut found),
            IocKind::Filename => snapshot.match_filename(&key, &mut found),
            IocKind::Text => snapshot.match_text(&key, &mut found),
        }
    }
    ids.into_iter()
        .filter(|id| {
            snapshot
                .warninglisted(value, snapshot.attribute(*id).misp_type)
                .is_none()
        })
        .map(|id| attribute_json(snapshot, id, value, reference_base))
        .collect()
}

/// One attribute as an enrichment object (the output schema's `threat.enrichments[]` item),
/// written by the enrich stage's own writer, with `matched.field` `"lookup"`.
pub fn attribute_json(
    snapshot: &IntelSnapshot,
    id: u32,
    atomic: &str,
    reference_base: Option<&str>,
) -> Value {
    let attribute = snapshot.attribute(id);
    let mut json = Vec::with_capacity(512);
    crate::pipeline::enrich::enrichment_object(atomic, "lookup", &attribute, reference_base)
        .write(attribute.tags(), &mut json);
    // The writer emits valid JSON for any attribute; `Null` would only mark a writer bug.
    serde_json::from_slice(&json).unwrap_or(Value::Null)
}

pub fn main(
    value: &str,
    config: Option<Config>,
    indicators: Vec<PathBuf>,
    warninglists: Option<PathBuf>,
    include_non_ids: bool,
) -> anyhow::Result<ExitCode> {
    let mut sources: IntelSources = config
        .as_ref()
        .map(|c| c.intel_sources())
        .unwrap_or_default();
    sources.files.extend(indicators);
    if warninglists.is_some() {
        sources.warninglists_dir = warninglists;
    }
    sources.include_non_ids |= include_non_ids;
    let snapshot = crate::intel::load_snapshot(&sources)?;
    let reference_base = config.as_ref().and_then(|c| c.misp.url.clone());
    let mut answers = lookup_local(&snapshot, value, reference_base.as_deref());
    let mut source = "local";
    if answers.is_empty() {
        if let Some(config) = config.as_ref().filter(|c| c.misp.url.is_some()) {
            let remote = crate::commands::misp_lookup(config, value)?;
            let remote_answers = lookup_local(&remote, value, reference_base.as_deref());
            if !remote_answers.is_empty() {
                answers = remote_answers;
                source = "misp";
            }
        }
    }
    let known = !answers.is_empty();
    let out = json!({"value": value, "known": known, "source": if known { source } else { "none" }, "enrichments": answers});
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if known {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
