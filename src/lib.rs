//! # wazuh-misp
//!
//! Enriches Wazuh alerts with MISP threat intelligence, on Kafka.
//!
//! ```text
//!  MISP REST / feeds / files / warninglists
//!                 |
//!           intel (IntelSnapshot, Arc-swapped)
//!                 |
//! Kafka wazuh-alerts -> decode -> extract -> match -> enrich -> wazuh-alerts-enriched
//!                       (simd-json) (fields+text) (indexes) (splice)  wazuh-iocs, wazuh-alerts-dlq
//! ```
//!
//! - [`pipeline`]: the per-alert stages, pure and synchronous ([`pipeline::Processor`]).
//! - [`intel`]: loading MISP data and the immutable indicator snapshot.
//! - [`model`]: plain data (observables, the enrichment objects).
//! - [`config`]: the TOML config tree, env overrides, validation.
//! - [`commands`]: `enrich`, `lookup`, `check-config`.
//! - [`kafka`]: the `run` service and `demo` on Kafka.
//! - [`misp`]: the MISP REST client.
//! - [`telemetry`]: metrics names and logging.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz`, `/v1/lookup`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod corpus;
pub mod intel;
pub mod kafka;
pub mod misp;
pub mod model;
pub mod pipeline;
pub mod server;
pub mod telemetry;
