//! The engine: builds the indicator dataflows on every timely worker and lets one
//! driver (on worker 0) feed fact changes and move the district clock.
//!
//! ```
//! use dataflows::{run, EngineParams, Snapshot};
//! use model::{Day, Fact, StudentFact, Sym};
//! let config = config::Config::parse("[calendar]\nfirst_day = 2026-08-31\nlast_day = 2026-09-11\n").unwrap();
//! let day = Day::parse("2026-09-02").unwrap();
//! let rows = run(2, EngineParams::from_config(&config), move |engine| {
//!     let enrollment = StudentFact::Enrollment { school: Sym(0), entry: Day::parse("2026-08-31").unwrap(), exit: None, tie: "e1".into() };
//!     engine.update(Fact::Student(Sym(7), enrollment), 1);
//!     engine.update(Fact::Student(Sym(7), StudentFact::Absence { day }), 1);
//!     engine.close_epoch(day, Snapshot::All);
//!     engine.take_rows()
//! }).unwrap();
//! let row = rows[0].2.as_ref().unwrap();
//! assert_eq!((row.days_enrolled, row.days_absent), (3, 1));
//! ```

use crate::alerting::AlertSink;
use crate::evaluate::{Category, StudentParams};
use crate::rollups::{rollup_counts, RollupKey};
use crate::student_operator::{student_indicators, ClockTick, RowSink, Snapshot};
use config::{AlertRule, Calendar, Config, SectionParams};
use differential_dataflow::input::{Input, InputSession};
use model::{Day, Fact, SchoolInfo, StudentFact, StudentRow, Subject, Sym};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::dataflow::operators::vec::{Broadcast, Input as TimelyInput};
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

/// How long closing an epoch spins before it lets the driver's thread park.
const SPIN_BEFORE_PARKING: Duration = Duration::from_micros(200);

/// The configuration the dataflows need, shared by every worker.
#[derive(Clone, Debug)]
pub struct EngineParams {
    pub calendar: Arc<Calendar>,
    pub student: Arc<StudentParams>,
    pub sections: Arc<SectionParams>,
    /// The alert rules evaluated on every student row (none unless asked for).
    pub alert_rules: Arc<Vec<AlertRule>>,
}

impl EngineParams {
    /// The indicators of `config`, without alerts.
    pub fn from_config(config: &Config) -> EngineParams {
        EngineParams {
            calendar: Arc::new(config.calendar.clone()),
            student: Arc::new(StudentParams { attendance: config.attendance.clone(), flags: config.flags.clone() }),
            sections: Arc::new(config.sections.clone()),
            alert_rules: Arc::new(Vec::new()),
        }
    }

    /// The same, with `config`'s alert rules evaluated too.
    pub fn with_alerts(config: &Config) -> EngineParams {
        EngineParams { alert_rules: Arc::new(config.rules.clone()), ..EngineParams::from_config(config) }
    }
}

/// Counts per (rollup key, category): the current value of the rollup collection.
pub type CountSink = Arc<Mutex<FxHashMap<(RollupKey, Category), i64>>>;
/// The school directory in force: (school, info) with multiplicity.
pub type DirectorySink = Arc<Mutex<FxHashMap<(Sym, SchoolInfo), i64>>>;

/// What the dataflows have computed; complete for every closed epoch.
#[derive(Clone, Default)]
pub struct Outputs {
    pub rows: RowSink,
    pub alerts: AlertSink,
    pub counts: CountSink,
    pub directory: DirectorySink,
}

/// The driver's handle on the dataflows (worker 0).
pub struct Engine<'w> {
    worker: &'w mut Worker,
    students: InputSession<u64, (Sym, StudentFact), isize>,
    schools: InputSession<u64, (Sym, SchoolInfo), isize>,
    sections: InputSession<u64, (Sym, (Subject, u32)), isize>,
    clock: InputHandleVec<u64, ClockTick>,
    probe: ProbeHandle<u64>,
    epoch: u64,
    outputs: Outputs,
    calendar: Arc<Calendar>,
}

