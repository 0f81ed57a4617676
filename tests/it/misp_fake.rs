//! Sync and live look-ups against a MISP-compatible server of the tests' own, speaking MISP's
//! restSearch format, for the faults mmisp-api cannot produce: 5xx, truncated and too-small
//! answers, paging edges, deletions between syncs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use wazuh_misp::config::{Config, Secret};
use wazuh_misp::intel::sync::{load_persisted, misp_client, sync_once};
use wazuh_misp::intel::update::{IntelUpdater, Step};
use wazuh_misp::intel::IntelStore;
use wazuh_misp::misp::lookup::{LiveLookup, LiveLookupOptions};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    ServerError,
    Truncated,
    /// Answers normally after 600 ms.
    Slow,
}

struct Fake {
    attributes: Mutex<Vec<Value>>,
    mode: Mutex<Mode>,
    requests: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
}

fn attribute(n: usize, value: &str, misp_type: &str) -> Value {
    json!({"id": n.to_string(), "event_id": "7", "category": "Network activity", "type": misp_type, "value": value, "to_ids": true,
           "uuid": format!("30000000-0000-4000-8000-{n:012}"), "timestamp": "1764000000", "deleted": false, "first_seen": null, "last_seen": null,
           "Event": {"org_id": "1", "distribution": "1", "id": "7", "info": "fake misp event", "orgc_id": "1", "uuid": "40000000-0000-4000-8000-000000000007", "threat_level_id": "2"},
           "Tag": [{"id": "3", "name": "tlp:green", "colour": "#33FF00"}]})
}

