//! `wholechild demo`: generates a district and streams it, day by day on an
//! accelerated clock, through Kafka (an embedded broker: librdkafka's mock cluster, in
//! this process) into the same consumer, driver and dataflows as `run`, showing a live
//! summary per day in the terminal.

use crate::driver::{DayStats, DriverOptions, Feeder, Observer};
use crate::generate::{generate, GenerateOptions};
use crate::output::school_tables;
use crate::run::CatchUp;
use anyhow::{bail, Context, Result};
use dataflows::{Engine, EngineParams};
use ingest::kafka::{end_offsets, KafkaSource, Publisher, SourceMetrics};
use ingest::{Rejected, Upsert};
use model::{Day, Rate};
use rdkafka::consumer::CommitMode;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo's topics on its embedded broker.
const TOPIC: &str = "wholechild.demo";
const DEAD_LETTERS: &str = "wholechild.demo.dead-letters";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Configuration (default: the embedded config/example.toml).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 20_000)]
    students: u32,
    #[arg(long, default_value_t = 40)]
    schools: u32,
    /// Instructional days to stream (default: the whole year).
    #[arg(long)]
    days: Option<u32>,
    /// Wall-clock seconds per school day.
    #[arg(long, default_value_t = 0.5)]
    seconds_per_day: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// How many schools the summary lists (highest chronic absence first).
    #[arg(long, default_value_t = 15)]
    top_schools: usize,
}

pub fn demo(args: DemoArgs) -> Result<()> {
    let config = crate::load_config(args.config.as_ref())?;
    let calendar: Vec<chrono::NaiveDate> = config.calendar.instructional_days().iter().map(|d| d.to_date()).collect();
    let days = args.days.unwrap_or(calendar.len() as u32).min(calendar.len() as u32);
    let options = GenerateOptions {
        students: args.students,
        schools: args.schools,
        days,
        seed: args.seed,
        malformed_lines: true,
    };
    let cluster = rdkafka::mocking::MockCluster::new(1).context("starting the embedded Kafka broker")?;
    cluster.create_topic(TOPIC, 4, 1).context("creating the demo topic")?;
    cluster.create_topic(DEAD_LETTERS, 1, 1).context("creating the dead-letter topic")?;
    let kafka = config::KafkaConfig {
        brokers: cluster.bootstrap_servers(),
        group_id: String::from("wholechild-demo"),
        topics: vec![String::from(TOPIC)],
        dead_letter_topic: String::from(DEAD_LETTERS),
        options: Default::default(),
    };
    eprintln!("demo: streaming through an embedded Kafka broker at {} (topic {TOPIC})", kafka.brokers);
    let (reader, writer) = std::io::pipe()?;
    let pause = Duration::from_secs_f64(args.seconds_per_day.max(0.0));
    let generator = std::thread::spawn(move || {
        let writer = std::io::BufWriter::with_capacity(1 << 16, writer);
        // The generator writes a day, flushes, and waits: the accelerated district clock.
        generate(&options, &calendar, writer, |_, _| std::thread::sleep(pause))
    });
    // The district's systems: every generated line published as `wholechild produce`
    // would, withdrawals as tombstones.
    let published = Arc::new(AtomicBool::new(false));
    let producer = {
        let (kafka, published) = (kafka.clone(), published.clone());
        std::thread::spawn(move || -> Result<()> {
            let publisher = Publisher::connect(&kafka, TOPIC)?;
            crate::produce::publish_lines(std::io::BufReader::new(reader), &publisher, None, true)?;
            let refused = publisher.finish()?;
            published.store(true, Ordering::SeqCst);
            match refused {
                0 => Ok(()),
                refused => bail!("the embedded broker refused {refused} messages"),
            }
        })
    };
    let params = EngineParams::from_config(&config);
    let top = args.top_schools;
    let result = dataflows::run(args.workers, params, move |engine| -> Result<()> {
        let interactive = std::io::stdout().is_terminal();
        let mut screen = LiveSummary { days_total: days, day_number: 0, rejected: 0, top, interactive };
        consume(engine, &kafka, &published, &mut screen)
    })
    .map_err(anyhow::Error::msg)?;
    generator.join().map_err(|_| anyhow::anyhow!("the generator panicked"))??;
    producer.join().map_err(|_| anyhow::anyhow!("the producer panicked"))??;
    result
}

