//! Against mmisp-api (an independent implementation of MISP's REST API), started and seeded
//! by tests/mmisp/start.sh --seed; `MMISP_URL` and `MMISP_API_KEY_FILE` point at it.

use wazuh_misp::config::{Config, Secret};
use wazuh_misp::intel::sync::{misp_client, sync_once};
use wazuh_misp::intel::IntelStore;
use wazuh_misp::pipeline::{Outcome, Processor, ProcessorOptions};

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
