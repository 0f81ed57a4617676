//! MISP feeds over HTTP (`intel.feeds`) against a feed server of the tests' own: conditional
//! fetches, only changed events re-fetched, removed events deleted, failures keeping the last
//! good copy, CSV columns/delimiters/comments/quotes, freetext refanging and `to_ids`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use wazuh_misp::config::{Config, FeedConfig};
use wazuh_misp::intel::feeds::{load_cached, FeedFetcher};
use wazuh_misp::intel::{IntelSnapshot, Loader, SnapshotBuilder};
use wazuh_misp::misp::MispClient;

use crate::support::matches;

#[derive(Clone)]
struct Served {
    status: u16,
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

#[derive(Default)]
struct FeedServer {
    files: Mutex<HashMap<String, Served>>,
    hits: Mutex<HashMap<String, usize>>,
}

impl FeedServer {
    fn serve(&self, path: &str, status: u16, body: impl Into<Vec<u8>>, etag: Option<&str>) {
        self.files.lock().unwrap().insert(
            path.to_string(),
            Served {
                status,
                body: body.into(),
                etag: etag.map(str::to_string),
                last_modified: None,
            },
        );
    }

    fn serve_json(&self, path: &str, body: &Value, etag: Option<&str>) {
        self.serve(path, 200, body.to_string(), etag);
    }