async fn rest_search(State(fake): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    fake.bodies.lock().unwrap().push(body.clone());
    let mode = *fake.mode.lock().unwrap();
    match mode {
        Mode::ServerError => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html>Internal error</html>",
            )
                .into_response()
        }
        Mode::Truncated => {
            return (
                StatusCode::OK,
                "{\"response\":{\"Attribute\":[{\"id\":\"1\",",
            )
                .into_response()
        }
        Mode::Slow => tokio::time::sleep(std::time::Duration::from_millis(600)).await,
        Mode::Normal => {}
    }
    let all = fake.attributes.lock().unwrap().clone();
    let filtered: Vec<Value> = match body.get("value").and_then(|v| v.as_str()) {
        Some(value) => all.into_iter().filter(|a| a["value"] == value).collect(),
        None => all,
    };
    // restSearch semantics: deleted 0 by default ([0,1] for both), to_ids 1 for IDS only,
    // timestamp / event_timestamp: changed since.
    let with_deleted = body.get("deleted") == Some(&json!([0, 1]));
    let ids_only = body.get("to_ids") == Some(&json!(1));
    let since = body
        .get("timestamp")
        .or_else(|| body.get("event_timestamp"))
        .and_then(Value::as_i64);
    let ts = |a: &Value| {
        a["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let filtered: Vec<Value> = filtered
        .into_iter()
        .filter(|a| with_deleted || a["deleted"] != json!(true))
        .filter(|a| !ids_only || a["to_ids"] == json!(true))
        .filter(|a| since.is_none_or(|since| ts(a) >= since))
        .collect();
    let limit = body
        .get("limit")
        .and_then(|v| v.as_u64())
        .unwrap_or(u64::MAX) as usize;
    let page = body
        .get("page")
        .and_then(|v| v.as_u64())
        .unwrap_or(1)
        .max(1) as usize;
    let slice: Vec<Value> = filtered
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    (
        [("X-Result-Count", (slice.len() + 1).to_string())],
        Json(json!({"response": {"Attribute": slice}})),
    )
        .into_response()
}

async fn start(attributes: Vec<Value>) -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake {
        attributes: Mutex::new(attributes),
        mode: Mutex::new(Mode::Normal),
        requests: AtomicUsize::new(0),
        bodies: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/attributes/restSearch", post(rest_search))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}

fn config(url: &str) -> Config {
    let mut config = Config::default();
    config.misp.url = Some(url.to_string());
    config.misp.api_key = Some(Secret::new("FAKE-KEY-0123456789"));
    config.misp.page_size = 2;
    config.misp.timeout_secs = 5;
    config
}

fn five() -> Vec<Value> {
    vec![
        attribute(1, "1.2.3.4", "ip-dst"),
        attribute(2, "evil.com", "domain"),
        attribute(3, "5d41402abc4b2a76b9719d911017c592", "md5"),
        attribute(4, "10.20.0.0/16", "ip-src"),
        attribute(5, "http://evil.com/x", "url"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_pages_and_failures_keep_the_old_snapshot() {
    let (fake, url) = start(five()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&url);
    config.intel.snapshot_path = Some(dir.path().join("snapshot.json"));
    config.intel.min_indicators = 3;
    let client = misp_client(&config).unwrap();
    let store = std::sync::Arc::new(IntelStore::default());

    sync_once(&config, &store, client.as_ref()).await.unwrap();
    assert_eq!(store.load().len(), 5);
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        3,
        "pages of 2: 2 + 2 + 1"
    );
    let snapshot = store.load_full();
    let mut ids = Vec::new();
    snapshot.match_ip("10.20.3.4".parse().unwrap(), &mut |id| ids.push(id));
    assert_eq!(ids.len(), 1, "CIDR from MISP matches");
    assert_eq!(
        snapshot.attribute(ids[0]).event.info.as_ref(),
        "fake misp event"
    );

    // A 500 keeps the old snapshot and names path and status.
    *fake.mode.lock().unwrap() = Mode::ServerError;
    let err = sync_once(&config, &store, client.as_ref())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/attributes/restSearch") && err.contains("500"),
        "{err}"
    );
    assert!(!err.contains("FAKE-KEY"), "{err}");
    assert_eq!(store.load().len(), 5);

    // A truncated answer keeps it too.
    *fake.mode.lock().unwrap() = Mode::Truncated;
    let err = sync_once(&config, &store, client.as_ref())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("malformed"), "{err}");
    assert_eq!(store.load().len(), 5);

    // A suspiciously small answer is refused.
    *fake.mode.lock().unwrap() = Mode::Normal;
    *fake.attributes.lock().unwrap() = vec![attribute(1, "1.2.3.4", "ip-dst")];
    let err = sync_once(&config, &store, client.as_ref())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("below the configured floor"), "{err}");
    assert_eq!(store.load().len(), 5);

    // Deletions are caught by the next full sync.
    *fake.attributes.lock().unwrap() = five().into_iter().skip(1).collect();
    sync_once(&config, &store, client.as_ref()).await.unwrap();
    assert_eq!(store.load().len(), 4);
    let mut hits = 0;
    store
        .load()
        .match_ip("1.2.3.4".parse().unwrap(), &mut |_| hits += 1);
    assert_eq!(hits, 0, "deleted attribute no longer matches");

    // The last good snapshot was persisted and loads without MISP.
    let restarted = IntelStore::default();
    assert!(load_persisted(&config, &restarted));
    assert_eq!(restarted.load().len(), 4);
}

/// Incremental pulls ask for what changed since the last pull (deleted and non-IDS included)
/// and apply it; a hard deletion, which leaves no trace to pull, waits for the full reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_pulls_apply_changes_and_reconcile_catches_hard_deletes() {
    let (fake, url) = start(five()).await;
    let mut config = config(&url);
    config.misp.sync_interval_secs = 1;
    config.misp.full_sync_interval_secs = 3600;
    let client = misp_client(&config).unwrap();
    let store = Arc::new(IntelStore::default());
    let mut updater = IntelUpdater::new(config.clone(), store.clone(), client);
    updater.full().await.unwrap();
    assert_eq!(store.load().len(), 5);
    let ip_hits = |ip: &str| {
        let mut hits = 0;
        store
            .load()
            .match_ip(ip.parse().unwrap(), &mut |_| hits += 1);
        hits
    };
    let host_hits = |host: &str| {
        let mut hits = 0;
        store.load().match_host(host, &mut |_| hits += 1);
        hits
    };

    // Nothing changed: an incremental pull touches nothing.
    assert_eq!(updater.incremental().await.unwrap(), 0);

    // In MISP: evil.com soft-deleted, the md5 flipped to to_ids=false, a new IP added,
    // 1.2.3.4 hard-deleted (gone without a trace).
    let now = chrono::Utc::now().timestamp().to_string();
    {
        let mut attributes = fake.attributes.lock().unwrap();
        attributes[1]["deleted"] = json!(true);
        attributes[1]["timestamp"] = json!(now);
        attributes[2]["to_ids"] = json!(false);
        attributes[2]["timestamp"] = json!(now);
        let mut added = attribute(6, "198.51.100.6", "ip-dst");
        added["timestamp"] = json!(now);
        attributes.push(added);
        attributes.remove(0);
    }
    fake.bodies.lock().unwrap().clear();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        updater.tick().await,
        Step::Changed,
        "the incremental pull was due"
    );
    let bodies = fake.bodies.lock().unwrap().clone();
    assert!(
        bodies.iter().any(|b| b.get("timestamp").is_some())
            && bodies.iter().any(|b| b.get("event_timestamp").is_some()),
        "pulls by attribute and by event timestamp: {bodies:?}"
    );
    assert!(bodies
        .iter()
        .all(|b| b["deleted"] == json!([0, 1]) && b.get("to_ids").is_none()));
    assert_eq!(host_hits("evil.com"), 0, "soft-deleted");
    assert_eq!(
        store.load().len(),
        4,
        "md5 flipped out, new IP in, 1.2.3.4 not seen yet"
    );
    assert_eq!(ip_hits("198.51.100.6"), 1);
    assert_eq!(
        ip_hits("1.2.3.4"),
        1,
        "a hard deletion is invisible to incremental pulls"
    );
    let mut md5_hits = 0;
    store
        .load()
        .match_hash("5d41402abc4b2a76b9719d911017c592", &mut |_| md5_hits += 1);
    assert_eq!(md5_hits, 0, "to_ids flipped off");

    // The full reconcile catches it.
    updater.full().await.unwrap();
    assert_eq!(ip_hits("1.2.3.4"), 0);
    assert_eq!(store.load().len(), 3);

    // MISP down: an incremental pull fails and the set stays.
    *fake.mode.lock().unwrap() = Mode::ServerError;
    assert!(updater.incremental().await.is_err());
    assert_eq!(store.load().len(), 3);
}

