//! Every metric name, in one place. Prefix `wazuh_misp_`, units in names, labels from small
//! fixed sets (never indicator values, alert ids or raw error text).

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

pub const ALERTS_CONSUMED: &str = "wazuh_misp_alerts_consumed_total";
pub const ALERTS_PROCESSED: &str = "wazuh_misp_alerts_processed_total";
pub const OBSERVABLES_EXTRACTED: &str = "wazuh_misp_observables_extracted_total";
pub const INTEL_HITS: &str = "wazuh_misp_intel_hits_total";
pub const DLQ_RECORDS: &str = "wazuh_misp_dlq_records_total";
pub const ERRORS: &str = "wazuh_misp_errors_total";
pub const STAGE_DURATION: &str = "wazuh_misp_stage_duration_seconds";
pub const END_TO_END_LATENCY: &str = "wazuh_misp_end_to_end_latency_seconds";
pub const KAFKA_CONSUMER_LAG: &str = "wazuh_misp_kafka_consumer_lag";
pub const KAFKA_ASSIGNED_PARTITIONS: &str = "wazuh_misp_kafka_assigned_partitions";
pub const KAFKA_PRODUCER_QUEUE: &str = "wazuh_misp_kafka_producer_queue_messages";
pub const INTEL_INDICATORS: &str = "wazuh_misp_intel_indicators";
pub const INTEL_SYNC: &str = "wazuh_misp_intel_sync_total";
pub const INTEL_LAST_SUCCESS: &str = "wazuh_misp_intel_last_success_timestamp_seconds";
pub const INTEL_SYNC_AGE: &str = "wazuh_misp_intel_sync_age_seconds";
pub const LOOKUP_CACHE_HITS: &str = "wazuh_misp_lookup_cache_hits_total";
pub const LOOKUP_CACHE_MISSES: &str = "wazuh_misp_lookup_cache_misses_total";
pub const SIGHTINGS_SENT: &str = "wazuh_misp_sightings_sent_total";
pub const IOCS_SHARED: &str = "wazuh_misp_iocs_shared_total";
pub const BUILD_INFO: &str = "wazuh_misp_build_info";
pub const MISP_NOTIFICATIONS: &str = "wazuh_misp_misp_notifications_total";
pub const IOCS_PUSHED: &str = "wazuh_misp_iocs_pushed_total";
pub const IOC_PUSH_FAILURES: &str = "wazuh_misp_ioc_push_failures_total";
pub const IOC_PUSH_DROPPED: &str = "wazuh_misp_ioc_push_dropped_total";
pub const FEED_FETCHES: &str = "wazuh_misp_feed_fetches_total";
pub const FEED_EVENTS_FETCHED: &str = "wazuh_misp_feed_events_fetched_total";
pub const FEED_BYTES: &str = "wazuh_misp_feed_bytes_total";
pub const LIVE_QUERIES: &str = "wazuh_misp_live_queries_total";

/// Every name above, for the naming test and the dashboard check.
pub const ALL: [&str; 28] = [
    ALERTS_CONSUMED,
    ALERTS_PROCESSED,
    OBSERVABLES_EXTRACTED,
    INTEL_HITS,
    DLQ_RECORDS,
    ERRORS,
    STAGE_DURATION,
    END_TO_END_LATENCY,
    KAFKA_CONSUMER_LAG,
    KAFKA_ASSIGNED_PARTITIONS,
    KAFKA_PRODUCER_QUEUE,
    INTEL_INDICATORS,
    INTEL_SYNC,
    INTEL_LAST_SUCCESS,
    INTEL_SYNC_AGE,
    LOOKUP_CACHE_HITS,
    LOOKUP_CACHE_MISSES,
    SIGHTINGS_SENT,
    IOCS_SHARED,
    BUILD_INFO,
    MISP_NOTIFICATIONS,
    IOCS_PUSHED,
    IOC_PUSH_FAILURES,
    IOC_PUSH_DROPPED,
    FEED_FETCHES,
    FEED_EVENTS_FETCHED,
    FEED_BYTES,
    LIVE_QUERIES,
];

