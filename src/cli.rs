//! The command line (clap derive). The commands and flags are a contract (DESIGN.md "CLI").

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wazuh-misp",
    version,
    about = "Enrich Wazuh alerts with MISP threat intelligence, on Kafka"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The service: consume alerts from Kafka, enrich, produce.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// The whole pipeline with no outside services (in-process Kafka, bundled samples).
    Demo {
        /// How many copies of the bundled sample alerts to push through.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Enriched alerts to print.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Batch mode over JSON-lines alerts (a Wazuh alerts.json or archives.json).
    Enrich {
        /// Indicator file or feed directory; repeatable. Detected by content.
        #[arg(long = "indicators", value_name = "PATH")]
        indicators: Vec<PathBuf>,
        /// A directory of misp-warninglists list.json files.
        #[arg(long, value_name = "DIR")]
        warninglists: Option<PathBuf>,
        /// Input file, `-` for stdin (the default).
        #[arg(long, default_value = "-")]
        input: PathBuf,
        /// Output file, `-` for stdout (the default).
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Write every alert, not only those with a match.
        #[arg(long)]
        all: bool,
        /// Match to_ids=false attributes too.
        #[arg(long)]
        include_non_ids: bool,
        /// Load the intel sources of this config (files, warninglists, MISP) as `run` does.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// What is known about one value, as JSON; exit status 0 when known, 1 when not.
    Lookup {
        value: String,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long = "indicators", value_name = "PATH")]
        indicators: Vec<PathBuf>,
        #[arg(long, value_name = "DIR")]
        warninglists: Option<PathBuf>,
        #[arg(long)]
        include_non_ids: bool,
    },
    /// The intel-sync role for scale-out: writes the indicator set to the compacted topic.
    Sync {
        #[arg(long)]
        config: PathBuf,
        /// Publish once and exit instead of following the files.
        #[arg(long)]
        once: bool,
    },
    /// Validate and print the effective config (secrets masked).
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
}
