//! Tests of the MISP client against a fake MISP served by axum on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::{
    FeedDownload, FeedResponse, MispClient, MispClientConfig, MispError, Secret, SyncStats,
};

/// A distinctive key: no output may ever contain it.
const KEY: &str = "K3yZq9DISTINCTIVEsecretVx7Wm2Pa5Lr8Tn4Bc6";

/// A throw-away self-signed CA (CN=wazuh-misp test CA), for the ca_file test.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkjCCATegAwIBAgIUJ3x2CuuORsGYU/cefytYBekeeNYwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSd2F6dWgtbWlzcCB0ZXN0IENBMCAXDTI2MTEyNjEyNDYxNFoY
DzIxMjYxMTAyMTI0NjE0WjAdMRswGQYDVQQDDBJ3YXp1aC1taXNwIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATxd9FpuDI0yLRzFK6nXfhd2PaOAws2
rlsAH4awzA2u8MycoPqkvnQpU75dJdpyf5ZeKqgGSur1XvEYQYJYJy7lo1MwUTAd
BgNVHQ4EFgQUFxyQyVvl/6xi4lIe/Q7vkO0QdOQwHwYDVR0jBBgwFoAUFxyQyVvl
/6xi4lIe/Q7vkO0QdOQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBG
AiEAq4sum4DmccTwUieqmWzOBLG2LOJlnKgdQ4euaJTgq0ECIQDj0xHq7HtPenss
rYhheoasX3i+w/rP4mPCPdRPUEXQ+g==
-----END CERTIFICATE-----
";

// ---------------------------------------------------------------------------
// Fake MISP
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
}

#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Option<Duration>,
}

fn canned(status: u16, body: impl Into<String>) -> Canned {
    Canned {
        status,
        headers: Vec::new(),
        body: body.into(),
        delay: None,
    }
}

