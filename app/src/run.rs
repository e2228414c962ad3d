//! `wholechild run`: the live engine on the district's Kafka topics.
//!
//! Records are consumed in a group (`ingest::kafka`), fed through the same driver as
//! `replay`, and made visible in every output every `publish_every`; offsets are
//! committed only after that. With `--exit-when-caught-up` it stops at the end offsets
//! found at start and writes replay's files (a backfill); otherwise it runs until
//! SIGTERM or SIGINT on the wall-clock calendar (today in the district's time zone).

use crate::driver::{DayStats, DriverOptions, Feeder, Observer};
use crate::entity_alerts::EntityAlerts;
use crate::live_alerts::{local_now, LiveAlerts};
use crate::replay::write_final;
use anyhow::{anyhow, bail, Result};
use config::Config;
use dataflows::{Engine, EngineParams};
use ingest::kafka::{KafkaSource, SourceMetrics};
use ingest::{Rejected, Upsert};
use model::Day;
use rdkafka::consumer::CommitMode;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RunOptions {
    pub config: Config,
    /// Stop at the end offsets found at start, and write the files of `replay` to `out`.
    pub exit_when_caught_up: bool,
    /// Where to write students, schools and rollups when the run ends.
    pub out: Option<PathBuf>,
    /// A fixed district clock (default: the input's dates in a backfill, today when live).
    pub as_of: Option<Day>,
    pub workers: usize,
    /// Threads decoding the messages read from Kafka.
    pub decode_threads: usize,
    /// How often fed records are made visible in every output (and offsets committed).
    pub publish_every: Duration,
}

/// What a run did, for the closing message.
#[derive(Debug)]
pub struct RunSummary {
    pub records: u64,
    pub rejected: u64,
    pub corrections: u64,
    pub withdrawals: u64,
    pub as_of: Day,
    /// Students and schools written, when `out` was given.
    pub written: Option<(usize, usize)>,
}

/// Today's date in the district's time zone.
pub fn district_today() -> Day {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::America::Los_Angeles);
    Day::from_date(now.date_naive())
}