/// The live engine's loop, as `run` has it: consumes until everything published is
/// applied, making it visible every 20 ms.
fn consume(
    engine: &mut Engine,
    kafka: &config::KafkaConfig,
    published: &AtomicBool,
    screen: &mut LiveSummary,
) -> Result<()> {
    let metrics = SourceMetrics::register(&prometheus::Registry::new())?;
    let mut source = KafkaSource::connect(kafka, &[], metrics, 2)?;
    let driver_options = DriverOptions::following_input(false, None, 1);
    let mut feeder = Feeder::new();
    let mut catch_up = None;
    let mut last_publish = Instant::now();
    loop {
        let wait = catch_up.as_ref().map_or(Duration::from_millis(100), CatchUp::poll_wait);
        let read = source.poll(wait, 50_000, |decoded, _| feeder.feed(engine, decoded, &driver_options, screen))?;
        if last_publish.elapsed() >= Duration::from_millis(20) || read == 0 {
            feeder.publish(engine);
            source.commit_applied(CommitMode::Async)?;
            last_publish = Instant::now();
        }
        if catch_up.is_none() && published.load(Ordering::SeqCst) {
            catch_up = Some(CatchUp::new(end_offsets(kafka, &kafka.topics, Duration::from_secs(30))?));
        }
        if catch_up.as_mut().is_some_and(|catch_up: &mut CatchUp| catch_up.done(&source, read)) {
            break;
        }
        if read == 0 && source.reader_stopped() {
            bail!("the Kafka reader stopped (its error is in the log above)");
        }
    }
    feeder.publish(engine);
    let driven = feeder.finish(engine, &driver_options, screen)?;
    source.close();
    println!(
        "\nstream ended: {} records, {} corrections and {} withdrawals applied, {} malformed lines set aside; figures as of {}",
        driven.stats.records, driven.stats.corrections, driven.stats.withdrawals, driven.rejected, driven.as_of
    );
    Ok(())
}

struct LiveSummary {
    days_total: u32,
    day_number: u32,
    rejected: u64,
    top: usize,
    interactive: bool,
}

fn percent(rate: Rate) -> String {
    rate.value().map_or_else(|| String::from("   -  "), |value| format!("{:5.1}%", value * 100.0))
}

impl Observer for LiveSummary {
    fn rejected(&mut self, _rejected: Rejected) -> Result<()> {
        self.rejected += 1;
        Ok(())
    }

    fn day_closed(&mut self, engine: &mut Engine, upsert: &Upsert, day: Day, stats: &DayStats) -> Result<()> {
        let names = &upsert.names;
        if !engine.calendar().is_instructional(day) {
            return Ok(());
        }
        self.day_number += 1;
        let tables = {
            let counts = engine.outputs().counts.lock().expect("counts");
            let directory = engine.outputs().directory.lock().expect("directory");
            school_tables(names, &counts, &directory)
        };
        let mut text = String::new();
        if self.interactive {
            text.push_str("\x1b[2J\x1b[H");
        }
        text.push_str(&format!(
            "wholechild live demo: as of {day}, instructional day {} of {}\n",
            self.day_number, self.days_total
        ));
        text.push_str(&format!(
            "this day: {} records, {} indicator fact changes, {} corrections, {} withdrawals, {} malformed lines set aside ({} in all)\n",
            stats.records, stats.fact_changes, stats.corrections, stats.withdrawals, stats.rejected, self.rejected
        ));
        if let Some((_, district)) = tables.rollups.iter().find(|((level, _), _)| level.as_str() == "district") {
            let row = district.1;
            text.push_str(&format!(
                "district: {} enrolled | tier 1 {} | tier 2 {} | tier 3 {} | chronic absence {} | suspension rate {}\n",
                row.enrolled,
                row.tier_1,
                row.tier_2,
                row.tier_3,
                percent(row.chronic_absence_rate()),
                percent(row.suspension_rate())
            ));
        }
        let mut schools: Vec<_> = tables.schools.iter().collect();
        schools.sort_by(|a, b| {
            let rate = |row: &model::SchoolRow| row.chronic_absence_rate().value().unwrap_or(-1.0);
            rate(&b.1 .1).total_cmp(&rate(&a.1 .1)).then(a.0.cmp(b.0))
        });
        text.push_str(&format!(
            "\n{:<14} {:>8} {:>7} {:>7} {:>7} {:>9}\n",
            "school", "enrolled", "tier 1", "tier 2", "tier 3", "chronic"
        ));
        for (id, (_, row)) in schools.into_iter().take(self.top) {
            text.push_str(&format!(
                "{:<14} {:>8} {:>7} {:>7} {:>7} {:>9}\n",
                id,
                row.enrolled,
                row.tier_1,
                row.tier_2,
                row.tier_3,
                percent(row.chronic_absence_rate())
            ));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}
