//! Against mmisp-api (an independent implementation of MISP's REST API), started and seeded
//! by tests/mmisp/start.sh --seed; `MMISP_URL` and `MMISP_API_KEY_FILE` point at it.

use wazuh_misp::config::{Config, Secret};
use wazuh_misp::intel::sync::{misp_client, sync_once};
use wazuh_misp::intel::IntelStore;
use wazuh_misp::pipeline::{Outcome, Processor, ProcessorOptions};

/// Held by tests whose counts another test's writes would change.
static MMISP_DB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(include_non_ids: bool) -> Config {
    let url = std::env::var("MMISP_URL").expect("MMISP_URL (tests/run.sh starts mmisp-api)");
    let key_file = std::env::var("MMISP_API_KEY_FILE").expect("MMISP_API_KEY_FILE");
    let key = std::fs::read_to_string(key_file).expect("api key file");
    let mut config = Config::default();
    config.misp.url = Some(url);
    config.misp.api_key = Some(Secret::new(key.trim().to_string()));
    config.misp.page_size = 5;
    config.intel.include_non_ids = include_non_ids;
    config
}

fn hits(store: &IntelStore, ip: Option<&str>, host: Option<&str>) -> Vec<String> {
    let snapshot = store.load_full();
    let mut ids = Vec::new();
    if let Some(ip) = ip {
        snapshot.match_ip(ip.parse().unwrap(), &mut |id| ids.push(id));
    }
    if let Some(host) = host {
        snapshot.match_host(host, &mut |id| ids.push(id));
    }
    ids.into_iter()
        .map(|id| snapshot.attribute(id).value.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_from_mmisp() {
    let _db = MMISP_DB.lock().await;
    let config = config(false);
    let client = misp_client(&config).unwrap();
    let store = std::sync::Arc::new(IntelStore::default());
    sync_once(&config, &store, client.as_ref())
        .await
        .expect("sync from mmisp-api");
    assert_eq!(
        store.load().len(),
        12,
        "the seeded IDS attributes, paged 5 at a time, the deleted one excluded"
    );
    assert_eq!(
        hits(&store, Some("198.51.100.77"), None),
        vec!["198.51.100.0/24"]
    );
    assert_eq!(
        hits(&store, None, Some("www.evil.example.com")),
        vec!["evil.example.com"]
    );
    assert!(
        hits(&store, Some("192.0.2.55"), None).is_empty(),
        "to_ids=false not loaded"
    );

    let mut processor = Processor::new(ProcessorOptions {
        enrich: wazuh_misp::pipeline::enrich::EnrichOptions {
            reference_base: config.misp.url.clone(),
        },
        ..ProcessorOptions::default()
    });
    let alert = r#"{"rule":{"level":12},"agent":{"id":"003"},"data":{"win":{"eventdata":{"queryName":"cdn.phish.example.net"}}}}"#;
    let outcome = processor.process(alert.as_bytes(), &store.load());
    assert_eq!(outcome, Outcome::Enriched { matches: 1 });
    let out: serde_json::Value = serde_json::from_slice(processor.output()).unwrap();
    assert_eq!(out["misp"]["value"], "phish.example.net");
    let reference = out["threat"]["enrichments"][0]["indicator"]["reference"]
        .as_str()
        .unwrap();
    assert!(
        reference.starts_with(config.misp.url.as_deref().unwrap())
            && reference.contains("/events/view/"),
        "{reference}"
    );

    let non_ids = config_with_non_ids();
    let store = std::sync::Arc::new(IntelStore::default());
    sync_once(&non_ids, &store, misp_client(&non_ids).unwrap().as_ref())
        .await
        .unwrap();
    assert_eq!(
        store.load().len(),
        14,
        "with include_non_ids the two to_ids=false attributes load too"
    );
}

fn config_with_non_ids() -> Config {
    config(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lookup_on_mmisp() {
    let config = config(false);
    let client = misp_client(&config).unwrap().unwrap();
    let lookup = wazuh_misp::misp::lookup::LiveLookup::new(client, Default::default());
    let found = lookup.lookup("attacker@phish.example.net").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["misp"]["attribute"]["type"], "email-src");
    assert!(lookup
        .lookup("nothing.example.invalid")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_is_an_auth_error_without_the_key() {
    let mut config = config(false);
    config.misp.api_key = Some(Secret::new("WRONG-KEY-not-valid-0000000000000000000000"));
    let store = std::sync::Arc::new(IntelStore::default());
    let err = sync_once(&config, &store, misp_client(&config).unwrap().as_ref())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("WRONG-KEY"), "{err}");
    assert!(!store.is_loaded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_iocs_land_in_the_daily_event_on_mmisp() {
    let _db = MMISP_DB.lock().await;
    use serde_json::{json, Value};
    use wazuh_misp::misp::push::{daily_event_title, ioc_pusher, PushOptions};

    let config = config(false);
    let client = misp_client(&config).unwrap().unwrap();
    let now = chrono::Utc::now();
    let title = daily_event_title(now.date_naive());
    // Values of this run only: the server may have served earlier runs.
    let run = now.timestamp_nanos_opt().unwrap_or_default();
    let record = |misp_type: &str, value: &str| {
        json!({"type": misp_type, "value": value, "category": "Network activity", "to_ids": false,
               "comment": "seen by Wazuh agent web-01 (001), rule 5712 level 12: brute force",
               "first_seen": "2026-11-25T10:15:30.123+00:00", "wazuh": {"field": "data.srcip"}})
    };
    let first = format!("push-{run}-a.example");
    let second = format!("push-{run}-b.example");

    let (sender, mut pusher) = ioc_pusher(client.clone(), PushOptions::default());
    sender.push(record("domain", &first));
    sender.push(record("domain", &second));
    // mmisp refuses the wrapped event body and attribute lists with 422: the pusher falls back
    // to the bare body and to one attribute per request.
    let report = pusher.flush_at(now).await;
    assert_eq!((report.pushed, report.pending), (2, 0), "{report:?}");
    assert!(report.failed.is_none(), "{report:?}");

    // mmisp ignores every /events/restSearch filter: compare the title ourselves.
    let events = client
        .search_events(&json!({"eventinfo": title}))
        .await
        .unwrap();
    let ours: Vec<&Value> = events.iter().filter(|e| e["info"] == title).collect();
    assert_eq!(ours.len(), 1, "one event per day: {ours:?}");
    let event_id = ours[0]["id"].to_string().trim_matches('"').to_string();
    assert_eq!(ours[0]["distribution"].to_string().trim_matches('"'), "0");
    assert_eq!(
        ours[0]["threat_level_id"].to_string().trim_matches('"'),
        "3"
    );

    let in_event = |attributes: &[Value], value: &str| -> Vec<Value> {
        attributes
            .iter()
            .filter(|a| a["value"] == value)
            .cloned()
            .collect()
    };
    let attributes = client
        .rest_search_attributes(&json!({"eventid": event_id, "deleted": 0}))
        .await
        .unwrap();
    let found = in_event(&attributes, &first);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["type"], "domain");
    assert_eq!(found[0]["to_ids"], false);
    assert!(found[0]["comment"].as_str().unwrap().contains("web-01"));
    assert_ne!(found[0]["timestamp"], 0, "timestamp sent, not mmisp's 0");
    assert_eq!(in_event(&attributes, &second).len(), 1);

    // A restarted service (a new pusher) finds the same event and, since mmisp keeps
    // duplicates, must not send the known value again itself.
    let third = format!("push-{run}-c.example");
    let (sender, mut pusher) = ioc_pusher(client.clone(), PushOptions::default());
    sender.push(record("domain", &first));
    sender.push(record("url", &format!("http://{third}/x")));
    sender.push(record("domain", &third));
    let report = pusher.flush_at(now).await;
    assert_eq!(
        (report.pushed, report.already_present),
        (2, 1),
        "{report:?}"
    );
    let events = client
        .search_events(&json!({"eventinfo": title}))
        .await
        .unwrap();
    assert_eq!(events.iter().filter(|e| e["info"] == title).count(), 1);
    let attributes = client
        .rest_search_attributes(&json!({"eventid": event_id, "deleted": 0}))
        .await
        .unwrap();
    assert_eq!(in_event(&attributes, &first).len(), 1, "not added twice");
    assert_eq!(in_event(&attributes, &third).len(), 1);
    assert_eq!(in_event(&attributes, &format!("http://{third}/x")).len(), 1);

    // Leave the server as seeded: full_sync_from_mmisp counts the non-IDS attributes.
    let key_file = std::env::var("MMISP_API_KEY_FILE").unwrap();
    let key = std::fs::read_to_string(key_file).unwrap();
    let http = reqwest::Client::new();
    for attribute in attributes.iter().filter(|a| {
        a["value"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("push-{run}-"))
    }) {
        let url = format!(
            "{}/attributes/delete/{}",
            config.misp.url.as_deref().unwrap(),
            attribute["id"]
        );
        let status = http
            .delete(url)
            .header("Authorization", key.trim())
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "delete: {status}");
    }
}
