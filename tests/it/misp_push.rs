//! Pushing new IOCs into MISP (src/misp/push.rs) against a MISP-compatible server of the tests'
//! own that behaves like MISP's EventsController/AttributesController for the calls the pusher
//! makes: restSearch with `eventinfo` as a substring, `/events/add` with the wrapped body,
//! `/attributes/add/{id}` with a list (200 with `errors` when some were saved, 403
//! `saved:false` when none was), duplicates refused, 500 on demand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use wazuh_misp::misp::push::{ioc_pusher, IocPushSender, IocPusher, PushOptions};
use wazuh_misp::misp::{MispClient, MispClientConfig, Secret};

const KEY: &str = "PUSH-FAKE-KEY-0123456789";

#[derive(Default)]
struct Misp {
    /// `{"id","info","Tag":[{"name"}],"distribution","threat_level_id"}`
    events: Vec<Value>,
    /// `{"id","event_id","type","value",...}`
    attributes: Vec<Value>,
    /// Every request: (path, body).
    requests: Vec<(String, Value)>,
    /// Answer every request with a 500.
    down: bool,
    /// This value fails validation.
    refuse_value: Option<String>,
    /// Refuse a whole list when one attribute fails (MISP saves the others).
    strict_lists: bool,
}

type Shared = Arc<Mutex<Misp>>;

fn down(misp: &mut Misp, path: String, body: Value) -> Option<Response> {
    misp.requests.push((path, body));
    misp.down.then(|| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "<html>Internal error</html>",
        )
            .into_response()
    })
}

async fn events_search(State(misp): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut misp = misp.lock().unwrap();
    if let Some(r) = down(&mut misp, "/events/restSearch".into(), body.clone()) {
        return r;
    }
    let info = body["eventinfo"].as_str().unwrap_or("").to_string();
    let tags: Vec<String> = body["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let found: Vec<Value> = misp
        .events
        .iter()
        .filter(|e| e["info"].as_str().unwrap().contains(&info))
        .filter(|e| {
            tags.iter()
                .all(|t| e["Tag"].as_array().unwrap().iter().any(|x| x["name"] == *t))
        })
        .map(|e| json!({"Event": e}))
        .collect();
    Json(json!({"response": found})).into_response()
}

async fn events_add(State(misp): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut misp = misp.lock().unwrap();
    if let Some(r) = down(&mut misp, "/events/add".into(), body.clone()) {
        return r;
    }
    let mut event = body["Event"].clone();
    let id = (misp.events.len() + 1).to_string();
    event["id"] = json!(id);
    event["uuid"] = json!(format!(
        "50000000-0000-4000-8000-{:012}",
        id.parse::<u64>().unwrap()
    ));
    misp.events.push(event.clone());
    Json(json!({"Event": event})).into_response()
}

async fn attributes_add(
    State(misp): State<Shared>,
    Path(event_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut misp = misp.lock().unwrap();
    if let Some(r) = down(
        &mut misp,
        format!("/attributes/add/{event_id}"),
        body.clone(),
    ) {
        return r;
    }
    if !misp.events.iter().any(|e| e["id"] == event_id) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Invalid event"})),
        )
            .into_response();
    }
    let list = body
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![body.clone()]);
    let mut saved = Vec::new();
    let mut errors = serde_json::Map::new();
    for (n, attribute) in list.iter().enumerate() {
        let duplicate = misp.attributes.iter().any(|a| {
            a["event_id"] == event_id
                && a["type"] == attribute["type"]
                && a["value"] == attribute["value"]
        });
        let invalid = misp.refuse_value.as_deref() == attribute["value"].as_str();
        if duplicate || invalid {
            let reason = if duplicate {
                "A similar attribute already exists for this event."
            } else {
                "Value is not valid."
            };
            errors.insert(format!("attribute_{n}"), json!({"value": [reason]}));
            continue;
        }
        let mut stored = attribute.clone();
        stored["id"] = json!((misp.attributes.len() + saved.len() + 1).to_string());
        stored["event_id"] = json!(event_id);
        saved.push(stored);
    }
    let refuse_all = saved.is_empty() || (misp.strict_lists && !errors.is_empty());
    if refuse_all {
        let errors = if list.len() == 1 {
            errors.remove("attribute_0").unwrap()
        } else {
            Value::Object(errors)
        };
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"saved": false, "name": "Could not add Attributes", "message": "Could not add Attributes", "url": "/attributes/add", "errors": errors})),
        )
            .into_response();
    }
    misp.attributes.extend(saved.iter().cloned());
    let mut answer = if body.is_array() {
        json!({"Attribute": saved})
    } else {
        json!({"Attribute": saved[0]})
    };
    if !errors.is_empty() {
        answer["errors"] = Value::Object(errors);
    }
    Json(answer).into_response()
}

