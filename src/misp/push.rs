//! Pushing shared IOCs into MISP: one event per UTC day, `Wazuh detections YYYY-MM-DD`.
//!
//! The pipeline workers hand the records [`IocSharing`](super::sharing::IocSharing) decided to
//! share to an [`IocPushSender`] (`try_send` into a bounded channel: a worker never blocks and
//! never waits for MISP; a full channel drops the record and counts it). An async task
//! ([`IocPusher::run`]) collects them and, every interval and once at shutdown, flushes:
//!
//! 1. find today's event (`/events/restSearch` by `eventinfo` and the first push tag, the title
//!    compared exactly on our side) or create it (`/events/add`); its id is kept for the day;
//! 2. once per day, read the values already in it (`/attributes/restSearch {"eventid"}`);
//! 3. add the new attributes in one `/attributes/add/{id}` call with a list.
//!
//! MISP's answers: 200 with `errors` = some attributes saved, the others refused; 403 with
//! `errors` = refused content (a duplicate, a failed validation), never an auth failure. A
//! refused list is re-sent one attribute at a time so one bad attribute cannot stop the rest;
//! a refused single attribute is dropped (re-sending cannot help) and counted. A failure that
//! may pass later (MISP down, 5xx, 429, auth) keeps the whole batch for the next interval, up
//! to `max_pending` records (the oldest are dropped and counted beyond that).
//!
//! mmisp-api (tests/mmisp) refuses MISP's wrapped `{"Event":{...}}` body and attribute lists
//! with 422; on a 422 the event is re-sent bare without `date` and the list one by one.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{MispClient, MispError};
use crate::telemetry::metrics as m;

/// Settings of the pusher (`[sharing]` push_* keys).
#[derive(Clone, Debug, PartialEq)]
pub struct PushOptions {
    /// Distribution of the daily event, 0-3.
    pub distribution: u8,
    /// Threat level of the daily event, 1-4.
    pub threat_level: u8,
    /// Tags put on the daily event; the first one is also a search filter.
    pub tags: Vec<String>,
    /// How often pending IOCs are pushed.
    pub interval: Duration,
    /// Records kept while MISP fails; beyond this the oldest are dropped.
    pub max_pending: usize,
    /// Capacity of the workers' channel.
    pub queue_capacity: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            distribution: 0,
            threat_level: 3,
            tags: vec!["wazuh-misp".to_string(), "tlp:amber".to_string()],
            interval: Duration::from_secs(60),
            max_pending: 50_000,
            queue_capacity: 100_000,
        }
    }
}

impl PushOptions {
    /// From the `[sharing]` section.
    pub fn from_config(sharing: &crate::config::SharingConfig) -> Self {
        PushOptions {
            distribution: sharing.push_distribution,
            threat_level: sharing.push_threat_level,
            tags: sharing.push_tags.clone(),
            interval: Duration::from_secs(sharing.push_interval_secs.max(1)),
            ..PushOptions::default()
        }
    }
}

/// The title of the event of `day`: `Wazuh detections 2026-11-25`.
pub fn daily_event_title(day: NaiveDate) -> String {
    format!("Wazuh detections {}", day.format("%Y-%m-%d"))
}

/// The `/events/add` body of the event of `day` (MISP's wrapped form; PyMISP's schema wants
/// the numbers as strings, which MISP accepts).
pub fn daily_event_body(day: NaiveDate, options: &PushOptions) -> Value {
    let tags: Vec<Value> = options.tags.iter().map(|t| json!({"name": t})).collect();
    json!({"Event": {
        "info": daily_event_title(day),
        "distribution": options.distribution.to_string(),
        "threat_level_id": options.threat_level.to_string(),
        "analysis": "0",
        "date": day.format("%Y-%m-%d").to_string(),
        "Tag": tags,
    }})
}

