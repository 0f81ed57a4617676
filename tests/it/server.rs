//! The HTTP server: every metric name is exported, health and readiness, look-ups.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wazuh_misp::intel::IntelStore;
use wazuh_misp::server::{install_recorder, serve, ServerState};
use wazuh_misp::telemetry::metrics as m;

use crate::support::status;

#[tokio::test]
async fn metrics_health_ready_lookup() {
    let handle = install_recorder().unwrap();
    m::describe("wazuh-alerts");
    // A histogram appears once recorded.
    metrics::histogram!(m::STAGE_DURATION, "stage" => "decode").record(0.000_001);
    metrics::histogram!(m::END_TO_END_LATENCY).record(0.01);
    metrics::gauge!(m::KAFKA_CONSUMER_LAG, "topic" => "wazuh-alerts", "partition" => "0").set(0.0);
    let store = Arc::new(IntelStore::default());
    let assigned = Arc::new(AtomicBool::new(false));
    let assigned_flag = assigned.clone();
    let state = ServerState {
        metrics: handle,
        store: store.clone(),
        has_assignment: Arc::new(move || assigned_flag.load(Ordering::Acquire)),
        reference_base: Some("https://misp.example".to_string()),
        lookup: None,
        shutting_down: Arc::new(AtomicBool::new(false)),
    };
    let addr = serve("127.0.0.1:0", state, std::future::pending())
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    crate::support::assert_every_metric(&text, "/metrics");

    assert_eq!(status(&client, &format!("{base}/healthz")).await, 200);
    assert_eq!(
        status(&client, &format!("{base}/readyz")).await,
        503,
        "not ready before intel and partitions"
    );
    store.swap(wazuh_misp::kafka::demo::sample_snapshot().unwrap());
    assert_eq!(
        status(&client, &format!("{base}/readyz")).await,
        503,
        "not ready before partitions"
    );
    assigned.store(true, Ordering::Release);
    assert_eq!(status(&client, &format!("{base}/readyz")).await, 200);

    let known = client
        .get(format!("{base}/v1/lookup?value=updates.evil-updates.net"))
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), 200);
    let body: serde_json::Value = known.json().await.unwrap();
    assert_eq!(body["known"], true);
    assert_eq!(
        body["enrichments"][0]["misp"]["attribute"]["value"],
        "evil-updates.net"
    );
    assert_eq!(
        body["enrichments"][0]["indicator"]["reference"],
        "https://misp.example/events/view/5f1c2a3b-0d6e-4c1a-9f00-a1b2c3d4e5f6"
    );
    let unknown = client
        .get(format!("{base}/v1/lookup?value=benign.example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let missing = client
        .get(format!("{base}/v1/lookup"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}