async fn attributes_search(State(misp): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut misp = misp.lock().unwrap();
    if let Some(r) = down(&mut misp, "/attributes/restSearch".into(), body.clone()) {
        return r;
    }
    let event_id = body["eventid"].as_str().map(str::to_string);
    let page = body["page"].as_u64().unwrap_or(1).max(1) as usize;
    let limit = body["limit"].as_u64().unwrap_or(u64::MAX) as usize;
    let found: Vec<Value> = misp
        .attributes
        .iter()
        .filter(|a| event_id.as_ref().is_none_or(|id| a["event_id"] == *id))
        .skip((page - 1) * limit)
        .take(limit)
        .cloned()
        .collect();
    Json(json!({"response": {"Attribute": found}})).into_response()
}

async fn start(misp: Misp) -> (Shared, String) {
    let shared = Arc::new(Mutex::new(misp));
    let app = Router::new()
        .route("/events/restSearch", post(events_search))
        .route("/events/add", post(events_add))
        .route("/attributes/add/{event_id}", post(attributes_add))
        .route("/attributes/restSearch", post(attributes_search))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (shared, format!("http://{addr}"))
}

fn client(url: &str) -> MispClient {
    MispClient::new(MispClientConfig {
        url: url.to_string(),
        api_key: Secret::new(KEY),
        timeout: Duration::from_secs(5),
        max_retries: 0,
        ..MispClientConfig::default()
    })
    .unwrap()
}

fn options() -> PushOptions {
    PushOptions {
        distribution: 2,
        threat_level: 2,
        tags: vec!["wazuh-misp".into(), "tlp:amber".into()],
        interval: Duration::from_secs(3600),
        ..PushOptions::default()
    }
}

