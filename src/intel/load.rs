//! Reading MISP indicator files: every input `enrich --indicators` and `intel.files` take.
//!
//! A path is recognised by content: a directory with `manifest.json` (MISP JSON feed), a JSON
//! file with a restSearch response (`{"response":{"Attribute":[...]}}` or
//! `{"response":[{"Event":...}]}`) or one event (`{"Event":{...}}`), a `.csv` MISP CSV export
//! (header with at least `type,value`), or a text file with one value per line (freetext).
//! MISP's loose scalar types (`"1"`, `1`, `true`) are all accepted for flags and timestamps.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use hashbrown::HashMap;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::snapshot::{AttributeInput, EventInfo, SnapshotBuilder};
use crate::pipeline::normalize;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid MISP json: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("{path}: not a MISP format: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: invalid csv: {reason}")]
    Csv { path: PathBuf, reason: String },
}

impl LoadError {
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Io { .. } => "io",
            LoadError::Json { .. } => "json",
            LoadError::Format { .. } => "format",
            LoadError::Csv { .. } => "csv",
        }
    }
}

// ---------- lenient scalars ----------

fn flex_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean, 0/1 or \"0\"/\"1\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
            Ok(v != 0.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            Ok(matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "y"
            ))
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    deserializer.deserialize_any(V)
}

fn flex_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a string of digits")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            Ok(v as i64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            Ok(v.trim().parse().unwrap_or(0))
        }
        fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
        fn visit_none<E: de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
    }
    deserializer.deserialize_any(V)
}

fn flex_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or a string of one")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            Ok(v.trim().parse().unwrap_or(0.0))
        }
        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(0.0)
        }
    }
    deserializer.deserialize_any(V)
}

/// A string-ish scalar (`"12"` or `12`), as text.
fn flex_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(V)
}

/// `null` (mmisp-api sends `"Tag": null`) or a missing key → the type's default.
fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------- MISP JSON shapes ----------

#[derive(Deserialize, Default)]
pub struct RawTag<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
pub struct RawOrg<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
pub struct RawAttribute<'a> {
    #[serde(borrow, default)]
    pub uuid: Cow<'a, str>,
    #[serde(borrow, default, rename = "type")]
    pub misp_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub category: Cow<'a, str>,
    #[serde(borrow, default)]
    pub value: Cow<'a, str>,
    #[serde(default = "yes", deserialize_with = "flex_bool")]
    pub to_ids: bool,
    #[serde(default, deserialize_with = "flex_bool")]
    pub deleted: bool,
    #[serde(default, deserialize_with = "flex_i64")]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "flex_string")]
    pub first_seen: Option<String>,
    #[serde(default, deserialize_with = "flex_string")]
    pub last_seen: Option<String>,
    #[serde(borrow, default, deserialize_with = "null_default", rename = "Tag")]
    pub tags: Vec<RawTag<'a>>,
    #[serde(borrow, default, rename = "Event")]
    pub event: Option<RawEvent<'a>>,
    #[serde(default, deserialize_with = "flex_string")]
    pub event_id: Option<String>,
    #[serde(borrow, default)]
    pub event_uuid: Option<Cow<'a, str>>,
    /// restSearch `includeDecayScore`: one entry per decaying model.
    #[serde(default, deserialize_with = "null_default")]
    pub decay_score: Vec<RawDecayScore>,
    /// `"misp"` in persisted snapshots and indicator-topic records: the attribute came from
    /// MISP (REST or notifications), not from files or feeds.
    #[serde(borrow, default, rename = "wazuh_misp_origin")]
    pub origin: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
pub struct RawDecayScore {
    #[serde(default, deserialize_with = "flex_f64")]
    pub score: f64,
    #[serde(default, deserialize_with = "flex_bool")]
    pub decayed: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
pub struct RawObject<'a> {
    #[serde(
        borrow,
        default,
        deserialize_with = "null_default",
        rename = "Attribute"
    )]
    pub attributes: Vec<RawAttribute<'a>>,
}

