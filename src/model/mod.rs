//! Plain data types that flow through the pipeline: no IO, no metrics, no logging.

pub mod enriched;
pub mod observable;