impl Canned {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Responder = Box<dyn Fn(&Recorded, usize) -> Canned + Send + Sync>;

struct Fake {
    requests: Mutex<Vec<Recorded>>,
    responder: Responder,
}

struct FakeServer {
    base: String,
    state: Arc<Fake>,
}

impl FakeServer {
    /// Serves `responder(request, index)` for every request (index 0-based).
    async fn start(
        responder: impl Fn(&Recorded, usize) -> Canned + Send + Sync + 'static,
    ) -> FakeServer {
        let state = Arc::new(Fake {
            requests: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        FakeServer {
            base: format!("http://{addr}"),
            state,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    fn count(&self) -> usize {
        self.state.requests.lock().expect("lock").len()
    }

    fn client(&self) -> MispClient {
        MispClient::new(config(&self.base)).expect("client")
    }

    fn client_with(&self, adjust: impl FnOnce(&mut MispClientConfig)) -> MispClient {
        let mut cfg = config(&self.base);
        adjust(&mut cfg);
        MispClient::new(cfg).expect("client")
    }
}

async fn handle(
    State(state): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    };
    let answer = {
        let mut requests = state.requests.lock().expect("lock");
        let index = requests.len();
        requests.push(recorded.clone());
        (state.responder)(&recorded, index)
    };
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(answer.status).expect("status");
    let mut response = (status, answer.body).into_response();
    response.headers_mut().insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header value"),
        );
    }
    response
}

fn config(base: &str) -> MispClientConfig {
    MispClientConfig {
        url: base.to_owned(),
        api_key: Secret::from(KEY.to_owned()),
        ca_file: None,
        verify_tls: true,
        timeout: Duration::from_secs(5),
        max_retries: 3,
        rate_limit_per_sec: None,
        page_size: 2,
        user_agent: "wazuh-misp-test/1.0".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Fixtures, shaped like MISP's restSearch output (FORMATS.md B.2)
// ---------------------------------------------------------------------------

fn attribute(i: usize) -> Value {
    json!({
        "id": (100 + i).to_string(),
        "event_id": "30",
        "object_id": "0",
        "object_relation": null,
        "category": "Network activity",
        "type": "ip-dst",
        "to_ids": true,
        "uuid": format!("7a5d856c-048a-4dbd-8e6d-{i:012}"),
        "timestamp": "1617056037",
        "distribution": "5",
        "sharing_group_id": "0",
        "comment": "",
        "deleted": false,
        "disable_correlation": false,
        "first_seen": null,
        "last_seen": null,
        "value": format!("198.51.100.{i}"),
        "Event": {
            "org_id": "1",
            "distribution": "1",
            "id": "30",
            "info": "Correlation 1",
            "orgc_id": "1",
            "uuid": "8cca9f2f-9281-49fd-9b30-e16a8dbf6855"
        },
        "Tag": [{"id": "3", "name": "tlp:white", "colour": "#ffffff", "inherited": 1}]
    })
}

/// `{"response":{"Attribute":[...]}}` with attributes `first..first+count`.
fn attribute_page(first: usize, count: usize) -> String {
    let attributes: Vec<Value> = (first..first + count).map(attribute).collect();
    json!({"response": {"Attribute": attributes}}).to_string()
}

/// A paging fake: page p (1-based, read from the body) has `sizes[p-1]`
/// attributes, 0 past the end. X-Result-Count mimics MISP (+1 on full pages),
/// to check that the client ignores it.
fn paged(sizes: Vec<usize>, page_size: usize) -> impl Fn(&Recorded, usize) -> Canned {
    move |request, _| {
        let page = request.json()["page"].as_u64().expect("page") as usize;
        let count = sizes.get(page - 1).copied().unwrap_or(0);
        let first: usize = sizes.iter().take(page - 1).sum();
        let result_count = if count == page_size { count + 1 } else { count };
        canned(200, attribute_page(first, count)).header("x-result-count", result_count.to_string())
    }
}

fn auth_failure_body(url: &str) -> String {
    json!({
        "name": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
        "message": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
        "url": url
    })
    .to_string()
}

fn validation_failure_body() -> String {
    json!({
        "saved": false,
        "name": "Could not add Attribute",
        "message": "Could not add Attribute",
        "url": "/attributes/add",
        "errors": {"value": ["Value not in the right type/format. Please double check the value or select type \"other\"."]}
    })
    .to_string()
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "the API key leaked into: {text}");
    assert!(
        !text.contains("DISTINCTIVE"),
        "part of the API key leaked into: {text}"
    );
}

fn assert_error_display(err: &MispError) {
    let shown = err.to_string();
    assert_no_key(&shown);
    assert_no_key(&format!("{err:?}"));
    let first = shown.chars().next().expect("non-empty display");
    assert!(first.is_lowercase(), "display starts lowercase: {shown}");
    assert!(!shown.ends_with('.'), "no trailing period: {shown}");
}

// ---------------------------------------------------------------------------
// restSearch paging
// ---------------------------------------------------------------------------

#[tokio::test]
async fn paging_stops_on_a_short_page() {
    let server = FakeServer::start(paged(vec![2, 2, 1], 2)).await;
    let attributes = server
        .client()
        .rest_search_attributes(&json!({"type": "ip-dst"}))
        .await
        .expect("search");
    assert_eq!(attributes.len(), 5);
    assert_eq!(server.count(), 3);
    let values: Vec<&str> = attributes
        .iter()
        .map(|a| a["value"].as_str().expect("value"))
        .collect();
    assert_eq!(
        values,
        [
            "198.51.100.0",
            "198.51.100.1",
            "198.51.100.2",
            "198.51.100.3",
            "198.51.100.4"
        ]
    );
    let pages: Vec<u64> = server
        .requests()
        .iter()
        .map(|r| r.json()["page"].as_u64().expect("page"))
        .collect();
    assert_eq!(pages, [1, 2, 3]);
}

#[tokio::test]
async fn paging_continues_past_an_exactly_full_page_to_an_empty_one() {
    let server = FakeServer::start(paged(vec![2, 2], 2)).await;
    let attributes = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect("search");
    assert_eq!(attributes.len(), 4);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn empty_response_array_is_an_empty_result() {
    let server = FakeServer::start(|_, _| canned(200, r#"{"response":[]}"#)).await;
    let attributes = server
        .client()
        .rest_search_attributes(&Value::Null)
        .await
        .expect("search");
    assert!(attributes.is_empty());
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn request_body_merges_the_filter_and_headers_are_sent() {
    let server = FakeServer::start(paged(vec![1], 2)).await;
    let filter = json!({
        "type": ["ip-dst", "domain"],
        "to_ids": 1,
        "tags": {"NOT": ["tlp:red"]},
        "attribute_timestamp": 1_617_056_000,
        "page": 99,
        "limit": 7,
        "returnFormat": "csv"
    });
    server
        .client()
        .rest_search_attributes(&filter)
        .await
        .expect("search");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/attributes/restSearch");
    assert_eq!(
        request.json(),
        json!({
            "type": ["ip-dst", "domain"],
            "to_ids": 1,
            "tags": {"NOT": ["tlp:red"]},
            "attribute_timestamp": 1_617_056_000,
            "page": 1,
            "limit": 2,
            "returnFormat": "json"
        })
    );
    assert_eq!(request.header("authorization"), Some(KEY));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some("wazuh-misp-test/1.0"));
}

#[tokio::test]
async fn streaming_variant_reports_stats_and_hands_over_raw_pages() {
    let server = FakeServer::start(paged(vec![2, 2, 1], 2)).await;
    let expected_bytes: u64 = [
        attribute_page(0, 2),
        attribute_page(2, 2),
        attribute_page(4, 1),
    ]
    .iter()
    .map(|page| page.len() as u64)
    .sum();
    let mut seen = Vec::new();
    let stats = server
        .client()
        .rest_search_attributes_pages(&json!({"type": "ip-dst"}), |body| {
            #[derive(serde::Deserialize)]
            struct Lean<'a> {
                value: &'a str,
            }
            let page: Vec<Lean<'_>> = super::parse_attribute_page(body)?;
            seen.extend(page.iter().map(|a| a.value.to_owned()));
            Ok(page.len())
        })
        .await
        .expect("search");
    assert_eq!(
        stats,
        SyncStats {
            pages: 3,
            attributes: 5,
            bytes: expected_bytes
        }
    );
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn callback_error_stops_paging() {
    let server = FakeServer::start(paged(vec![2, 2, 1], 2)).await;
    let err = server
        .client()
        .rest_search_attributes_pages(&json!({}), |_| {
            Err(MispError::Malformed {
                path: "/attributes/restSearch".to_owned(),
                reason: format!("callback saw {KEY}"),
            })
        })
        .await
        .expect_err("callback error");
    assert_eq!(err.code(), "malformed");
    assert_error_display(&err);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn server_ignoring_page_is_detected() {
    // Always the same full page: without a guard this would never end.
    let server = FakeServer::start(|_, _| canned(200, attribute_page(0, 2))).await;
    let err = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect_err("repeated page");
    assert_eq!(err.code(), "malformed");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn server_ignoring_limit_stops_after_one_page() {
    let server = FakeServer::start(|_, _| canned(200, attribute_page(0, 5))).await;
    let attributes = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect("search");
    assert_eq!(attributes.len(), 5);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn non_object_filter_is_refused_without_a_request() {
    let server = FakeServer::start(paged(vec![], 2)).await;
    let err = server
        .client()
        .rest_search_attributes(&json!(["ip-dst"]))
        .await
        .expect_err("bad filter");
    assert_eq!(err.code(), "config");
    assert_eq!(server.count(), 0);
}

// ---------------------------------------------------------------------------
// Retries and status mapping
// ---------------------------------------------------------------------------

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = FakeServer::start(|_, index| {
        if index < 2 {
            canned(500, "<html><body>Internal Server Error</body></html>")
                .header("content-type", "text/html")
        } else {
            canned(200, attribute_page(0, 1))
        }
    })
    .await;
    let attributes = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect("search");
    assert_eq!(attributes.len(), 1);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn server_errors_give_up_after_max_retries() {
    let server = FakeServer::start(|_, _| canned(503, "busy")).await;
    let err = server
        .client_with(|cfg| cfg.max_retries = 2)
        .get_version()
        .await
        .expect_err("503");
    match &err {
        MispError::Status { status, path, .. } => {
            assert_eq!(*status, 503);
            assert_eq!(path, "/servers/getVersion");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(err.code(), "status");
    assert_eq!(server.count(), 3);
    assert_error_display(&err);
    assert!(err.to_string().contains("503"));
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried() {
    let server = FakeServer::start(|_, index| {
        if index == 0 {
            canned(429, r#"{"name":"Rate limit exceeded.","message":"Rate limit exceeded.","url":"/attributes/restSearch"}"#)
                .header("retry-after", "0")
                .header("x-rate-limit-limit", "10")
                .header("x-rate-limit-remaining", "0")
        } else {
            canned(200, attribute_page(0, 1))
        }
    })
    .await;
    let started = Instant::now();
    let attributes = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect("search");
    assert_eq!(attributes.len(), 1);
    assert_eq!(server.count(), 2);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn rate_limit_exhausted_is_rate_limited() {
    let server = FakeServer::start(|_, _| canned(429, "{}").header("retry-after", "0")).await;
    let err = server
        .client_with(|cfg| cfg.max_retries = 1)
        .get_version()
        .await
        .expect_err("429");
    assert!(matches!(
        err,
        MispError::RateLimited {
            retry_after_secs: Some(0),
            ..
        }
    ));
    assert_eq!(err.code(), "rate_limited");
    assert!(err.is_retryable());
    assert_eq!(server.count(), 2);
    assert_error_display(&err);
}

#[tokio::test]
async fn auth_failure_is_not_retried() {
    let server =
        FakeServer::start(|_, _| canned(403, auth_failure_body("/attributes/restSearch"))).await;
    let err = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect_err("403");
    assert!(matches!(&err, MispError::Auth { path } if path == "/attributes/restSearch"));
    assert_eq!(err.code(), "auth");
    assert!(!err.is_retryable());
    assert_eq!(server.count(), 1);
    assert_error_display(&err);
}

#[tokio::test]
async fn unauthorized_401_is_auth() {
    let server = FakeServer::start(|_, _| canned(401, "")).await;
    let err = server.client().get_version().await.expect_err("401");
    assert_eq!(err.code(), "auth");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn validation_failure_is_rejected_not_auth() {
    let server = FakeServer::start(|_, _| canned(403, validation_failure_body())).await;
    let err = server
        .client()
        .add_attribute(
            "30",
            &json!({"value": "not-an-ip", "type": "ip-dst", "category": "Network activity"}),
        )
        .await
        .expect_err("rejected");
    match &err {
        MispError::Rejected { path, message } => {
            assert_eq!(path, "/attributes/add/30");
            assert!(message.contains("Could not add Attribute"), "{message}");
            assert!(
                message.contains("Value not in the right type/format"),
                "{message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(err.code(), "rejected");
    assert!(!err.is_retryable());
    assert_eq!(server.count(), 1);
    assert_error_display(&err);
}

#[tokio::test]
async fn not_found_is_status_and_not_retried() {
    let server = FakeServer::start(|_, _| {
        canned(404, format!(r#"{{"name":"Invalid event","message":"Invalid event {KEY}","url":"/attributes/add/99"}}"#))
    })
    .await;
    let err = server
        .client()
        .add_attribute("99", &json!({"value": "1.2.3.4", "type": "ip-dst"}))
        .await
        .expect_err("404");
    match &err {
        MispError::Status {
            status,
            body_excerpt,
            ..
        } => {
            assert_eq!(*status, 404);
            assert!(body_excerpt.contains("Invalid event ***"), "{body_excerpt}");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.count(), 1);
    assert_error_display(&err);
}

#[tokio::test]
async fn truncated_page_is_malformed_and_not_retried() {
    let server = FakeServer::start(|_, _| {
        let full = attribute_page(0, 2);
        canned(200, full[..full.len() / 2].to_owned())
    })
    .await;
    let err = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect_err("truncated");
    assert!(
        matches!(&err, MispError::Malformed { path, .. } if path == "/attributes/restSearch"),
        "{err:?}"
    );
    assert_eq!(server.count(), 1);
    assert_error_display(&err);
}

#[tokio::test]
async fn body_without_response_is_malformed() {
    let server = FakeServer::start(|_, _| canned(200, r#"{"Attribute":[]}"#)).await;
    let err = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect_err("no response key");
    assert_eq!(err.code(), "malformed");
    let shown = err.to_string();
    assert!(shown.contains("/attributes/restSearch"), "{shown}");
    assert!(shown.contains("response"), "{shown}");
}

#[tokio::test]
async fn html_login_page_is_malformed() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            "<!DOCTYPE html><html><title>Users - MISP</title></html>",
        )
        .header("content-type", "text/html")
    })
    .await;
    let err = server.client().get_version().await.expect_err("html");
    assert_eq!(err.code(), "malformed");
}

#[tokio::test]
async fn echoed_key_in_a_malformed_body_is_redacted() {
    let server = FakeServer::start(|_, _| canned(200, format!(r#"{{"response":"{KEY}"}}"#))).await;
    let err = server
        .client()
        .rest_search_attributes(&json!({}))
        .await
        .expect_err("malformed");
    assert_eq!(err.code(), "malformed");
    assert_error_display(&err);
}

#[tokio::test]
async fn slow_server_times_out_after_retries() {
    let server = FakeServer::start(|_, _| {
        canned(200, r#"{"version":"2.5.1"}"#).delayed(Duration::from_secs(3))
    })
    .await;
    let client = server.client_with(|cfg| {
        cfg.timeout = Duration::from_millis(250);
        cfg.max_retries = 1;
    });
    let started = Instant::now();
    let err = client.get_version().await.expect_err("timeout");
    match &err {
        MispError::Http { path, source } => {
            assert_eq!(path, "/servers/getVersion");
            assert!(source.is_timeout(), "{source:?}");
            assert!(source.url().is_none());
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(err.code(), "http");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(server.count(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_error_display(&err);
}

#[tokio::test]
async fn connection_refused_is_http_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut cfg = config(&format!("http://{addr}"));
    cfg.max_retries = 0;
    let err = MispClient::new(cfg)
        .expect("client")
        .get_version()
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "http");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("connection failed"), "{err}");
    assert_error_display(&err);
}

#[tokio::test]
async fn client_side_rate_limit_spaces_requests() {
    let server = FakeServer::start(|_, _| canned(200, r#"{"version":"2.5.1"}"#)).await;
    let client = server.client_with(|cfg| cfg.rate_limit_per_sec = Some(10));
    let started = Instant::now();
    for _ in 0..4 {
        client.get_version().await.expect("version");
    }
    // Slots at 0, 100, 200 and 300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count(), 4);
}

// ---------------------------------------------------------------------------
// Other endpoints
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sightings_body_shape() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            r#"{"Sighting":{"id":"9","attribute_id":"44","event_id":"30","org_id":"1","date_sighting":"1460558710","uuid":"5f6e4f2a-0000-4000-8000-000000000009","source":"wazuh","type":"0","attribute_uuid":"7a5d856c-048a-4dbd-8e6d-41d1790c5ad0"}}"#,
        )
    })
    .await;
    let client = server.client();
    let values = vec!["teamliquid.net".to_owned(), "173.231.136.216".to_owned()];
    client
        .add_sightings(&values, "wazuh", Some(1_460_558_710))
        .await
        .expect("sighting");
    client
        .add_sightings(&values[..1], "wazuh", None)
        .await
        .expect("sighting");
    client
        .add_sightings(&[], "wazuh", None)
        .await
        .expect("no-op");

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "an empty value list sends nothing");
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].path, "/sightings/add");
    assert_eq!(
        requests[0].json(),
        json!({"values": ["teamliquid.net", "173.231.136.216"], "source": "wazuh", "timestamp": 1_460_558_710})
    );
    assert_eq!(
        requests[1].json(),
        json!({"values": ["teamliquid.net"], "source": "wazuh"})
    );
    assert_eq!(requests[1].header("authorization"), Some(KEY));
}

#[tokio::test]
async fn sighting_with_no_matching_attribute_is_ok() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            r#"{"message":"Could not add the Sighting. Reason: No valid attributes found."}"#,
        )
    })
    .await;
    server
        .client()
        .add_sightings(&["203.0.113.7".to_owned()], "wazuh", None)
        .await
        .expect("nothing to sight is fine");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn legacy_sighting_success_message_is_ok() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            r#"{"saved":true,"success":true,"name":"1 sighting successfully added.","message":"1 sighting successfully added.","url":"/sightings/add"}"#,
        )
    })
    .await;
    server
        .client()
        .add_sightings(&["evil.example".to_owned()], "wazuh", None)
        .await
        .expect("ok");
}

#[tokio::test]
async fn other_sighting_failure_is_rejected() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            r#"{"message":"Could not add the Sighting. Reason: Invalid type."}"#,
        )
    })
    .await;
    let err = server
        .client()
        .add_sightings(&["evil.example".to_owned()], "wazuh", None)
        .await
        .expect_err("rejected");
    assert_eq!(err.code(), "rejected");
    assert_error_display(&err);
}

#[tokio::test]
async fn add_event_wraps_and_unwraps() {
    let server = FakeServer::start(|request, _| {
        let info = request.json()["Event"]["info"].clone();
        canned(
            200,
            json!({"Event": {"id": "12", "uuid": "5a2f6c1e-1111-4222-8333-444455556666", "info": info, "published": false, "Attribute": []}})
                .to_string(),
        )
    })
    .await;
    let client = server.client();
    let event = client
        .add_event(&json!({"info": "wazuh-misp sightings", "distribution": 0, "threat_level_id": 4, "analysis": 0}))
        .await
        .expect("event");
    assert_eq!(event["id"], "12");
    assert_eq!(event["info"], "wazuh-misp sightings");

    // An already wrapped event is sent as is.
    client
        .add_event(&json!({"Event": {"info": "pre-wrapped"}}))
        .await
        .expect("event");
    let requests = server.requests();
    assert_eq!(requests[0].path, "/events/add");
    assert_eq!(
        requests[0].json(),
        json!({"Event": {"info": "wazuh-misp sightings", "distribution": 0, "threat_level_id": 4, "analysis": 0}})
    );
    assert_eq!(
        requests[1].json(),
        json!({"Event": {"info": "pre-wrapped"}})
    );
}

#[tokio::test]
async fn add_attribute_returns_the_attribute() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            r#"{"Attribute":{"id":"501","event_id":"12","type":"ip-dst","category":"Network activity","value":"203.0.113.9","to_ids":true},"AttributeTag":[]}"#,
        )
    })
    .await;
    let client = server.client();
    let attribute = client
        .add_attribute(
            "12",
            &json!({"value": "203.0.113.9", "type": "ip-dst", "category": "Network activity", "to_ids": true, "comment": "seen by wazuh"}),
        )
        .await
        .expect("attribute");
    assert_eq!(attribute["id"], "501");
    let requests = server.requests();
    assert_eq!(requests[0].path, "/attributes/add/12");
    assert_eq!(requests[0].json()["comment"], "seen by wazuh");

    let err = client
        .add_attribute("../../users/delete", &json!({}))
        .await
        .expect_err("bad id");
    assert_eq!(err.code(), "config");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn search_events_unwraps_events() {
    let server = FakeServer::start(|_, _| {
        canned(
            200,
            r#"{"response":[{"Event":{"id":"1","info":"one","Attribute":[],"Object":[]}},{"Event":{"id":"2","info":"two","Attribute":[],"Object":[]}}]}"#,
        )
    })
    .await;
    let events = server
        .client()
        .search_events(&json!({"eventinfo": "%wazuh%", "metadata": true}))
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["info"], "two");
    let request = &server.requests()[0];
    assert_eq!(request.path, "/events/restSearch");
    assert_eq!(
        request.json(),
        json!({"eventinfo": "%wazuh%", "metadata": true, "returnFormat": "json"})
    );
}

#[tokio::test]
async fn get_version_reads_version() {
    let server =
        FakeServer::start(|_, _| canned(200, r#"{"version":"2.5.1","perm_sync":false}"#)).await;
    let version = server.client().get_version().await.expect("version");
    assert_eq!(version, "2.5.1");
    let request = &server.requests()[0];
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, "/servers/getVersion");
    assert_eq!(request.header("authorization"), Some(KEY));
    assert_eq!(request.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn base_url_with_a_path_prefix_and_trailing_slash() {
    let server = FakeServer::start(|_, _| canned(200, r#"{"version":"2.5.1"}"#)).await;
    let client = MispClient::new(config(&format!("{}/misp/", server.base))).expect("client");
    assert_eq!(client.base_url(), format!("{}/misp", server.base));
    client.get_version().await.expect("version");
    assert_eq!(server.requests()[0].path, "/misp/servers/getVersion");
}

// ---------------------------------------------------------------------------
// Feeds
// ---------------------------------------------------------------------------

const MANIFEST: &str = r##"{"57c6ac4c-c60c-4f79-a38f-b666950d210f":{"info":"Malspam 2016-08-31 (.wsf in .zip) - campaign: Photo","Orgc":{"id":"2","name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"analysis":"0","Tag":[{"colour":"#ffffff","name":"tlp:white"}],"timestamp":"1472638251","date":"2016-08-31","threat_level_id":"3"}}"##;

fn feed_responder(request: &Recorded, _: usize) -> Canned {
    if request.header("if-none-match") == Some("\"v1\"") {
        return canned(304, "");
    }
    match request.path.as_str() {
        "/feed-osint/manifest.json" => canned(200, MANIFEST).header("etag", "\"v1\""),
        "/feed-osint/hashes.csv" => canned(
            200,
            "0d4e8d0fbb5f1f9c4a3e1e2b9c3d0a51,57c6ac4c-c60c-4f79-a38f-b666950d210f\n",
        )
        .header("content-type", "text/csv"),
        _ => canned(404, "not found"),
    }
}

#[tokio::test]
async fn feed_etag_round_trip_without_auth_to_foreign_hosts() {
    let misp = FakeServer::start(|_, _| canned(200, "{}")).await;
    let feeds = FakeServer::start(feed_responder).await;
    let client = misp.client();
    let url = format!("{}/feed-osint/manifest.json", feeds.base);

    let first = client.get_feed(&url, None).await.expect("manifest");
    let etag = match &first {
        FeedResponse::Body { bytes, etag } => {
            let manifest: Value = serde_json::from_slice(bytes).expect("manifest JSON");
            assert_eq!(
                manifest["57c6ac4c-c60c-4f79-a38f-b666950d210f"]["Orgc"]["name"],
                "CIRCL"
            );
            etag.clone().expect("etag")
        }
        FeedResponse::NotModified => panic!("expected a body"),
    };
    assert_eq!(etag, "\"v1\"");
    assert!(
        !format!("{first:?}").contains("CIRCL"),
        "Debug shows the size only"
    );

    let second = client.get_feed(&url, Some(&etag)).await.expect("manifest");
    assert_eq!(second, FeedResponse::NotModified);

    let (status, bytes, etag) = client
        .get_bytes(&format!("{}/feed-osint/hashes.csv?token=abc", feeds.base))
        .await
        .expect("hashes");
    assert_eq!(status, 200);
    assert!(bytes.starts_with(b"0d4e8d0f"));
    assert_eq!(etag, None);

    let requests = feeds.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            None,
            "no key to other hosts"
        );
    }
    assert_eq!(requests[1].header("if-none-match"), Some("\"v1\""));
    assert_eq!(misp.count(), 0);
}

#[tokio::test]
async fn feed_on_the_misp_origin_gets_the_key() {
    let misp = FakeServer::start(feed_responder).await;
    let client = misp.client();
    client
        .get_feed(&format!("{}/feed-osint/manifest.json", misp.base), None)
        .await
        .expect("manifest");
    assert_eq!(misp.requests()[0].header("authorization"), Some(KEY));
}

#[tokio::test]
async fn missing_feed_file_is_status_naming_the_url_without_query() {
    let feeds = FakeServer::start(feed_responder).await;
    let misp = FakeServer::start(|_, _| canned(200, "{}")).await;
    let err = misp
        .client()
        .get_feed(
            &format!("{}/feed-osint/nope.json?auth=hunter2", feeds.base),
            None,
        )
        .await
        .expect_err("404");
    match &err {
        MispError::Status { status, path, .. } => {
            assert_eq!(*status, 404);
            assert_eq!(path, &format!("{}/feed-osint/nope.json", feeds.base));
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(!err.to_string().contains("hunter2"));
    assert_eq!(feeds.count(), 1);
}

#[tokio::test]
async fn feeds_only_client_sends_no_key_and_both_validators() {
    let feeds = FakeServer::start(|request, _| {
        if request.header("if-modified-since") == Some("Wed, 21 Oct 2026 07:28:00 GMT") {
            return canned(304, "");
        }
        canned(200, "1.2.3.4\n")
            .header("etag", "\"e1\"")
            .header("last-modified", "Wed, 21 Oct 2026 07:28:00 GMT")
    })
    .await;
    let client = MispClient::feeds_only(None, Duration::from_secs(5), 0).expect("client");
    let url = format!("{}/list.txt?key=abc", feeds.base);
    let first = client
        .get_feed_conditional(&url, None, None)
        .await
        .expect("list");
    assert_eq!(
        first,
        FeedDownload::Body {
            bytes: b"1.2.3.4\n".to_vec(),
            etag: Some("\"e1\"".to_owned()),
            last_modified: Some("Wed, 21 Oct 2026 07:28:00 GMT".to_owned()),
        }
    );
    let second = client
        .get_feed_conditional(&url, Some("\"e1\""), Some("Wed, 21 Oct 2026 07:28:00 GMT"))
        .await
        .expect("list");
    assert_eq!(second, FeedDownload::NotModified);
    let requests = feeds.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("authorization").is_none()));
    assert_eq!(requests[1].header("if-none-match"), Some("\"e1\""));

    let err = client.get_version().await.expect_err("no misp");
    assert_eq!(err.code(), "config");
    assert_eq!(feeds.count(), 2, "nothing sent for a REST call");
    assert!(MispClient::feeds_only(None, Duration::ZERO, 0).is_err());
}

// ---------------------------------------------------------------------------
// Configuration and secrecy
// ---------------------------------------------------------------------------

#[test]
fn secret_never_prints() {
    let secret = Secret::from(KEY.to_owned());
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(serde_json::to_string(&secret).expect("json"), "\"***\"");
    assert_eq!(secret.expose(), KEY);
    let parsed: Secret = serde_json::from_str(&format!("\"{KEY}\"")).expect("parse");
    assert_eq!(parsed.expose(), KEY);
    assert!(serde_json::from_str::<Secret>("42").is_err());
    assert_eq!(parsed, secret);
    assert_eq!(Secret::new("abc"), Secret::from("abc"));
    assert!(Secret::default().is_empty());
    let in_option: Option<Secret> = serde_json::from_str(&format!("\"{KEY}\"")).expect("parse");
    assert_no_key(&format!("{in_option:?}"));
}

#[tokio::test]
async fn debug_of_client_and_config_hides_the_key() {
    let cfg = config("https://misp.example");
    let shown = format!("{cfg:?}");
    assert_no_key(&shown);
    assert!(shown.contains("***"));
    let client = MispClient::new(cfg.clone()).expect("client");
    let shown = format!("{client:?}");
    assert_no_key(&shown);
    assert!(shown.contains("https://misp.example"));
    assert_no_key(&format!("{:?}", client.clone()));
    assert_no_key(&format!("{cfg:#?}"));
}

#[test]
fn config_errors() {
    type Adjust = Box<dyn Fn(&mut MispClientConfig)>;
    let cases: Vec<(&str, Adjust)> = vec![
        ("bad url", Box::new(|c| c.url = "not a url".to_owned())),
        (
            "ftp url",
            Box::new(|c| c.url = "ftp://misp.example".to_owned()),
        ),
        (
            "credentials",
            Box::new(|c| c.url = format!("https://user:{KEY}@misp.example")),
        ),
        (
            "query",
            Box::new(|c| c.url = "https://misp.example/?a=1".to_owned()),
        ),
        (
            "empty key",
            Box::new(|c| c.api_key = Secret::from("  ".to_owned())),
        ),
        (
            "key with newline",
            Box::new(|c| c.api_key = Secret::from(format!("{KEY}\n{KEY}"))),
        ),
        ("page size", Box::new(|c| c.page_size = 0)),
        ("timeout", Box::new(|c| c.timeout = Duration::ZERO)),
        ("rate", Box::new(|c| c.rate_limit_per_sec = Some(0))),
        (
            "user agent",
            Box::new(|c| c.user_agent = "bad\nagent".to_owned()),
        ),
        (
            "missing ca",
            Box::new(|c| c.ca_file = Some("/nonexistent/wazuh-misp/ca.pem".into())),
        ),
    ];
    for (name, adjust) in cases {
        let mut cfg = config("https://misp.example");
        adjust(&mut cfg);
        let err = MispClient::new(cfg).expect_err(name);
        assert_eq!(err.code(), "config", "{name}");
        assert!(!err.is_retryable());
        assert_error_display(&err);
    }
}

#[test]
fn key_is_trimmed() {
    let mut cfg = config("https://misp.example");
    cfg.api_key = Secret::from(format!("{KEY}\n"));
    MispClient::new(cfg).expect("trailing newline from a key file is fine");
}

#[tokio::test]
async fn ca_file_and_disabled_verification() {
    let dir = std::env::temp_dir().join(format!("misp-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = dir.join("ca.pem");
    std::fs::write(&good, TEST_CA_PEM).expect("write");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "this is not a certificate\n").expect("write");

    let mut cfg = config("https://misp.example");
    cfg.ca_file = Some(good);
    MispClient::new(cfg).expect("valid CA file");

    let mut cfg = config("https://misp.example");
    cfg.ca_file = Some(junk);
    let err = MispClient::new(cfg).expect_err("junk CA file");
    assert_eq!(err.code(), "config");
    assert!(err.to_string().contains("junk.pem"), "{err}");

    let mut cfg = config("https://misp.example");
    cfg.verify_tls = false;
    MispClient::new(cfg).expect("verification off still builds");

    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn error_codes_and_retryability() {
    let cases = [
        (
            MispError::Status {
                path: "/p".into(),
                status: 502,
                body_excerpt: "bad gateway".into(),
            },
            "status",
            true,
        ),
        (
            MispError::Status {
                path: "/p".into(),
                status: 400,
                body_excerpt: "bad".into(),
            },
            "status",
            false,
        ),
        (MispError::Auth { path: "/p".into() }, "auth", false),
        (
            MispError::RateLimited {
                path: "/p".into(),
                retry_after_secs: None,
            },
            "rate_limited",
            true,
        ),
        (
            MispError::Rejected {
                path: "/p".into(),
                message: "Could not add Attribute.".into(),
            },
            "rejected",
            false,
        ),
        (
            MispError::Malformed {
                path: "/p".into(),
                reason: "eof".into(),
            },
            "malformed",
            false,
        ),
        (MispError::Config("x".into()), "config", false),
    ];
    for (err, code, retryable) in cases {
        assert_eq!(err.code(), code);
        assert_eq!(err.is_retryable(), retryable, "{err}");
        assert_error_display(&err);
        assert_eq!(err.path().is_some(), code != "config");
    }
}

#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = MispClient::new(config("https://misp.example")).expect("client");
    let filter = json!({});
    assert_send(&client.rest_search_attributes(&filter));
    assert_send(&client.rest_search_attributes_pages(&filter, |_| Ok(0)));
    assert_send(&client.add_sightings(&[], "wazuh", None));
    assert_send(&client.add_event(&filter));
    assert_send(&client.add_attribute("1", &filter));
    assert_send(&client.search_events(&filter));
    assert_send(&client.get_version());
    assert_send(&client.get_feed("https://feeds.example/manifest.json", None));
    assert_send(&client.get_bytes("https://feeds.example/hashes.csv"));
    fn assert_sync<T: Send + Sync + Clone>() {}
    assert_sync::<MispClient>();
}
