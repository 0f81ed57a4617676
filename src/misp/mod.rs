//! MISP REST API and feed client for wazuh-misp.
//!
//! - [`MispClient`]: `/attributes/restSearch` (paged, or streamed page by
//!   page), `/events/restSearch`, `/events/add`, `/attributes/add/{event}`,
//!   `/sightings/add`, `/servers/getVersion`, and plain feed downloads with
//!   ETag support.
//! - [`Secret`]: the API key; prints as `***` everywhere.
//! - [`push::IocPusher`]: new IOCs into one MISP event per UTC day.
//!
//! The module is self-contained: it reads no file at run time except the
//! optional `ca_file`.

pub mod client;
pub mod lookup;
pub mod push;
pub mod secret;
pub mod sharing;
pub mod sightings;

#[cfg(test)]
mod tests;

pub use client::{
    parse_attribute_page, sightings_body, FeedDownload, FeedResponse, MispClient, MispClientConfig,
    MispError, SyncStats,
};
pub use secret::Secret;
