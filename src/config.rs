//! The config tree: one TOML file, every key overridable by environment
//! (`WAZUH_MISP__KAFKA__BROKERS=...`: prefix `WAZUH_MISP__`, `__` between levels).
//! `Config::load` reports every problem at once: every unknown key, the type error, and every
//! cross-field check of `problems`. Defaults are documented in `config/default.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::misp::secret::Secret;

pub const ENV_PREFIX: &str = "WAZUH_MISP__";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub input: InputConfig,
    pub pipeline: PipelineConfig,
    pub intel: IntelConfig,
    pub output: OutputConfig,
    pub misp: MispConfig,
    pub sightings: SightingsConfig,
    pub sharing: SharingConfig,
    pub server: ServerConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct KafkaConfig {
    /// Bootstrap servers (DESIGN.md).
    pub brokers: String,
    /// Consumer group (DESIGN.md).
    pub group_id: String,
    /// Kafka transactions: enriched records and input offsets commit atomically.
    pub exactly_once: bool,
    /// Transactional id in exactly-once mode; default `<group_id>-<hostname>`.
    pub transactional_id: Option<String>,
    /// `sasl.password`, from env (`WAZUH_MISP__KAFKA__SASL_PASSWORD`) or `sasl_password_file`.
    pub sasl_password: Option<Secret>,
    pub sasl_password_file: Option<PathBuf>,
    /// Output compression: none, gzip, snappy, lz4 (PERF-NOTES: lz4 costs ~0.8 µs per alert).
    pub compression: String,
    /// Producer linger; librdkafka recommends ≥ 5 ms for throughput.
    pub linger_ms: u64,
    /// Extra librdkafka properties, applied after our defaults and before our enforced keys.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".to_string(),
            group_id: "wazuh-misp".to_string(),
            exactly_once: false,
            transactional_id: None,
            sasl_password: None,
            sasl_password_file: None,
            compression: "lz4".to_string(),
            linger_ms: 5,
            librdkafka: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct TopicsConfig {
    pub input: String,
    pub enriched: String,
    pub iocs: String,
    pub dlq: String,
    pub indicators: String,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        // DESIGN.md topic table.
        TopicsConfig {
            input: "wazuh-alerts".to_string(),
            enriched: "wazuh-alerts-enriched".to_string(),
            iocs: "wazuh-iocs".to_string(),
            dlq: "wazuh-alerts-dlq".to_string(),
            indicators: "wazuh-misp-indicators".to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct InputConfig {
    /// Keys a shipper may nest the alert under, tried in order (Filebeat `json`, Logstash targets).
    pub nested_keys: Vec<String>,
    /// Larger messages go to the dead-letter topic.
    pub max_message_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        let defaults = crate::pipeline::ProcessorOptions::default();
        InputConfig {
            nested_keys: defaults.nested_keys,
            max_message_bytes: defaults.max_message_bytes,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct PipelineConfig {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Alerts consumed but not yet fully acknowledged, at most (backpressure).
    pub max_in_flight: usize,
    /// SIGTERM: how long to wait for in-flight alerts before committing and exiting.
    pub drain_timeout_ms: u64,
    /// How often stored offsets are committed (librdkafka auto-commit interval).
    pub commit_interval_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 0,
            max_in_flight: 10_000,
            drain_timeout_ms: 10_000,
            commit_interval_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct IntelConfig {
    /// Indicator files or feed directories, as `enrich --indicators` takes them.
    pub files: Vec<PathBuf>,
    /// A directory of misp-warninglists `list.json` files.
    pub warninglists_dir: Option<PathBuf>,
    /// Match `to_ids=false` attributes too.
    pub include_non_ids: bool,
    /// `local`: files/MISP in this process; `topic`: build from `topics.indicators` (scale-out).
    pub source: String,
    /// Where the last good indicator set is kept, so a restart never starts empty.
    pub snapshot_path: Option<PathBuf>,
    /// A new indicator set smaller than this is refused and the previous one kept.
    pub min_indicators: usize,
    /// How often `files` are checked for changes.
    pub reload_interval_secs: u64,
    /// MISP feeds fetched over HTTP(S): MISP JSON (manifest.json), CSV or freetext.
    pub feeds: Vec<FeedConfig>,
    /// Where fetched feeds are cached between fetches and restarts. Unset: `feeds/` beside
    /// `snapshot_path`, or the system temp directory.
    pub feed_cache_dir: Option<PathBuf>,
}

/// One remote feed (`[[intel.feeds]]`), as MISP's feed list describes them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// A short name: the cache folder and the `source` of its attributes.
    pub name: String,
    /// For `misp`, the feed's base URL (manifest.json and `<uuid>.json` below it); for
    /// `csv` and `freetext`, the file's URL.
    pub url: String,
    /// `misp`, `csv` or `freetext`.
    pub format: String,
    pub enabled: bool,
    /// Fetch period; a MISP feed re-fetches only events whose manifest timestamp changed,
    /// and every fetch is conditional (ETag / Last-Modified).
    pub interval_secs: u64,
    /// CSV: 1-based columns holding indicators (MISP's `settings.csv.value`); empty: all.
    pub csv_value_columns: Vec<usize>,
    /// CSV: the delimiter, one character (`\t` for tab).
    pub csv_delimiter: String,
    /// CSV/freetext: whether the values are IDS indicators (MISP's `override_ids` = !to_ids).
    pub to_ids: bool,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            name: String::new(),
            url: String::new(),
            format: "misp".to_string(),
            enabled: true,
            interval_secs: 3600,
            csv_value_columns: Vec::new(),
            csv_delimiter: ",".to_string(),
            to_ids: true,
        }
    }
}

impl Default for IntelConfig {
    fn default() -> Self {
        IntelConfig {
            files: Vec::new(),
            warninglists_dir: None,
            include_non_ids: false,
            source: "local".to_string(),
            snapshot_path: None,
            min_indicators: 0,
            reload_interval_secs: 10,
            feeds: Vec::new(),
            feed_cache_dir: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct OutputConfig {
    /// true: every alert goes to `topics.enriched`; false: only alerts with a match.
    pub pass_through: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MispConfig {
    /// MISP base URL; unset means no MISP REST sync.
    pub url: Option<String>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<PathBuf>,
    /// PEM bundle of extra trusted CAs.
    pub ca_file: Option<PathBuf>,
    pub verify_tls: bool,
    pub timeout_secs: u64,
    /// Incremental pull period (DESIGN.md: 300).
    pub sync_interval_secs: u64,
    /// Full reconcile period (catches deletions and to_ids flips).
    pub full_sync_interval_secs: u64,
    /// restSearch page size.
    pub page_size: u32,
    /// Only attributes carrying one of these tags (event tags included); a `!` prefix
    /// excludes: `["tlp:white", "tlp:green", "!tlp:red"]`. Empty: no tag filter.
    pub tags: Vec<String>,
    /// Only events of these threat levels (1 high, 2 medium, 3 low, 4 undefined). Empty: all.
    pub threat_levels: Vec<u8>,
    /// Only attributes of published events.
    pub published_only: bool,
    /// Only these MISP attribute types. Empty: every type wazuh-misp matches.
    pub types: Vec<String>,
    /// Drop attributes whose MISP decay score is below this (0-100; restSearch
    /// `includeDecayScore`). Unset: no decay filter.
    pub decay_threshold: Option<f64>,
    /// Ask MISP to leave out attributes on its enabled warninglists (`enforceWarninglist`).
    pub enforce_warninglist: bool,
    /// MISP's own Kafka notifications (`Plugin.Kafka_*`), applied within seconds.
    pub notifications: NotificationsConfig,
    /// Live restSearch for observables the local set missed, for high-level alerts.
    pub live_query: LiveQueryConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct NotificationsConfig {
    pub enabled: bool,
    /// MISP's Kafka bootstrap servers; unset: `kafka.brokers` (same cluster, same security).
    pub brokers: Option<String>,
    /// MISP's `Plugin.Kafka_attribute_notifications_topic`.
    pub attribute_topic: String,
    /// MISP's `Plugin.Kafka_event_publish_notifications_topic`.
    pub event_publish_topic: String,
    /// Changes arriving within this window are applied in one snapshot rebuild.
    pub apply_delay_ms: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            enabled: false,
            brokers: None,
            attribute_topic: "misp_attribute".to_string(),
            event_publish_topic: "misp_event_publish".to_string(),
            apply_delay_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LiveQueryConfig {
    pub enabled: bool,
    /// Only alerts at or above this rule level.
    pub min_rule_level: u8,
    /// The most an alert waits for MISP; later answers still fill the cache.
    pub budget_ms: u64,
    /// At most this many observables per alert are asked about.
    pub max_values: usize,
}

impl Default for LiveQueryConfig {
    fn default() -> Self {
        LiveQueryConfig {
            enabled: false,
            min_rule_level: 12,
            budget_ms: 200,
            max_values: 8,
        }
    }
}

impl Default for MispConfig {
    fn default() -> Self {
        MispConfig {
            url: None,
            api_key: None,
            api_key_file: None,
            ca_file: None,
            verify_tls: true,
            timeout_secs: 30,
            sync_interval_secs: 300,
            full_sync_interval_secs: 3600,
            page_size: 5000,
            tags: Vec::new(),
            threat_levels: Vec::new(),
            published_only: false,
            types: Vec::new(),
            decay_threshold: None,
            enforce_warninglist: false,
            notifications: NotificationsConfig::default(),
            live_query: LiveQueryConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct SightingsConfig {
    pub enabled: bool,
    pub source: String,
}

impl Default for SightingsConfig {
    fn default() -> Self {
        SightingsConfig {
            enabled: false,
            source: "wazuh".to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct SharingConfig {
    /// Publish observables MISP does not know to `topics.iocs`.
    pub enabled: bool,
    /// Only from alerts at or above this rule level.
    pub min_rule_level: u8,
    /// Also push them to MISP: one event per day ("Wazuh detections YYYY-MM-DD").
    pub push_to_misp: bool,
    /// De-duplication window per value.
    pub dedup_ttl_secs: u64,
    /// Distribution of the daily event (0 your organisation only ... 3 all communities).
    pub push_distribution: u8,
    /// Threat level of the daily event (1 high ... 4 undefined).
    pub push_threat_level: u8,
    /// Tags put on the daily event.
    pub push_tags: Vec<String>,
    /// New IOCs are pushed in batches at most this often.
    pub push_interval_secs: u64,
}

impl Default for SharingConfig {
    fn default() -> Self {
        SharingConfig {
            enabled: false,
            min_rule_level: 10,
            push_to_misp: false,
            dedup_ttl_secs: 86_400,
            push_distribution: 0,
            push_threat_level: 3,
            push_tags: vec!["wazuh-misp".to_string(), "tlp:amber".to_string()],
            push_interval_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ServerConfig {
    /// `/metrics`, `/healthz`, `/readyz`, `/v1/lookup` (DESIGN.md: 0.0.0.0:9108).
    pub listen: String,
    pub enabled: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:9108".to_string(),
            enabled: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    /// A tracing filter (`info`, `wazuh_misp=debug,rdkafka=warn`); `RUST_LOG` wins when set.
    pub level: String,
    /// `json` (production) or `pretty` (local).
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: "pretty".to_string(),
        }
    }
}

/// Every problem found in a config, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid config {source_name}:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<String>,
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        "invalid_config"
    }
}

impl Config {
    /// Reads `path` (or the defaults when `None`), applies `WAZUH_MISP__*` overrides from
    /// `env`, and validates. Every problem is reported in one error.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let source_name = path.map_or("(defaults)".to_string(), |p| p.display().to_string());
        let fail = |problems: Vec<String>| ConfigError {
            source_name: source_name.clone(),
            problems,
        };
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|err| fail(vec![format!("cannot read: {err}")]))?,
            None => String::new(),
        };
        let mut tree: toml::Table = toml::from_str(&text)
            .map_err(|err| fail(vec![format!("toml syntax: {}", err.message())]))?;
        let mut problems = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            if keys.iter().any(String::is_empty) {
                problems.push(format!("env {name}: empty key segment"));
                continue;
            }
            set_path(&mut tree, &keys, parse_env_value(&value));
        }
        let mut unknown = Vec::new();
        let parsed: Result<Config, _> =
            serde_ignored::deserialize(toml::Value::Table(tree.clone()), |path| {
                unknown.push(path.to_string())
            });
        // Unknown keys are all collected (serde_ignored) rather than failing on the first.
        let config = match parsed {
            Ok(config) => Some(config),
            Err(err) => {
                problems.push(err.to_string());
                None
            }
        };
        for key in &unknown {
            problems.push(format!("unknown key `{key}`"));
        }
        let Some(config) = config else {
            return Err(fail(problems));
        };
        problems.extend(config.problems());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// Every cross-field problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kafka.brokers.trim().is_empty() {
            problems.push("kafka.brokers is empty".to_string());
        }
        if self.kafka.group_id.trim().is_empty() {
            problems.push("kafka.group_id is empty".to_string());
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.kafka.compression.as_str()) {
            problems.push(format!(
                "kafka.compression `{}` is not one of none, gzip, snappy, lz4",
                self.kafka.compression
            ));
        }
        if self.kafka.compression == "zstd" {
            problems.push(
                "kafka.compression `zstd` is not built into this binary; use lz4".to_string(),
            );
        }
        for enforced in [
            "group.id",
            "enable.auto.offset.store",
            "transactional.id",
            "bootstrap.servers",
        ] {
            if self.kafka.librdkafka.contains_key(enforced) {
                problems.push(format!("kafka.librdkafka.\"{enforced}\" is set by wazuh-misp; use the kafka.* key instead"));
            }
        }
        if self.kafka.librdkafka.contains_key("sasl.password") {
            problems.push("kafka.librdkafka.\"sasl.password\" would be a secret in the config file; use kafka.sasl_password (env) or kafka.sasl_password_file".to_string());
        }
        let topics = [
            ("topics.input", &self.topics.input),
            ("topics.enriched", &self.topics.enriched),
            ("topics.iocs", &self.topics.iocs),
            ("topics.dlq", &self.topics.dlq),
            ("topics.indicators", &self.topics.indicators),
        ];
        for (name, topic) in topics {
            if topic.trim().is_empty() {
                problems.push(format!("{name} is empty"));
            }
        }
        for (name, topic) in &topics[1..] {
            if *topic == &self.topics.input {
                problems.push(format!(
                    "{name} is the input topic `{topic}`: output would loop back"
                ));
            }
        }
        if self.pipeline.max_in_flight == 0 {
            problems.push("pipeline.max_in_flight must be at least 1".to_string());
        }
        if self.pipeline.workers > 256 {
            problems.push(format!(
                "pipeline.workers {} is more than 256",
                self.pipeline.workers
            ));
        }
        if self.input.max_message_bytes < 1024 {
            problems.push("input.max_message_bytes must be at least 1024".to_string());
        }
        if !["local", "topic"].contains(&self.intel.source.as_str()) {
            problems.push(format!(
                "intel.source `{}` is not `local` or `topic`",
                self.intel.source
            ));
        }
        for file in &self.intel.files {
            if !file.exists() {
                problems.push(format!("intel.files: {} does not exist", file.display()));
            }
        }
        if let Some(dir) = &self.intel.warninglists_dir {
            if !dir.is_dir() {
                problems.push(format!(
                    "intel.warninglists_dir: {} is not a directory",
                    dir.display()
                ));
            }
        }
        if let Some(url) = &self.misp.url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(format!(
                    "misp.url `{url}` must start with https:// or http://"
                ));
            }
            if self.misp.api_key.is_none() && self.misp.api_key_file.is_none() {
                problems.push("misp.url is set but neither misp.api_key (env WAZUH_MISP__MISP__API_KEY) nor misp.api_key_file is".to_string());
            }
        }
        if let Some(file) = &self.misp.api_key_file {
            if let Err(err) = std::fs::metadata(file) {
                problems.push(format!("misp.api_key_file {}: {err}", file.display()));
            }
        }
        if let Some(file) = &self.misp.ca_file {
            if !file.is_file() {
                problems.push(format!("misp.ca_file {} is not a file", file.display()));
            }
        }
        if let Some(file) = &self.kafka.sasl_password_file {
            if let Err(err) = std::fs::metadata(file) {
                problems.push(format!(
                    "kafka.sasl_password_file {}: {err}",
                    file.display()
                ));
            }
        }
        for level in &self.misp.threat_levels {
            if !(1..=4).contains(level) {
                problems.push(format!(
                    "misp.threat_levels: {level} is not a MISP threat level (1-4)"
                ));
            }
        }
        for misp_type in &self.misp.types {
            if crate::intel::types::plan(misp_type).is_none() {
                problems.push(format!(
                    "misp.types: `{misp_type}` is not a type wazuh-misp matches"
                ));
            }
        }
        if self.misp.page_size == 0 {
            problems.push("misp.page_size must be at least 1".to_string());
        }
        if self.misp.sync_interval_secs == 0 {
            problems.push("misp.sync_interval_secs must be at least 1".to_string());
        }
        if (self.sightings.enabled || self.sharing.push_to_misp) && self.misp.url.is_none() {
            problems.push("sightings.enabled / sharing.push_to_misp need misp.url".to_string());
        }
        if self.sharing.push_to_misp && !self.sharing.enabled {
            problems.push("sharing.push_to_misp needs sharing.enabled".to_string());
        }
        if self.sharing.push_distribution > 3 {
            problems.push(format!(
                "sharing.push_distribution {} is not 0-3 (org, community, connected, all)",
                self.sharing.push_distribution
            ));
        }
        if !(1..=4).contains(&self.sharing.push_threat_level) {
            problems.push(format!(
                "sharing.push_threat_level {} is not a MISP threat level (1-4)",
                self.sharing.push_threat_level
            ));
        }
        if let Some(threshold) = self.misp.decay_threshold {
            if !(0.0..=100.0).contains(&threshold) {
                problems.push(format!(
                    "misp.decay_threshold {threshold} is not within 0-100"
                ));
            }
        }
        if self.misp.notifications.enabled {
            if self.misp.notifications.attribute_topic.trim().is_empty()
                && self
                    .misp
                    .notifications
                    .event_publish_topic
                    .trim()
                    .is_empty()
            {
                problems.push("misp.notifications.enabled but both topics are empty".to_string());
            }
            if self.intel.source == "topic" {
                problems.push("misp.notifications apply to intel.source = \"local\" (and the sync role), not to processors reading topics.indicators".to_string());
            }
        }
        if self.misp.live_query.enabled {
            if self.misp.url.is_none() {
                problems.push("misp.live_query.enabled needs misp.url".to_string());
            }
            if self.misp.live_query.budget_ms == 0 || self.misp.live_query.budget_ms > 5_000 {
                problems.push(format!(
                    "misp.live_query.budget_ms {} is not within 1-5000",
                    self.misp.live_query.budget_ms
                ));
            }
        }
        let mut feed_names = std::collections::HashSet::new();
        for (idx, feed) in self.intel.feeds.iter().enumerate() {
            let label = if feed.name.is_empty() {
                format!("intel.feeds[{idx}]")
            } else {
                format!("intel.feeds `{}`", feed.name)
            };
            if feed.name.is_empty()
                || feed.name.chars().all(|c| c == '.')
                || !feed
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                problems.push(format!(
                    "{label}: name must be non-empty letters, digits, `-`, `_` or `.`"
                ));
            } else if !feed_names.insert(feed.name.clone()) {
                problems.push(format!("{label}: name used twice"));
            }
            if !(feed.url.starts_with("https://") || feed.url.starts_with("http://")) {
                problems.push(format!(
                    "{label}: url `{}` must start with https:// or http://",
                    feed.url
                ));
            }
            if !["misp", "csv", "freetext"].contains(&feed.format.as_str()) {
                problems.push(format!(
                    "{label}: format `{}` is not misp, csv or freetext",
                    feed.format
                ));
            }
            if feed.interval_secs == 0 {
                problems.push(format!("{label}: interval_secs must be at least 1"));
            }
            if feed.csv_value_columns.contains(&0) {
                problems.push(format!("{label}: csv_value_columns are 1-based"));
            }
            let delimiter = feed.csv_delimiter.replace("\\t", "\t");
            if delimiter.chars().count() != 1 {
                problems.push(format!(
                    "{label}: csv_delimiter `{}` is not one character",
                    feed.csv_delimiter
                ));
            }
        }
        if self.sharing.min_rule_level > 16 {
            problems.push(format!(
                "sharing.min_rule_level {} is above 16",
                self.sharing.min_rule_level
            ));
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.listen `{}` is not an address:port",
                self.server.listen
            ));
        }
        if !["json", "pretty"].contains(&self.log.format.as_str()) {
            problems.push(format!(
                "log.format `{}` is not `json` or `pretty`",
                self.log.format
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(format!(
                "log.level `{}` is not a valid filter",
                self.log.level
            ));
        }
        problems
    }

    /// The MISP API key, from `misp.api_key` or `misp.api_key_file`.
    pub fn misp_api_key(&self) -> Result<Option<Secret>, ConfigError> {
        read_secret(
            self.misp.api_key.as_ref(),
            self.misp.api_key_file.as_deref(),
            "misp.api_key_file",
        )
    }

    pub fn sasl_password(&self) -> Result<Option<Secret>, ConfigError> {
        read_secret(
            self.kafka.sasl_password.as_ref(),
            self.kafka.sasl_password_file.as_deref(),
            "kafka.sasl_password_file",
        )
    }

    /// The effective config as TOML, secrets masked.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|err| format!("# cannot render config: {err}\n"))
    }

    pub fn workers(&self) -> usize {
        if self.pipeline.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.pipeline.workers
        }
    }

    pub fn processor_options(&self) -> crate::pipeline::ProcessorOptions {
        crate::pipeline::ProcessorOptions {
            nested_keys: self.input.nested_keys.clone(),
            max_message_bytes: self.input.max_message_bytes,
            enrich: crate::pipeline::enrich::EnrichOptions {
                reference_base: self.misp.url.clone(),
            },
            // Set by the pipeline from what it runs (`kafka::pipeline::processor_options`).
            describe_unmatched: false,
        }
    }

    pub fn intel_sources(&self) -> crate::intel::IntelSources {
        crate::intel::IntelSources {
            files: self.intel.files.clone(),
            warninglists_dir: self.intel.warninglists_dir.clone(),
            include_non_ids: self.intel.include_non_ids,
            misp_filter: self.misp_filter(),
            decay_threshold: self.misp.decay_threshold,
            feeds: self.intel.feeds.clone(),
            feed_cache_dir: (!self.intel.feeds.is_empty())
                .then(|| crate::intel::feeds::cache_dir(self)),
        }
    }

    /// The restSearch filters of `misp.tags`, `threat_levels`, `published_only` and `types`.
    pub fn misp_filter(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut filter = serde_json::Map::new();
        let (deny, allow): (Vec<&String>, Vec<&String>) =
            self.misp.tags.iter().partition(|tag| tag.starts_with('!'));
        if !self.misp.tags.is_empty() {
            let deny: Vec<&str> = deny.iter().map(|tag| tag.trim_start_matches('!')).collect();
            let mut tags = serde_json::Map::new();
            if !allow.is_empty() {
                tags.insert("OR".into(), serde_json::json!(allow));
            }
            if !deny.is_empty() {
                tags.insert("NOT".into(), serde_json::json!(deny));
            }
            filter.insert("tags".into(), serde_json::Value::Object(tags));
        }
        if !self.misp.threat_levels.is_empty() {
            filter.insert(
                "threat_level_id".into(),
                serde_json::json!(self.misp.threat_levels),
            );
        }
        if self.misp.published_only {
            filter.insert("published".into(), serde_json::json!(true));
        }
        if !self.misp.types.is_empty() {
            filter.insert("type".into(), serde_json::json!({ "OR": self.misp.types }));
        }
        if self.misp.decay_threshold.is_some() {
            filter.insert("includeDecayScore".into(), serde_json::json!(1));
        }
        if self.misp.enforce_warninglist {
            filter.insert("enforceWarninglist".into(), serde_json::json!(1));
        }
        filter
    }
}

fn read_secret(
    inline: Option<&Secret>,
    file: Option<&Path>,
    key: &str,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(secret) = inline {
        return Ok(Some(secret.clone()));
    }
    match file {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(path)
            .map(|text| Some(Secret::new(text.trim().to_string())))
            .map_err(|err| ConfigError {
                source_name: key.to_string(),
                problems: vec![format!("cannot read {}: {err}", path.display())],
            }),
    }
}

/// Parses an env value as TOML (numbers, booleans, arrays, inline tables) or else a string.
fn parse_env_value(raw: &str) -> toml::Value {
    let trimmed = raw.trim();
    let looks_structured = trimmed.starts_with('[')
        || trimmed.starts_with('{')
        || trimmed == "true"
        || trimmed == "false"
        || trimmed.parse::<i64>().is_ok()
        || trimmed.parse::<f64>().is_ok();
    if looks_structured {
        if let Ok(table) = toml::from_str::<toml::Table>(&format!("v = {trimmed}")) {
            if let Some(value) = table.get("v") {
                return value.clone();
            }
        }
    }
    toml::Value::String(raw.to_string())
}

fn set_path(tree: &mut toml::Table, keys: &[String], value: toml::Value) {
    let (last, parents) = keys.split_last().expect("keys is non-empty");
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).unwrap();
        Config::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let config = load("", &[]).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(config.topics.dlq, "wazuh-alerts-dlq");
        assert_eq!(config.server.listen, "0.0.0.0:9108");
        assert_eq!(config.misp.sync_interval_secs, 300);
    }

    #[test]
    fn misp_connector_keys_are_checked_together() {
        let err = load(
            r#"
[intel]
source = "topic"
[[intel.feeds]]
name = ".."
url = "ftp://feeds.example/x"
format = "stix"
csv_delimiter = ";;"
[[intel.feeds]]
name = "ok"
url = "https://feeds.example/ok"
csv_value_columns = [0]
[[intel.feeds]]
name = "ok"
url = "https://feeds.example/again"
[misp]
decay_threshold = 150.0
[misp.notifications]
enabled = true
[misp.live_query]
enabled = true
budget_ms = 0
[sharing]
push_to_misp = true
push_distribution = 4
push_threat_level = 0
"#,
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "intel.feeds `..`: name must be",
            "intel.feeds `..`: url `ftp://feeds.example/x`",
            "format `stix`",
            "csv_delimiter `;;`",
            "intel.feeds `ok`: csv_value_columns are 1-based",
            "intel.feeds `ok`: name used twice",
            "misp.decay_threshold 150",
            "misp.notifications apply to intel.source = \"local\"",
            "misp.live_query.enabled needs misp.url",
            "misp.live_query.budget_ms 0",
            "sharing.push_to_misp needs sharing.enabled",
            "sightings.enabled / sharing.push_to_misp need misp.url",
            "sharing.push_distribution 4",
            "sharing.push_threat_level 0",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let ok = load(
            r#"
[[intel.feeds]]
name = "circl-osint"
url = "https://www.circl.lu/doc/misp/feed-osint"
[[intel.feeds]]
name = "feodo"
url = "https://feodotracker.abuse.ch/downloads/ipblocklist.csv"
format = "csv"
csv_value_columns = [2]
csv_delimiter = "\\t"
"#,
            &[],
        )
        .unwrap();
        assert_eq!(ok.intel.feeds[1].csv_value_columns, [2]);
        assert!(ok.intel_sources().feed_cache_dir.is_some());
    }

    #[test]
    fn default_toml_documents_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let config = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            config,
            Config::default(),
            "config/default.toml and the Default impls disagree"
        );
    }

    #[test]
    fn env_overrides() {
        let config = load(
            "[kafka]\nbrokers = \"a:1\"\n",
            &[
                ("WAZUH_MISP__KAFKA__BROKERS", "b:2"),
                ("WAZUH_MISP__PIPELINE__MAX_IN_FLIGHT", "42"),
                ("WAZUH_MISP__OUTPUT__PASS_THROUGH", "true"),
                (
                    "WAZUH_MISP__KAFKA__LIBRDKAFKA__security.protocol",
                    "SASL_SSL",
                ),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(config.kafka.brokers, "b:2");
        assert_eq!(config.pipeline.max_in_flight, 42);
        assert!(config.output.pass_through);
        assert_eq!(
            config
                .kafka
                .librdkafka
                .get("security.protocol")
                .map(String::as_str),
            Some("SASL_SSL")
        );
    }

    #[test]
    fn every_problem_reported_at_once() {
        let err = load(
            "[kafka]\nbrokers = \"\"\nbogus = 1\n[topics]\nenriched = \"wazuh-alerts\"\n[server]\nlisten = \"nope\"\n[misp]\nurl = \"ftp://x\"\n[log]\nformat = \"xml\"\n[nosuch]\na = 1\n",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "kafka.brokers is empty",
            "unknown key `kafka.bogus`",
            "unknown key `nosuch`",
            "output would loop back",
            "server.listen",
            "misp.url `ftp://x`",
            "api_key",
            "log.format",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn secrets_never_printed() {
        let config = load(
            "[misp]\nurl = \"https://misp.example\"\n",
            &[("WAZUH_MISP__MISP__API_KEY", "TOPSECRETKEY123")],
        )
        .unwrap();
        assert_eq!(
            config.misp_api_key().unwrap().unwrap().expose(),
            "TOPSECRETKEY123"
        );
        assert!(!format!("{config:?}").contains("TOPSECRETKEY123"));
        assert!(!config.to_redacted_toml().contains("TOPSECRETKEY123"));
        assert!(config.to_redacted_toml().contains("***"));
    }

    #[test]
    fn misp_filters_become_restsearch_filters() {
        let config = load(
            "[misp]\nurl = \"https://misp.example\"\napi_key_file = \"/dev/null\"\ntags = [\"tlp:white\", \"tlp:green\", \"!tlp:red\"]\nthreat_levels = [1, 2]\npublished_only = true\ntypes = [\"ip-dst\", \"domain\"]\n",
            &[],
        )
        .unwrap();
        let sync = crate::intel::sync::with_filters(
            crate::intel::sync::full_sync_filter(false),
            &config.misp_filter(),
        );
        assert_eq!(
            sync["tags"],
            serde_json::json!({"OR": ["tlp:white", "tlp:green"], "NOT": ["tlp:red"]})
        );
        assert_eq!(sync["threat_level_id"], serde_json::json!([1, 2]));
        assert_eq!(sync["published"], serde_json::json!(true));
        assert_eq!(
            sync["type"],
            serde_json::json!({"OR": ["ip-dst", "domain"]})
        );
        assert_eq!(sync["to_ids"], serde_json::json!(1));
        assert_eq!(sync["deleted"], serde_json::json!(0));
        let err = load("[misp]\nthreat_levels = [7]\ntypes = [\"comment\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("threat_levels: 7") && err.contains("`comment`"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_are_reported() {
        let err = load("[pipeline]\nmax_in_flight = \"many\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("max_in_flight"), "{err}");
    }
}
