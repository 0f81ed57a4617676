//! MISP feeds over HTTP(S) (`[[intel.feeds]]`): fetched on their own schedule into an on-disk
//! cache, and loaded from that cache into the indicator snapshot.
//!
//! Cache layout, one folder per feed, `<cache>/<name>/`:
//! - `misp`: `manifest.json` and one `<uuid>.json` per event, i.e. a MISP JSON feed directory
//!   [`Loader::add_feed_dir`] loads; `meta.json` holds the manifest's validators.
//! - `csv` / `freetext`: `data` (the body as served) and `meta.json`.
//!
//! Invariants: the cache folder is always loadable (files are written to a temporary name and
//! renamed; a MISP feed's event files are written before the manifest naming them, and files
//! the manifest dropped are deleted only after it); a failed fetch (DNS, timeout, 5xx, 404,
//! malformed body) changes nothing that is cached, so the last good copy keeps working.
//!
//! Every fetch is conditional (`If-None-Match` / `If-Modified-Since`); a MISP feed fetches only
//! the events whose manifest `timestamp` differs from the cached manifest's.
//!
//! Use: [`FeedFetcher::refresh`] on a timer ([`FeedFetcher::next_due`]); when it reports
//! `changed`, rebuild the snapshot with [`load_cached`] among the other sources.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::load::{check_event_json, LoadError, Loader};
use super::snapshot::SnapshotBuilder;
use crate::config::{Config, FeedConfig};
use crate::misp::{FeedDownload, MispClient, MispError};
use crate::telemetry::metrics as m;

/// Event files of one MISP feed fetched at the same time, at most.
const EVENT_CONCURRENCY: usize = 8;
/// Retries of one feed request after the first attempt (5xx, timeouts).
const FEED_RETRIES: u32 = 2;
const MANIFEST: &str = "manifest.json";
const META: &str = "meta.json";
const DATA: &str = "data";

/// Where fetched feeds are cached: `intel.feed_cache_dir`, else `feeds/` beside
/// `intel.snapshot_path`, else `<system temp dir>/wazuh-misp-feeds`.
pub fn cache_dir(config: &Config) -> PathBuf {
    if let Some(dir) = &config.intel.feed_cache_dir {
        return dir.clone();
    }
    if let Some(parent) = config.intel.snapshot_path.as_deref().and_then(Path::parent) {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        return parent.join("feeds");
    }
    std::env::temp_dir().join("wazuh-misp-feeds")
}

/// The result of one [`FeedFetcher::refresh`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedRefresh {
    /// Something cached changed: the snapshot should be rebuilt ([`load_cached`]).
    pub changed: bool,
    /// Feeds attempted (due, or all enabled ones when forced).
    pub attempted: usize,
    /// One message per problem, each naming the feed and the URL (never its query string).
    /// The cache of a feed with an error keeps its last good copy.
    pub errors: Vec<String>,
}

/// What `meta.json` records about the last good fetch of a feed.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Meta {
    /// The feed's URL and format at that fetch: validators of another URL are not sent.
    url: String,
    format: String,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    fetched_at: i64,
}

impl Meta {
    /// The validators to send, when the cache is of this feed's URL and format.
    fn validators(&self, feed: &FeedConfig) -> (Option<&str>, Option<&str>) {
        if self.url == feed.url && self.format == feed.format {
            (self.etag.as_deref(), self.last_modified.as_deref())
        } else {
            (None, None)
        }
    }
}

/// Fetches the enabled `intel.feeds` into the cache, each when its `interval_secs` has passed
/// since its last attempt.
pub struct FeedFetcher {
    client: MispClient,
    feeds: Vec<FeedConfig>,
    cache_dir: PathBuf,
    last_attempt: HashMap<String, Instant>,
}

