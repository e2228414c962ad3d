//! `wholechild demo`: generates a district and streams it, day by day on an
//! accelerated clock, through the same driver and dataflows as `replay`, showing a live
//! summary per day in the terminal.

use crate::driver::{drive, DayStats, DriverOptions, Observer};
use crate::generate::{generate, GenerateOptions};
use crate::output::school_tables;
use anyhow::Result;
use dataflows::{Engine, EngineParams};
use ingest::{Rejected, Upsert};
use model::{Day, Rate};
use std::io::{IsTerminal, Write};
use std::time::Duration;

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
    let (reader, writer) = std::io::pipe()?;
    let pause = Duration::from_secs_f64(args.seconds_per_day.max(0.0));
    let generator = std::thread::spawn(move || {
        let writer = std::io::BufWriter::with_capacity(1 << 16, writer);
        // The generator writes a day, flushes, and waits: the accelerated district clock.
        generate(&options, &calendar, writer, |_, _| std::thread::sleep(pause))
    });
    let params = EngineParams::from_config(&config);
    let top = args.top_schools;
    let result = dataflows::run(args.workers, params, move |engine| -> Result<()> {
        let mut screen = LiveSummary { days_total: days, day_number: 0, rejected: 0, top, interactive: std::io::stdout().is_terminal() };
        let driver_options = DriverOptions::following_input(false, None, 1);
        let blocks = ingest::read_ndjson(reader, driver_options.decode_threads);
        let driven = drive(engine, blocks, &driver_options, &mut screen)?;
        println!(
            "\nstream ended: {} records, {} corrections and {} withdrawals applied, {} malformed lines set aside; figures as of {}",
            driven.stats.records, driven.stats.corrections, driven.stats.withdrawals, driven.rejected, driven.as_of
        );
        Ok(())
    })
    .map_err(anyhow::Error::msg)?;
    generator.join().map_err(|_| anyhow::anyhow!("the generator panicked"))??;
    result
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
