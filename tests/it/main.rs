//! One integration binary: the pipeline over fixtures, matching semantics, property tests,
//! the mock cluster, the fake MISP server, and (behind features, started by tests/run.sh)
//! the real Kafka broker and mmisp-api.

mod support;

mod corpus;
mod feeds;
mod golden;
mod kafka_mock;
mod misp_fake;
mod misp_push;
mod props;
mod semantics;
mod server;

#[cfg(feature = "broker-tests")]
mod broker;
#[cfg(feature = "misp-tests")]
mod mmisp;
#[cfg(feature = "misp-tests")]
mod pymisp_schema;
