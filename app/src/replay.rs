//! `wholechild replay`: a file of events through the live dataflows, figures to files.

use crate::alert_log::AlertLog;
use crate::driver::{drive, DayStats, DriverOptions, Observer};
use crate::entity_alerts::EntityAlerts;
use crate::output::{rejected_json, rollup_json, school_json, school_tables, student_json, write_lines, SchoolTables};
use anyhow::{Context, Result};
use dataflows::{Engine, EngineParams};
use ingest::{Names, Rejected, Upsert};
use model::{Day, SchoolRow};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct ReplayOptions {
    pub config: config::Config,
    pub events: PathBuf,
    pub out: PathBuf,
    pub as_of: Option<Day>,
    pub daily: bool,
    pub workers: usize,
    pub decode_threads: usize,
    /// Backtest the configuration's alert rules: write `alerts.ndjson` and `alert_load.ndjson`.
    pub alerts: bool,
}

/// What a replay did, for the closing message.
#[derive(Debug)]
pub struct ReplaySummary {
    pub records: u64,
    pub rejected: u64,
    pub corrections: u64,
    pub withdrawals: u64,
    pub students: usize,
    pub schools: usize,
    pub as_of: Day,
    /// Alert changes written, with `alerts`.
    pub alert_changes: Option<u64>,
}

pub fn replay(options: ReplayOptions) -> Result<ReplaySummary> {
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    let blocks: Box<dyn Iterator<Item = io::Result<Vec<ingest::Decoded>>> + Send> = if options.events == Path::new("-")
    {
        Box::new(ingest::read_ndjson(io::stdin(), options.decode_threads))
    } else {
        let file = File::open(&options.events).with_context(|| format!("opening {}", options.events.display()))?;
        Box::new(ingest::read_ndjson(file, options.decode_threads))
    };
    let params = match options.alerts {
        true => EngineParams::with_alerts(&options.config),
        false => EngineParams::from_config(&options.config),
    };
    let driver_options = DriverOptions::following_input(options.daily, options.as_of, options.decode_threads);
    let out = options.out.clone();
    let alert_config = options.alerts.then(|| options.config.clone());
    dataflows::run(options.workers, params, move |engine| -> Result<ReplaySummary> {
        let mut observer = ReplayFiles::create(&out, driver_options.daily, alert_config.as_ref())?;
        let driven = drive(engine, blocks, &driver_options, &mut observer)?;
        let alert_changes = observer.finish(engine, &driven.names, &out)?;
        write_final(engine, &driven.names, &out).map(|(students, schools)| ReplaySummary {
            records: driven.stats.records,
            rejected: driven.rejected,
            corrections: driven.stats.corrections,
            withdrawals: driven.stats.withdrawals,
            students,
            schools,
            as_of: driven.as_of,
            alert_changes,
        })
    })
    .map_err(anyhow::Error::msg)?
}

/// Writes students, schools and rollups as of the final epoch; returns their counts.
pub(crate) fn write_final(engine: &mut Engine, names: &Names, out: &Path) -> Result<(usize, usize)> {
    // Rows are sorted by id and rendered one at a time: at district scale, holding every
    // rendered line would cost a third of a gigabyte.
    let mut students = engine.take_rows();
    students.sort_unstable_by(|a, b| names.students.resolve(a.1).cmp(names.students.resolve(b.1)));
    let rows = || students.iter().filter_map(|(_, _, row)| row.as_ref());
    let student_count = rows().count();
    write_lines(&out.join("students.ndjson"), rows().map(|row| student_json(names, row, "")))?;
    let tables = current_tables(engine, names);
    write_lines(
        &out.join("schools.ndjson"),
        tables.schools.values().map(|(school, row)| school_json(names, *school, row, "")),
    )?;
    write_lines(
        &out.join("rollups.ndjson"),
        tables.rollups.iter().map(|((level, _), (id, row))| rollup_json(names, *level, *id, row, "")),
    )?;
    Ok((student_count, tables.schools.len()))
}

pub(crate) fn current_tables(engine: &Engine, names: &Names) -> SchoolTables {
    let counts = engine.outputs().counts.lock().expect("counts");
    let directory = engine.outputs().directory.lock().expect("directory");
    school_tables(names, &counts, &directory)
}

