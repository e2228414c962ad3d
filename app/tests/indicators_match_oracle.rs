//! Oracle tests: random event sequences with corrections and withdrawals, run through
//! the live engine one record at a time; after every step every student, school and
//! rollup row must equal a naive recomputation of metrics.md (tests/support/oracle.rs).
//! Modelled on differential-dataflow's tests/reduce_reference.rs.

mod support;

use chrono::NaiveDate;
use dataflows::EngineParams;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use support::engine::{feed, snapshot};
use support::oracle::{self, OracleParams};
use wholechild::driver::Feeder;

const CONFIG: &str = "[calendar]\nfirst_day = 2026-08-31\nlast_day = 2026-12-18\nholidays = [2026-09-07, 2026-10-12, 2026-11-26, 2026-11-27]\n";

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// A random but plausible stream: few students and schools, so that records collide
/// (overlapping enrollments, several absences on a day, corrections of every kind).
struct Scenario {
    rng: ChaCha8Rng,
    records: Vec<Value>,
    next_id: u32,
    day: NaiveDate,
}

const STUDENTS: &[&str] = &["s1", "s2", "s3", "s4", "s5"];
const SCHOOLS: &[&str] = &["k1", "k2", "k3"];

impl Scenario {
    fn new(seed: u64) -> Scenario {
        Scenario { rng: ChaCha8Rng::seed_from_u64(seed), records: Vec::new(), next_id: 0, day: date("2026-08-28") }
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items.choose(&mut self.rng).unwrap()
    }

    /// A date near the clock: mostly today, sometimes in the past, now and then ahead.
    fn near_date(&mut self) -> String {
        let offset: i64 = match self.rng.random_range(0..10) {
            0..=5 => 0,
            6..=8 => -self.rng.random_range(1..45),
            _ => self.rng.random_range(1..5),
        };
        (self.day + chrono::Duration::days(offset)).format("%Y-%m-%d").to_string()
    }

    fn school_record(&mut self, id: &str) -> Value {
        let level = *["elementary", "middle", "high", "span"].choose(&mut self.rng).unwrap();
        let community = *["c1", "c2"].choose(&mut self.rng).unwrap();
        let local_district = *["ld1", "ld2"].choose(&mut self.rng).unwrap();
        json!({"type":"school","id":id,"source":"sis","name":"A School","level":level,"local_district":local_district,"community":community,"region":"r1"})
    }

    /// One new record of a random type (ids fresh).
    fn new_record(&mut self) -> Value {
        let student = self.pick(STUDENTS);
        let school = self.pick(SCHOOLS);
        match self.rng.random_range(0..100) {
            0..=9 => {
                let entry = self.near_date();
                let exit = if self.rng.random_bool(0.3) {
                    json!((date(&entry) + chrono::Duration::days(self.rng.random_range(0..40)))
                        .format("%Y-%m-%d")
                        .to_string())
                } else {
                    Value::Null
                };
                let id = self.fresh_id("e");
                json!({"type":"enrollment","id":id,"source":"sis","student_id":student,"school_id":school,"grade":7,"entry_date":entry,"exit_date":exit})
            }
            10..=54 => {
                let status = *["present", "tardy", "absent_excused", "absent_unexcused", "suspended"]
                    .choose(&mut self.rng)
                    .unwrap();
                let id = self.fresh_id("a");
                let when = self.near_date();
                json!({"type":"attendance","id":id,"source":"sis","student_id":student,"school_id":school,"date":when,"status":status})
            }
            55..=64 => {
                let action = *["referral", "in_school_suspension", "out_of_school_suspension", "expulsion"]
                    .choose(&mut self.rng)
                    .unwrap();
                let days =
                    if action.contains("suspension") { *[0.5, 1.0, 2.0].choose(&mut self.rng).unwrap() } else { 0.0 };
                let id = self.fresh_id("d");
                let when = self.near_date();
                json!({"type":"discipline","id":id,"source":"sis","student_id":student,"school_id":school,"date":when,"behavior":"b1","action":action,"days":days})
            }
            65..=76 => {
                let term = *["2026-27-S1", "2026-27-S2"].choose(&mut self.rng).unwrap();
                let (course, subject) = *[("m1", "math"), ("e1", "ela"), ("h1", "social_studies"), ("x1", "science")]
                    .choose(&mut self.rng)
                    .unwrap();
                let mark = *["A", "C", "F", "F"].choose(&mut self.rng).unwrap();
                let id = self.fresh_id("g");
                let when = self.near_date();
                json!({"type":"grade","id":id,"source":"sis","student_id":student,"school_id":school,"term":term,"grading_period":"P1","course_id":course,"subject":subject,"mark":mark,"date":when})
            }
            77..=82 => {
                let id = self.fresh_id("h");
                let when = self.near_date();
                json!({"type":"health_visit","id":id,"source":"nurse","student_id":student,"school_id":school,"date":when,"reason":"illness"})
            }
            83..=87 => {
                let program = *["homeless", "foster_youth", "low_income"].choose(&mut self.rng).unwrap();
                let begin = self.near_date();
                let end = if self.rng.random_bool(0.3) { json!(self.near_date()).clone() } else { Value::Null };
                let end = match end.as_str() {
                    Some(e) if e < begin.as_str() => Value::Null,
                    _ => end,
                };
                let id = self.fresh_id("p");
                json!({"type":"program","id":id,"source":"sis","student_id":student,"program":program,"begin_date":begin,"end_date":end})
            }
            88..=92 => {
                let staff = *["t1", "t2", "t3"].choose(&mut self.rng).unwrap();
                let role = *["counselor", "counselor", "psw"].choose(&mut self.rng).unwrap();
                let begin = self.near_date();
                let id = self.fresh_id("c");
                json!({"type":"caseload","id":id,"source":"sis","student_id":student,"staff_id":staff,"role":role,"begin_date":begin,"end_date":null})
            }
            93..=96 => {
                let subject = *["math", "ela", "science"].choose(&mut self.rng).unwrap();
                let enrolled = self.rng.random_range(35..45);
                let id = self.fresh_id("x");
                json!({"type":"section","id":id,"source":"sis","school_id":school,"course_id":"m1","subject":subject,"enrolled":enrolled})
            }
            _ => self.school_record(school),
        }
    }

