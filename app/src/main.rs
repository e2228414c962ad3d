//! `wholechild`: the district's whole-child indicators, live. See README.md.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use model::Day;
use std::path::PathBuf;
use std::time::Duration;
use wholechild::{demo, generate, load_config, produce, replay, run};

#[derive(Parser)]
#[command(name = "wholechild", version, about = "Streaming whole-child indicators for a school district")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a file of canonical events through the dataflows and write every indicator.
    Replay {
        /// Configuration file (TOML; see config/example.toml).
        #[arg(long)]
        config: PathBuf,
        /// NDJSON events in arrival order; `-` reads standard input.
        #[arg(long)]
        events: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Figures as of this day (default: the district clock's last day).
        #[arg(long, value_parser = parse_day)]
        as_of: Option<Day>,
        /// Also write each instructional day's changed rows to OUT/daily/.
        #[arg(long)]
        daily: bool,
        /// Timely worker threads (results are identical for every count).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Threads decoding JSON.
        #[arg(long, default_value_t = 2)]
        decode_threads: usize,
        /// Backtest the alert rules: write OUT/alerts.ndjson (every alert fired, resolved,
        /// withdrawn or rerouted, by day, with its evidence) and OUT/alert_load.ndjson.
        #[arg(long)]
        alerts: bool,
    },
    /// Write a synthetic district year as canonical NDJSON events.
    Generate {
        /// Configuration whose calendar to use (default: the embedded example).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 20_000)]
        students: u32,
        #[arg(long, default_value_t = 40)]
        schools: u32,
        /// Instructional days to generate (default: the whole calendar).
        #[arg(long)]
        days: Option<u32>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Leave out the few malformed lines the generator adds on purpose.
        #[arg(long)]
        no_malformed: bool,
    },
    /// The live demo: a generated district streamed day by day through the engine.
    Demo(demo::DemoArgs),
    /// The live engine on the configured Kafka topics (see [kafka] in docs/configuration.md).
    Run {
        /// Configuration file with a [kafka] section.
        #[arg(long)]
        config: PathBuf,
        /// Stop once every partition is read up to the end offsets found at start, and
        /// write replay's files to --out (a backfill).
        #[arg(long, requires = "out")]
        exit_when_caught_up: bool,
        /// Write students, schools and rollups here when the run ends.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A fixed district clock (default: the records' dates in a backfill, today when live).
        #[arg(long, value_parser = parse_day)]
        as_of: Option<Day>,
        /// Timely worker threads (results are identical for every count).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Threads decoding the messages read from Kafka.
        #[arg(long, default_value_t = 2)]
        decode_threads: usize,
        /// Milliseconds between making fed records visible (and committing offsets).
        #[arg(long, default_value_t = 20)]
        publish_ms: u64,
    },
    /// Publish NDJSON records to a configured topic, keyed `type:id`.
    Produce {
        /// Configuration file with a [kafka] section.
        #[arg(long)]
        config: PathBuf,
        /// NDJSON records; `-` reads standard input (e.g. from `wholechild generate`).
        #[arg(long)]
        events: PathBuf,
        /// Topic (default: the first of kafka.topics).
        #[arg(long)]
        topic: Option<String>,
        /// Publish withdrawals (`deleted: true`) as Kafka tombstones (key, empty value).
        #[arg(long)]
        tombstones: bool,
        /// Create the topic with N partitions first, if it does not exist.
        #[arg(long, value_name = "N")]
        create_partitions: Option<i32>,
    },
}

fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse(text).ok_or_else(|| format!("`{text}` is not a date YYYY-MM-DD"))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Replay { config, events, out, as_of, daily, workers, decode_threads, alerts } => {
            let config = load_config(Some(&config))?;
            let summary = replay::replay(replay::ReplayOptions {
                config,
                events,
                out: out.clone(),
                as_of,
                daily,
                workers,
                decode_threads,
                alerts,
            })?;
            if let Some(changes) = summary.alert_changes {
                eprintln!("alert backtest: {changes} alert changes written to alerts.ndjson");
            }
            eprintln!(
                "replayed {} records ({} corrections, {} withdrawals), rejected {} lines; {} students, {} schools as of {}; wrote {}",
                summary.records,
                summary.corrections,
                summary.withdrawals,
                summary.rejected,
                summary.students,
                summary.schools,
                summary.as_of,
                out.display()
            );
        }
        Command::Generate { config, students, schools, days, seed, out, no_malformed } => {
            let config = load_config(config.as_ref())?;
            let calendar: Vec<chrono::NaiveDate> =
                config.calendar.instructional_days().iter().map(|day| day.to_date()).collect();
            let options = generate::GenerateOptions {
                students,
                schools,
                days: days.unwrap_or(calendar.len() as u32).min(calendar.len() as u32),
                seed,
                malformed_lines: !no_malformed,
            };
            let stats = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                    generate::generate(
                        &options,
                        &calendar,
                        std::io::BufWriter::with_capacity(1 << 20, file),
                        |_, _| {},
                    )?
                }
                None => generate::generate(
                    &options,
                    &calendar,
                    std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
                    |_, _| {},
                )?,
            };
            eprintln!(
                "generated {} lines: {} records, {} corrections, {} withdrawals, {} malformed",
                stats.lines, stats.records, stats.corrections, stats.withdrawals, stats.malformed
            );
        }
        Command::Demo(args) => demo::demo(args)?,
        Command::Run { config, exit_when_caught_up, out, as_of, workers, decode_threads, publish_ms } => {
            let config = load_config(Some(&config))?;
            let summary = run::run(run::RunOptions {
                config,
                exit_when_caught_up,
                out: out.clone(),
                as_of,
                workers,
                decode_threads,
                publish_every: Duration::from_millis(publish_ms),
            })?;
            eprintln!(
                "consumed {} records ({} corrections, {} withdrawals), rejected {}; figures as of {}{}",
                summary.records,
                summary.corrections,
                summary.withdrawals,
                summary.rejected,
                summary.as_of,
                match (&out, summary.written) {
                    (Some(out), Some((students, schools))) =>
                        format!("; wrote {students} students and {schools} schools to {}", out.display()),
                    _ => String::new(),
                }
            );
        }
        Command::Produce { config, events, topic, tombstones, create_partitions } => {
            let config = load_config(Some(&config))?;
            let summary =
                produce::produce(produce::ProduceOptions { config, events, topic, tombstones, create_partitions })?;
            eprintln!(
                "published {} messages ({} tombstones, {} without a key: not decodable)",
                summary.messages, summary.tombstones, summary.unkeyed
            );
        }
    }
    Ok(())
}
