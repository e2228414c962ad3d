//! Runs canonical records through the real engine in-process, the way `replay` does,
//! and returns the rows as JSON values keyed like the oracle's.
#![allow(dead_code)]

use dataflows::{Engine, EngineParams, Snapshot};
use ingest::Decoded;
use serde_json::Value;
use std::collections::BTreeMap;
use wholechild::driver::{DriverOptions, Feeder, Observer};
use wholechild::output::{rollup_json, school_json, school_tables, student_json};

pub struct NoObserver;
impl Observer for NoObserver {}

/// The engine's rows, parsed back from the NDJSON the engine writes.
#[derive(Debug, Default)]
pub struct Rows {
    pub students: BTreeMap<String, Value>,
    pub schools: BTreeMap<String, Value>,
    pub rollups: BTreeMap<(String, String), Value>,
}

impl Rows {
    pub fn student(&self, id: &str) -> &Value {
        self.students.get(id).unwrap_or_else(|| panic!("no row for student {id}: {:?}", self.students.keys()))
    }

    pub fn school(&self, id: &str) -> &Value {
        self.schools.get(id).unwrap_or_else(|| panic!("no row for school {id}"))
    }

    pub fn rollup(&self, level: &str, id: &str) -> &Value {
        &self.rollups[&(level.to_string(), id.to_string())]
    }

    pub fn student_list(&self) -> Vec<Value> {
        self.students.values().cloned().collect()
    }

    pub fn school_list(&self) -> Vec<Value> {
        self.schools.values().cloned().collect()
    }

    pub fn rollup_list(&self) -> Vec<Value> {
        self.rollups.values().cloned().collect()
    }
}

fn parse(line: String) -> Value {
    serde_json::from_str(&line).expect("the engine writes JSON")
}

/// Closes an epoch as of `as_of` and reads every row.
pub fn snapshot(engine: &mut Engine, feeder: &Feeder, as_of: model::Day) -> Rows {
    engine.close_epoch(as_of, Snapshot::All);
    let names = &feeder.upsert.names;
    let mut rows = Rows::default();
    for (_, _, row) in engine.take_rows() {
        if let Some(row) = row {
            let value = parse(student_json(names, &row, ""));
            rows.students.insert(value["student_id"].as_str().unwrap().to_string(), value);
        }
    }
    let tables = {
        let counts = engine.outputs().counts.lock().unwrap();
        let directory = engine.outputs().directory.lock().unwrap();
        school_tables(names, &counts, &directory)
    };
    for (id, (school, row)) in &tables.schools {
        rows.schools.insert(id.clone(), parse(school_json(names, *school, row, "")));
    }
    for ((level, id), (sym, row)) in &tables.rollups {
        rows.rollups.insert((level.as_str().to_string(), id.clone()), parse(rollup_json(names, *level, *sym, row, "")));
    }
    rows
}

/// Feeds one JSON record (it must be valid) through the driver.
pub fn feed(engine: &mut Engine, feeder: &mut Feeder, record: &Value) {
    let event =
        ingest::decode_line(record.to_string().as_bytes()).unwrap_or_else(|reason| panic!("{reason}: {record}"));
    let options = DriverOptions::following_input(false, None, 1);
    feeder.feed(engine, Decoded::Record { line: 0, event }, &options, &mut NoObserver).unwrap();
}

/// Runs `records` through a fresh engine on `workers` workers; rows as of `as_of`
/// (default: the clock's day).
pub fn run_records(config: &str, records: &[Value], as_of: Option<&str>, workers: usize) -> Rows {
    let config = config::Config::parse(config).unwrap();
    let records = records.to_vec();
    let as_of = as_of.map(|text| model::Day::parse(text).unwrap());
    dataflows::run(workers, EngineParams::from_config(&config), move |engine| {
        let mut feeder = Feeder::new();
        for record in &records {
            feed(engine, &mut feeder, record);
        }
        let day = as_of.or(feeder.clock).expect("a dated record or an as-of day");
        snapshot(engine, &feeder, day)
    })
    .unwrap()
}