impl std::fmt::Debug for FeedFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedFetcher")
            .field("feeds", &self.feeds.len())
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl FeedFetcher {
    /// A fetcher for the enabled feeds of `config`, with a feeds-only HTTP client (the MISP
    /// API key is never sent to a feed; `misp.ca_file` and `misp.timeout_secs` apply).
    pub fn new(config: &Config) -> Result<Self, MispError> {
        let client = MispClient::feeds_only(
            config.misp.ca_file.as_deref(),
            Duration::from_secs(config.misp.timeout_secs.max(1)),
            FEED_RETRIES,
        )?;
        Ok(Self::with_client(config, client))
    }

    /// [`FeedFetcher::new`] with a client of the caller's (tests, or MISP's own client so that
    /// feeds on the MISP origin get the API key).
    pub fn with_client(config: &Config, client: MispClient) -> Self {
        FeedFetcher {
            client,
            feeds: config
                .intel
                .feeds
                .iter()
                .filter(|feed| feed.enabled)
                .cloned()
                .collect(),
            cache_dir: cache_dir(config),
            last_attempt: HashMap::new(),
        }
    }

    /// The cache directory ([`cache_dir`]).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The enabled feeds.
    pub fn feeds(&self) -> &[FeedConfig] {
        &self.feeds
    }

    /// How long until the next feed is due: `None` with no enabled feed, zero when one is
    /// due now (every feed is due at first).
    pub fn next_due(&self) -> Option<Duration> {
        let now = Instant::now();
        self.feeds
            .iter()
            .map(|feed| match self.last_attempt.get(&feed.name) {
                None => Duration::ZERO,
                Some(last) => {
                    (*last + Duration::from_secs(feed.interval_secs)).saturating_duration_since(now)
                }
            })
            .min()
    }

    /// Fetches every due feed (every enabled feed when `force`). Never fails as a whole: each
    /// feed's problems are in `errors`, and its cache keeps the last good copy.
    pub async fn refresh(&mut self, force: bool) -> FeedRefresh {
        let mut refresh = FeedRefresh::default();
        let now = Instant::now();
        let due: Vec<FeedConfig> = self
            .feeds
            .iter()
            .filter(|feed| {
                force
                    || self.last_attempt.get(&feed.name).is_none_or(|last| {
                        now.duration_since(*last) >= Duration::from_secs(feed.interval_secs)
                    })
            })
            .cloned()
            .collect();
        for feed in due {
            self.last_attempt.insert(feed.name.clone(), Instant::now());
            refresh.attempted += 1;
            let mut errors = Vec::new();
            let changed = self.fetch_feed(&feed, &mut errors).await;
            let result = if !errors.is_empty() {
                "failure"
            } else if changed {
                "changed"
            } else {
                "unchanged"
            };
            metrics::counter!(m::FEED_FETCHES, "result" => result).increment(1);
            let url = display_url(&feed.url);
            if errors.is_empty() {
                info!(feed = %feed.name, url = %url, result, "Feed fetched.");
            } else {
                for error in &errors {
                    warn!(feed = %feed.name, url = %url, changed, error = %error, "Feed fetch failed; the cached copy is kept.");
                }
            }
            refresh.changed |= changed;
            refresh.errors.extend(
                errors
                    .into_iter()
                    .map(|e| format!("feed `{}`: {e}", feed.name)),
            );
        }
        refresh
    }

    /// One feed; `true` when its cache changed. Problems go to `errors`.
    async fn fetch_feed(&self, feed: &FeedConfig, errors: &mut Vec<String>) -> bool {
        if !is_safe_name(&feed.name) {
            errors.push("name is not usable as a folder name".to_string());
            return false;
        }
        let dir = self.cache_dir.join(&feed.name);
        if let Err(err) = tokio::fs::create_dir_all(&dir).await {
            errors.push(format!("cannot create {}: {err}", dir.display()));
            return false;
        }
        let outcome = match feed.format.as_str() {
            "misp" => self.fetch_misp(feed, &dir, errors).await,
            "csv" | "freetext" => self.fetch_file(feed, &dir).await,
            other => Err(format!("unknown format `{other}`")),
        };
        match outcome {
            Ok(changed) => changed,
            Err(err) => {
                errors.push(err);
                false
            }
        }
    }

    /// A CSV or freetext feed: one conditional GET into `data`.
    async fn fetch_file(&self, feed: &FeedConfig, dir: &Path) -> Result<bool, String> {
        let meta = read_meta(dir).await;
        let data_path = dir.join(DATA);
        let cached = tokio::fs::read(&data_path).await.ok();
        let (etag, last_modified) = match (&meta, &cached) {
            (Some(meta), Some(_)) => meta.validators(feed),
            _ => (None, None),
        };
        let Some((bytes, etag, last_modified)) =
            self.download(feed, &feed.url, etag, last_modified).await?
        else {
            return Ok(false);
        };
        if feed.format == "csv" {
            check_csv(&bytes, feed)
                .map_err(|reason| format!("{} (http 200): {reason}", display_url(&feed.url)))?;
        }
        let changed = cached.as_deref() != Some(bytes.as_slice());
        if changed {
            write_atomic(&data_path, &bytes).await?;
        }
        let meta_changed = meta
            .as_ref()
            .is_none_or(|m| m.url != feed.url || m.format != feed.format);
        write_meta(dir, feed, etag, last_modified).await?;
        Ok(changed || meta_changed)
    }

    /// A conditional GET: `None` when not modified, else the body and its validators.
    async fn download(
        &self,
        feed: &FeedConfig,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Option<(Vec<u8>, Option<String>, Option<String>)>, String> {
        match self
            .client
            .get_feed_conditional(url, etag, last_modified)
            .await
            .map_err(|err| err.to_string())?
        {
            FeedDownload::NotModified => {
                debug!(feed = %feed.name, url = %display_url(url), "Not modified.");
                Ok(None)
            }
            FeedDownload::Body {
                bytes,
                etag,
                last_modified,
            } => {
                metrics::counter!(m::FEED_BYTES).increment(bytes.len() as u64);
                Ok(Some((bytes, etag, last_modified)))
            }
        }
    }

    /// A MISP JSON feed: the manifest, then only new or changed events; the manifest last.
    async fn fetch_misp(
        &self,
        feed: &FeedConfig,
        dir: &Path,
        errors: &mut Vec<String>,
    ) -> Result<bool, String> {
        let meta = read_meta(dir).await;
        let same_source = meta
            .as_ref()
            .is_some_and(|m| m.url == feed.url && m.format == feed.format);
        let manifest_path = dir.join(MANIFEST);
        let cached: Option<Map<String, Value>> = match tokio::fs::read(&manifest_path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        // Compare with the cached manifest only when it is this URL's.
        let previous = if same_source {
            cached.clone().unwrap_or_default()
        } else {
            Map::new()
        };
        let (etag, last_modified) = match (&meta, &cached) {
            (Some(meta), Some(_)) => meta.validators(feed),
            _ => (None, None),
        };
        let manifest_url = feed_file_url(&feed.url, MANIFEST)?;
        let shown = display_url(manifest_url.as_str());
        let Some((bytes, etag, last_modified)) = self
            .download(feed, manifest_url.as_str(), etag, last_modified)
            .await?
        else {
            return Ok(false);
        };
        let manifest: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|err| {
            format!("{shown} (http 200): manifest is not a JSON object of events: {err}")
        })?;

        let mut written: Map<String, Value> = Map::new();
        let mut to_fetch = Vec::new();
        for (uuid, entry) in &manifest {
            if !is_uuid_like(uuid) {
                errors.push(format!(
                    "{shown}: event key {:?} is not a uuid; skipped",
                    truncate(uuid, 64)
                ));
                continue;
            }
            let unchanged = previous.get(uuid).is_some_and(|old| {
                timestamp_of(old).is_some() && timestamp_of(old) == timestamp_of(entry)
            }) && dir.join(format!("{uuid}.json")).is_file();
            if unchanged {
                written.insert(uuid.clone(), entry.clone());
            } else {
                to_fetch.push(uuid.clone());
            }
        }

        let mut fetched = 0usize;
        let mut tasks = JoinSet::new();
        let mut queue = to_fetch.into_iter();
        loop {
            while tasks.len() < EVENT_CONCURRENCY {
                let Some(uuid) = queue.next() else { break };
                let url = feed_file_url(&feed.url, &format!("{uuid}.json"))?;
                let client = self.client.clone();
                tasks.spawn(async move {
                    let result = client.get_feed(url.as_str(), None).await;
                    (uuid, url, result)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (uuid, url, result) = joined.map_err(|err| format!("event fetch task: {err}"))?;
            let shown = display_url(url.as_str());
            let outcome = match result {
                Ok(crate::misp::FeedResponse::Body { bytes, .. }) => {
                    metrics::counter!(m::FEED_BYTES).increment(bytes.len() as u64);
                    match check_event_json(&bytes) {
                        Ok(event_uuid) if event_uuid.is_empty() || event_uuid == uuid => Ok(bytes),
                        Ok(event_uuid) => Err(format!(
                            "{shown} (http 200): event uuid {event_uuid:?} is not the manifest's"
                        )),
                        Err(reason) => {
                            Err(format!("{shown} (http 200): invalid event json: {reason}"))
                        }
                    }
                }
                Ok(crate::misp::FeedResponse::NotModified) => {
                    Err(format!("{shown} (http 304) without a validator sent"))
                }
                Err(err) => Err(err.to_string()),
            };
            match outcome {
                Ok(bytes) => {
                    write_atomic(&dir.join(format!("{uuid}.json")), &bytes).await?;
                    fetched += 1;
                    if let Some(entry) = manifest.get(&uuid) {
                        written.insert(uuid, entry.clone());
                    }
                }
                Err(err) => {
                    errors.push(err);
                    // Keep the cached copy, under its old manifest entry, so it is retried.
                    if let Some(old) = cached.as_ref().and_then(|c| c.get(&uuid)) {
                        if dir.join(format!("{uuid}.json")).is_file() {
                            written.insert(uuid, old.clone());
                        }
                    }
                }
            }
        }
        metrics::counter!(m::FEED_EVENTS_FETCHED).increment(fetched as u64);

        let manifest_changed = cached.as_ref() != Some(&written);
        if manifest_changed {
            let body = serde_json::to_vec(&written).map_err(|err| err.to_string())?;
            write_atomic(&manifest_path, &body).await?;
        }
        let removed = remove_stale_events(dir, &written).await?;
        // With an event missing, the next fetch must see the whole manifest again.
        let (etag, last_modified) = if errors.is_empty() {
            (etag, last_modified)
        } else {
            (None, None)
        };
        write_meta(dir, feed, etag, last_modified).await?;
        debug!(feed = %feed.name, events = written.len(), fetched, removed, "Feed manifest applied.");
        Ok(manifest_changed || fetched > 0 || removed > 0)
    }
}

/// Loads what is cached for every enabled feed in `feeds` (see [`cache_dir`]): `misp` with
/// [`Loader::add_feed_dir`], `csv` with [`Loader::add_csv_feed`], `freetext` with
/// [`Loader::add_freetext_feed`]. A feed with nothing cached yet (or a cache of another
/// format) is skipped. Returns the number of feeds loaded.
pub fn load_cached(
    loader: &mut Loader,
    builder: &mut SnapshotBuilder,
    feeds: &[FeedConfig],
    cache_dir: &Path,
) -> Result<usize, LoadError> {
    let mut loaded = 0;
    for feed in feeds.iter().filter(|feed| feed.enabled) {
        if !is_safe_name(&feed.name) {
            continue;
        }
        let dir = cache_dir.join(&feed.name);
        let meta: Option<Meta> = std::fs::read(dir.join(META))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if meta.as_ref().is_some_and(|meta| meta.format != feed.format) {
            debug!(feed = %feed.name, "Cached feed is of another format; skipped.");
            continue;
        }
        match feed.format.as_str() {
            "misp" => {
                if !dir.join(MANIFEST).is_file() {
                    continue;
                }
                loader.add_feed_dir(builder, &dir)?;
            }
            "csv" | "freetext" => {
                let path = dir.join(DATA);
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(LoadError::Io { path, source }),
                };
                if feed.format == "csv" {
                    let delimiter =
                        csv_delimiter(&feed.csv_delimiter).ok_or_else(|| LoadError::Csv {
                            path: path.clone(),
                            reason: format!(
                                "delimiter {:?} is not one ASCII character",
                                feed.csv_delimiter
                            ),
                        })?;
                    loader.add_csv_feed(
                        builder,
                        &bytes,
                        &feed.csv_value_columns,
                        delimiter,
                        feed.to_ids,
                        &feed.name,
                    )?;
                } else {
                    let text = String::from_utf8_lossy(&bytes);
                    loader.add_freetext_feed(builder, &text, feed.to_ids, &feed.name);
                }
            }
            _ => continue,
        }
        loaded += 1;
    }
    Ok(loaded)
}

/// The byte of a `csv_delimiter` setting (`\t` written as two characters means tab).
pub fn csv_delimiter(raw: &str) -> Option<u8> {
    let delimiter = raw.replace("\\t", "\t");
    match delimiter.as_bytes() {
        [byte] if byte.is_ascii() => Some(*byte),
        _ => None,
    }
}

/// A CSV body must parse with the feed's delimiter before it replaces the cached copy.
fn check_csv(bytes: &[u8], feed: &FeedConfig) -> Result<(), String> {
    let delimiter = csv_delimiter(&feed.csv_delimiter).ok_or_else(|| {
        format!(
            "delimiter {:?} is not one ASCII character",
            feed.csv_delimiter
        )
    })?;
    let mut builder = SnapshotBuilder::new(true, None);
    Loader::default()
        .add_csv_feed(
            &mut builder,
            bytes,
            &feed.csv_value_columns,
            delimiter,
            true,
            &feed.name,
        )
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// Feed names become folder names: letters, digits, `-`, `_`, `.`, and not `.` or `..`.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An event key of a manifest: hex digits and dashes, 32 to 36 of them (a uuid with or
/// without dashes). Anything else (`../x`, `a/b`) is refused.
fn is_uuid_like(key: &str) -> bool {
    (32..=36).contains(&key.len())
        && key.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && key.chars().filter(char::is_ascii_hexdigit).count() == 32
}

/// A manifest entry's `timestamp`, as text (MISP writes a string; numbers are accepted).
fn timestamp_of(entry: &Value) -> Option<String> {
    match entry.get("timestamp")? {
        Value::String(text) => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `<base>/<file>`, keeping the base's query string (some feeds authenticate with one).
fn feed_file_url(base: &str, file: &str) -> Result<Url, String> {
    let mut url = Url::parse(base.trim())
        .map_err(|err| format!("invalid feed url {}: {err}", display_url(base)))?;
    let path = format!("{}/{file}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

/// `scheme://host[:port]/path` of a URL: no credentials, query or fragment (for logs and
/// errors).
pub fn display_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => {
            let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
            if let Some(port) = url.port() {
                shown.push_str(&format!(":{port}"));
            }
            shown.push_str(url.path());
            shown
        }
        Err(_) => "<invalid url>".to_string(),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

async fn read_meta(dir: &Path) -> Option<Meta> {
    let bytes = tokio::fs::read(dir.join(META)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

async fn write_meta(
    dir: &Path,
    feed: &FeedConfig,
    etag: Option<String>,
    last_modified: Option<String>,
) -> Result<(), String> {
    let meta = Meta {
        url: feed.url.clone(),
        format: feed.format.clone(),
        etag,
        last_modified,
        fetched_at: chrono::Utc::now().timestamp(),
    };
    let body = serde_json::to_vec_pretty(&meta).map_err(|err| err.to_string())?;
    write_atomic(&dir.join(META), &body).await
}

/// Writes `path` whole or not at all: a temporary file beside it, then a rename.
async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let io = |err: std::io::Error| format!("cannot write {}: {err}", path.display());
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    if let Err(err) = tokio::fs::rename(&tmp, path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io(err));
    }
    Ok(())
}

/// Deletes `<uuid>.json` files the manifest no longer names. Returns how many.
async fn remove_stale_events(dir: &Path, manifest: &Map<String, Value>) -> Result<usize, String> {
    let keep: BTreeSet<&str> = manifest.keys().map(String::as_str).collect();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if is_uuid_like(stem) && !keep.contains(stem) {
            match tokio::fs::remove_file(entry.path()).await {
                Ok(()) => removed += 1,
                Err(err) => {
                    warn!(path = %entry.path().display(), error = %err, "Cannot delete a stale feed event.")
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_dir_fallbacks() {
        let mut config = Config::default();
        assert_eq!(
            cache_dir(&config),
            std::env::temp_dir().join("wazuh-misp-feeds")
        );
        config.intel.snapshot_path = Some(PathBuf::from("/var/lib/wm/snapshot.bin"));
        assert_eq!(cache_dir(&config), PathBuf::from("/var/lib/wm/feeds"));
        config.intel.snapshot_path = Some(PathBuf::from("snapshot.bin"));
        assert_eq!(cache_dir(&config), PathBuf::from("./feeds"));
        config.intel.feed_cache_dir = Some(PathBuf::from("/srv/feeds"));
        assert_eq!(cache_dir(&config), PathBuf::from("/srv/feeds"));
    }

    #[test]
    fn uuid_like_keys_only() {
        assert!(is_uuid_like("57c6ac4c-c60c-4f79-a38f-b666950d210f"));
        assert!(is_uuid_like("57c6ac4cc60c4f79a38fb666950d210f"));
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            "57c6ac4c-c60c-4f79-a38f-b666950d210f/..",
            "57c6ac4c-c60c-4f79-a38f-b666950d210g",
            "manifest",
            "------------------------------------",
        ] {
            assert!(!is_uuid_like(bad), "{bad}");
        }
    }

    #[test]
    fn safe_names() {
        assert!(is_safe_name("circl-osint_1.0"));
        for bad in ["", ".", "..", "a/b", "a\\b", "x y"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_compare_as_text() {
        assert_eq!(
            timestamp_of(&json!({"timestamp": "1700000000"})),
            timestamp_of(&json!({"timestamp": 1700000000}))
        );
        assert_eq!(timestamp_of(&json!({"info": "x"})), None);
    }

    #[test]
    fn file_urls_keep_the_query_and_logs_drop_it() {
        let url = feed_file_url("https://feeds.example/osint/?token=s3cret", MANIFEST).unwrap();
        assert_eq!(
            url.as_str(),
            "https://feeds.example/osint/manifest.json?token=s3cret"
        );
        assert_eq!(
            display_url("https://u:pw@feeds.example:8443/osint/manifest.json?token=s3cret#x"),
            "https://feeds.example:8443/osint/manifest.json"
        );
        assert!(feed_file_url("not a url", MANIFEST).is_err());
    }

    #[test]
    fn delimiters() {
        assert_eq!(csv_delimiter(","), Some(b','));
        assert_eq!(csv_delimiter(";"), Some(b';'));
        assert_eq!(csv_delimiter("\\t"), Some(b'\t'));
        assert_eq!(csv_delimiter("\t"), Some(b'\t'));
        assert_eq!(csv_delimiter(";;"), None);
        assert_eq!(csv_delimiter("§"), None);
    }

    #[test]
    fn next_due_follows_the_intervals() {
        let mut config = Config::default();
        assert!(FeedFetcher::new(&config).unwrap().next_due().is_none());
        config.intel.feeds = vec![
            FeedConfig {
                name: "a".into(),
                url: "http://127.0.0.1:9/a".into(),
                interval_secs: 60,
                ..FeedConfig::default()
            },
            FeedConfig {
                name: "off".into(),
                url: "http://127.0.0.1:9/off".into(),
                enabled: false,
                ..FeedConfig::default()
            },
        ];
        let mut fetcher = FeedFetcher::new(&config).unwrap();
        assert_eq!(fetcher.feeds().len(), 1, "disabled feeds are dropped");
        assert_eq!(fetcher.next_due(), Some(Duration::ZERO));
        fetcher.last_attempt.insert("a".to_string(), Instant::now());
        let due = fetcher.next_due().unwrap();
        assert!(
            due > Duration::from_secs(55) && due <= Duration::from_secs(60),
            "{due:?}"
        );
    }
}