#[derive(Deserialize, Default)]
pub struct RawEvent<'a> {
    #[serde(default, deserialize_with = "flex_string")]
    pub id: Option<String>,
    #[serde(borrow, default)]
    pub uuid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub info: Cow<'a, str>,
    #[serde(default, deserialize_with = "flex_string")]
    pub threat_level_id: Option<String>,
    #[serde(borrow, default)]
    pub date: Cow<'a, str>,
    #[serde(borrow, default, rename = "Orgc")]
    pub orgc: Option<RawOrg<'a>>,
    #[serde(borrow, default, deserialize_with = "null_default", rename = "Tag")]
    pub tags: Vec<RawTag<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "null_default",
        rename = "Attribute"
    )]
    pub attributes: Vec<RawAttribute<'a>>,
    #[serde(borrow, default, deserialize_with = "null_default", rename = "Object")]
    pub objects: Vec<RawObject<'a>>,
}

#[derive(Deserialize)]
struct EventWrapper<'a> {
    #[serde(borrow, rename = "Event")]
    event: RawEvent<'a>,
}

#[derive(Deserialize)]
struct AttributeList<'a> {
    #[serde(borrow, rename = "Attribute", default)]
    attributes: Vec<RawAttribute<'a>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ResponseBody<'a> {
    #[serde(borrow)]
    Attributes(AttributeList<'a>),
    #[serde(borrow)]
    Events(Vec<EventWrapper<'a>>),
}

/// Where loaded events come from, for their `EventInfo`.
#[derive(Default)]
pub struct Loader {
    /// Events already added, by uuid (or id), so attributes of one event share it.
    events: HashMap<String, u32>,
    /// What is loaded comes from MISP's REST API or notifications.
    pub from_misp: bool,
    /// Drop attributes whose best decay score is under this, or that every model
    /// says decayed (`misp.decay_threshold`; only attributes carrying `decay_score`).
    pub decay_threshold: Option<f64>,
}

impl RawEvent<'_> {
    fn info(&self, tags: Box<[u32]>) -> EventInfo {
        EventInfo {
            id: self.id.clone().unwrap_or_default().into(),
            uuid: self.uuid.as_ref().into(),
            info: self.info.as_ref().into(),
            threat_level_id: self
                .threat_level_id
                .clone()
                .unwrap_or_else(|| "4".to_string())
                .into(),
            date: self.date.as_ref().into(),
            orgc: self
                .orgc
                .as_ref()
                .map(|org| org.name.as_ref())
                .unwrap_or("")
                .into(),
            tags,
        }
    }
}

impl Loader {
    /// A loader for what MISP answers (REST pulls, notifications): attributes are marked as
    /// from MISP, and `decay_threshold` applies.
    pub fn for_misp(decay_threshold: Option<f64>) -> Self {
        Loader {
            from_misp: true,
            decay_threshold,
            ..Loader::default()
        }
    }

    fn event_handle(
        &mut self,
        builder: &mut SnapshotBuilder,
        event: &RawEvent<'_>,
        fallback_key: &str,
    ) -> u32 {
        let key = if !event.uuid.is_empty() {
            event.uuid.to_string()
        } else if let Some(id) = &event.id {
            format!("id:{id}")
        } else {
            fallback_key.to_string()
        };
        if let Some(handle) = self.events.get(&key) {
            return *handle;
        }
        let tags: Vec<&str> = event.tags.iter().map(|tag| tag.name.as_ref()).collect();
        let handle = builder.add_event(event.info(Box::new([])), &tags);
        self.events.insert(key, handle);
        handle
    }

    fn add_raw_attribute(
        &self,
        builder: &mut SnapshotBuilder,
        event: u32,
        attribute: &RawAttribute<'_>,
    ) {
        if self.decayed(attribute) {
            builder.skip_decayed();
            return;
        }
        let tags: Vec<&str> = attribute.tags.iter().map(|tag| tag.name.as_ref()).collect();
        builder.add_attribute(
            event,
            &AttributeInput {
                uuid: &attribute.uuid,
                misp_type: &attribute.misp_type,
                category: &attribute.category,
                value: &attribute.value,
                to_ids: attribute.to_ids,
                deleted: attribute.deleted,
                timestamp: attribute.timestamp,
                first_seen: attribute.first_seen.as_deref(),
                last_seen: attribute.last_seen.as_deref(),
                from_misp: self.from_misp || attribute.origin.as_deref() == Some("misp"),
            },
            &tags,
        );
    }

    /// Whether the attribute's decay scores put it under `decay_threshold`.
    pub fn decayed(&self, attribute: &RawAttribute<'_>) -> bool {
        let Some(threshold) = self.decay_threshold else {
            return false;
        };
        if attribute.decay_score.is_empty() {
            return false;
        }
        let best = attribute
            .decay_score
            .iter()
            .map(|score| score.score)
            .fold(f64::MIN, f64::max);
        attribute.decay_score.iter().all(|score| score.decayed) || best < threshold
    }

    /// Adds a whole event (attributes and object attributes).
    pub fn add_event(
        &mut self,
        builder: &mut SnapshotBuilder,
        event: &RawEvent<'_>,
        fallback_key: &str,
    ) {
        let handle = self.event_handle(builder, event, fallback_key);
        for attribute in event.attributes.iter().chain(
            event
                .objects
                .iter()
                .flat_map(|object| object.attributes.iter()),
        ) {
            self.add_raw_attribute(builder, handle, attribute);
        }
    }

    /// Adds restSearch attributes, each with its embedded `Event` (or `event_id`/`event_uuid`).
    pub fn add_attributes(
        &mut self,
        builder: &mut SnapshotBuilder,
        attributes: &[RawAttribute<'_>],
        source: &str,
    ) {
        for attribute in attributes {
            let handle = match &attribute.event {
                Some(event) => self.event_handle(builder, event, source),
                None => {
                    let stub = RawEvent {
                        id: attribute.event_id.clone(),
                        uuid: attribute.event_uuid.clone().unwrap_or_default(),
                        ..RawEvent::default()
                    };
                    self.event_handle(builder, &stub, source)
                }
            };
            self.add_raw_attribute(builder, handle, attribute);
        }
    }

    /// Loads any JSON body MISP answers with: restSearch (both shapes), one event, a list of events.
    pub fn add_json(
        &mut self,
        builder: &mut SnapshotBuilder,
        bytes: &[u8],
        path: &Path,
    ) -> Result<(), LoadError> {
        let json_err = |err: serde_json::Error| LoadError::Json {
            path: path.to_path_buf(),
            reason: err.to_string(),
        };
        let source = path.display().to_string();
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if first == Some(b'[') {
            let events: Vec<EventWrapper<'_>> = serde_json::from_slice(bytes).map_err(json_err)?;
            for wrapper in &events {
                self.add_event(builder, &wrapper.event, &source);
            }
            return Ok(());
        }
        // Peek at the top-level keys without building a DOM.
        #[derive(Deserialize)]
        struct Keys<'a> {
            #[serde(borrow, default)]
            response: Option<&'a serde_json::value::RawValue>,
            #[serde(borrow, default, rename = "Event")]
            event: Option<&'a serde_json::value::RawValue>,
        }
        let keys: Keys<'_> = serde_json::from_slice(bytes).map_err(json_err)?;
        if let Some(response) = keys.response {
            let body: ResponseBody<'_> = serde_json::from_str(response.get()).map_err(|err| LoadError::Format {
                path: path.to_path_buf(),
                reason: format!("response is neither {{\"Attribute\":[...]}} nor [{{\"Event\":...}}]: {err}"),
            })?;
            match body {
                ResponseBody::Attributes(list) => {
                    self.add_attributes(builder, &list.attributes, &source)
                }
                ResponseBody::Events(events) => {
                    for wrapper in &events {
                        self.add_event(builder, &wrapper.event, &source);
                    }
                }
            }
            Ok(())
        } else if let Some(event) = keys.event {
            let event: RawEvent<'_> = serde_json::from_str(event.get()).map_err(json_err)?;
            self.add_event(builder, &event, &source);
            Ok(())
        } else {
            Err(LoadError::Format {
                path: path.to_path_buf(),
                reason: "json has neither \"response\" nor \"Event\"".to_string(),
            })
        }
    }

    /// A MISP JSON feed directory: `manifest.json` and one `<uuid>.json` per event.
    pub fn add_feed_dir(
        &mut self,
        builder: &mut SnapshotBuilder,
        dir: &Path,
    ) -> Result<(), LoadError> {
        let manifest_path = dir.join("manifest.json");
        let manifest_bytes = read(&manifest_path)?;
        let manifest: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&manifest_bytes).map_err(|err| LoadError::Json {
                path: manifest_path.clone(),
                reason: err.to_string(),
            })?;
        let mut uuids: Vec<&String> = manifest.keys().collect();
        uuids.sort();
        for uuid in uuids {
            if uuid.contains(['/', '\\']) || uuid.contains("..") {
                return Err(LoadError::Format {
                    path: manifest_path.clone(),
                    reason: format!("event key {uuid:?} is not a uuid"),
                });
            }
            let event_path = dir.join(format!("{uuid}.json"));
            let bytes = read(&event_path)?;
            self.add_json(builder, &bytes, &event_path)?;
        }
        Ok(())
    }

    /// MISP CSV export: a header row with at least `type` and `value`.
    pub fn add_csv(
        &mut self,
        builder: &mut SnapshotBuilder,
        bytes: &[u8],
        path: &Path,
    ) -> Result<(), LoadError> {
        let csv_err = |reason: String| LoadError::Csv {
            path: path.to_path_buf(),
            reason,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|err| csv_err(err.to_string()))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|header| header.eq_ignore_ascii_case(name))
        };
        let (Some(type_col), Some(value_col)) = (column("type"), column("value")) else {
            return Err(csv_err(format!(
                "header {:?} lacks the type and value columns",
                headers.iter().collect::<Vec<_>>()
            )));
        };
        let uuid_col = column("uuid");
        let event_col = column("event_id");
        let category_col = column("category");
        let to_ids_col = column("to_ids");
        let tag_col = column("attribute_tag").or_else(|| column("tags"));
        let info_col = column("event_info");
        let source = path.display().to_string();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|err| csv_err(format!("row {}: {err}", line + 2)))?;
            let get = |col: Option<usize>| col.and_then(|col| record.get(col)).unwrap_or("");
            let event_id = get(event_col);
            let event = RawEvent {
                id: (!event_id.is_empty()).then(|| event_id.to_string()),
                info: Cow::Owned(if get(info_col).is_empty() {
                    format!("CSV import {source}")
                } else {
                    get(info_col).to_string()
                }),
                ..RawEvent::default()
            };
            let handle = self.event_handle(builder, &event, &source);
            let to_ids = matches!(
                get(to_ids_col).to_ascii_lowercase().as_str(),
                "" | "1" | "true" | "yes"
            );
            let tags: Vec<&str> = get(tag_col)
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .collect();
            let synthetic_uuid;
            let uuid = if get(uuid_col).is_empty() {
                synthetic_uuid = format!("{source}#{}", line + 2);
                synthetic_uuid.as_str()
            } else {
                get(uuid_col)
            };
            builder.add_attribute(
                handle,
                &AttributeInput {
                    uuid,
                    misp_type: get(Some(type_col)),
                    category: get(category_col),
                    value: get(Some(value_col)),
                    to_ids,
                    ..AttributeInput::default()
                },
                &tags,
            );
        }
        Ok(())
    }

    /// Freetext: one value per line, type inferred; `#` starts a comment line.
    pub fn add_freetext(&mut self, builder: &mut SnapshotBuilder, text: &str, path: &Path) {
        let source = path.display().to_string();
        let event = RawEvent {
            info: Cow::Owned(format!("Freetext import {source}")),
            ..RawEvent::default()
        };
        let handle = self.event_handle(builder, &event, &source);
        for (line_no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let value = line.split([' ', '\t', ',']).next().unwrap_or(line);
            let Some((misp_type, category)) = infer_type(value) else {
                continue;
            };
            let uuid = format!("{source}#{}", line_no + 1);
            builder.add_attribute(
                handle,
                &AttributeInput {
                    uuid: &uuid,
                    misp_type,
                    category,
                    value,
                    to_ids: true,
                    ..AttributeInput::default()
                },
                &[],
            );
        }
    }

    /// The event of a CSV or freetext feed: one per feed, keyed `feed:<source>`.
    fn feed_event(&mut self, builder: &mut SnapshotBuilder, source: &str) -> u32 {
        let event = RawEvent {
            info: Cow::Owned(format!("Feed {source}")),
            orgc: Some(RawOrg {
                name: Cow::Borrowed(source),
            }),
            ..RawEvent::default()
        };
        self.event_handle(builder, &event, &format!("feed:{source}"))
    }

    /// Adds one feed value; its uuid is `feed:<source>#<value>`, the same on every fetch.
    fn add_feed_value(
        builder: &mut SnapshotBuilder,
        event: u32,
        source: &str,
        value: &str,
        to_ids: bool,
    ) -> bool {
        let Some((misp_type, category)) = infer_type(value) else {
            return false;
        };
        let uuid = format!("feed:{source}#{value}");
        builder.add_attribute(
            event,
            &AttributeInput {
                uuid: &uuid,
                misp_type,
                category,
                value,
                to_ids,
                ..AttributeInput::default()
            },
            &[],
        );
        true
    }

    /// A MISP "simple CSV" feed: no header; rows whose first cell starts with `#` are
    /// comments; `columns` are the 1-based cells holding indicators (empty: every cell);
    /// cells are trimmed of whitespace and quotes and their type inferred ([`infer_type`]),
    /// cells of no known type are skipped. Returns the number of values added.
    pub fn add_csv_feed(
        &mut self,
        builder: &mut SnapshotBuilder,
        bytes: &[u8],
        columns: &[usize],
        delimiter: u8,
        to_ids: bool,
        source: &str,
    ) -> Result<usize, LoadError> {
        // Comment rows go before parsing: an odd quote in a comment must not swallow rows.
        let text = String::from_utf8_lossy(bytes);
        let mut rows = String::with_capacity(text.len());
        for line in text.lines() {
            let first =
                line.trim_start_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
            if first.is_empty() || first.starts_with('#') {
                continue;
            }
            rows.push_str(line);
            rows.push('\n');
        }
        let handle = self.feed_event(builder, source);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(rows.as_bytes());
        let mut added = 0;
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    return Err(LoadError::Csv {
                        path: PathBuf::from(source),
                        reason: err.to_string(),
                    })
                }
            }
            let mut add = |cell: &str| {
                let value = trim_cell(cell);
                if !value.is_empty() && Self::add_feed_value(builder, handle, source, value, to_ids)
                {
                    added += 1;
                }
            };
            if columns.is_empty() {
                record.iter().for_each(&mut add);
            } else {
                for column in columns {
                    if let Some(cell) = column.checked_sub(1).and_then(|idx| record.get(idx)) {
                        add(cell);
                    }
                }
            }
        }
        Ok(added)
    }

    /// A freetext feed: every indicator-looking token of every line, after re-fanging
    /// (`hxxp`, `[.]`, `[@]`, ...); lines starting with `#` or `//` are comments. Returns the
    /// number of values added.
    pub fn add_freetext_feed(
        &mut self,
        builder: &mut SnapshotBuilder,
        text: &str,
        to_ids: bool,
        source: &str,
    ) -> usize {
        let handle = self.feed_event(builder, source);
        let mut added = 0;
        let mut refanged = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            for value in freetext_values(line, &mut refanged) {
                if Self::add_feed_value(builder, handle, source, value, to_ids) {
                    added += 1;
                }
            }
        }
        added
    }

    /// Loads one path, detecting its format.
    pub fn add_path(
        &mut self,
        builder: &mut SnapshotBuilder,
        path: &Path,
    ) -> Result<(), LoadError> {
        if path.is_dir() {
            if path.join("manifest.json").is_file() {
                return self.add_feed_dir(builder, path);
            }
            return Err(LoadError::Format {
                path: path.to_path_buf(),
                reason: "a directory without manifest.json".to_string(),
            });
        }
        let bytes = read(path)?;
        if path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
        {
            return self.add_csv(builder, &bytes, path);
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | Some(b'[') => self.add_json(builder, &bytes, path),
            _ => {
                let text = String::from_utf8_lossy(&bytes);
                self.add_freetext(builder, &text, path);
                Ok(())
            }
        }
    }
}