/// A record as IocSharing builds it for `topics.iocs`.
fn record(misp_type: &str, value: &str) -> Value {
    json!({"type": misp_type, "value": value, "category": "Network activity", "to_ids": false,
           "comment": "seen by Wazuh agent web-01 (001), rule 5712 level 12: brute force",
           "first_seen": "2026-11-25T10:15:30.123+00:00",
           "wazuh": {"agent": {"id": "001", "name": "web-01"}, "field": "data.srcip"}})
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn paths(misp: &Shared) -> Vec<String> {
    misp.lock()
        .unwrap()
        .requests
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

fn values_in(misp: &Shared, event_id: &str) -> Vec<String> {
    misp.lock()
        .unwrap()
        .attributes
        .iter()
        .filter(|a| a["event_id"] == event_id)
        .map(|a| a["value"].as_str().unwrap().to_string())
        .collect()
}

fn pusher(url: &str, options: PushOptions) -> (IocPushSender, IocPusher) {
    ioc_pusher(client(url), options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_push_creates_the_days_event_and_later_batches_add_only_new_values() {
    let (misp, url) = start(Misp::default()).await;
    let (sender, mut pusher) = pusher(&url, options());
    sender.push(record("ip-src", "77.88.99.10"));
    sender.push(record("domain", "fresh-c2.example"));
    sender.push(record("ip-src", "77.88.99.10")); // repeated within the batch: sent once
    let report = pusher.flush_at(at(2026, 11, 25, 10, 0, 0)).await;
    assert_eq!(report.pushed, 2, "{report:?}");
    assert_eq!(report.pending, 0);
    assert!(report.failed.is_none());

    let event = misp.lock().unwrap().events[0].clone();
    assert_eq!(event["info"], "Wazuh detections 2026-11-25");
    assert_eq!(event["date"], "2026-11-25");
    assert_eq!(event["distribution"], "2");
    assert_eq!(event["threat_level_id"], "2");
    assert_eq!(event["analysis"], "0");
    assert_eq!(
        event["Tag"],
        json!([{"name": "wazuh-misp"}, {"name": "tlp:amber"}])
    );
    assert_eq!(
        paths(&misp),
        vec![
            "/events/restSearch",
            "/events/add",
            "/attributes/restSearch",
            "/attributes/add/1"
        ]
    );
    let search = misp.lock().unwrap().requests[0].1.clone();
    assert_eq!(search["eventinfo"], "Wazuh detections 2026-11-25");
    assert_eq!(search["tags"], json!(["wazuh-misp"]));
    let sent = misp.lock().unwrap().requests[3].1.clone();
    let sent = sent.as_array().expect("one call with a list");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["type"], "ip-src");
    assert_eq!(sent[0]["to_ids"], false);
    assert_eq!(sent[0]["category"], "Network activity");
    assert_eq!(sent[0]["first_seen"], "2026-11-25T10:15:30.123+00:00");
    assert!(sent[0]["comment"]
        .as_str()
        .unwrap()
        .contains("web-01 (001)"));
    assert!(
        sent[0].get("wazuh").is_none(),
        "our extension stays on the topic"
    );
    assert_eq!(
        sent[0]["timestamp"],
        at(2026, 11, 25, 10, 0, 0).timestamp().to_string()
    );

    // Second batch: one value already pushed, one new. The event id and the values already in
    // it are remembered: one request, with only the new value.
    sender.push(record("domain", "fresh-c2.example"));
    sender.push(record("url", "http://new-bad.example/x"));
    let before = paths(&misp).len();
    let report = pusher.flush_at(at(2026, 11, 25, 10, 1, 0)).await;
    assert_eq!(
        (report.pushed, report.already_present),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(paths(&misp)[before..], ["/attributes/add/1"]);
    let sent = misp.lock().unwrap().requests.last().unwrap().1.clone();
    assert_eq!(sent, json!([sent[0].clone()]));
    assert_eq!(sent[0]["value"], "http://new-bad.example/x");
    assert_eq!(
        values_in(&misp, "1"),
        vec![
            "77.88.99.10",
            "fresh-c2.example",
            "http://new-bad.example/x"
        ]
    );

    // Nothing pending: no request at all.
    let before = paths(&misp).len();
    assert_eq!(pusher.flush_at(at(2026, 11, 25, 10, 2, 0)).await.pushed, 0);
    assert_eq!(paths(&misp).len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_days_event_is_reused_and_its_values_are_not_sent_again() {
    let misp = Misp {
        events: vec![
            // eventinfo is a substring match in MISP: this one must not be taken.
            json!({"id": "1", "info": "Wazuh detections 2026-11-25 (copy)", "Tag": [{"name": "wazuh-misp"}]}),
            json!({"id": "2", "info": "Wazuh detections 2026-11-25", "Tag": [{"name": "wazuh-misp"}, {"name": "tlp:amber"}]}),
        ],
        attributes: vec![
            json!({"id": "1", "event_id": "2", "type": "ip-src", "value": "77.88.99.10"}),
            json!({"id": "2", "event_id": "1", "type": "domain", "value": "other.example"}),
        ],
        ..Misp::default()
    };
    let (misp, url) = start(misp).await;
    let (sender, mut pusher) = pusher(&url, options());
    sender.push(record("ip-src", "77.88.99.10"));
    sender.push(record("domain", "other.example"));
    let report = pusher.flush_at(at(2026, 11, 25, 12, 0, 0)).await;
    assert_eq!(
        (report.pushed, report.already_present),
        (1, 1),
        "{report:?}"
    );
    assert!(
        !paths(&misp).contains(&"/events/add".to_string()),
        "{:?}",
        paths(&misp)
    );
    assert_eq!(values_in(&misp, "2"), vec!["77.88.99.10", "other.example"]);
    let search = misp
        .lock()
        .unwrap()
        .requests
        .iter()
        .find(|(p, _)| p == "/attributes/restSearch")
        .unwrap()
        .1
        .clone();
    assert_eq!(search["eventid"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_attribute_does_not_stop_the_rest() {
    for strict_lists in [false, true] {
        let (misp, url) = start(Misp {
            refuse_value: Some("bad.example".into()),
            strict_lists,
            ..Misp::default()
        })
        .await;
        let (sender, mut pusher) = pusher(&url, options());
        for value in ["a.example", "bad.example", "b.example"] {
            sender.push(record("domain", value));
        }
        let report = pusher.flush_at(at(2026, 11, 25, 10, 0, 0)).await;
        assert_eq!(
            (report.pushed, report.refused, report.pending),
            (2, 1, 0),
            "strict_lists={strict_lists}: {report:?}"
        );
        assert!(
            report.failed.is_none(),
            "a refusal is not a failure: {report:?}"
        );
        assert_eq!(values_in(&misp, "1"), vec!["a.example", "b.example"]);
        if strict_lists {
            // The list was refused whole (403 saved:false), then each was sent alone.
            let adds = paths(&misp)
                .iter()
                .filter(|p| p.starts_with("/attributes/add/"))
                .count();
            assert_eq!(adds, 4, "{:?}", paths(&misp));
        }

        // A refused value is not re-sent with the next batch, and a lone refusal is dropped.
        sender.push(record("domain", "bad.example"));
        let report = pusher.flush_at(at(2026, 11, 25, 10, 1, 0)).await;
        assert_eq!(
            (report.pushed, report.already_present, report.pending),
            (0, 1, 0)
        );
        sender.push(record("ip-dst", "bad.example"));
        let report = pusher.flush_at(at(2026, 11, 25, 10, 2, 0)).await;
        assert_eq!((report.refused, report.pending), (1, 0), "{report:?}");
        assert!(report.failed.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misp_down_keeps_the_batch_and_the_next_interval_pushes_it() {
    let (misp, url) = start(Misp {
        down: true,
        ..Misp::default()
    })
    .await;
    let (sender, mut pusher) = pusher(
        &url,
        PushOptions {
            max_pending: 3,
            ..options()
        },
    );
    sender.push(record("domain", "a.example"));
    sender.push(record("domain", "b.example"));
    let report = pusher.flush_at(at(2026, 11, 25, 10, 0, 0)).await;
    let failed = report.failed.clone().expect("failed");
    assert!(
        failed.contains("500") && failed.contains("/events/restSearch"),
        "{failed}"
    );
    assert!(!failed.contains(KEY), "{failed}");
    assert_eq!((report.pushed, report.pending), (0, 2));

    // MISP back, but down again after the event was created: still nothing lost.
    misp.lock().unwrap().down = false;
    misp.lock().unwrap().events.push(
        json!({"id": "1", "info": "Wazuh detections 2026-11-25", "Tag": [{"name": "wazuh-misp"}]}),
    );
    sender.push(record("domain", "c.example"));
    sender.push(record("domain", "d.example")); // over max_pending 3: a.example is dropped
    assert_eq!(pusher.pending(), 3);
    misp.lock().unwrap().down = true;
    let report = pusher.flush_at(at(2026, 11, 25, 10, 1, 0)).await;
    assert_eq!((report.pushed, report.pending), (0, 3), "{report:?}");

    misp.lock().unwrap().down = false;
    let report = pusher.flush_at(at(2026, 11, 25, 10, 2, 0)).await;
    assert_eq!((report.pushed, report.pending), (3, 0), "{report:?}");
    assert!(report.failed.is_none());
    assert_eq!(
        values_in(&misp, "1"),
        vec!["b.example", "c.example", "d.example"],
        "the oldest record was dropped at the bound, the others kept in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_utc_day_gets_a_new_event() {
    let (misp, url) = start(Misp::default()).await;
    let (sender, mut pusher) = pusher(&url, options());
    sender.push(record("domain", "a.example"));
    assert_eq!(
        pusher.flush_at(at(2026, 11, 25, 23, 59, 59)).await.pushed,
        1
    );
    // The same value on the next day goes into that day's event; MISP's de-duplication is
    // per event.
    sender.push(record("domain", "a.example"));
    sender.push(record("domain", "b.example"));
    let report = pusher.flush_at(at(2026, 11, 26, 0, 0, 1)).await;
    assert_eq!(report.pushed, 2, "{report:?}");
    let infos: Vec<Value> = misp
        .lock()
        .unwrap()
        .events
        .iter()
        .map(|e| e["info"].clone())
        .collect();
    assert_eq!(
        infos,
        vec!["Wazuh detections 2026-11-25", "Wazuh detections 2026-11-26"]
    );
    assert_eq!(misp.lock().unwrap().events[1]["date"], "2026-11-26");
    assert_eq!(values_in(&misp, "1"), vec!["a.example"]);
    assert_eq!(values_in(&misp, "2"), vec!["a.example", "b.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_pushes_every_interval_and_once_more_at_shutdown() {
    let (misp, url) = start(Misp::default()).await;
    let (sender, pusher) = pusher(
        &url,
        PushOptions {
            interval: Duration::from_millis(100),
            ..options()
        },
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(pusher.run(shutdown.clone()));
    sender.push(record("domain", "a.example"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while misp.lock().unwrap().attributes.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not pushed within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Shutdown right after a record: it is pushed before the task ends.
    sender.push(record("domain", "b.example"));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("task ends")
        .unwrap();
    let event_id = misp.lock().unwrap().events[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(values_in(&misp, &event_id), vec!["a.example", "b.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_hands_its_new_iocs_to_the_pusher_without_blocking() {
    use wazuh_misp::misp::sharing::IocSharing;
    use wazuh_misp::pipeline::{Processor, ProcessorOptions};

    let (misp, url) = start(Misp::default()).await;
    let (sender, mut pusher) = pusher(
        &url,
        PushOptions {
            queue_capacity: 2,
            ..options()
        },
    );
    let snapshot = wazuh_misp::kafka::demo::sample_snapshot().unwrap();
    let sharing = IocSharing::new(10, Duration::from_secs(3600)).with_pusher(sender);
    // As the pipeline sets it when it shares IOCs: sharing reads the alert's envelope.
    let mut processor = Processor::new(ProcessorOptions {
        describe_unmatched: true,
        ..ProcessorOptions::default()
    });
    let alert = r#"{"timestamp":"2026-11-25T10:15:30.123+0000","rule":{"level":12,"id":"5712","description":"brute force"},"agent":{"id":"001","name":"web-01"},"id":"1.2",
        "data":{"srcip":"77.88.99.10","url":"http://new-bad.example/x","dns":{"rrname":"fresh-c2.example"}}}"#;
    processor.process(alert.as_bytes(), &snapshot);
    // A plain thread, as the pipeline workers are: with the channel full (capacity 2, four
    // IOCs: the URL's host is one too) the last two are dropped, not waited for.
    let shared = std::thread::scope(|s| {
        s.spawn(|| sharing.collect(processor.extraction(), processor.hits(), &snapshot))
            .join()
            .unwrap()
    });
    let keys: Vec<&str> = shared.iter().map(|ioc| ioc.key.as_str()).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(pusher.pending(), 2);
    let report = pusher.flush_at(at(2026, 11, 25, 10, 16, 0)).await;
    assert_eq!(report.pushed, 2, "{report:?}");
    let pushed = values_in(&misp, "1");
    let first: Value = serde_json::from_slice(&shared[0].payload).unwrap();
    assert_eq!(pushed[0], first["value"].as_str().unwrap());
}
