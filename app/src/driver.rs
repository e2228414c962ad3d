//! The driver: reads canonical records in arrival order, moves the district clock,
//! applies corrections through the upsert stage and feeds the engine. `replay` and the
//! live `demo` share it; they differ in what they do when a day closes.

use anyhow::{bail, Context, Result};
use dataflows::{Engine, Snapshot};
use ingest::{Decoded, Names, Rejected, Upsert, UpsertStats};
use model::Day;

/// What happened while a day was the clock's day.
#[derive(Clone, Copy, Default, Debug)]
pub struct DayStats {
    pub records: u64,
    pub rejected: u64,
    pub fact_changes: u64,
    pub corrections: u64,
    pub withdrawals: u64,
}

/// Called by the driver; every method has a do-nothing default.
pub trait Observer {
    /// A line was rejected (replay writes it to `rejected.ndjson`).
    fn rejected(&mut self, _rejected: Rejected) -> Result<()> {
        Ok(())
    }
    /// `day` has closed: the engine's outputs are complete as of it.
    fn day_closed(&mut self, _engine: &mut Engine, _upsert: &Upsert, _day: Day, _stats: &DayStats) -> Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Report each instructional day's changed rows (and step through days without records).
    pub daily: bool,
    /// The day of the final figures; default the clock's last day.
    pub as_of: Option<Day>,
    pub decode_threads: usize,
    /// The clock moves with the dates on the records (replay, demo, a Kafka backfill);
    /// otherwise its owner moves it with [`Feeder::move_clock`] (the wall-clock calendar).
    pub clock_follows_input: bool,
}

impl DriverOptions {
    /// Replay's options: the clock follows the input.
    pub fn following_input(daily: bool, as_of: Option<Day>, decode_threads: usize) -> DriverOptions {
        DriverOptions { daily, as_of, decode_threads, clock_follows_input: true }
    }
}

/// The outcome of a run: the names to resolve ids with, the final day, the totals.
pub struct Driven {
    pub names: Names,
    pub as_of: Day,
    pub stats: UpsertStats,
    pub rejected: u64,
}

/// How many fact changes to buffer before letting the workers run.
const STEP_EVERY: u64 = 65_536;

/// Feeds records one at a time: moves the clock, applies corrections, updates the engine.
pub struct Feeder {
    pub upsert: Upsert,
    /// The district clock: the latest date seen on a dated record.
    pub clock: Option<Day>,
    pub day_stats: DayStats,
    pub rejected: u64,
    changes: Vec<(model::Fact, isize)>,
    since_step: u64,
}

impl Default for Feeder {
    fn default() -> Self {
        Feeder::new()
    }
}

impl Feeder {
    pub fn new() -> Feeder {
        Feeder {
            upsert: Upsert::new(),
            clock: None,
            day_stats: DayStats::default(),
            rejected: 0,
            changes: Vec::new(),
            since_step: 0,
        }
    }

    /// Handles one decoded line. A dated record later than the clock first closes the
    /// clock's day (so the day's figures are complete before the next day's records).
    pub fn feed(
        &mut self,
        engine: &mut Engine,
        decoded: Decoded,
        options: &DriverOptions,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let event = match decoded {
            Decoded::Record { event, .. } => event,
            Decoded::Rejected(rejected) => {
                self.day_stats.rejected += 1;
                self.rejected += 1;
                return observer.rejected(rejected);
            }
        };
        if options.clock_follows_input {
            if let Some(day) = event.body.as_ref().and_then(|body| body.clock_day()) {
                self.move_clock(engine, day, options, observer)?;
            }
        }
        let before = self.upsert.stats;
        self.upsert.apply(&event, &mut self.changes);
        self.day_stats.records += 1;
        self.day_stats.corrections += self.upsert.stats.corrections - before.corrections;
        self.day_stats.withdrawals += self.upsert.stats.withdrawals - before.withdrawals;
        for (fact, diff) in self.changes.drain(..) {
            engine.update(fact, diff);
            self.day_stats.fact_changes += 1;
            self.since_step += 1;
        }
        if self.since_step >= STEP_EVERY {
            self.since_step = 0;
            engine.step();
        }
        Ok(())
    }

    /// Moves the district clock forward to `day` (never back), closing the clock's day first.
    pub fn move_clock(
        &mut self,
        engine: &mut Engine,
        day: Day,
        options: &DriverOptions,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        if let Some(closed) = self.clock.filter(|&clock| day > clock) {
            close_day(engine, &self.upsert, closed, day, options, &mut self.day_stats, observer)?;
        }
        if self.clock.is_none_or(|clock| day > clock) {
            self.clock = Some(day);
        }
        Ok(())
    }

    /// Makes everything fed so far visible in every output, without moving the clock
    /// (the live engine does this every few hundred milliseconds).
    pub fn publish(&mut self, engine: &mut Engine) {
        if let Some(clock) = self.clock {
            self.since_step = 0;
            engine.close_epoch(clock, Snapshot::None);
        }
    }

    /// Ends the input: closes the last day (daily mode) and the final epoch as of
    /// `as_of` (default: the clock's day), reporting every row.
    pub fn finish(self, engine: &mut Engine, options: &DriverOptions, observer: &mut dyn Observer) -> Result<Driven> {
        let mut feeder = self;
        let Some(as_of) = options.as_of.or(feeder.clock) else {
            bail!(
                "the input has no dated record (attendance, discipline, grade, health visit or ticket): give --as-of"
            );
        };
        // The clock's last day closes like every other (the demo shows it, --daily reports it).
        if let Some(closed) = feeder.clock {
            close_day(engine, &feeder.upsert, closed, Day(closed.0 + 1), options, &mut feeder.day_stats, observer)?;
        }
        engine.close_epoch(as_of, Snapshot::All);
        Ok(Driven { names: feeder.upsert.names, as_of, stats: feeder.upsert.stats, rejected: feeder.rejected })
    }
}

/// Runs decoded blocks (from [`ingest::read_ndjson`] or [`ingest::read_ndjson_file`])
/// to their end through the engine.
pub fn drive(
    engine: &mut Engine,
    blocks: impl Iterator<Item = std::io::Result<Vec<Decoded>>>,
    options: &DriverOptions,
    observer: &mut dyn Observer,
) -> Result<Driven> {
    let mut feeder = Feeder::new();
    for block in blocks {
        for decoded in block.context("reading the events")? {
            feeder.feed(engine, decoded, options, observer)?;
        }
    }
    feeder.finish(engine, options, observer)
}

/// Closes `closed` (the clock moves to `next`); in daily mode also every instructional
/// day strictly between them, so each has its snapshot.
fn close_day(
    engine: &mut Engine,
    upsert: &Upsert,
    closed: Day,
    next: Day,
    options: &DriverOptions,
    day_stats: &mut DayStats,
    observer: &mut dyn Observer,
) -> Result<()> {
    let instructional = engine.calendar().is_instructional(closed);
    let snapshot = if options.daily && instructional { Snapshot::Changed } else { Snapshot::None };
    engine.close_epoch(closed, snapshot);
    observer.day_closed(engine, upsert, closed, day_stats)?;
    *day_stats = DayStats::default();
    if options.daily {
        let between: Vec<Day> =
            engine.calendar().instructional_days().iter().copied().filter(|&day| closed < day && day < next).collect();
        for day in between {
            engine.close_epoch(day, Snapshot::Changed);
            observer.day_closed(engine, upsert, day, day_stats)?;
        }
    }
    Ok(())
}