impl Engine<'_> {
    /// Adds (+1) or retracts (-1) a fact in the current epoch.
    pub fn update(&mut self, fact: Fact, diff: isize) {
        match fact {
            Fact::Student(student, fact) => self.students.update((student, fact), diff),
            Fact::School(school, info) => self.schools.update((school, info), diff),
            Fact::Section { school, subject, enrolled } => self.sections.update((school, (subject, enrolled)), diff),
        }
    }

    /// Closes the current epoch as of `as_of` and runs the dataflows until every output
    /// reflects it. Returns the epoch closed.
    pub fn close_epoch(&mut self, as_of: Day, snapshot: Snapshot) -> u64 {
        let epoch = self.epoch;
        self.clock.send(ClockTick { as_of, snapshot });
        self.epoch += 1;
        self.students.advance_to(self.epoch);
        self.schools.advance_to(self.epoch);
        self.sections.advance_to(self.epoch);
        self.clock.advance_to(self.epoch);
        self.students.flush();
        self.schools.flush();
        self.sections.flush();
        self.clock.flush();
        self.step_until_complete(epoch);
        epoch
    }

    /// Steps the dataflow until every output reflects `epoch`. It spins for the first
    /// [`SPIN_BEFORE_PARKING`] (a correction's epoch completes within it, and a parked
    /// thread takes tens of microseconds to wake), then parks whenever this worker has
    /// nothing to run, woken by the other workers' messages: a driver spinning through a
    /// day's close would take a core from the worker doing it and from the decoders.
    fn step_until_complete(&mut self, epoch: u64) {
        let spin_until = Instant::now() + SPIN_BEFORE_PARKING;
        let probe = &self.probe;
        while probe.less_than(&(epoch + 1)) {
            if Instant::now() < spin_until {
                self.worker.step();
            } else {
                self.worker.step_or_park(None);
            }
        }
    }

    /// Lets the workers process what has been fed so far, without closing the epoch.
    pub fn step(&mut self) {
        self.students.flush();
        self.schools.flush();
        self.sections.flush();
        self.worker.step();
    }

    /// The school calendar the engine evaluates with.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The epoch now open.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Takes the student rows reported by snapshots so far.
    pub fn take_rows(&mut self) -> Vec<(u64, Sym, Option<StudentRow>)> {
        std::mem::take(&mut *self.outputs.rows.lock().expect("row sink"))
    }

    /// Takes the alert changes reported so far, in a fixed order (epoch, rule, student,
    /// change), whatever the worker count.
    pub fn take_alert_changes(&mut self) -> Vec<model::StudentAlertChange> {
        let mut changes = std::mem::take(&mut *self.outputs.alerts.lock().expect("alert sink"));
        changes.sort_by_key(|change| (change.epoch, change.rule, change.student, change.kind));
        changes
    }

    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }
}

/// Runs the dataflows on `workers` threads; `driver` runs on worker 0 and its result is
/// returned once every worker has finished.
pub fn run<R, D>(workers: usize, params: EngineParams, driver: D) -> Result<R, String>
where
    R: Send + 'static,
    D: FnOnce(&mut Engine) -> R + Send + 'static,
{
    let driver = Arc::new(Mutex::new(Some(driver)));
    let outputs = Outputs::default();
    let guards = timely::execute(timely::Config::process(workers.max(1)), move |worker| {
        let (students, schools, sections, clock, probe) = build(worker, &params, &outputs);
        let calendar = params.calendar.clone();
        let mut engine =
            Engine { worker, students, schools, sections, clock, probe, epoch: 0, outputs: outputs.clone(), calendar };
        let driver = if engine.worker.index() == 0 { driver.lock().expect("driver").take() } else { None };
        let result = driver.map(|driver| driver(&mut engine));
        let Engine { worker, students, schools, sections, clock, .. } = engine;
        drop((students, schools, sections, clock));
        while worker.step_or_park(None) {}
        result
    })?;
    let mut results = guards.join().into_iter().collect::<Result<Vec<_>, String>>()?;
    results.swap_remove(0).ok_or_else(|| String::from("worker 0 returned no result"))
}

type Inputs = (
    InputSession<u64, (Sym, StudentFact), isize>,
    InputSession<u64, (Sym, SchoolInfo), isize>,
    InputSession<u64, (Sym, (Subject, u32)), isize>,
    InputHandleVec<u64, ClockTick>,
    ProbeHandle<u64>,
);

fn build(worker: &mut Worker, params: &EngineParams, outputs: &Outputs) -> Inputs {
    let params = params.clone();
    let outputs = outputs.clone();
    worker.dataflow::<u64, _, _>(move |scope| {
        let (students_in, students) = scope.new_collection::<(Sym, StudentFact), isize>();
        let (schools_in, schools) = scope.new_collection::<(Sym, SchoolInfo), isize>();
        let (sections_in, sections) = scope.new_collection::<(Sym, (Subject, u32)), isize>();
        let (clock_in, clock) = scope.new_input::<ClockTick>();
        let contributions = student_indicators(
            students,
            clock.broadcast(),
            params.calendar.clone(),
            params.student.clone(),
            params.alert_rules.clone(),
            outputs.rows.clone(),
            outputs.alerts.clone(),
        );
        let counts = rollup_counts(contributions, schools.clone(), sections, params.sections.clone());
        let probe = ProbeHandle::new();
        let count_sink = outputs.counts.clone();
        counts.inspect(move |(key, _time, diff)| accumulate(&count_sink, *key, *diff)).probe_with(&probe);
        let directory_sink = outputs.directory.clone();
        schools.inspect(move |(entry, _time, diff)| accumulate(&directory_sink, *entry, *diff)).probe_with(&probe);
        (students_in, schools_in, sections_in, clock_in, probe)
    })
}

fn accumulate<K: std::hash::Hash + Eq + Copy>(sink: &Mutex<FxHashMap<K, i64>>, key: K, diff: isize) {
    let mut map = sink.lock().expect("sink");
    let count = map.entry(key).or_insert(0);
    *count += diff as i64;
    if *count == 0 {
        map.remove(&key);
    }
}