/// The files a replay writes while it runs: rejected lines, with `--daily` each
/// instructional day's changed rows, and with `--alerts` each day's alert changes.
struct ReplayFiles {
    rejected: BufWriter<File>,
    daily: Option<DailyFiles>,
    alerts: Option<AlertLog>,
    /// School and section rules, checked as each day closes (with `alerts`).
    entity_alerts: Option<EntityAlerts>,
}

struct DailyFiles {
    students: BufWriter<File>,
    schools: BufWriter<File>,
    rollups: BufWriter<File>,
    last_schools: BTreeMap<String, SchoolRow>,
    last_rollups: BTreeMap<String, SchoolRow>,
}

impl ReplayFiles {
    fn create(out: &Path, daily: bool, alerts: Option<&config::Config>) -> Result<ReplayFiles> {
        let create = |name: &str| -> Result<BufWriter<File>> {
            let path = out.join(name);
            Ok(BufWriter::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?))
        };
        let daily = if daily {
            std::fs::create_dir_all(out.join("daily"))?;
            Some(DailyFiles {
                students: create("daily/students.ndjson")?,
                schools: create("daily/schools.ndjson")?,
                rollups: create("daily/rollups.ndjson")?,
                last_schools: BTreeMap::new(),
                last_rollups: BTreeMap::new(),
            })
        } else {
            None
        };
        let entity_alerts = alerts.and_then(|config| EntityAlerts::new(&config.rules, &config.sections));
        let alerts = alerts.map(|config| AlertLog::create(out, &config.rules)).transpose()?;
        Ok(ReplayFiles { rejected: create("rejected.ndjson")?, daily, alerts, entity_alerts })
    }

    /// Flushes the files; writes the final epoch's alert changes and the alert load.
    fn finish(mut self, engine: &mut Engine, names: &Names, out: &Path) -> Result<Option<u64>> {
        self.rejected.flush()?;
        if let Some(daily) = &mut self.daily {
            daily.students.flush()?;
            daily.schools.flush()?;
            daily.rollups.flush()?;
        }
        match self.alerts {
            Some(mut alerts) => {
                alerts.write(names, engine.take_alert_changes())?;
                Ok(Some(alerts.finish(out)?))
            }
            None => Ok(None),
        }
    }
}

impl Observer for ReplayFiles {
    fn rejected(&mut self, rejected: Rejected) -> Result<()> {
        writeln!(self.rejected, "{}", rejected_json(&rejected))?;
        Ok(())
    }

    fn day_closed(&mut self, engine: &mut Engine, upsert: &Upsert, day: Day, _stats: &DayStats) -> Result<()> {
        let names = &upsert.names;
        if let Some(alerts) = &mut self.alerts {
            alerts.write(names, engine.take_alert_changes())?;
            if let Some(entity_alerts) = &mut self.entity_alerts {
                let tables = current_tables(engine, names);
                let schools = crate::entity_alerts::school_info(&engine.outputs().directory.lock().expect("directory"));
                let changes = entity_alerts.day_closed(day, engine.calendar(), &tables, &schools, upsert);
                alerts.write_entity(names, changes)?;
            }
        }
        let Some(daily) = &mut self.daily else {
            return Ok(());
        };
        let as_of = format!("\"as_of\":\"{day}\",");
        let mut rows = engine.take_rows();
        rows.sort_unstable_by(|a, b| names.students.resolve(a.1).cmp(names.students.resolve(b.1)));
        for (_, student, row) in rows {
            match row {
                Some(row) => writeln!(daily.students, "{}", student_json(names, &row, &as_of))?,
                None => {
                    let id = serde_json::to_string(names.students.resolve(student))?;
                    writeln!(daily.students, "{{{as_of}\"student_id\":{id},\"withdrawn\":true}}")?
                }
            }
        }
        let tables = current_tables(engine, names);
        for (id, (school, row)) in &tables.schools {
            if daily.last_schools.get(id) != Some(row) {
                writeln!(daily.schools, "{}", school_json(names, *school, row, &as_of))?;
                daily.last_schools.insert(id.clone(), *row);
            }
        }
        for ((level, id), (sym, row)) in &tables.rollups {
            let key = format!("{}:{id}", level.as_str());
            if daily.last_rollups.get(&key) != Some(row) {
                writeln!(daily.rollups, "{}", rollup_json(names, *level, *sym, row, &as_of))?;
                daily.last_rollups.insert(key, *row);
            }
        }
        Ok(())
    }
}