pub fn run(options: RunOptions) -> Result<RunSummary> {
    let kafka = options.config.kafka.clone().ok_or_else(|| {
        anyhow!("the configuration has no [kafka] section (brokers, group_id, topics): see docs/configuration.md")
    })?;
    let registry = prometheus::Registry::new();
    let metrics = SourceMetrics::register(&registry)?;
    if let Some(listen) = options.config.metrics.listen {
        let bound = crate::metrics::serve(registry, listen)?;
        eprintln!("metrics: http://{bound}/metrics");
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let params = match options.config.alerts {
        Some(_) => EngineParams::with_alerts(&options.config),
        None => EngineParams::from_config(&options.config),
    };
    let mut live_alerts = match &options.config.alerts {
        Some(alerts) => Some(LiveAlerts::start(
            alerts,
            &options.config.rules,
            &options.config.calendar,
            options.config.kafka.as_ref(),
        )?),
        None => None,
    };
    if let Some(address) = live_alerts.as_ref().and_then(|alerts| alerts.api_address) {
        eprintln!("alerts API: http://{address}/api/alerts/");
    }
    let mut entity_alerts =
        options.config.alerts.as_ref().and_then(|_| EntityAlerts::new(&options.config.rules, &options.config.sections));
    let sources = options.config.sources.clone();
    dataflows::run(options.workers, params, move |engine| -> Result<RunSummary> {
        let mut source = KafkaSource::connect(&kafka, &sources, metrics, options.decode_threads)?;
        let mut catch_up = match options.exit_when_caught_up {
            true => Some(CatchUp::new(ingest::kafka::end_offsets(&kafka, &kafka.topics, Duration::from_secs(30))?)),
            false => None,
        };
        if let Some(catch_up) = &catch_up {
            let ends = &catch_up.ends;
            eprintln!("backfill: reading {} records in {} partition(s)", ends.values().sum::<i64>(), ends.len());
        }
        let driver_options = DriverOptions {
            daily: false,
            as_of: options.as_of,
            decode_threads: 1,
            clock_follows_input: options.exit_when_caught_up,
        };
        let mut feeder = Feeder::new();
        let mut log = RunLog { live: !options.exit_when_caught_up };
        let mut applied = Applied::default();
        let mut last_publish = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                // Records the reader has already handed over are applied (and committed)
                // before stopping; the rest are read again at the next start.
                source.poll(Duration::ZERO, usize::MAX, |decoded, origin| {
                    applied.note(&origin);
                    feeder.feed(engine, decoded, &driver_options, &mut log)
                })?;
                eprintln!("stopping: signal received");
                break;
            }
            if !driver_options.clock_follows_input {
                let today = options.as_of.unwrap_or_else(district_today);
                feeder.move_clock(engine, today, &driver_options, &mut log)?;
            }
            let wait = catch_up.as_ref().map_or(Duration::from_millis(100), CatchUp::poll_wait);
            let read = source.poll(wait, 50_000, |decoded, origin| {
                applied.note(&origin);
                feeder.feed(engine, decoded, &driver_options, &mut log)
            })?;
            if last_publish.elapsed() >= options.publish_every || (read == 0 && !applied.is_empty()) {
                publish(&mut feeder, engine, &mut source, &mut applied, CommitMode::Async)?;
                last_publish = Instant::now();
                if let Some(alerts) = &mut live_alerts {
                    record_alerts(alerts, entity_alerts.as_mut(), &feeder, engine)?;
                }
            }
            if let Some(alerts) = &mut live_alerts {
                alerts.answer_requests(local_now());
                alerts.tick(&feeder.upsert.names, &feeder.upsert.staff, local_now())?;
            }
            if read == 0 && source.reader_stopped() {
                bail!("the Kafka reader stopped (its error is in the log above)");
            }
            if catch_up.as_mut().is_some_and(|catch_up| catch_up.done(&source, read)) {
                eprintln!("backfill: caught up with the end offsets found at start");
                break;
            }
        }
        publish(&mut feeder, engine, &mut source, &mut applied, CommitMode::Sync)?;
        if let Some(alerts) = &mut live_alerts {
            record_alerts(alerts, entity_alerts.as_mut(), &feeder, engine)?;
            alerts.tick(&feeder.upsert.names, &feeder.upsert.staff, local_now())?;
        }
        let driven = feeder.finish(engine, &driver_options, &mut log)?;
        if let Some(alerts) = live_alerts.take() {
            eprintln!("alerts: {} alert change(s) logged", alerts.logged);
            alerts.close();
        }
        let written = match &options.out {
            Some(out) => {
                std::fs::create_dir_all(out)?;
                Some(write_final(engine, &driven.names, out)?)
            }
            None => None,
        };
        source.close();
        Ok(RunSummary {
            records: driven.stats.records,
            rejected: driven.rejected,
            corrections: driven.stats.corrections,
            withdrawals: driven.stats.withdrawals,
            as_of: driven.as_of,
            written,
        })
    })
    .map_err(anyhow::Error::msg)?
}

/// Logs the alert changes of the epochs closed so far: student rules from the dataflow,
/// school and section rules checked on the figures just published.
fn record_alerts(
    alerts: &mut LiveAlerts,
    entity_alerts: Option<&mut EntityAlerts>,
    feeder: &Feeder,
    engine: &mut Engine,
) -> Result<()> {
    let now = local_now();
    let names = &feeder.upsert.names;
    let schools = crate::entity_alerts::school_info(&engine.outputs().directory.lock().expect("directory"));
    alerts.record(&feeder.upsert, &schools, engine.take_alert_changes(), now)?;
    if let (Some(entity_alerts), Some(day)) = (entity_alerts, feeder.clock) {
        let tables = crate::replay::current_tables(engine, names);
        let changes = entity_alerts.day_closed(day, engine.calendar(), &tables, &schools, &feeder.upsert);
        alerts.record_entities(&feeder.upsert, &schools, changes, now)?;
    }
    Ok(())
}