/// The MISP type (and default category) of a bare value, as MISP's freetext import decides.
pub fn infer_type(value: &str) -> Option<(&'static str, &'static str)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if normalize::parse_cidr(value).is_some()
        && (value.contains('/') || normalize::parse_ip(value).is_some())
    {
        return Some(("ip-dst", "Network activity"));
    }
    if normalize::normalize_url(value).is_some() {
        return Some(("url", "Network activity"));
    }
    if normalize::normalize_email(value).is_some() {
        return Some(("email-src", "Payload delivery"));
    }
    if let Some(hash) = normalize::normalize_hash(value) {
        return Some((normalize::hash_type_for_len(hash.len()), "Payload delivery"));
    }
    if normalize::normalize_domain(value).is_some() {
        return Some(("domain", "Network activity"));
    }
    None
}

/// Checks that `bytes` is one MISP event (`{"Event":{...}}`) and returns its uuid
/// (empty when it has none). For feed fetchers, before they replace a cached event.
pub fn check_event_json(bytes: &[u8]) -> Result<String, String> {
    let wrapper: EventWrapper<'_> = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
    Ok(wrapper.event.uuid.into_owned())
}

/// A CSV cell without surrounding whitespace and quotes.
fn trim_cell(cell: &str) -> &str {
    cell.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
}