/// The `/events/restSearch` filter that finds the event of `day` (`returnFormat` is added by
/// the client). `eventinfo` is a substring match in MISP, so the caller compares the title.
pub fn daily_event_search(day: NaiveDate, options: &PushOptions) -> Value {
    let mut filter = json!({"eventinfo": daily_event_title(day), "metadata": true});
    if let Some(tag) = options.tags.first() {
        filter["tags"] = json!([tag]);
    }
    filter
}

/// The `/attributes/add` attribute for one record of `topics.iocs` (as
/// [`IocSharing`](super::sharing::IocSharing) builds it): type, category, value, to_ids=false,
/// comment, first_seen when known, and `timestamp` (mmisp stores 0 without it; a string, as
/// PyMISP's schema wants). `None` when the record has no type or value.
pub fn attribute_body(record: &Value, now_unix: i64) -> Option<Value> {
    let kind = record.get("type")?.as_str()?;
    let value = record.get("value")?.as_str()?;
    if kind.is_empty() || value.is_empty() {
        return None;
    }
    let mut attribute = Map::new();
    attribute.insert("type".into(), kind.into());
    attribute.insert("value".into(), value.into());
    if let Some(category) = record.get("category").and_then(Value::as_str) {
        attribute.insert("category".into(), category.into());
    }
    attribute.insert("to_ids".into(), false.into());
    if let Some(comment) = record.get("comment").and_then(Value::as_str) {
        attribute.insert("comment".into(), comment.into());
    }
    if let Some(first_seen) = record.get("first_seen").and_then(Value::as_str) {
        attribute.insert("first_seen".into(), first_seen.into());
    }
    attribute.insert("timestamp".into(), now_unix.to_string().into());
    Some(Value::Object(attribute))
}

/// The `/attributes/restSearch` filter listing the attributes of an event.
pub fn event_attributes_search(event_id: &str) -> Value {
    json!({"eventid": event_id, "deleted": 0})
}

/// `type|value`, the duplicate key MISP uses within an event (with the category).
fn dedup_key(attribute: &Value) -> Option<String> {
    let kind = attribute.get("type")?.as_str()?;
    let value = attribute.get("value")?.as_str()?;
    Some(format!("{kind}|{value}"))
}

/// An id that may be a JSON string (MISP) or number (mmisp-api).
fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The workers' end: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct IocPushSender {
    tx: mpsc::Sender<Value>,
}

impl IocPushSender {
    /// Queues one shared record (a `topics.iocs` payload). Drops and counts it when full.
    pub fn push(&self, record: Value) {
        if self.tx.try_send(record).is_err() {
            metrics::counter!(m::IOC_PUSH_DROPPED).increment(1);
        }
    }
}

/// What one flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Attributes MISP saved.
    pub pushed: usize,
    /// Attributes already in the day's event (not sent).
    pub already_present: usize,
    /// Attributes MISP refused (duplicates, validation): dropped.
    pub refused: usize,
    /// The flush failed; the records are kept for the next one.
    pub failed: Option<String>,
    /// Records still pending after the flush.
    pub pending: usize,
}

/// The day's event, once found or created.
struct DayEvent {
    day: NaiveDate,
    id: String,
    /// `type|value` already in the event; `None` until read.
    known: Option<HashSet<String>>,
}

/// The task's end: pending records, the day's event, the client.
pub struct IocPusher {
    client: MispClient,
    options: PushOptions,
    rx: mpsc::Receiver<Value>,
    pending: VecDeque<Value>,
    event: Option<DayEvent>,
}

/// Creates the channel and the pusher; run [`IocPusher::run`] on the runtime (or call
/// [`IocPusher::flush_at`] directly, as the tests do).
pub fn ioc_pusher(client: MispClient, options: PushOptions) -> (IocPushSender, IocPusher) {
    let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
    let pusher = IocPusher {
        client,
        options,
        rx,
        pending: VecDeque::new(),
        event: None,
    };
    (IocPushSender { tx }, pusher)
}

