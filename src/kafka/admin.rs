//! Topic creation (tests, the benchmark and `demo`; `kafka/create-topics.sh` does the same for
//! operators) and deletion (the benchmark's own topics).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

fn admin_client(brokers: &str) -> Result<AdminClient<DefaultClientContext>, String> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|err| format!("admin client: {err}"))
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// A topic to create: name, partitions, compacted.
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub compact: bool,
}

/// Creates topics on a real broker; existing topics are fine.
pub async fn create_topics(brokers: &str, topics: &[TopicSpec<'_>]) -> Result<(), String> {
    let admin = admin_client(brokers)?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|spec| {
            let topic = NewTopic::new(spec.name, spec.partitions, TopicReplication::Fixed(1));
            if spec.compact {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let results = admin
        .create_topics(&new_topics, &admin_options())
        .await
        .map_err(|err| format!("create topics: {err}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("create topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// Deletes topics (the benchmark's own, after each run); unknown topics are fine.
pub async fn delete_topics(brokers: &str, topics: &[&str]) -> Result<(), String> {
    let results = admin_client(brokers)?
        .delete_topics(topics, &admin_options())
        .await
        .map_err(|err| format!("delete topics: {err}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(format!("delete topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// Creates every topic of `config` on its brokers: input and enriched with `partitions`
/// partitions, DLQ and IOCs with one, the indicator changelog compacted.
pub async fn create_config_topics(
    config: &crate::config::Config,
    partitions: i32,
) -> Result<(), String> {
    let topics = &config.topics;
    create_topics(
        &config.kafka.brokers,
        &[
            TopicSpec {
                name: &topics.input,
                partitions,
                compact: false,
            },
            TopicSpec {
                name: &topics.enriched,
                partitions,
                compact: false,
            },
            TopicSpec {
                name: &topics.dlq,
                partitions: 1,
                compact: false,
            },
            TopicSpec {
                name: &topics.iocs,
                partitions: 1,
                compact: false,
            },
            TopicSpec {
                name: &topics.indicators,
                partitions: 1,
                compact: true,
            },
        ],
    )
    .await
}
