//! HTTP client for the MISP REST API and for MISP/CSV/freetext feeds.
//!
//! - Every MISP request carries `Authorization: <key>` (marked sensitive),
//!   `Accept: application/json` and `Content-Type: application/json`.
//! - Connection errors, timeouts, 5xx and 429 are retried with full-jitter
//!   exponential back-off; other 4xx are not.
//! - No error, log line or `Debug` output contains the API key.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::secret::Secret;

const PATH_ATTRIBUTES_RESTSEARCH: &str = "/attributes/restSearch";
const PATH_EVENTS_RESTSEARCH: &str = "/events/restSearch";
const PATH_EVENTS_ADD: &str = "/events/add";
const PATH_SIGHTINGS_ADD: &str = "/sightings/add";
const PATH_GET_VERSION: &str = "/servers/getVersion";

const JSON: &str = "application/json";

/// Back-off before retry n (0-based) is uniform in `[0, min(cap, base * 2^n)]`.
const BACKOFF_BASE_MS: u64 = 200;
const BACKOFF_CAP_MS: u64 = 10_000;
/// The longest `Retry-After` that is honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// The connect timeout is the total timeout, at most this.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(10);
/// Feed downloads (hashes.csv, big CSV lists) get at least this total timeout.
const FEED_TIMEOUT_FLOOR: Duration = Duration::from_secs(300);
/// How much of an error body is kept in [`MispError::Status`].
const EXCERPT_CHARS: usize = 256;
/// How much of a validation message is kept in [`MispError::Rejected`].
const MESSAGE_CHARS: usize = 512;
/// What the API key is replaced with wherever a server echoes it.
const REDACTED: &str = "***";

/// Settings for [`MispClient::new`].
///
/// `Debug` is safe to log: the key prints as `***`.
#[derive(Clone, Debug)]
pub struct MispClientConfig {
    /// Base URL of the MISP instance, e.g. `https://misp.example` (a path
    /// prefix such as `https://host/misp` is kept).
    pub url: String,
    /// The API key, sent raw in the `Authorization` header.
    pub api_key: Secret,
    /// Extra PEM root certificate(s) to trust, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    /// Verify the MISP server's TLS certificate. Keep this `true`.
    pub verify_tls: bool,
    /// Total timeout of one attempt; the connect timeout is this, at most 10 s.
    pub timeout: Duration,
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Client-side limit on MISP requests per second (each attempt counts).
    pub rate_limit_per_sec: Option<u32>,
    /// `limit` of each `/attributes/restSearch` page.
    pub page_size: u32,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for MispClientConfig {
    fn default() -> Self {
        MispClientConfig {
            url: String::new(),
            api_key: Secret::default(),
            ca_file: None,
            verify_tls: true,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            rate_limit_per_sec: None,
            page_size: 5_000,
            user_agent: concat!("wazuh-misp/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Totals of one paged `/attributes/restSearch` run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Pages fetched.
    pub pages: u32,
    /// Attributes counted by the page callback, summed.
    pub attributes: usize,
    /// Response body bytes (after gzip decoding), summed.
    pub bytes: u64,
}

/// The answer to [`MispClient::get_feed`].
#[derive(Clone, PartialEq, Eq)]
pub enum FeedResponse {
    /// 304: the ETag sent still matches.
    NotModified,
    /// A 2xx body, with the server's `ETag` if it sent one.
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

impl fmt::Debug for FeedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedResponse::NotModified => f.write_str("NotModified"),
            FeedResponse::Body { bytes, etag } => f
                .debug_struct("Body")
                .field("len", &bytes.len())
                .field("etag", etag)
                .finish(),
        }
    }
}

/// The answer to [`MispClient::get_feed_conditional`]: like [`FeedResponse`], with the
/// `Last-Modified` validator too.
#[derive(Clone, PartialEq, Eq)]
pub enum FeedDownload {
    /// 304: the validators sent still match.
    NotModified,
    /// A 2xx body, with the server's `ETag` and `Last-Modified` if it sent them.
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

impl fmt::Debug for FeedDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedDownload::NotModified => f.write_str("NotModified"),
            FeedDownload::Body {
                bytes,
                etag,
                last_modified,
            } => f
                .debug_struct("Body")
                .field("len", &bytes.len())
                .field("etag", etag)
                .field("last_modified", last_modified)
                .finish(),
        }
    }
}