/// The candidate values of one freetext line: re-fanged, split at whitespace and
/// separators, sentence punctuation trimmed. Whether one is an indicator is for
/// [`infer_type`] to say.
fn freetext_values<'a>(line: &str, refanged: &'a mut String) -> impl Iterator<Item = &'a str> {
    crate::pipeline::text::refang_into(line, refanged);
    refanged
        .split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '|' | '"' | '\'' | '<' | '>' | '`')
        })
        .map(|token| {
            token
                .trim_start_matches(['(', '[', '{'])
                .trim_end_matches(['.', ',', ':', ')', ']', '}', '!', '?'])
        })
        .filter(|token| !token.is_empty())
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types() {
        let cases = [
            ("1.2.3.4", Some("ip-dst")),
            ("10.0.0.0/8", Some("ip-dst")),
            ("http://evil.com/x", Some("url")),
            ("a@evil.com", Some("email-src")),
            ("d41d8cd98f00b204e9800998ecf8427e", Some("md5")),
            ("evil.com", Some("domain")),
            ("hello", None),
        ];
        for (value, want) in cases {
            assert_eq!(infer_type(value).map(|(t, _)| t), want, "{value}");
        }
    }

    fn values(builder: SnapshotBuilder) -> Vec<(String, String, String, bool)> {
        let snapshot = builder.build();
        let mut out: Vec<_> = snapshot
            .attributes()
            .map(|a| {
                (
                    a.misp_type.to_string(),
                    a.value.to_string(),
                    a.uuid.to_string(),
                    a.to_ids,
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn csv_feed_columns_comments_quotes_and_tabs() {
        let body = b"# a comment with an odd quote \" and 6.6.6.6\n\
                     \t# indented comment 7.7.7.7\n\
                     1.2.3.4\t\"evil.example\"\t 'http://bad.example/x' \n\
                     \n\
                     not-an-ioc\t5d41402abc4b2a76b9719d911017c592\n\
                     short\n";
        let mut builder = SnapshotBuilder::new(true, None);
        let added = Loader::default()
            .add_csv_feed(&mut builder, body, &[], b'\t', true, "f")
            .expect("csv");
        assert_eq!(added, 4, "every column when none are chosen");
        let got = values(builder);
        let types: Vec<&str> = got.iter().map(|(t, ..)| t.as_str()).collect();
        assert_eq!(types, ["domain", "ip-dst", "md5", "url"]);
        assert!(got
            .iter()
            .any(|(_, v, u, _)| v == "evil.example" && u == "feed:f#evil.example"));
        assert!(!got
            .iter()
            .any(|(_, v, ..)| v.contains("6.6.6.6") || v.contains("7.7.7.7")));

        // Chosen columns only, out-of-range columns ignored, comma default.
        let mut builder = SnapshotBuilder::new(true, None);
        let added = Loader::default()
            .add_csv_feed(
                &mut builder,
                b"1.2.3.4,evil.example\n5.6.7.8\n",
                &[1, 9],
                b',',
                false,
                "g",
            )
            .expect("csv");
        assert_eq!(added, 2);
        let got = values(builder);
        assert!(got.iter().all(|(t, _, _, to_ids)| t == "ip-dst" && !to_ids));
    }

    #[test]
    fn freetext_feed_takes_every_token_after_refanging() {
        let text = "# header http://source.example/terms\n\
                    hxxps://evil[.]example/a?b=1, (1.2.3[.]4) and user[@]phish[.]net.\n\
                    // 9.9.9.9 comment\n\
                    [bad.example] | 2a0e:1c80::1 ; 5d41402abc4b2a76b9719d911017c592\n\
                    nothing to see\n";
        let mut builder = SnapshotBuilder::new(true, None);
        let added = Loader::default().add_freetext_feed(&mut builder, text, true, "t");
        let got = values(builder);
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|(t, v, ..)| (t.as_str(), v.as_str()))
            .collect();
        assert_eq!(added, 6, "{pairs:?}");
        for want in [
            ("url", "https://evil.example/a?b=1"),
            ("ip-dst", "1.2.3.4"),
            ("email-src", "user@phish.net"),
            ("domain", "bad.example"),
            ("md5", "5d41402abc4b2a76b9719d911017c592"),
        ] {
            assert!(pairs.contains(&want), "{want:?} missing from {pairs:?}");
        }
        assert!(!pairs
            .iter()
            .any(|(_, v)| v.contains("source.example") || v.contains("9.9.9.9")));
    }

    #[test]
    fn feed_values_have_stable_uuids() {
        let load = || {
            let mut builder = SnapshotBuilder::new(true, None);
            Loader::default().add_freetext_feed(&mut builder, "b.example\na.example\n", true, "t");
            values(builder)
        };
        let first = load();
        let mut builder = SnapshotBuilder::new(true, None);
        Loader::default().add_freetext_feed(
            &mut builder,
            "new.example\na.example\nb.example\n",
            true,
            "t",
        );
        let second = values(builder);
        for attribute in &first {
            assert!(second.contains(attribute), "{attribute:?} keeps its uuid");
        }
        assert_eq!(first, load());
    }

    #[test]
    fn event_json_check() {
        assert_eq!(
            check_event_json(
                br#"{"Event":{"uuid":"5a000000-0000-4000-8000-00000000000a","Attribute":[]}}"#
            ),
            Ok("5a000000-0000-4000-8000-00000000000a".to_string())
        );
        assert_eq!(check_event_json(br#"{"Event":{}}"#), Ok(String::new()));
        for bad in [&b"{}"[..], b"{\"Event\": ", b"<html>", b"[]"] {
            assert!(
                check_event_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
