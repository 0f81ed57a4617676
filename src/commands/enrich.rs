//! `wazuh-misp enrich`: batch mode over JSON-lines alerts.
//!
//! Every line is processed by the same [`Processor`] as the Kafka service. Without `--all`
//! only alerts with a match are written. Bad lines are reported with their line number and
//! counted; they never stop the run. A progress bar is drawn on stderr when reading a file
//! and stderr is a terminal; a one-line summary is printed on stderr at the end.

use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::intel::IntelSnapshot;
use crate::pipeline::{Outcome, Processor, ProcessorOptions};

/// What one `enrich` run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnrichSummary {
    pub read: u64,
    pub matched: u64,
    pub written: u64,
    pub bad: u64,
    pub matches: u64,
}

impl std::fmt::Display for EnrichSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "enrich: {} alerts read, {} matched ({} matches), {} written, {} bad lines",
            self.read, self.matched, self.matches, self.written, self.bad
        )
    }
}

/// Where bad lines are reported (stderr in the CLI, a buffer in tests).
pub type BadLineSink<'a> = &'a mut dyn FnMut(u64, &str);

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("cannot read input {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write output {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

/// Input/output of `enrich`.
pub struct EnrichIo {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub all: bool,
}

/// Runs `enrich` over `io` with a ready snapshot.
pub fn run(
    io: &EnrichIo,
    snapshot: &IntelSnapshot,
    options: ProcessorOptions,
) -> Result<EnrichSummary, EnrichError> {
    let input_name = io
        .input
        .as_ref()
        .map_or("-".to_string(), |p| p.display().to_string());
    let output_name = io
        .output
        .as_ref()
        .map_or("-".to_string(), |p| p.display().to_string());
    let (reader, total_bytes): (Box<dyn Read>, Option<u64>) = match &io.input {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path).map_err(|source| EnrichError::Input {
                path: input_name.clone(),
                source,
            })?;
            let len = file.metadata().ok().map(|m| m.len());
            (Box::new(file), len)
        }
        _ => (Box::new(std::io::stdin().lock()), None),
    };
    let writer: Box<dyn Write> = match &io.output {
        Some(path) if path.as_os_str() != "-" => Box::new(std::fs::File::create(path).map_err(
            |source| EnrichError::Output {
                path: output_name.clone(),
                source,
            },
        )?),
        _ => Box::new(std::io::stdout().lock()),
    };
    let progress = match total_bytes {
        Some(total) if std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} [{bar:40}] {per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(bar)
        }
        _ => None,
    };
    let mut report = |line: u64, reason: &str| {
        let text = format!("line {line}: {reason}");
        match &progress {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    };
    let summary = run_stream(
        reader,
        writer,
        io.all,
        snapshot,
        options,
        &mut report,
        &mut |bytes| {
            if let Some(bar) = &progress {
                bar.inc(bytes);
            }
        },
    )
    .map_err(|err| match err {
        StreamError::Read(source) => EnrichError::Input {
            path: input_name.clone(),
            source,
        },
        StreamError::Write(source) => EnrichError::Output {
            path: output_name.clone(),
            source,
        },
    })?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(summary)
}

#[derive(Debug)]
pub enum StreamError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// The core loop, over any reader and writer.
pub fn run_stream(
    reader: impl Read,
    writer: impl Write,
    all: bool,
    snapshot: &IntelSnapshot,
    options: ProcessorOptions,
    bad_line: BadLineSink<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<EnrichSummary, StreamError> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut writer = BufWriter::with_capacity(1 << 20, writer);
    let mut processor = Processor::new(options);
    let mut summary = EnrichSummary::default();
    let mut line = Vec::with_capacity(8192);
    let mut line_no = 0u64;
    let started = Instant::now();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(StreamError::Read)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        progress(n as u64);
        let trimmed_len = line
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |idx| idx + 1);
        if trimmed_len == 0 {
            continue;
        }
        summary.read += 1;
        match processor.process(&line[..trimmed_len], snapshot) {
            Outcome::DeadLetter(err) => {
                summary.bad += 1;
                bad_line(line_no, &err.to_string());
                continue;
            }
            Outcome::Enriched { matches } => {
                summary.matched += 1;
                summary.matches += matches as u64;
            }
            Outcome::Unmatched if !all => continue,
            Outcome::Unmatched => {}
        }
        writer
            .write_all(processor.output_for(&line[..trimmed_len]))
            .map_err(StreamError::Write)?;
        writer.write_all(b"\n").map_err(StreamError::Write)?;
        summary.written += 1;
    }
    writer.flush().map_err(StreamError::Write)?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Enrich finished."
    );
    Ok(summary)
}

/// `enrich` arguments from the CLI.
pub struct EnrichArgs {
    pub indicators: Vec<PathBuf>,
    pub warninglists: Option<PathBuf>,
    pub input: PathBuf,
    pub output: PathBuf,
    pub all: bool,
    pub include_non_ids: bool,
    pub config: Option<crate::config::Config>,
}

/// The `enrich` command: load intel, run, print the summary.
pub fn main(args: EnrichArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut sources = args
        .config
        .as_ref()
        .map(|config| config.intel_sources())
        .unwrap_or_default();
    sources.files.extend(args.indicators);
    if args.warninglists.is_some() {
        sources.warninglists_dir = args.warninglists;
    }
    sources.include_non_ids |= args.include_non_ids;
    let options = args
        .config
        .as_ref()
        .map(|config| config.processor_options())
        .unwrap_or_default();
    let mut snapshot = crate::intel::load_snapshot(&sources)?;
    if let Some(config) = &args.config {
        if config.misp.url.is_some() || !config.intel.feeds.is_empty() {
            snapshot = crate::commands::load_configured(config, &sources)?;
        }
    }
    if snapshot.is_empty() {
        eprintln!("enrich: warning: no indicators loaded (check --indicators)");
    }
    let io = EnrichIo {
        input: (args.input.as_os_str() != "-").then_some(args.input),
        output: (args.output.as_os_str() != "-").then_some(args.output),
        all: args.all,
    };
    let summary = run(&io, &snapshot, options)?;
    eprintln!("{summary}");
    Ok(std::process::ExitCode::SUCCESS)
}