/// Errors of [`MispClient`]. `Display` is lowercase, names the path, and never
/// contains the API key.
#[derive(thiserror::Error, Debug)]
pub enum MispError {
    /// Connecting, sending or reading failed (including timeouts). The
    /// source carries no URL.
    #[error("request to {path} failed: {}", describe_http_error(.source))]
    Http {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx status not covered by another variant.
    #[error("http {status} from {path} (body: {body_excerpt})")]
    Status {
        path: String,
        status: u16,
        body_excerpt: String,
    },
    /// 401, or 403 without `errors`: bad key or a user without API access.
    #[error("authentication failed for {path} (http 401/403): check the api key and that its user may use the api")]
    Auth { path: String },
    /// 429, still after the retries.
    #[error("rate limited by misp on {path} (http 429)")]
    RateLimited {
        path: String,
        retry_after_secs: Option<u64>,
    },
    /// MISP refused the content: a 403 whose JSON body has `errors`
    /// (validation failure), or a sighting it could not add.
    #[error("request rejected by {path} ({message})")]
    Rejected { path: String, message: String },
    /// The body is not the JSON expected (truncated, HTML, missing key).
    #[error("malformed response from {path}: {reason}")]
    Malformed { path: String, reason: String },
    /// Invalid configuration or argument; nothing was sent.
    #[error("invalid misp client configuration: {0}")]
    Config(String),
}

impl MispError {
    /// A short snake_case code per variant, for metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            MispError::Http { .. } => "http",
            MispError::Status { .. } => "status",
            MispError::Auth { .. } => "auth",
            MispError::RateLimited { .. } => "rate_limited",
            MispError::Rejected { .. } => "rejected",
            MispError::Malformed { .. } => "malformed",
            MispError::Config(_) => "config",
        }
    }

    /// Whether trying again may help: connection errors, timeouts, 5xx, 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            MispError::Http { source, .. } => !(source.is_builder() || source.is_redirect()),
            MispError::Status { status, .. } => *status >= 500,
            MispError::RateLimited { .. } => true,
            MispError::Auth { .. }
            | MispError::Rejected { .. }
            | MispError::Malformed { .. }
            | MispError::Config(_) => false,
        }
    }

    /// The request path (or feed URL without query) the error is about.
    pub fn path(&self) -> Option<&str> {
        match self {
            MispError::Http { path, .. }
            | MispError::Status { path, .. }
            | MispError::Auth { path }
            | MispError::RateLimited { path, .. }
            | MispError::Rejected { path, .. }
            | MispError::Malformed { path, .. } => Some(path),
            MispError::Config(_) => None,
        }
    }
}

/// "timed out: operation timed out", "connection failed: Connection refused (os error 111)".
fn describe_http_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() {
        "reading the body failed"
    } else if err.is_redirect() {
        "redirect error"
    } else if err.is_builder() {
        "invalid request"
    } else {
        "request error"
    };
    let mut root: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    let mut cause = None;
    while let Some(e) = root {
        cause = Some(e);
        root = e.source();
    }
    match cause {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// Parses one `/attributes/restSearch` page body, `{"response":{"Attribute":[...]}}`
/// (an empty `{"response":[]}` is accepted too), into its attributes.
///
/// Meant for the callback of [`MispClient::rest_search_attributes_pages`];
/// `T` may borrow from `body`.
pub fn parse_attribute_page<'de, T: Deserialize<'de>>(
    body: &'de [u8],
) -> Result<Vec<T>, MispError> {
    serde_json::from_slice::<AttributeEnvelope<T>>(body)
        .map(|envelope| envelope.response.0)
        .map_err(|e| MispError::Malformed {
            path: PATH_ATTRIBUTES_RESTSEARCH.to_owned(),
            reason: format!("invalid restSearch page: {e}"),
        })
}

#[derive(Deserialize)]
struct AttributeEnvelope<T> {
    response: AttributeList<T>,
}

struct AttributeList<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for AttributeList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AttributeListVisitor(PhantomData))
    }
}

struct AttributeListVisitor<T>(PhantomData<T>);

