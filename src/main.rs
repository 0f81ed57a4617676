//! `wazuh-misp`: parse the CLI, load config, run the command; errors become exit codes.

use std::process::ExitCode;

use clap::Parser;
use wazuh_misp::cli::{Cli, Command};
use wazuh_misp::commands;
use wazuh_misp::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wazuh-misp: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn env() -> impl Iterator<Item = (String, String)> {
    std::env::vars()
}

/// `--config FILE` of the commands where it is optional.
fn load_optional(
    path: Option<&std::path::Path>,
) -> Result<Option<Config>, wazuh_misp::config::ConfigError> {
    path.map(|path| Config::load(Some(path), env())).transpose()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { config } => {
            let config = Config::load(Some(&config), env())?;
            print!("{}", config.to_redacted_toml());
            eprintln!("config ok");
            Ok(ExitCode::SUCCESS)
        }
        Command::Enrich {
            indicators,
            warninglists,
            input,
            output,
            all,
            include_non_ids,
            config,
        } => {
            wazuh_misp::telemetry::logging::init_cli();
            let config = load_optional(config.as_deref())?;
            commands::enrich::main(commands::enrich::EnrichArgs {
                indicators,
                warninglists,
                input,
                output,
                all,
                include_non_ids,
                config,
            })
        }
        Command::Lookup {
            value,
            config,
            indicators,
            warninglists,
            include_non_ids,
        } => {
            wazuh_misp::telemetry::logging::init_cli();
            let config = load_optional(config.as_deref())?;
            commands::lookup::main(&value, config, indicators, warninglists, include_non_ids)
        }
        Command::Run { config } => {
            let config = Config::load(Some(&config), env())?;
            wazuh_misp::telemetry::logging::init(&config.log)?;
            wazuh_misp::kafka::run_service(config)
        }
        Command::Sync { config, once } => {
            let config = Config::load(Some(&config), env())?;
            wazuh_misp::telemetry::logging::init(&config.log)?;
            wazuh_misp::kafka::changelog::run_sync(config, once)
        }
        Command::Demo { repeat, show } => {
            wazuh_misp::telemetry::logging::init_cli();
            wazuh_misp::kafka::demo::run(repeat, show)
        }
    }
}
