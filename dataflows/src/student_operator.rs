//! The student-indicator operator: keeps every student's consolidated records and
//! emits what each student contributes to school counts as a differential collection.
//!
//! Design (see ARCHITECTURE.md, "Time"): the logical time is an epoch of the district
//! clock; a broadcast clock stream says which day each epoch is "as of". When an epoch
//! completes, the operator applies its fact changes, then re-evaluates the students
//! whose records changed, or every student when the day moved on (every enrolled
//! student's day counts change with the day). A student's evaluation reads only that
//! student's compact state: nothing rescans the year's events, and no future
//! retraction is ever scheduled, so an epoch costs the same on day 10 and day 180.
//! Only changes of (school, category) pairs leave the operator, so the differential
//! rollups downstream see a handful of updates per student per year.

use crate::alerting::{AlertSink, StudentRules};
use crate::evaluate::{evaluate, Category, Contributions, EvaluationCache, StudentParams};
use crate::indicators::AsOf;
use crate::student_state::StudentState;
use config::{AlertRule, Calendar};
use differential_dataflow::{AsCollection, VecCollection};
use model::{Day, Interner, StudentFact, StudentRow, Sym};
use rules::alerting::RuleState;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// Which student rows an epoch should report once it completes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Snapshot {
    None,
    /// Rows that differ from the last snapshot (and rows that disappeared, as `None`).
    Changed,
    /// Every row.
    All,
}

/// What the driver says about each epoch: the day it is as of, and what to report.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ClockTick {
    pub as_of: Day,
    pub snapshot: Snapshot,
}

/// Student rows reported by snapshots: (epoch, student, row or `None` if it disappeared).
pub type RowSink = Arc<Mutex<Vec<(u64, Sym, Option<StudentRow>)>>>;

/// One student's slot: records in force, and what was last emitted for it.
#[derive(Default)]
struct Slot {
    state: StudentState,
    contributions: Contributions,
    /// What the last evaluation leaves for the next (attendance counts, failing courses).
    cache: EvaluationCache,
    /// Hash of the row at the last snapshot (0: no row).
    row_hash: u64,
    dirty: bool,
    /// Alert rules whose state for this student is not the default (held or open).
    alerts: Vec<(u16, RuleState)>,
}

impl Slot {
    /// Nothing in force and nothing ever emitted: evaluating it would change nothing.
    fn is_idle(&self) -> bool {
        self.state.is_empty() && self.contributions.is_empty() && self.row_hash == 0 && self.alerts.is_empty()
    }
}

fn row_hash(row: &Option<StudentRow>) -> u64 {
    match row {
        None => 0,
        Some(row) => {
            let mut hasher = DefaultHasher::new();
            row.hash(&mut hasher);
            hasher.finish() | 1
        }
    }
}

type Update = ((Sym, StudentFact), u64, isize);