#[derive(Deserialize)]
#[serde(field_identifier)]
enum ResponseField {
    Attribute,
    #[serde(other)]
    Other,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for AttributeListVisitor<T> {
    type Value = AttributeList<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with an `Attribute` array, or an empty array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut attributes: Option<Vec<T>> = None;
        while let Some(field) = map.next_key::<ResponseField>()? {
            match field {
                ResponseField::Attribute => {
                    if attributes.is_some() {
                        return Err(de::Error::duplicate_field("Attribute"));
                    }
                    attributes = Some(map.next_value()?);
                }
                ResponseField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        attributes
            .map(AttributeList)
            .ok_or_else(|| de::Error::missing_field("Attribute"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_value(
                de::Unexpected::Seq,
                &"an object with an `Attribute` array, or an empty array",
            ));
        }
        Ok(AttributeList(Vec::new()))
    }
}

#[derive(Deserialize)]
struct EventsEnvelope {
    response: Vec<EventItem>,
}

#[derive(Deserialize)]
struct EventItem {
    #[serde(rename = "Event")]
    event: Value,
}

#[derive(Deserialize)]
struct VersionResponse {
    version: String,
}

#[derive(Serialize)]
struct EventWrapper<'a> {
    #[serde(rename = "Event")]
    event: &'a Value,
}

/// The `/sightings/add` body: `{"values":[...],"source":...}` plus `timestamp`
/// when given.
pub fn sightings_body(values: &[String], source: &str, timestamp: Option<i64>) -> Value {
    let mut body = Map::new();
    body.insert("values".to_owned(), Value::from(values.to_vec()));
    body.insert("source".to_owned(), Value::from(source));
    if let Some(timestamp) = timestamp {
        body.insert("timestamp".to_owned(), Value::from(timestamp));
    }
    Value::Object(body)
}

/// Spaces successive requests at least `interval` apart (no burst).
struct MinInterval {
    interval: Duration,
    next: Mutex<Instant>,
}

impl MinInterval {
    fn new(per_sec: u32) -> Self {
        MinInterval {
            interval: Duration::from_secs(1) / per_sec,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A fully read response that passed the status checks.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct Inner {
    /// Client for MISP (and feeds on MISP's own origin).
    http: reqwest::Client,
    /// Client for feeds elsewhere: always verifies TLS.
    feed_http: reqwest::Client,
    /// The MISP origin; `None` for a feeds-only client (no MISP, no key).
    base: Option<Url>,
    base_url: String,
    api_key: Secret,
    auth: Option<HeaderValue>,
    max_retries: u32,
    page_size: u32,
    rate_limit_per_sec: Option<u32>,
    limiter: Option<MinInterval>,
    feed_timeout: Duration,
}

/// Client for the MISP REST API and feeds. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct MispClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for MispClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MispClient")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &self.inner.api_key)
            .field("max_retries", &self.inner.max_retries)
            .field("page_size", &self.inner.page_size)
            .field("rate_limit_per_sec", &self.inner.rate_limit_per_sec)
            .finish_non_exhaustive()
    }
}

fn config_error(message: impl Into<String>) -> MispError {
    MispError::Config(message.into())
}

impl MispClient {
    /// Validates `cfg` and builds the HTTP clients. Reads `ca_file` if set.
    pub fn new(cfg: MispClientConfig) -> Result<Self, MispError> {
        let base = Url::parse(cfg.url.trim())
            .map_err(|e| config_error(format!("invalid misp url: {e}")))?;
        match base.scheme() {
            "https" | "http" => {}
            other => {
                return Err(config_error(format!(
                    "misp url scheme must be http or https, not {other}"
                )))
            }
        }
        if base.host_str().is_none() {
            return Err(config_error("misp url has no host"));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(config_error("misp url must not contain credentials"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(config_error("misp url must not have a query or fragment"));
        }
        let base_url = base.as_str().trim_end_matches('/').to_owned();
        if base.scheme() == "http" {
            warn!(
                url = %base_url,
                "MISP url uses plain http: the api key is sent unencrypted."
            );
        }

        let key = cfg.api_key.expose().trim();
        if key.is_empty() {
            return Err(config_error("api key is empty"));
        }
        let mut auth = HeaderValue::from_str(key).map_err(|_| {
            config_error("api key contains characters not allowed in an http header")
        })?;
        auth.set_sensitive(true);
        let api_key = Secret::new(key);

        if cfg.page_size == 0 {
            return Err(config_error("page_size must be at least 1"));
        }
        if cfg.timeout.is_zero() {
            return Err(config_error("timeout must be more than zero"));
        }
        if cfg.rate_limit_per_sec == Some(0) {
            return Err(config_error(
                "rate_limit_per_sec must be at least 1 (leave it unset for no limit)",
            ));
        }
        let user_agent = HeaderValue::from_str(&cfg.user_agent)
            .map_err(|_| config_error("user_agent is not a valid http header value"))?;

        if !cfg.verify_tls {
            warn!(
                url = %base_url,
                "TLS certificate verification is disabled for MISP; do not do this in production."
            );
        }
        let roots = read_roots(cfg.ca_file.as_deref())?;
        let http = http_client(&user_agent, cfg.timeout, &roots, cfg.verify_tls)?;
        let feed_http = http_client(&user_agent, cfg.timeout, &roots, true)?;

        Ok(MispClient {
            inner: Arc::new(Inner {
                http,
                feed_http,
                base: Some(base),
                base_url,
                api_key,
                auth: Some(auth),
                max_retries: cfg.max_retries,
                page_size: cfg.page_size,
                rate_limit_per_sec: cfg.rate_limit_per_sec,
                limiter: cfg.rate_limit_per_sec.map(MinInterval::new),
                feed_timeout: cfg.timeout.max(FEED_TIMEOUT_FLOOR),
            }),
        })
    }

    /// A client for feeds only: no MISP URL and no API key, so no request ever carries an
    /// `Authorization` header. TLS is always verified (`ca_file` adds trusted roots). The
    /// MISP REST methods fail with [`MispError::Config`]; [`MispClient::get_feed`] and
    /// [`MispClient::get_feed_conditional`] work for any http(s) URL.
    pub fn feeds_only(
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
        max_retries: u32,
    ) -> Result<Self, MispError> {
        if timeout.is_zero() {
            return Err(config_error("timeout must be more than zero"));
        }
        let defaults = MispClientConfig::default();
        let user_agent = HeaderValue::from_str(&defaults.user_agent)
            .map_err(|_| config_error("user_agent is not a valid http header value"))?;
        let roots = read_roots(ca_file)?;
        let feed_http = http_client(&user_agent, timeout, &roots, true)?;
        Ok(MispClient {
            inner: Arc::new(Inner {
                http: feed_http.clone(),
                feed_http,
                base: None,
                base_url: String::new(),
                api_key: Secret::default(),
                auth: None,
                max_retries,
                page_size: defaults.page_size,
                rate_limit_per_sec: None,
                limiter: None,
                feed_timeout: timeout.max(FEED_TIMEOUT_FLOOR),
            }),
        })
    }

    /// The MISP base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The `limit` used for each `/attributes/restSearch` page.
    pub fn page_size(&self) -> u32 {
        self.inner.page_size
    }

    /// `POST /attributes/restSearch`, all pages, as raw attribute objects.
    ///
    /// `filter` (a JSON object, or null) is merged into each request body with
    /// `returnFormat: "json"`, `limit: page_size` and `page: 1, 2, ...`.
    /// Paging stops at the first page with fewer than `page_size` attributes.
    pub async fn rest_search_attributes(&self, filter: &Value) -> Result<Vec<Value>, MispError> {
        let mut attributes = Vec::new();
        self.rest_search_attributes_pages(filter, |body| {
            let page: Vec<Value> = parse_attribute_page(body)?;
            let count = page.len();
            attributes.extend(page);
            Ok(count)
        })
        .await?;
        Ok(attributes)
    }

    /// Like [`MispClient::rest_search_attributes`], but hands each page's raw
    /// body to `on_page`, which returns how many attributes it found there
    /// (see [`parse_attribute_page`]).
    ///
    /// Paging stops when that count is below `page_size`. It also stops (with
    /// a warning) when it is above `page_size`, which means the server ignored
    /// `limit`, and fails with [`MispError::Malformed`] when a full page is
    /// byte-identical to the one before (the server ignored `page`). An error
    /// from `on_page` stops paging and is returned.
    /// `X-Result-Count` is not a total and is ignored.
    pub async fn rest_search_attributes_pages<F>(
        &self,
        filter: &Value,
        mut on_page: F,
    ) -> Result<SyncStats, MispError>
    where
        F: FnMut(&[u8]) -> Result<usize, MispError>,
    {
        let path = PATH_ATTRIBUTES_RESTSEARCH;
        let page_size = self.inner.page_size;
        let mut body = filter_object(filter)?;
        body.insert("returnFormat".to_owned(), Value::from("json"));
        body.insert("limit".to_owned(), Value::from(page_size));

        let mut stats = SyncStats::default();
        let mut previous_digest: Option<u64> = None;
        let mut page: u32 = 1;
        loop {
            body.insert("page".to_owned(), Value::from(page));
            let payload = to_json_bytes(&body)?;
            let reply = self.misp_request(Method::POST, path, Some(payload)).await?;

            let digest = digest(&reply.body);
            if previous_digest == Some(digest) {
                return Err(MispError::Malformed {
                    path: path.to_owned(),
                    reason: format!(
                        "page {page} is identical to the page before: the server seems to ignore `page`"
                    ),
                });
            }
            previous_digest = Some(digest);

            let count = on_page(&reply.body).map_err(|e| self.inner.scrub(e))?;
            let bytes = reply.body.len() as u64;
            stats.pages += 1;
            stats.attributes += count;
            stats.bytes += bytes;
            debug!(
                path,
                page,
                attributes = count,
                bytes,
                "Fetched a MISP attribute page."
            );

            let full = usize::try_from(page_size).unwrap_or(usize::MAX);
            if count < full {
                break;
            }
            if count > full {
                warn!(
                    path,
                    page,
                    attributes = count,
                    page_size,
                    "MISP returned more attributes than the page limit; assuming it ignored paging."
                );
                break;
            }
            page = page.checked_add(1).ok_or_else(|| MispError::Malformed {
                path: path.to_owned(),
                reason: "too many pages".to_owned(),
            })?;
        }
        Ok(stats)
    }

    /// `POST /sightings/add` with `{"values":[...],"source":...,"timestamp":...}`.
    ///
    /// MISP's "Could not add the Sighting. Reason: No valid attributes found."
    /// (nothing to sight) is `Ok`, logged at debug. Any other "Could not add"
    /// message, `saved: false` or `errors` is [`MispError::Rejected`].
    /// An empty `values` sends nothing.
    pub async fn add_sightings(
        &self,
        values: &[String],
        source: &str,
        timestamp: Option<i64>,
    ) -> Result<(), MispError> {
        if values.is_empty() {
            return Ok(());
        }
        let path = PATH_SIGHTINGS_ADD;
        let payload = to_json_bytes(&sightings_body(values, source, timestamp))?;
        let reply = self.misp_request(Method::POST, path, Some(payload)).await?;
        let answer: Value = self.inner.parse_json(path, &reply.body)?;
        if answer.get("Sighting").is_some() {
            return Ok(());
        }
        let message = answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if message.contains("No valid attributes found") {
            debug!(
                path,
                values = values.len(),
                message,
                "MISP had no attribute to sight."
            );
            return Ok(());
        }
        if message.starts_with("Could not add")
            || answer.get("saved") == Some(&Value::Bool(false))
            || answer.get("errors").is_some()
        {
            return Err(MispError::Rejected {
                path: path.to_owned(),
                message: self.inner.rejection_message(&answer),
            });
        }
        debug!(
            path,
            values = values.len(),
            message,
            "MISP sightings added."
        );
        Ok(())
    }

    /// `POST /events/add` with `{"Event":{...}}` (`event` is wrapped unless it
    /// already has an `Event` key). Returns the created Event object.
    pub async fn add_event(&self, event: &Value) -> Result<Value, MispError> {
        let path = PATH_EVENTS_ADD;
        let payload = if event.get("Event").is_some() {
            to_json_bytes(event)?
        } else {
            to_json_bytes(&EventWrapper { event })?
        };
        let reply = self.misp_request(Method::POST, path, Some(payload)).await?;
        let answer: Value = self.inner.parse_json(path, &reply.body)?;
        take_key(answer, "Event").ok_or_else(|| MispError::Malformed {
            path: path.to_owned(),
            reason: "response has no `Event`".to_owned(),
        })
    }

    /// `POST /events/add` with `event` exactly as given (MISP also accepts the
    /// bare form `{"info":...}`; mmisp-api accepts only that). Returns the
    /// created Event object.
    pub async fn add_event_bare(&self, event: &Value) -> Result<Value, MispError> {
        let path = PATH_EVENTS_ADD;
        let payload = to_json_bytes(event)?;
        let reply = self.misp_request(Method::POST, path, Some(payload)).await?;
        let answer: Value = self.inner.parse_json(path, &reply.body)?;
        take_key(answer, "Event").ok_or_else(|| MispError::Malformed {
            path: path.to_owned(),
            reason: "response has no `Event`".to_owned(),
        })
    }

    /// `POST /attributes/add/{event_id}` (`event_id`: id or UUID) with
    /// `attribute` as given (bare, `{"Attribute":{...}}` or a list). Returns
    /// the response's `Attribute` (an object, or a list for a batch).
    /// A 403 with `errors` is [`MispError::Rejected`].
    pub async fn add_attribute(
        &self,
        event_id: &str,
        attribute: &Value,
    ) -> Result<Value, MispError> {
        let path = format!("/attributes/add/{event_id}");
        let answer = self.add_attributes(event_id, attribute).await?;
        take_key(answer, "Attribute").ok_or_else(|| MispError::Malformed {
            path,
            reason: "response has no `Attribute`".to_owned(),
        })
    }

    /// Like [`MispClient::add_attribute`], but returns the whole answer: for a
    /// list, MISP answers 200 with `{"Attribute":[saved...],"errors":{"attribute_N":...}}`
    /// when only some were saved (403 with `errors` when none was).
    pub async fn add_attributes(
        &self,
        event_id: &str,
        attributes: &Value,
    ) -> Result<Value, MispError> {
        if event_id.is_empty()
            || !event_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(config_error(
                "event_id must be a numeric id or a uuid (letters, digits and '-')",
            ));
        }
        let path = format!("/attributes/add/{event_id}");
        let payload = to_json_bytes(attributes)?;
        let reply = self
            .misp_request(Method::POST, &path, Some(payload))
            .await?;
        self.inner.parse_json(&path, &reply.body)
    }

    /// `POST /events/restSearch` with `filter` plus `returnFormat: "json"`.
    /// Returns the Event objects, unwrapped from `{"response":[{"Event":...}]}`.
    /// Not paged: put `limit`/`page` in `filter` if needed.
    pub async fn search_events(&self, filter: &Value) -> Result<Vec<Value>, MispError> {
        let path = PATH_EVENTS_RESTSEARCH;
        let mut body = filter_object(filter)?;
        body.insert("returnFormat".to_owned(), Value::from("json"));
        let payload = to_json_bytes(&body)?;
        let reply = self.misp_request(Method::POST, path, Some(payload)).await?;
        let envelope: EventsEnvelope = self.inner.parse_json(path, &reply.body)?;
        Ok(envelope
            .response
            .into_iter()
            .map(|item| item.event)
            .collect())
    }

    /// `GET /servers/getVersion`, e.g. `"2.5.1"`.
    pub async fn get_version(&self) -> Result<String, MispError> {
        let path = PATH_GET_VERSION;
        let reply = self.misp_request(Method::GET, path, None).await?;
        let answer: VersionResponse = self.inner.parse_json(path, &reply.body)?;
        Ok(answer.version)
    }

    /// Plain GET of a feed file (manifest.json, `<uuid>.json`, hashes.csv, a
    /// CSV or freetext list), sending `If-None-Match: etag` when given.
    ///
    /// The `Authorization` header is sent only when `url` has the same origin
    /// (scheme, host, port) as the MISP base URL; only then do `verify_tls`
    /// and the rate limit apply. Other hosts always get TLS verification (with
    /// `ca_file` added to the roots). The total timeout is at least 5 minutes.
    /// Errors name the URL without its query string.
    pub async fn get_feed(&self, url: &str, etag: Option<&str>) -> Result<FeedResponse, MispError> {
        let reply = self.fetch_feed(url, etag, None).await?;
        if reply.status == StatusCode::NOT_MODIFIED {
            return Ok(FeedResponse::NotModified);
        }
        let etag = reply
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(FeedResponse::Body {
            bytes: reply.body,
            etag,
        })
    }

    /// [`MispClient::get_feed`] with both validators: sends `If-None-Match: etag` and
    /// `If-Modified-Since: last_modified` when given, and returns the server's `ETag` and
    /// `Last-Modified`. Same origin, TLS and error rules as [`MispClient::get_feed`].
    pub async fn get_feed_conditional(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<FeedDownload, MispError> {
        let reply = self.fetch_feed(url, etag, last_modified).await?;
        if reply.status == StatusCode::NOT_MODIFIED {
            return Ok(FeedDownload::NotModified);
        }
        let header = |name| {
            reply
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(ETAG);
        let last_modified = header(LAST_MODIFIED);
        Ok(FeedDownload::Body {
            bytes: reply.body,
            etag,
            last_modified,
        })
    }

    /// [`MispClient::get_feed`] without an ETag: `(status, body, ETag)`.
    pub async fn get_bytes(&self, url: &str) -> Result<(u16, Vec<u8>, Option<String>), MispError> {
        let reply = self.fetch_feed(url, None, None).await?;
        let etag = reply
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((reply.status.as_u16(), reply.body, etag))
    }

    async fn fetch_feed(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Reply, MispError> {
        let target = Url::parse(url).map_err(|e| config_error(format!("invalid feed url: {e}")))?;
        if !matches!(target.scheme(), "http" | "https") {
            return Err(config_error(format!(
                "feed url scheme must be http or https, not {}",
                target.scheme()
            )));
        }
        let path = loggable_url(&target);
        let if_none_match = etag
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| config_error("etag is not a valid http header value"))?;
        let if_modified_since = last_modified
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| config_error("last-modified is not a valid http header value"))?;
        let auth = match &self.inner.base {
            Some(base) if target.origin() == base.origin() => self.inner.auth.clone(),
            _ => None,
        };
        let same_origin = auth.is_some();
        let client = if same_origin {
            &self.inner.http
        } else {
            &self.inner.feed_http
        };
        self.execute(&path, same_origin, || {
            let mut request = client
                .get(target.clone())
                .header(ACCEPT, "*/*")
                .timeout(self.inner.feed_timeout);
            if let Some(auth) = &auth {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            if let Some(value) = &if_none_match {
                request = request.header(IF_NONE_MATCH, value.clone());
            }
            if let Some(value) = &if_modified_since {
                request = request.header(IF_MODIFIED_SINCE, value.clone());
            }
            request
        })
        .await
    }

    /// A MISP API request with the standard headers, retried and rate limited.
    async fn misp_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, MispError> {
        let Some(auth) = self.inner.auth.clone() else {
            return Err(config_error(format!(
                "{path} needs a misp url and api key; this client is for feeds only"
            )));
        };
        let url = format!("{}{}", self.inner.base_url, path);
        self.execute(path, true, || {
            let mut request = self
                .inner
                .http
                .request(method.clone(), &url)
                .header(AUTHORIZATION, auth.clone())
                .header(ACCEPT, JSON)
                .header(CONTENT_TYPE, JSON);
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            request
        })
        .await
    }

    /// Runs `build()`'s request until it succeeds, fails for good, or the
    /// retries run out.
    async fn execute<B>(&self, path: &str, limited: bool, build: B) -> Result<Reply, MispError>
    where
        B: Fn() -> RequestBuilder,
    {
        let max_retries = self.inner.max_retries;
        let mut retry: u32 = 0;
        loop {
            if limited {
                if let Some(limiter) = &self.inner.limiter {
                    limiter.acquire().await;
                }
            }
            let err = match self.attempt(path, build()).await {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            if !err.is_retryable() || retry >= max_retries {
                return Err(err);
            }
            let delay = match &err {
                MispError::RateLimited {
                    retry_after_secs: Some(secs),
                    ..
                } => Duration::from_secs(*secs).min(RETRY_AFTER_CAP),
                _ => backoff(retry),
            };
            retry += 1;
            let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            warn!(
                path,
                code = err.code(),
                retry,
                max_retries,
                delay_ms,
                error = %err,
                "MISP request failed, retrying."
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, path: &str, request: RequestBuilder) -> Result<Reply, MispError> {
        let http_error = |e: reqwest::Error| MispError::Http {
            path: path.to_owned(),
            source: e.without_url(),
        };
        let response = request.send().await.map_err(http_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Vec::from(response.bytes().await.map_err(http_error)?);
        self.inner.check_status(path, status, &headers, &body)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

impl Inner {
    /// Maps a non-success status to its error.
    fn check_status(
        &self,
        path: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), MispError> {
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(());
        }
        let path = path.to_owned();
        Err(match status.as_u16() {
            429 => MispError::RateLimited {
                path,
                retry_after_secs: headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok()),
            },
            403 => match serde_json::from_slice::<Value>(body) {
                Ok(answer) if answer.get("errors").is_some() => MispError::Rejected {
                    path,
                    message: self.rejection_message(&answer),
                },
                _ => MispError::Auth { path },
            },
            401 => MispError::Auth { path },
            status => MispError::Status {
                path,
                status,
                body_excerpt: self.excerpt(body),
            },
        })
    }

    fn parse_json<'a, T: Deserialize<'a>>(
        &self,
        path: &str,
        body: &'a [u8],
    ) -> Result<T, MispError> {
        serde_json::from_slice(body).map_err(|e| MispError::Malformed {
            path: path.to_owned(),
            reason: self.redact(&format!("invalid json: {e}")),
        })
    }

    /// `"<message>: <errors as compact json>"`, redacted and capped.
    fn rejection_message(&self, answer: &Value) -> String {
        let message = answer
            .get("message")
            .or_else(|| answer.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("rejected");
        let text = match answer.get("errors") {
            Some(errors) => format!("{message}: {errors}"),
            None => message.to_owned(),
        };
        truncate_chars(&self.redact(&text), MESSAGE_CHARS)
    }

    /// The start of a body, whitespace collapsed, redacted and capped.
    fn excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return "empty".to_owned();
        }
        truncate_chars(&self.redact(&text), EXCERPT_CHARS)
    }

    fn redact(&self, text: &str) -> String {
        let key = self.api_key.expose();
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key, REDACTED)
        }
    }

    /// Redacts the key from an error made by a caller's callback.
    fn scrub(&self, err: MispError) -> MispError {
        match err {
            MispError::Malformed { path, reason } => MispError::Malformed {
                path,
                reason: self.redact(&reason),
            },
            MispError::Rejected { path, message } => MispError::Rejected {
                path,
                message: self.redact(&message),
            },
            MispError::Status {
                path,
                status,
                body_excerpt,
            } => MispError::Status {
                path,
                status,
                body_excerpt: self.redact(&body_excerpt),
            },
            MispError::Config(message) => MispError::Config(self.redact(&message)),
            other => other,
        }
    }
}

/// The extra trusted roots of `ca_file` (none when unset).
fn read_roots(ca_file: Option<&std::path::Path>) -> Result<Vec<reqwest::Certificate>, MispError> {
    let Some(path) = ca_file else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path)
        .map_err(|e| config_error(format!("cannot read ca_file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        config_error(format!(
            "invalid PEM in ca_file {}: {}",
            path.display(),
            describe_http_error(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "no certificate found in ca_file {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// One rustls HTTP client: gzip, the timeout (connect timeout capped), extra roots.
fn http_client(
    user_agent: &HeaderValue,
    timeout: Duration,
    roots: &[reqwest::Certificate],
    verify: bool,
) -> Result<reqwest::Client, MispError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(user_agent.clone())
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT_CAP))
        .gzip(true);
    for cert in roots {
        b = b.add_root_certificate(cert.clone());
    }
    if !verify {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| {
        config_error(format!(
            "cannot build the http client: {}",
            describe_http_error(&e)
        ))
    })
}

fn filter_object(filter: &Value) -> Result<Map<String, Value>, MispError> {
    match filter {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(config_error("restSearch filter must be a JSON object")),
    }
}

fn to_json_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, MispError> {
    serde_json::to_vec(value)
        .map_err(|e| config_error(format!("cannot serialize the request body: {e}")))
}

/// `answer[key]`, moved out.
fn take_key(answer: Value, key: &str) -> Option<Value> {
    match answer {
        Value::Object(mut map) => map.remove(key),
        _ => None,
    }
}

fn digest(body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// Full-jitter back-off before retry `retry` (0-based).
fn backoff(retry: u32) -> Duration {
    let ceiling = 1u64
        .checked_shl(retry)
        .map_or(u64::MAX, |factor| BACKOFF_BASE_MS.saturating_mul(factor))
        .min(BACKOFF_CAP_MS);
    Duration::from_millis(rand::rng().random_range(0..=ceiling))
}

/// `scheme://host[:port]/path`: no credentials, query or fragment.
fn loggable_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_cap() {
        for retry in 0..80 {
            let delay = backoff(retry);
            let ceiling = (BACKOFF_BASE_MS << retry.min(20)).min(BACKOFF_CAP_MS);
            assert!(
                delay <= Duration::from_millis(ceiling),
                "retry {retry}: {delay:?}"
            );
        }
    }

    #[test]
    fn loggable_url_drops_credentials_and_query() {
        let url = Url::parse("https://user:pw@feeds.example:8443/a/hashes.csv?auth=XYZ#frag")
            .expect("url");
        assert_eq!(
            loggable_url(&url),
            "https://feeds.example:8443/a/hashes.csv"
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé...");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }

    #[test]
    fn attribute_page_shapes() {
        let page: Vec<Value> =
            parse_attribute_page(br#"{"response":{"Attribute":[{"id":"1"},{"id":"2"}]}}"#)
                .expect("page");
        assert_eq!(page.len(), 2);
        let empty: Vec<Value> = parse_attribute_page(br#"{"response":[]}"#).expect("empty");
        assert!(empty.is_empty());
        let other_keys: Vec<Value> =
            parse_attribute_page(br#"{"response":{"x":1,"Attribute":[]}}"#).expect("other keys");
        assert!(other_keys.is_empty());

        #[derive(Deserialize)]
        struct Borrowed<'a> {
            value: &'a str,
        }
        let body = br#"{"response":{"Attribute":[{"value":"evil.example","type":"domain"}]}}"#;
        let borrowed: Vec<Borrowed<'_>> = parse_attribute_page(body).expect("borrowed");
        assert_eq!(borrowed[0].value, "evil.example");

        for bad in [
            &br#"{"response":{}}"#[..],
            br#"{"response":[{"id":"1"}]}"#,
            br#"{"Attribute":[]}"#,
            br#"{"response":{"Attribute":[{"id":"1"}"#,
            b"<html>login</html>",
        ] {
            let err = parse_attribute_page::<Value>(bad).expect_err("must fail");
            assert_eq!(err.code(), "malformed");
            assert!(err.to_string().contains(PATH_ATTRIBUTES_RESTSEARCH));
        }
    }
}