/// Files reload without touching the MISP part, and a restart keeps the two apart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_reload_keeps_misp_attributes() {
    let (_fake, url) = start(five()).await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("local.txt");
    std::fs::write(&list, "203.0.113.9\n").unwrap();
    let mut config = config(&url);
    config.intel.files = vec![list.clone()];
    config.intel.snapshot_path = Some(dir.path().join("snapshot.json"));
    let client = misp_client(&config).unwrap();
    let store = Arc::new(IntelStore::default());
    let mut updater = IntelUpdater::new(config.clone(), store.clone(), client);
    updater.full().await.unwrap();
    assert_eq!(store.load().len(), 6);
    std::fs::write(&list, "203.0.113.10\n203.0.113.11\n").unwrap();
    updater.reload_local().unwrap();
    let snapshot = store.load_full();
    assert_eq!(snapshot.len(), 7, "5 from MISP + 2 from the file");
    assert_eq!(snapshot.attributes().filter(|a| a.from_misp).count(), 5);

    // The persisted snapshot remembers which attributes came from MISP.
    let restarted = Arc::new(IntelStore::default());
    assert!(load_persisted(&config, &restarted));
    assert_eq!(
        restarted
            .load()
            .attributes()
            .filter(|a| a.from_misp)
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lookup_caches_and_breaks() {
    let (fake, url) = start(five()).await;
    let client = misp_client(&config(&url)).unwrap().unwrap();
    let lookup = LiveLookup::new(
        client,
        LiveLookupOptions {
            breaker_threshold: 2,
            ..LiveLookupOptions::default()
        },
    );

    let found = lookup.lookup("evil.com").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["misp"]["attribute"]["type"], "domain");
    let requests = fake.requests.load(Ordering::SeqCst);
    let again = lookup.lookup("evil.com").await.unwrap();
    assert_eq!(again, found);
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        requests,
        "second look-up answered from the cache"
    );

    assert!(lookup.lookup("benign.org").await.unwrap().is_empty());
    let requests = fake.requests.load(Ordering::SeqCst);
    assert!(lookup.lookup("benign.org").await.unwrap().is_empty());
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        requests,
        "negative answer cached"
    );

    *fake.mode.lock().unwrap() = Mode::ServerError;
    assert!(lookup.lookup("other1.org").await.is_err());
    assert!(lookup.lookup("other2.org").await.is_err());
    let requests = fake.requests.load(Ordering::SeqCst);
    let err = lookup.lookup("other3.org").await.unwrap_err();
    assert!(err.contains("circuit breaker"), "{err}");
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        requests,
        "breaker open: no request sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_are_batched_and_deduplicated() {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    let app = Router::new().route(
        "/sightings/add",
        post(move |Json(body): Json<Value>| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(body);
                Json(json!({"Sighting": {"id": "1", "attribute_id": "1", "source": "wazuh"}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = misp_client(&config(&url)).unwrap().unwrap();
    let (sender, task) = wazuh_misp::misp::sightings::sightings(
        client,
        "wazuh-test".to_string(),
        std::time::Duration::from_millis(200),
    );
    let worker = tokio::spawn(task);
    for value in ["1.2.3.4", "evil.com", "1.2.3.4", "evil.com", "1.2.3.4"] {
        sender.sight(value);
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    sender.sight("1.2.3.4"); // still inside the de-duplication window
    drop(sender);
    worker.await.unwrap();
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 1, "one batch: {bodies:?}");
    assert_eq!(
        bodies[0],
        json!({"values": ["1.2.3.4", "evil.com"], "source": "wazuh-test"})
    );
}

/// `misp.live_query`: a high-level alert's unmatched observables are asked about within the
/// budget and the alert is processed again with the answer (local hits kept); a slow MISP
/// costs the alert at most the budget, and its late answer serves the next alert.
#[test]
fn live_queries_enrich_high_level_alerts_within_the_budget() {
    use wazuh_misp::intel::load_files;
    use wazuh_misp::misp::lookup::AlertLiveQuery;
    use wazuh_misp::pipeline::{Outcome, Processor, ProcessorOptions};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (fake, url) = runtime.block_on(start(five()));
    let client = misp_client(&config(&url)).unwrap().unwrap();
    let lookup = Arc::new(LiveLookup::new(client, LiveLookupOptions::default()));
    let mut live_config = wazuh_misp::config::LiveQueryConfig {
        enabled: true,
        min_rule_level: 12,
        budget_ms: 300,
        max_values: 8,
    };
    let live = AlertLiveQuery::new(lookup.clone(), runtime.handle().clone(), &live_config);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.txt");
    std::fs::write(&local, "203.0.113.9\n").unwrap();
    let snapshot = load_files(&[local.as_path()], false).unwrap();
    let alert = |level: u8, url: &str| {
        format!(
            r#"{{"rule":{{"level":{level},"id":"31101"}},"agent":{{"id":"003"}},"data":{{"srcip":"203.0.113.9","url":"{url}"}}}}"#
        )
    };
    // As the pipeline sets it when it runs live queries: they read the alert's rule level.
    let mut processor = Processor::new(ProcessorOptions {
        describe_unmatched: true,
        ..ProcessorOptions::default()
    });

    // Below the level: not asked.
    let low = alert(5, "http://evil.com/x");
    processor.process(low.as_bytes(), &snapshot);
    assert!(live
        .query(processor.extraction(), processor.hits(), &snapshot)
        .is_none());
    assert_eq!(fake.requests.load(Ordering::SeqCst), 0);

    // At the level: asked; the answer adds MISP's attribute to the local hit.
    let high = alert(12, "http://evil.com/x");
    assert_eq!(
        processor.process(high.as_bytes(), &snapshot),
        Outcome::Enriched { matches: 1 }
    );
    let combined = live
        .query(processor.extraction(), processor.hits(), &snapshot)
        .expect("MISP knows the URL");
    // The local IP, plus MISP's URL and (from the URL's host) its domain attribute.
    assert_eq!(
        processor.process(high.as_bytes(), &combined),
        Outcome::Enriched { matches: 3 }
    );
    let enriched = String::from_utf8(processor.output().to_vec()).unwrap();
    for expected in ["203.0.113.9", "http://evil.com/x", "fake misp event"] {
        assert!(enriched.contains(expected), "{expected} in {enriched}");
    }
    let asked = fake.requests.load(Ordering::SeqCst);
    assert!(asked >= 1);

    // The same value again: from the cache, no request.
    processor.process(high.as_bytes(), &snapshot);
    assert!(live
        .query(processor.extraction(), processor.hits(), &snapshot)
        .is_some());
    assert_eq!(fake.requests.load(Ordering::SeqCst), asked);

    // A slow MISP: the alert waits at most the budget, the late answer fills the cache.
    *fake.mode.lock().unwrap() = Mode::Slow;
    live_config.budget_ms = 100;
    let live = AlertLiveQuery::new(lookup, runtime.handle().clone(), &live_config);
    let slow = alert(13, "http://slow.example/p");
    fake.attributes
        .lock()
        .unwrap()
        .push(attribute(9, "http://slow.example/p", "url"));
    processor.process(slow.as_bytes(), &snapshot);
    let started = std::time::Instant::now();
    assert!(live
        .query(processor.extraction(), processor.hits(), &snapshot)
        .is_none());
    assert!(
        started.elapsed() < std::time::Duration::from_millis(400),
        "waited {:?}",
        started.elapsed()
    );
    std::thread::sleep(std::time::Duration::from_millis(900));
    *fake.mode.lock().unwrap() = Mode::Normal;
    let before = fake.requests.load(Ordering::SeqCst);
    assert!(
        live.query(processor.extraction(), processor.hits(), &snapshot)
            .is_some(),
        "the late answer was cached"
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), before);
}