/// Makes everything fed so far visible, then commits the offsets of what it covers and
/// records each record's latency to its effect.
fn publish(
    feeder: &mut Feeder,
    engine: &mut Engine,
    source: &mut KafkaSource,
    applied: &mut Applied,
    mode: CommitMode,
) -> Result<()> {
    feeder.publish(engine);
    source.commit_applied(mode)?;
    for (topic, timestamps) in &mut applied.by_topic {
        source.observe_effects(topic, timestamps);
    }
    Ok(())
}

/// When a backfill has caught up: every partition applied up to the end offsets found at
/// start, and then what was fetched with them.
///
/// Why the second part: a broker may report a partition's end short of its last record
/// (tansu 0.6 gives one past the first offset of the partition's last record batch), so
/// the records of that batch after it are read but not yet applied when the end is
/// reached. They arrive without waiting on the broker: the backfill ends at the first
/// poll that finds nothing more, or 2 s after the end offsets were reached.
pub struct CatchUp {
    pub ends: std::collections::BTreeMap<ingest::kafka::Partition, i64>,
    reached_at: Option<Instant>,
}

impl CatchUp {
    pub fn new(ends: std::collections::BTreeMap<ingest::kafka::Partition, i64>) -> CatchUp {
        CatchUp { ends, reached_at: None }
    }

    /// How long a poll may wait for records: briefly once the end offsets are reached
    /// (what is left was fetched already).
    pub fn poll_wait(&self) -> Duration {
        match self.reached_at {
            Some(_) => Duration::from_millis(10),
            None => Duration::from_millis(100),
        }
    }

    /// Whether to stop, after a poll that applied `read` records.
    pub fn done(&mut self, source: &KafkaSource, read: usize) -> bool {
        let reached = self.reached_at.is_some() || source.reached(&self.ends);
        self.after_poll(reached, read, Instant::now())
    }

    /// `done`, given whether the end offsets are reached and the time.
    fn after_poll(&mut self, reached: bool, read: usize, now: Instant) -> bool {
        if reached && self.reached_at.is_none() {
            self.reached_at = Some(now);
        }
        self.reached_at.is_some_and(|at| read == 0 || now.duration_since(at) >= Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_at_its_end_offsets_still_takes_what_was_fetched_with_them() {
        let mut catch_up = CatchUp::new(Default::default());
        let start = Instant::now();
        assert!(!catch_up.after_poll(false, 0, start), "not there yet");
        assert!(!catch_up.after_poll(true, 8192, start), "the end's batch may have more behind it");
        assert!(!catch_up.after_poll(false, 500, start + Duration::from_millis(100)), "reached stays reached");
        assert!(catch_up.after_poll(false, 0, start + Duration::from_millis(200)), "nothing more came");
        let mut busy = CatchUp::new(Default::default());
        assert!(!busy.after_poll(true, 100, start));
        assert!(busy.after_poll(true, 100, start + Duration::from_secs(2)), "a live stream does not hold it up");
    }
}

/// Kafka timestamps of the records applied since the last publish, per topic.
#[derive(Default)]
struct Applied {
    by_topic: Vec<(String, Vec<i64>)>,
}

impl Applied {
    /// Notes a record about to be applied (one without a timestamp is not timed).
    fn note(&mut self, origin: &ingest::kafka::Origin<'_>) {
        let Some(timestamp_ms) = origin.timestamp_ms else { return };
        match self.by_topic.iter_mut().find(|(known, _)| known == origin.topic) {
            Some((_, timestamps)) => timestamps.push(timestamp_ms),
            None => self.by_topic.push((origin.topic.to_string(), vec![timestamp_ms])),
        }
    }

    fn is_empty(&self) -> bool {
        self.by_topic.iter().all(|(_, timestamps)| timestamps.is_empty())
    }
}

/// The live engine's log: one line per closed day.
struct RunLog {
    live: bool,
}

impl Observer for RunLog {
    fn rejected(&mut self, _rejected: Rejected) -> Result<()> {
        Ok(())
    }

    fn day_closed(&mut self, _engine: &mut Engine, _upsert: &Upsert, day: Day, stats: &DayStats) -> Result<()> {
        if self.live {
            eprintln!(
                "day {day} closed: {} records, {} corrections, {} withdrawals, {} rejected",
                stats.records, stats.corrections, stats.withdrawals, stats.rejected
            );
        }
        Ok(())
    }
}