/// Outcome label values.
pub const OUTCOMES: [&str; 3] = ["enriched", "unmatched", "dead_lettered"];

/// Describes every metric and registers every fixed label set at zero, so dashboards and
/// alert rules see the series from the first scrape.
pub fn describe(input_topic: &str) {
    describe_counter!(
        ALERTS_CONSUMED,
        Unit::Count,
        "Messages consumed from the input topic."
    );
    describe_counter!(
        ALERTS_PROCESSED,
        Unit::Count,
        "Alerts processed, by outcome."
    );
    describe_counter!(
        OBSERVABLES_EXTRACTED,
        Unit::Count,
        "Observables extracted from alerts, by kind."
    );
    describe_counter!(
        INTEL_HITS,
        Unit::Count,
        "Matching MISP attributes, by observable kind."
    );
    describe_counter!(
        DLQ_RECORDS,
        Unit::Count,
        "Records written to the dead-letter topic, by reason."
    );
    describe_counter!(ERRORS, Unit::Count, "Errors, by stage and error code.");
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "Time per alert in a pipeline stage."
    );
    describe_histogram!(
        END_TO_END_LATENCY,
        Unit::Seconds,
        "Input record timestamp to enriched record acknowledged."
    );
    describe_gauge!(
        KAFKA_CONSUMER_LAG,
        Unit::Count,
        "Consumer lag per input partition (librdkafka statistics)."
    );
    describe_gauge!(
        KAFKA_ASSIGNED_PARTITIONS,
        Unit::Count,
        "Input partitions assigned to this instance."
    );
    describe_gauge!(
        KAFKA_PRODUCER_QUEUE,
        Unit::Count,
        "Messages in the producer queue awaiting delivery."
    );
    describe_gauge!(
        INTEL_INDICATORS,
        Unit::Count,
        "Indicators in the current snapshot, by kind."
    );
    describe_counter!(
        INTEL_SYNC,
        Unit::Count,
        "Indicator set updates, by kind (full, incremental, notification, files, topic) and result."
    );
    describe_counter!(
        MISP_NOTIFICATIONS,
        Unit::Count,
        "MISP Kafka notifications read, by kind (upsert, remove, event_published, ignored, invalid)."
    );
    describe_gauge!(
        INTEL_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last good indicator load."
    );
    describe_gauge!(
        INTEL_SYNC_AGE,
        Unit::Seconds,
        "Seconds since the last good indicator load."
    );
    describe_counter!(
        LOOKUP_CACHE_HITS,
        Unit::Count,
        "Live MISP look-ups answered from the cache."
    );
    describe_counter!(
        LOOKUP_CACHE_MISSES,
        Unit::Count,
        "Live MISP look-ups that went to MISP."
    );
    describe_counter!(SIGHTINGS_SENT, Unit::Count, "Sightings sent to MISP.");
    describe_counter!(
        IOCS_SHARED,
        Unit::Count,
        "New IOCs published to the IOC topic."
    );
    describe_gauge!(BUILD_INFO, Unit::Count, "Build information.");
    describe_counter!(
        IOCS_PUSHED,
        Unit::Count,
        "New IOCs saved as attributes of the daily MISP event."
    );
    describe_counter!(
        IOC_PUSH_FAILURES,
        Unit::Count,
        "Pushes to MISP that failed (the batch is kept and retried)."
    );
    describe_counter!(
        IOC_PUSH_DROPPED,
        Unit::Count,
        "IOCs not pushed to MISP because the queue or the pending batch was full."
    );
    describe_counter!(
        FEED_FETCHES,
        Unit::Count,
        "Feed fetches (intel.feeds), by result: changed, unchanged, failure."
    );
    describe_counter!(
        FEED_EVENTS_FETCHED,
        Unit::Count,
        "MISP feed event files fetched (new or changed in the manifest)."
    );
    describe_counter!(
        LIVE_QUERIES,
        Unit::Count,
        "Live MISP queries of pipeline alerts (misp.live_query), by result: found, unknown, timeout, error."
    );
    describe_counter!(
        FEED_BYTES,
        Unit::Bytes,
        "Feed body bytes downloaded (after gzip decoding)."
    );

    metrics::counter!(ALERTS_CONSUMED, "topic" => input_topic.to_string()).absolute(0);
    for outcome in OUTCOMES {
        metrics::counter!(ALERTS_PROCESSED, "outcome" => outcome).absolute(0);
    }
    for kind in crate::model::observable::IocKind::ALL {
        metrics::counter!(OBSERVABLES_EXTRACTED, "kind" => kind.as_str()).absolute(0);
        metrics::counter!(INTEL_HITS, "kind" => kind.as_str()).absolute(0);
    }
    for reason in [
        "empty",
        "too_large",
        "invalid_json",
        "not_an_object",
        "not_an_alert",
        "invalid_message",
    ] {
        metrics::counter!(DLQ_RECORDS, "reason" => reason).absolute(0);
    }
    metrics::counter!(ERRORS, "stage" => "produce", "error_code" => "delivery").absolute(0);
    for kind in ["upsert", "remove", "event_published", "ignored", "invalid"] {
        metrics::counter!(MISP_NOTIFICATIONS, "kind" => kind).absolute(0);
    }
    for result in ["found", "unknown", "timeout", "error"] {
        metrics::counter!(LIVE_QUERIES, "result" => result).absolute(0);
    }
    for kind in ["full", "incremental", "notification", "files"] {
        for result in ["success", "failure"] {
            metrics::counter!(INTEL_SYNC, "kind" => kind, "result" => result).absolute(0);
        }
    }
    for counter in [
        LOOKUP_CACHE_HITS,
        LOOKUP_CACHE_MISSES,
        SIGHTINGS_SENT,
        IOCS_SHARED,
        IOCS_PUSHED,
        IOC_PUSH_FAILURES,
        IOC_PUSH_DROPPED,
        FEED_EVENTS_FETCHED,
        FEED_BYTES,
    ] {
        metrics::counter!(counter).absolute(0);
    }
    for result in ["changed", "unchanged", "failure"] {
        metrics::counter!(FEED_FETCHES, "result" => result).absolute(0);
    }
    metrics::gauge!(KAFKA_ASSIGNED_PARTITIONS).set(0.0);
    metrics::gauge!(KAFKA_PRODUCER_QUEUE).set(0.0);
    metrics::gauge!(INTEL_SYNC_AGE).set(0.0);
    metrics::gauge!(INTEL_LAST_SUCCESS).set(0.0);
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    record_snapshot(&crate::intel::SnapshotStats::default(), 0);
}

/// Publishes the snapshot's counts.
pub fn record_snapshot(stats: &crate::intel::SnapshotStats, last_success_unix: i64) {
    for (kind, count) in [
        ("ip", stats.ip),
        ("domain", stats.domain),
        ("hostname", stats.hostname),
        ("url", stats.url),
        ("uri", stats.uri),
        ("email", stats.email),
        ("hash", stats.hash),
        ("filename", stats.filename),
        ("other", stats.text),
    ] {
        metrics::gauge!(INTEL_INDICATORS, "kind" => kind).set(count as f64);
    }
    metrics::gauge!(INTEL_LAST_SUCCESS).set(last_success_unix as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_follow_the_convention() {
        let pattern = regex::Regex::new(r"^wazuh_misp_[a-z0-9_]+$").unwrap();
        for name in super::ALL {
            assert!(pattern.is_match(name), "{name}");
            let ok_suffix = name.ends_with("_total")
                || name.ends_with("_seconds")
                || name.ends_with("_messages")
                || name.ends_with("_lag")
                || name.ends_with("_partitions")
                || name.ends_with("_indicators")
                || name.ends_with("_info");
            assert!(ok_suffix, "{name} has no unit or _total suffix");
        }
    }
}