impl IocPusher {
    /// Flushes every interval until `shutdown` is cancelled or every sender is gone, then
    /// flushes once more (best effort) and returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.options.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                record = self.rx.recv() => match record {
                    Some(record) => {
                        self.enqueue(record);
                        continue;
                    }
                    None => break,
                },
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            self.flush().await;
        }
        let report = self.flush().await;
        if report.pending > 0 {
            tracing::warn!(
                pending = report.pending,
                "IOCs not pushed to MISP at shutdown."
            );
        }
    }

    /// Records waiting for the next flush (after taking what the channel holds).
    pub fn pending(&mut self) -> usize {
        self.drain_channel();
        self.pending.len()
    }

    /// [`IocPusher::flush_at`] now.
    pub async fn flush(&mut self) -> FlushReport {
        self.flush_at(Utc::now()).await
    }

    /// Pushes everything pending into the event of `now`'s UTC day.
    pub async fn flush_at(&mut self, now: DateTime<Utc>) -> FlushReport {
        self.drain_channel();
        let mut report = FlushReport::default();
        if !self.pending.is_empty() {
            if let Err(err) = self.push_pending(now, &mut report).await {
                metrics::counter!(m::IOC_PUSH_FAILURES).increment(1);
                tracing::warn!(
                    error = %err,
                    code = err.code(),
                    pending = self.pending.len(),
                    "IOCs not pushed to MISP; kept for the next interval."
                );
                report.failed = Some(err.to_string());
            }
        }
        metrics::counter!(m::IOCS_PUSHED).increment(report.pushed as u64);
        if report.refused > 0 {
            metrics::counter!(m::ERRORS, "stage" => "push", "error_code" => "rejected")
                .increment(report.refused as u64);
        }
        report.pending = self.pending.len();
        report
    }

    fn drain_channel(&mut self) {
        while let Ok(record) = self.rx.try_recv() {
            self.enqueue(record);
        }
    }

    fn enqueue(&mut self, record: Value) {
        self.pending.push_back(record);
        while self.pending.len() > self.options.max_pending.max(1) {
            self.pending.pop_front();
            metrics::counter!(m::IOC_PUSH_DROPPED).increment(1);
        }
    }

    async fn push_pending(
        &mut self,
        now: DateTime<Utc>,
        report: &mut FlushReport,
    ) -> Result<(), MispError> {
        let day = now.date_naive();
        let event_id = self.day_event(day).await?;
        let known = self.known_values(&event_id).await?;

        // New attributes, in arrival order, without repeats.
        let mut batch: Vec<(String, Value)> = Vec::new();
        let mut in_batch = HashSet::new();
        for record in &self.pending {
            let Some(attribute) = attribute_body(record, now.timestamp()) else {
                continue;
            };
            let Some(key) = dedup_key(&attribute) else {
                continue;
            };
            if known.contains(&key) {
                report.already_present += 1;
            } else if in_batch.insert(key.clone()) {
                batch.push((key, attribute));
            }
        }
        if batch.is_empty() {
            self.pending.clear();
            return Ok(());
        }

        let list = Value::Array(batch.iter().map(|(_, a)| a.clone()).collect());
        match self.client.add_attributes(&event_id, &list).await {
            Ok(answer) => {
                let saved = saved_count(&answer).min(batch.len());
                report.pushed += saved;
                report.refused += batch.len() - saved;
                if batch.len() > saved {
                    let errors = answer.get("errors").map(|e| e.to_string());
                    tracing::info!(
                        refused = batch.len() - saved,
                        errors = errors.as_deref().unwrap_or(""),
                        "MISP refused some IOCs (duplicates or validation)."
                    );
                }
                self.remember(batch.iter().map(|(k, _)| k.clone()));
                self.pending.clear();
            }
            Err(err) if one_by_one_helps(&err, batch.len()) => {
                tracing::debug!(error = %err, "Attribute list refused; adding one by one.");
                self.push_one_by_one(&event_id, batch, report).await?;
                self.pending.clear();
            }
            Err(MispError::Rejected { message, .. }) => {
                report.refused += batch.len();
                tracing::info!(message, "MISP refused the IOC (duplicate or validation).");
                self.remember(batch.into_iter().map(|(k, _)| k));
                self.pending.clear();
            }
            Err(err) => {
                self.forget_event_if_gone(&err);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Adds each attribute alone. A refusal drops that one; a failure that may pass later
    /// stops here, and the caller keeps every pending record (the saved ones are then known
    /// and skipped next time).
    async fn push_one_by_one(
        &mut self,
        event_id: &str,
        batch: Vec<(String, Value)>,
        report: &mut FlushReport,
    ) -> Result<(), MispError> {
        for (key, attribute) in batch {
            match self.client.add_attributes(event_id, &attribute).await {
                Ok(_) => report.pushed += 1,
                Err(MispError::Rejected { message, .. })
                | Err(MispError::Status {
                    status: 400 | 422,
                    body_excerpt: message,
                    ..
                }) => {
                    report.refused += 1;
                    tracing::info!(message, "MISP refused an IOC (duplicate or validation).");
                }
                Err(err) => {
                    self.forget_event_if_gone(&err);
                    return Err(err);
                }
            }
            self.remember(std::iter::once(key));
        }
        Ok(())
    }

    fn remember(&mut self, keys: impl Iterator<Item = String>) {
        if let Some(DayEvent {
            known: Some(known), ..
        }) = &mut self.event
        {
            known.extend(keys);
        }
    }

    /// A 404 from the event's path: someone deleted the event; find or create it again.
    fn forget_event_if_gone(&mut self, err: &MispError) {
        if matches!(err, MispError::Status { status: 404, .. }) {
            self.event = None;
        }
    }

    /// The id of `day`'s event: cached, found, or created.
    async fn day_event(&mut self, day: NaiveDate) -> Result<String, MispError> {
        if let Some(event) = &self.event {
            if event.day == day {
                return Ok(event.id.clone());
            }
        }
        self.event = None;
        let title = daily_event_title(day);
        let found = self
            .client
            .search_events(&daily_event_search(day, &self.options))
            .await?;
        let first_tag = self.options.tags.first();
        let has_tag = |event: &Value| match (first_tag, event.get("Tag")) {
            (Some(tag), Some(Value::Array(tags))) => tags
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(tag)),
            _ => false,
        };
        let same_title: Vec<&Value> = found
            .iter()
            .filter(|e| e.get("info").and_then(Value::as_str) == Some(title.as_str()))
            .collect();
        // Prefer an event with our tag; mmisp ignores the search filters and does not keep
        // event tags, so a same-titled event without tags is taken too.
        let existing = same_title
            .iter()
            .find(|e| has_tag(e))
            .or_else(|| same_title.first())
            .and_then(|e| id_string(e.get("id")));
        let id = match existing {
            Some(id) => id,
            None => {
                let created = self.create_event(day).await?;
                id_string(created.get("id")).ok_or_else(|| MispError::Malformed {
                    path: "/events/add".to_owned(),
                    reason: "created event has no id".to_owned(),
                })?
            }
        };
        tracing::info!(event_id = %id, title, "Pushing IOCs into the daily MISP event.");
        self.event = Some(DayEvent {
            day,
            id: id.clone(),
            known: None,
        });
        Ok(id)
    }

    async fn create_event(&self, day: NaiveDate) -> Result<Value, MispError> {
        let body = daily_event_body(day, &self.options);
        match self.client.add_event(&body).await {
            Err(MispError::Status { status: 422, .. }) => {
                // mmisp-api: bare body, and no `date` (its SQLite layer fails on a string).
                let mut bare = body["Event"].clone();
                if let Some(map) = bare.as_object_mut() {
                    map.remove("date");
                }
                self.client.add_event_bare(&bare).await
            }
            other => other,
        }
    }

    /// `type|value` of the attributes already in the event, read once per day.
    async fn known_values(&mut self, event_id: &str) -> Result<HashSet<String>, MispError> {
        if let Some(DayEvent {
            known: Some(known), ..
        }) = &self.event
        {
            return Ok(known.clone());
        }
        let attributes = self
            .client
            .rest_search_attributes(&event_attributes_search(event_id))
            .await
            .inspect_err(|err| self.forget_event_if_gone(err))?;
        let known: HashSet<String> = attributes
            .iter()
            .filter(|a| a.get("deleted") != Some(&Value::Bool(true)))
            .filter(|a| {
                // mmisp-api ignores no filter here, but be safe against servers that do.
                match (a.get("event_id"), event_id.parse::<u64>().ok()) {
                    (Some(Value::Number(n)), Some(id)) => n.as_u64() == Some(id),
                    (Some(Value::String(s)), _) => s == event_id,
                    _ => true,
                }
            })
            .filter_map(dedup_key)
            .collect();
        if let Some(event) = &mut self.event {
            event.known = Some(known.clone());
        }
        Ok(known)
    }
}

/// Whether re-sending a refused list one attribute at a time can save some: MISP refuses a
/// whole list (403 `errors`) only when every attribute failed, but a server may refuse the
/// list for one bad attribute, and mmisp-api refuses lists (422).
fn one_by_one_helps(err: &MispError, len: usize) -> bool {
    match err {
        MispError::Rejected { .. } => len > 1,
        MispError::Status { status: 422, .. } => true,
        _ => false,
    }
}

/// How many attributes a 200 from `/attributes/add` saved: `{"Attribute":[...]}`,
/// `{"Attribute":{...}}`, a bare list, or a bare attribute.
fn saved_count(answer: &Value) -> usize {
    match answer.get("Attribute").unwrap_or(answer) {
        Value::Array(list) => list.len(),
        Value::Object(map) if !map.is_empty() && !map.contains_key("errors") => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_documented_shape() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let options = PushOptions::default();
        assert_eq!(daily_event_title(day), "Wazuh detections 2026-11-25");
        let event = daily_event_body(day, &options);
        assert_eq!(event["Event"]["info"], "Wazuh detections 2026-11-25");
        assert_eq!(event["Event"]["date"], "2026-11-25");
        assert_eq!(event["Event"]["distribution"], "0");
        assert_eq!(event["Event"]["threat_level_id"], "3");
        assert_eq!(
            event["Event"]["Tag"],
            json!([{"name": "wazuh-misp"}, {"name": "tlp:amber"}])
        );
        let search = daily_event_search(day, &options);
        assert_eq!(search["tags"], json!(["wazuh-misp"]));

        let record = json!({"type": "ip-src", "value": "77.88.99.10", "category": "Network activity",
            "to_ids": false, "comment": "c", "first_seen": null, "wazuh": {"x": 1}});
        let attribute = attribute_body(&record, 1_764_000_000).unwrap();
        assert_eq!(
            attribute,
            json!({"type": "ip-src", "value": "77.88.99.10", "category": "Network activity",
                   "to_ids": false, "comment": "c", "timestamp": "1764000000"})
        );
        assert!(attribute_body(&json!({"type": "ip-src"}), 0).is_none());
    }

    #[test]
    fn saved_count_reads_every_answer_shape() {
        assert_eq!(
            saved_count(
                &json!({"Attribute": [{"id": "1"}, {"id": "2"}], "errors": {"attribute_2": {}}})
            ),
            2
        );
        assert_eq!(saved_count(&json!({"Attribute": {"id": 1}})), 1);
        assert_eq!(saved_count(&json!([{"id": 1}])), 1);
        assert_eq!(saved_count(&json!({})), 0);
    }
}