    fn remove(&self, path: &str) {
        self.files.lock().unwrap().remove(path);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn handle(State(server): State<Arc<FeedServer>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    *server.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let served = server.files.lock().unwrap().get(&path).cloned();
    let Some(served) = served else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .unwrap();
    };
    let sent = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let fresh = (served.etag.is_some() && sent(header::IF_NONE_MATCH) == served.etag)
        || (served.last_modified.is_some()
            && sent(header::IF_MODIFIED_SINCE) == served.last_modified);
    let mut response = Response::builder();
    if let Some(etag) = &served.etag {
        response = response.header(header::ETAG, etag);
    }
    if let Some(date) = &served.last_modified {
        response = response.header(header::LAST_MODIFIED, date);
    }
    if fresh && served.status == 200 {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap();
    }
    response
        .status(served.status)
        .body(Body::from(served.body))
        .unwrap()
}

async fn start() -> (Arc<FeedServer>, String) {
    let server = Arc::new(FeedServer::default());
    let app = Router::new().fallback(handle).with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (server, format!("http://{addr}"))
}

const EVENT_A: &str = "5a000000-0000-4000-8000-00000000000a";
const EVENT_B: &str = "5b000000-0000-4000-8000-00000000000b";
const EVENT_C: &str = "5c000000-0000-4000-8000-00000000000c";

fn manifest(events: &[(&str, &str)]) -> Value {
    let mut manifest = serde_json::Map::new();
    for (uuid, timestamp) in events {
        manifest.insert(
            uuid.to_string(),
            json!({"info": format!("event {uuid}"), "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
                   "analysis": "2", "timestamp": timestamp, "date": "2026-01-02", "threat_level_id": "2",
                   "Tag": [{"name": "tlp:white", "colour": "#ffffff"}]}),
        );
    }
    Value::Object(manifest)
}

fn event(uuid: &str, timestamp: &str, attributes: &[(&str, &str)]) -> Value {
    let attributes: Vec<Value> = attributes
        .iter()
        .enumerate()
        .map(|(n, (misp_type, value))| {
            json!({"type": misp_type, "category": "Network activity", "value": value, "to_ids": true,
                   "uuid": format!("{}{n:04}", &uuid[..32]), "timestamp": timestamp, "comment": ""})
        })
        .collect();
    json!({"Event": {"info": format!("event {uuid}"), "uuid": uuid, "date": "2026-01-02", "timestamp": timestamp,
                     "threat_level_id": "2", "published": true, "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
                     "Tag": [{"name": "tlp:white"}], "Attribute": attributes, "Object": []}})
}

fn feed(name: &str, url: String, format: &str) -> FeedConfig {
    FeedConfig {
        name: name.to_string(),
        url,
        format: format.to_string(),
        interval_secs: 3600,
        ..FeedConfig::default()
    }
}

fn fetcher(feeds: Vec<FeedConfig>, cache: &Path) -> (FeedFetcher, Config) {
    let mut config = Config::default();
    config.intel.feeds = feeds;
    config.intel.feed_cache_dir = Some(cache.to_path_buf());
    let client = MispClient::feeds_only(None, Duration::from_secs(5), 0).expect("client");
    (FeedFetcher::with_client(&config, client), config)
}

fn load(config: &Config, include_non_ids: bool) -> (IntelSnapshot, usize) {
    let mut builder = SnapshotBuilder::new(include_non_ids, None);
    let mut loader = Loader::default();
    let loaded = load_cached(
        &mut loader,
        &mut builder,
        &config.intel.feeds,
        config.intel.feed_cache_dir.as_deref().unwrap(),
    )
    .expect("the cache always loads");
    (builder.build(), loaded)
}

/// The MISP values an alert whose full_log is `text` matches.
fn hits(snapshot: &IntelSnapshot, text: &str) -> Vec<String> {
    let alert = json!({"timestamp": "2026-11-26T10:00:00.000+0000", "rule": {"level": 10, "id": "1", "description": "t"},
                       "agent": {"id": "001", "name": "a"}, "manager": {"name": "m"}, "id": "1.1", "decoder": {"name": "t"},
                       "location": "t", "data": {}, "full_log": text});
    let mut values: Vec<String> = matches(snapshot, &alert.to_string())
        .into_iter()
        .map(|(_, _, value)| value)
        .collect();
    values.sort();
    values.dedup();
    values
}

#[tokio::test]
async fn misp_feed_fetches_only_new_and_changed_events_and_drops_removed_ones() {
    let (server, base) = start().await;
    server.serve_json(
        "/osint/manifest.json",
        &manifest(&[(EVENT_A, "1700000000"), (EVENT_B, "1700000000")]),
        Some("\"m1\""),
    );
    server.serve_json(
        &format!("/osint/{EVENT_A}.json"),
        &event(EVENT_A, "1700000000", &[("ip-dst", "185.220.101.47")]),
        None,
    );
    server.serve_json(
        &format!("/osint/{EVENT_B}.json"),
        &event(EVENT_B, "1700000000", &[("domain", "old-b.example")]),
        None,
    );
    let cache = tempfile::tempdir().unwrap();
    let (mut fetcher, config) = fetcher(
        vec![feed("osint", format!("{base}/osint/"), "misp")],
        cache.path(),
    );
    let path_a = format!("/osint/{EVENT_A}.json");
    let path_b = format!("/osint/{EVENT_B}.json");

    // First fetch: manifest and every event.
    let first = fetcher.refresh(false).await;
    assert_eq!(first.errors, Vec::<String>::new());
    assert!(first.changed);
    assert_eq!(first.attempted, 1);
    assert_eq!(server.hits("/osint/manifest.json"), 1);
    assert_eq!((server.hits(&path_a), server.hits(&path_b)), (1, 1));
    let dir = cache.path().join("osint");
    assert!(dir.join("manifest.json").is_file());
    assert!(dir.join(format!("{EVENT_A}.json")).is_file());
    let (snapshot, loaded) = load(&config, false);
    assert_eq!(loaded, 1);
    assert_eq!(
        hits(&snapshot, "from 185.220.101.47 to old-b.example"),
        vec!["185.220.101.47", "old-b.example"]
    );

    // Not due yet: nothing is requested.
    let idle = fetcher.refresh(false).await;
    assert_eq!(idle.attempted, 0);
    assert!(fetcher.next_due().unwrap() > Duration::from_secs(3500));
    assert_eq!(server.hits("/osint/manifest.json"), 1);

    // Forced, unchanged manifest: a 304, no event fetched.
    let second = fetcher.refresh(true).await;
    assert_eq!(second.errors, Vec::<String>::new());
    assert!(!second.changed);
    assert_eq!(server.hits("/osint/manifest.json"), 2);
    assert_eq!((server.hits(&path_a), server.hits(&path_b)), (1, 1));

    // Same manifest, no ETag support: 200, but same timestamps, so still no event fetched.
    server.serve_json(
        "/osint/manifest.json",
        &manifest(&[(EVENT_A, "1700000000"), (EVENT_B, "1700000000")]),
        None,
    );
    let third = fetcher.refresh(true).await;
    assert_eq!(third.errors, Vec::<String>::new());
    assert!(!third.changed, "same timestamps: nothing changed");
    assert_eq!(server.hits("/osint/manifest.json"), 3);
    assert_eq!((server.hits(&path_a), server.hits(&path_b)), (1, 1));

    // B's timestamp changes: only B is fetched again.
    server.serve_json(
        "/osint/manifest.json",
        &manifest(&[(EVENT_A, "1700000000"), (EVENT_B, "1700000500")]),
        Some("\"m2\""),
    );
    server.serve_json(
        &path_b,
        &event(EVENT_B, "1700000500", &[("domain", "new-b.example")]),
        None,
    );
    let fourth = fetcher.refresh(true).await;
    assert_eq!(fourth.errors, Vec::<String>::new());
    assert!(fourth.changed);
    assert_eq!((server.hits(&path_a), server.hits(&path_b)), (1, 2));
    let (snapshot, _) = load(&config, false);
    assert_eq!(
        hits(&snapshot, "old-b.example new-b.example 185.220.101.47"),
        vec!["185.220.101.47", "new-b.example"]
    );

    // A leaves the manifest: its file is deleted, its attributes are gone.
    server.serve_json(
        "/osint/manifest.json",
        &manifest(&[(EVENT_B, "1700000500")]),
        Some("\"m3\""),
    );
    server.remove(&path_a);
    let fifth = fetcher.refresh(true).await;
    assert_eq!(fifth.errors, Vec::<String>::new());
    assert!(fifth.changed);
    assert!(!dir.join(format!("{EVENT_A}.json")).exists());
    assert!(dir.join(format!("{EVENT_B}.json")).is_file());
    assert_eq!(server.hits(&path_b), 2);
    let (snapshot, _) = load(&config, false);
    assert_eq!(
        hits(&snapshot, "185.220.101.47 new-b.example"),
        vec!["new-b.example"]
    );
}

#[tokio::test]
async fn failed_fetches_keep_the_last_good_copy() {
    let (server, base) = start().await;
    let path_a = format!("/feed/{EVENT_A}.json");
    let path_b = format!("/feed/{EVENT_B}.json");
    server.serve_json(
        "/feed/manifest.json",
        &manifest(&[(EVENT_A, "1"), (EVENT_B, "1")]),
        Some("\"v1\""),
    );
    server.serve_json(
        &path_a,
        &event(EVENT_A, "1", &[("ip-dst", "45.137.21.9")]),
        None,
    );
    server.serve_json(
        &path_b,
        &event(EVENT_B, "1", &[("domain", "b-v1.example")]),
        None,
    );
    let cache = tempfile::tempdir().unwrap();
    let (mut fetcher, config) = fetcher(
        vec![feed("f", format!("{base}/feed?token=s3cret"), "misp")],
        cache.path(),
    );
    let good = fetcher.refresh(true).await;
    assert_eq!(good.errors, Vec::<String>::new());
    let both = "45.137.21.9 b-v1.example b-v2.example";
    let (snapshot, _) = load(&config, false);
    assert_eq!(hits(&snapshot, both), vec!["45.137.21.9", "b-v1.example"]);

    // The manifest answers 500: an error naming URL and status; the cache is untouched.
    server.serve("/feed/manifest.json", 500, "<html>oops</html>", None);
    let failed = fetcher.refresh(true).await;
    assert!(!failed.changed);
    assert_eq!(failed.errors.len(), 1, "{:?}", failed.errors);
    let error = &failed.errors[0];
    assert!(error.contains("feed `f`"), "{error}");
    assert!(
        error.contains(&format!("{base}/feed/manifest.json")),
        "{error}"
    );
    assert!(error.contains("500"), "{error}");
    assert!(
        !error.contains("s3cret"),
        "no query string in errors: {error}"
    );
    let (snapshot, _) = load(&config, false);
    assert_eq!(hits(&snapshot, both), vec!["45.137.21.9", "b-v1.example"]);

    // B changes but its new file is broken JSON, a new event C is a 404, and a key tries a
    // path traversal: B keeps its old copy, C and the bad key are left out.
    let mut next = manifest(&[(EVENT_A, "1"), (EVENT_B, "2"), (EVENT_C, "2")]);
    next["../../escape"] = json!({"timestamp": "2"});
    server.serve_json("/feed/manifest.json", &next, Some("\"v2\""));
    server.serve(&path_b, 200, "{\"Event\": {\"uuid\": ", None);
    let partial = fetcher.refresh(true).await;
    assert_eq!(partial.errors.len(), 3, "{:?}", partial.errors);
    let joined = partial.errors.join("\n");
    assert!(
        joined.contains(&format!("{base}{path_b} (http 200): invalid event json")),
        "{joined}"
    );
    assert!(
        joined.contains(&format!("http 404 from {base}/feed/{EVENT_C}.json")),
        "{joined}"
    );
    assert!(joined.contains("is not a uuid"), "{joined}");
    assert_eq!(
        server.hits("/escape.json") + server.hits("/../../escape.json"),
        0
    );
    assert!(!cache.path().join("escape.json").exists());
    let (snapshot, _) = load(&config, false);
    assert_eq!(hits(&snapshot, both), vec!["45.137.21.9", "b-v1.example"]);
    let cached: Value =
        serde_json::from_slice(&std::fs::read(cache.path().join("f/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(cached[EVENT_B]["timestamp"], "1", "B keeps its old entry");
    assert!(cached.get(EVENT_C).is_none());

    // B is fixed on the server, same manifest (same ETag): B is retried, since the last
    // fetch was partial, and A is not fetched again.
    server.serve_json(
        &path_b,
        &event(EVENT_B, "2", &[("domain", "b-v2.example")]),
        None,
    );
    server.serve_json(
        &format!("/feed/{EVENT_C}.json"),
        &event(EVENT_C, "2", &[]),
        None,
    );
    let hits_a = server.hits(&path_a);
    let fixed = fetcher.refresh(true).await;
    assert_eq!(
        fixed.errors.len(),
        1,
        "only the bad key: {:?}",
        fixed.errors
    );
    assert!(fixed.changed);
    assert_eq!(server.hits(&path_a), hits_a);
    let (snapshot, _) = load(&config, false);
    assert_eq!(hits(&snapshot, both), vec!["45.137.21.9", "b-v2.example"]);

    // The server is gone altogether: an error, and the cache still loads.
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut gone_config = config.clone();
    gone_config.intel.feeds[0].url = format!("http://127.0.0.1:{unreachable}/feed");
    let client = MispClient::feeds_only(None, Duration::from_secs(5), 0).unwrap();
    let mut gone = FeedFetcher::with_client(&gone_config, client);
    let down = gone.refresh(true).await;
    assert!(!down.changed);
    assert_eq!(down.errors.len(), 1, "{:?}", down.errors);
    assert!(down.errors[0].contains(&format!("127.0.0.1:{unreachable}/feed/manifest.json")));
    let (snapshot, _) = load(&config, false);
    assert_eq!(hits(&snapshot, both), vec!["45.137.21.9", "b-v2.example"]);
}

#[tokio::test]
async fn csv_feed_with_columns_delimiter_comments_and_quotes() {
    let (server, base) = start().await;
    let body = "# abuse list; \"generated\" today, don't parse me: 7.7.7.7\n\
                first_seen;ip;port;note\n\
                2026-01-01;\"185.220.101.47\";443;91.92.93.94\n\
                2026-01-02; '45.137.21.9' ;8080;x\n\
                #2026-01-03;66.66.66.66;80;x\n\
                \n\
                2026-01-04;evil-csv.example;80;x\n";
    server.files.lock().unwrap().insert(
        "/list.csv".to_string(),
        Served {
            status: 200,
            body: body.as_bytes().to_vec(),
            etag: None,
            last_modified: Some("Wed, 21 Oct 2026 07:28:00 GMT".to_string()),
        },
    );
    let cache = tempfile::tempdir().unwrap();
    let mut csv = feed("blocklist", format!("{base}/list.csv"), "csv");
    csv.csv_value_columns = vec![2];
    csv.csv_delimiter = ";".to_string();
    let (mut fetcher, config) = fetcher(vec![csv], cache.path());

    // Nothing cached yet: nothing loaded, no error.
    let (_, loaded) = load(&config, false);
    assert_eq!(loaded, 0);

    let first = fetcher.refresh(false).await;
    assert_eq!(first.errors, Vec::<String>::new());
    assert!(first.changed);
    let cached = std::fs::read(cache.path().join("blocklist/data")).unwrap();
    assert_eq!(cached, body.as_bytes());
    let meta: Value =
        serde_json::from_slice(&std::fs::read(cache.path().join("blocklist/meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["last_modified"], "Wed, 21 Oct 2026 07:28:00 GMT");

    let (snapshot, loaded) = load(&config, false);
    assert_eq!(loaded, 1);
    assert_eq!(
        hits(
            &snapshot,
            "185.220.101.47 45.137.21.9 evil-csv.example 91.92.93.94 66.66.66.66 7.7.7.7"
        ),
        vec!["185.220.101.47", "45.137.21.9", "evil-csv.example"],
        "column 2 only, comment rows skipped, quotes trimmed"
    );
    let uuids: Vec<String> = snapshot.attributes().map(|a| a.uuid.to_string()).collect();
    assert!(
        uuids.contains(&"feed:blocklist#185.220.101.47".to_string()),
        "{uuids:?}"
    );

    // If-Modified-Since: a 304, nothing changed.
    let second = fetcher.refresh(true).await;
    assert_eq!(second.errors, Vec::<String>::new());
    assert!(!second.changed);
    assert_eq!(server.hits("/list.csv"), 2);

    // A 404 later keeps the cached list.
    server.remove("/list.csv");
    let failed = fetcher.refresh(true).await;
    assert!(!failed.changed);
    assert!(
        failed.errors[0].contains(&format!("http 404 from {base}/list.csv")),
        "{:?}",
        failed.errors
    );
    let (snapshot, _) = load(&config, false);
    assert_eq!(snapshot.len(), 3);
}

#[tokio::test]
async fn freetext_feed_refangs_every_token_and_honours_to_ids() {
    let (server, base) = start().await;
    server.serve(
        "/iocs.txt",
        200,
        "# Terms of use: https://abuse.example/terms\n\
         hxxp://evil[.]example/x seen talking to 1.2.3[.]4, also bad[.]example.org.\n\
         // 9.8.7.6 is a comment too\n\
         plain words only here\n",
        Some("\"t1\""),
    );
    let cache = tempfile::tempdir().unwrap();
    let mut text = feed("txt", format!("{base}/iocs.txt"), "freetext");
    text.to_ids = false;
    let (mut fetcher, config) = fetcher(vec![text], cache.path());
    let first = fetcher.refresh(false).await;
    assert_eq!(first.errors, Vec::<String>::new());
    assert!(first.changed);

    let probe =
        "GET http://evil.example/x from 1.2.3.4 to bad.example.org via abuse.example 9.8.7.6";
    let (snapshot, _) = load(&config, false);
    assert_eq!(
        hits(&snapshot, probe),
        Vec::<String>::new(),
        "to_ids = false: not matched without include_non_ids"
    );
    assert_eq!(snapshot.stats().skipped_non_ids, 3);
    let (snapshot, _) = load(&config, true);
    assert_eq!(
        hits(&snapshot, probe),
        vec!["1.2.3.4", "bad.example.org", "http://evil.example/x"]
    );
    assert!(snapshot.attributes().all(|a| !a.to_ids));

    // Same body again (ETag): nothing changed.
    let second = fetcher.refresh(true).await;
    assert!(!second.changed);
    assert_eq!(server.hits("/iocs.txt"), 2);
}

#[tokio::test]
async fn disabled_feeds_are_neither_fetched_nor_loaded() {
    let (server, base) = start().await;
    server.serve("/x.txt", 200, "203.0.113.77\n", None);
    let cache = tempfile::tempdir().unwrap();
    let mut off = feed("off", format!("{base}/x.txt"), "freetext");
    off.enabled = false;
    let (mut fetcher, mut config) = fetcher(vec![off], cache.path());
    assert_eq!(fetcher.next_due(), None);
    let refresh = fetcher.refresh(true).await;
    assert_eq!(refresh.attempted, 0);
    assert_eq!(server.hits("/x.txt"), 0);
    // Even with something cached, a disabled feed is not loaded.
    std::fs::create_dir_all(cache.path().join("off")).unwrap();
    std::fs::write(cache.path().join("off/data"), "203.0.113.77\n").unwrap();
    let (_, loaded) = load(&config, true);
    assert_eq!(loaded, 0);
    config.intel.feeds[0].enabled = true;
    let (snapshot, loaded) = load(&config, true);
    assert_eq!(loaded, 1);
    assert_eq!(snapshot.len(), 1);
}

/// The service's updater fetches feeds on their schedule and reloads only when one changed,
/// keeping attributes from MISP's REST API as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_updater_fetches_feeds_on_schedule_and_reloads_on_change() {
    use wazuh_misp::intel::update::{IntelUpdater, Step};
    let (server, base) = start().await;
    server.serve("/ips.txt", 200, "198.51.100.50\n", Some("\"v1\""));
    let cache = tempfile::tempdir().unwrap();
    let mut text = feed("ips", format!("{base}/ips.txt"), "freetext");
    text.interval_secs = 1;
    let mut config = Config::default();
    config.intel.feeds = vec![text];
    config.intel.feed_cache_dir = Some(cache.path().to_path_buf());
    let store = Arc::new(wazuh_misp::intel::IntelStore::default());
    let mut updater = IntelUpdater::new(config, store.clone(), None);
    updater.full().await.unwrap();
    assert_eq!(hits(&store.load(), "to 198.51.100.50"), ["198.51.100.50"]);
    assert_eq!(server.hits("/ips.txt"), 1);

    // Not due yet: nothing fetched.
    assert_eq!(updater.tick().await, Step::Idle);
    assert_eq!(server.hits("/ips.txt"), 1);

    // Due, unchanged (ETag): fetched, no rebuild.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(updater.tick().await, Step::Idle);
    assert_eq!(server.hits("/ips.txt"), 2);

    // Due and changed: rebuilt.
    server.serve("/ips.txt", 200, "198.51.100.51\n", Some("\"v2\""));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(updater.tick().await, Step::Changed);
    let snapshot = store.load_full();
    assert!(hits(&snapshot, "to 198.51.100.50").is_empty());
    assert_eq!(hits(&snapshot, "to 198.51.100.51"), ["198.51.100.51"]);
}