/// Builds the operator. `facts` are exchanged by student; `clock` must reach every worker.
pub fn student_indicators<'s>(
    facts: VecCollection<'s, u64, (Sym, StudentFact), isize>,
    clock: StreamVec<'s, u64, ClockTick>,
    calendar: Arc<Calendar>,
    params: Arc<StudentParams>,
    alert_rules: Arc<Vec<AlertRule>>,
    rows: RowSink,
    alert_sink: AlertSink,
) -> VecCollection<'s, u64, (Sym, Category), isize> {
    let peers = facts.inner.scope().peers() as u32;
    let worker = facts.inner.scope().index() as u32;
    let exchange = Exchange::new(|update: &Update| u64::from((update.0).0 .0));
    facts
        .inner
        .binary_frontier(clock, exchange, Pipeline, "StudentIndicators", move |_capability, _info| {
            let mut students = Students::default();
            let mut alert_rules = StudentRules::new(alert_rules);
            let mut next_epoch = 0u64;
            let mut pending_facts: BTreeMap<u64, Vec<(Sym, StudentFact, isize)>> = BTreeMap::new();
            let mut pending_ticks: BTreeMap<u64, (Capability<u64>, ClockTick)> = BTreeMap::new();
            let mut last_day: Option<Day> = None;
            move |(facts_in, facts_frontier), (clock_in, clock_frontier), output| {
                // Facts of the epoch being gathered are applied at once (the epoch is
                // evaluated only when complete); facts of a later epoch wait for it.
                facts_in.for_each_stamp(|_capability, containers| {
                    for container in containers {
                        for ((student, fact), time, diff) in container.drain(..) {
                            if time == next_epoch {
                                students.apply(peers, student, fact, diff);
                            } else {
                                pending_facts.entry(time).or_default().push((student, fact, diff));
                            }
                        }
                    }
                });
                clock_in.for_each_stamp(|capability, containers| {
                    for container in containers {
                        for tick in container.drain(..) {
                            let time = *capability.least().expect("clock ticks carry a time");
                            let retained = capability.delayed(&time, 0);
                            pending_ticks.insert(time, (retained, tick));
                        }
                    }
                });
                while let Some((&epoch, _)) = pending_ticks.first_key_value() {
                    if facts_frontier.less_equal(&epoch) || clock_frontier.less_equal(&epoch) {
                        break;
                    }
                    let (capability, tick) = pending_ticks.remove(&epoch).expect("present");
                    for (student, fact, diff) in pending_facts.remove(&epoch).unwrap_or_default() {
                        students.apply(peers, student, fact, diff);
                    }
                    next_epoch = epoch + 1;
                    let everyone = last_day != Some(tick.as_of) || tick.snapshot != Snapshot::None;
                    last_day = Some(tick.as_of);
                    let as_of =
                        AsOf::new(tick.as_of, &calendar, params.attendance.window_instructional_days, &students.terms);
                    let mut session = output.session(&capability);
                    let mut reported = if tick.snapshot == Snapshot::All {
                        Vec::with_capacity(students.slots.len())
                    } else {
                        Vec::new()
                    };
                    let with_row = tick.snapshot != Snapshot::None;
                    // Alert rules read every evaluated student's row.
                    let need_row = with_row || !alert_rules.is_empty();
                    let mut alert_changes = Vec::new();
                    let mut evaluate_slot = |index: usize, slot: &mut Slot| {
                        let records_changed = std::mem::replace(&mut slot.dirty, false);
                        let student = Sym(index as u32 * peers + worker);
                        let evaluation =
                            evaluate(student, &slot.state, &as_of, &params, need_row, &mut slot.cache, records_changed);
                        if !alert_rules.is_empty() {
                            alert_rules.step_student(
                                epoch,
                                student,
                                &slot.state,
                                evaluation.row.as_ref(),
                                &as_of,
                                &params,
                                &mut slot.alerts,
                                &mut alert_changes,
                            );
                        }
                        if slot.contributions != evaluation.contributions {
                            contribution_changes(&slot.contributions, &evaluation.contributions, |pair, diff| {
                                session.give((pair, epoch, diff))
                            });
                            slot.contributions = evaluation.contributions;
                        }
                        if with_row {
                            let hash = row_hash(&evaluation.row);
                            let changed = tick.snapshot == Snapshot::All || hash != slot.row_hash;
                            if changed && (evaluation.row.is_some() || slot.row_hash != 0) {
                                reported.push((epoch, student, evaluation.row));
                            }
                            slot.row_hash = hash;
                        }
                    };
                    if everyone {
                        // Every enrolled student's day counts move with the day.
                        for (index, slot) in students.slots.iter_mut().enumerate() {
                            if !slot.is_idle() {
                                evaluate_slot(index, slot);
                            }
                        }
                        students.dirty.clear();
                    } else {
                        // Only the students whose records changed in this epoch.
                        for index in std::mem::take(&mut students.dirty) {
                            evaluate_slot(index as usize, &mut students.slots[index as usize]);
                        }
                    }
                    if !alert_changes.is_empty() {
                        alert_sink.lock().expect("alert sink").extend(alert_changes);
                    }
                    if !reported.is_empty() {
                        let mut sink = rows.lock().expect("row sink");
                        if sink.is_empty() {
                            *sink = reported; // no copy of a district's rows
                        } else {
                            sink.extend(reported);
                        }
                    }
                }
            }
        })
        .as_collection()
}

/// This worker's students: slot `i` is student `i * peers + worker`.
#[derive(Default)]
struct Students {
    /// Boxed so that the growing vector moves 8 bytes per student, not ~250.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Slot>>,
    /// Slots whose records changed since they were last evaluated: an epoch that does not
    /// move the day evaluates only these (a correction costs its students, not a walk
    /// over every slot).
    dirty: Vec<u32>,
    /// Grading terms, interned per worker.
    terms: Interner,
}

impl Students {
    /// Applies one fact to its student's slot (creating slots up to it) and marks it dirty.
    fn apply(&mut self, peers: u32, student: Sym, fact: StudentFact, diff: isize) {
        let index = (student.0 / peers) as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, Box::default);
        }
        let slot = &mut self.slots[index];
        let applied = slot.state.apply(fact, diff, &mut self.terms);
        debug_assert!(applied, "retraction of a fact not in force");
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(index as u32);
        }
    }
}

/// Emits the changes from a student's old to new (school, category) pairs (both sorted).
fn contribution_changes(
    old: &[(Sym, Category)],
    new: &[(Sym, Category)],
    mut emit: impl FnMut((Sym, Category), isize),
) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                emit(*a, -1);
                i += 1;
            }
            (Some(a), None) => {
                emit(*a, -1);
                i += 1;
            }
            (_, Some(b)) => {
                emit(*b, 1);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contribution_changes_are_the_symmetric_difference() {
        let a = (Sym(1), Category::Enrolled);
        let b = (Sym(1), Category::Tier(2));
        let c = (Sym(2), Category::SchoolYear);
        let changes = |old: &[(Sym, Category)], new: &[(Sym, Category)]| {
            let mut out = Vec::new();
            contribution_changes(old, new, |pair, diff| out.push((pair, diff)));
            out
        };
        assert_eq!(changes(&[a, b], &[a, c]), vec![(b, -1), (c, 1)]);
        assert_eq!(changes(&[], &[a]), vec![(a, 1)]);
        assert_eq!(changes(&[a], &[]), vec![(a, -1)]);
    }
}