    /// The next record: a new one, a correction of an earlier key, or a withdrawal.
    fn next_record(&mut self) -> Value {
        // The clock moves about 90 days over 250 records: thresholds (31 days, 10%) are crossed.
        if self.rng.random_bool(0.35) {
            self.day = self.day.succ_opt().unwrap();
        }
        let roll = self.rng.random_range(0..100);
        if roll < 15 && !self.records.is_empty() {
            // A correction: same type and id, new content of the same type.
            let old = self.records.choose(&mut self.rng).unwrap().clone();
            let mut new = loop {
                let candidate = self.new_record();
                if candidate["type"] == old["type"] {
                    break candidate;
                }
            };
            new["id"] = old["id"].clone();
            return new;
        }
        if roll < 22 && !self.records.is_empty() {
            let old = self.records.choose(&mut self.rng).unwrap().clone();
            return json!({"type": old["type"], "id": old["id"], "source": "sis", "deleted": true});
        }
        self.new_record()
    }
}

/// Runs `steps` records through the engine, comparing with the oracle after each.
fn check_against_oracle(seed: u64, steps: usize, workers: usize) {
    let config = config::Config::parse(CONFIG).unwrap();
    let params = EngineParams::from_config(&config);
    let holidays: Vec<NaiveDate> = config.calendar.holidays.iter().map(|d| d.to_date()).collect();
    let oracle_params = OracleParams::defaults(date("2026-08-31"), date("2026-12-18"), holidays);
    let failures = dataflows::run(workers, params, move |engine| {
        let mut scenario = Scenario::new(seed);
        let mut feeder = Feeder::new();
        let schools: Vec<Value> = SCHOOLS.iter().map(|id| scenario.school_record(id)).collect();
        for record in schools {
            feed(engine, &mut feeder, &record);
            scenario.records.push(record);
        }
        for step in 0..steps {
            let record = scenario.next_record();
            feed(engine, &mut feeder, &record);
            scenario.records.push(record.clone());
            // Evaluate as of the clock's day (or a day before the first dated record).
            let as_of = feeder.clock.unwrap_or(model::Day::from_date(scenario.day));
            let rows = snapshot(engine, &feeder, as_of);
            let expected = oracle::compute(&scenario.records, &oracle_params, as_of.to_date());
            let differences = oracle::diff(&expected, &rows.student_list(), &rows.school_list(), &rows.rollup_list());
            if !differences.is_empty() {
                return Some(format!(
                    "seed {seed}, step {step} (as of {as_of}), after record {record}:\n{}",
                    differences.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        None
    })
    .unwrap();
    if let Some(failure) = failures {
        panic!("{failure}");
    }
}

#[test]
fn every_indicator_matches_the_oracle_after_every_step_one_worker() {
    for seed in 0..12 {
        check_against_oracle(seed, 250, 1);
    }
}

#[test]
fn every_indicator_matches_the_oracle_after_every_step_three_workers() {
    for seed in 100..106 {
        check_against_oracle(seed, 250, 3);
    }
}
