//! Student alert rules inside the student operator: after a student is evaluated, each
//! rule's condition is checked on the student's row and the (rule, student) pair steps
//! through `rules::alerting::step`; fired, resolved, withdrawn and rerouted alerts leave
//! as [`StudentAlertChange`]s.
//!
//! Design: the set of open (rule, student) pairs lives beside each student's records, so
//! an alert changes exactly when an evaluation changes its condition: a correction that
//! makes it false ends it in the epoch the correction arrives. Whether it ended as
//! *resolved* or *withdrawn* is decided by the records as they now stand: if the
//! condition did not hold on the day the alert fired, it was raised on data since
//! corrected. Nothing is scheduled ahead; a `for_days` rule counts instructional days
//! from the first day its condition held.

use crate::evaluate::{evaluate, EvaluationCache, StudentParams};
use crate::indicators::attendance::consecutive_absences;
use crate::indicators::AsOf;
use crate::student_state::StudentState;
use config::{student_variable, AlertRule, RuleEntity};
use model::{AlertChangeKind, Day, StudentAlertChange, StudentEvidence, StudentRow, Sym};
use rules::alerting::{step, Evaluator, RuleState, Step, StudentView};
use std::sync::{Arc, Mutex};

/// Alert changes reported so far (by every worker; the reader orders them).
pub type AlertSink = Arc<Mutex<Vec<StudentAlertChange>>>;

/// Which absences a rule's evidence lists.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AbsenceScope {
    None,
    /// The run of `consecutive_absences`.
    Streak,
    /// Those within the last 30 days.
    Window,
    /// Every absence counted up to D.
    Year,
}

/// What records a rule's evidence lists, from the indicators it reads.
#[derive(Clone, Copy, Debug)]
struct EvidenceNeeds {
    absences: AbsenceScope,
    health_visits: bool,
    incidents: bool,
}

impl EvidenceNeeds {
    fn of(rule: &AlertRule) -> EvidenceNeeds {
        let reads =
            |names: &[&str]| names.iter().any(|name| rule.variables().contains(&student_variable(name).unwrap()));
        let absences = if reads(&["days_absent", "attendance_rate", "chronically_absent", "attendance_flag", "tier"]) {
            AbsenceScope::Year
        } else if reads(&["days_absent_30", "attendance_rate_30"]) {
            AbsenceScope::Window
        } else if reads(&["consecutive_absences"]) {
            AbsenceScope::Streak
        } else {
            AbsenceScope::None
        };
        EvidenceNeeds {
            absences,
            health_visits: reads(&["health_visits_30"]),
            incidents: reads(&["suspensions", "suspension_days", "incidents_30", "behavior_flag", "tier"]),
        }
    }
}

/// The rules, and what evaluating them needs, on one worker.
pub struct StudentRules {
    rules: Arc<Vec<AlertRule>>,
    needs: Vec<EvidenceNeeds>,
    evaluator: Evaluator,
}

impl StudentRules {
    /// The student rules among `rules` (school and section rules run in the driver).
    pub fn new(rules: Arc<Vec<AlertRule>>) -> StudentRules {
        let needs = rules.iter().map(EvidenceNeeds::of).collect();
        StudentRules { rules, needs, evaluator: Evaluator::default() }
    }

    pub fn is_empty(&self) -> bool {
        !self.rules.iter().any(|rule| rule.entity == RuleEntity::Student)
    }

    /// Steps every rule for one student just evaluated as of `as_of` (`row` is `None`
    /// when the student has no enrollment dated <= D). `alerts` holds the student's
    /// pairs that are not in their default state.
    #[allow(clippy::too_many_arguments)]
    pub fn step_student(
        &mut self,
        epoch: u64,
        student: Sym,
        state: &StudentState,
        row: Option<&StudentRow>,
        as_of: &AsOf,
        params: &StudentParams,
        alerts: &mut Vec<(u16, RuleState)>,
        out: &mut Vec<StudentAlertChange>,
    ) {
        let streak = if row.is_some() { consecutive_absences(state, as_of) } else { 0 };
        let rules = self.rules.clone();
        for (index, rule) in rules.iter().enumerate() {
            if rule.entity != RuleEntity::Student {
                continue;
            }
            let needs = self.needs[index];
            let position = alerts.iter().position(|&(known, _)| usize::from(known) == index);
            let mut rule_state = position.map(|at| alerts[at].1).unwrap_or_default();
            let view = row.map(|row| StudentView { row, consecutive_absences: streak });
            let condition = view.is_some_and(|view| self.evaluator.holds(&rule.condition, &view));
            if rule_state.is_default() && !condition {
                continue; // nothing held, nothing open: the common case
            }
            let evaluator = &mut self.evaluator;
            let exit = || match (&view, &rule.exit) {
                (Some(view), Some(exit)) => evaluator.holds(exit, view),
                _ => true,
            };
            let recipient = row.and_then(|row| row.counselor);
            let change = |kind, recipient, previous_recipient, fired| StudentAlertChange {
                epoch,
                day: as_of.day,
                rule: index as u16,
                student,
                kind,
                recipient,
                previous_recipient,
                fired,
                evidence: row.map(|row| evidence(needs, state, row, streak, as_of)),
            };
            match step(&mut rule_state, rule, as_of.calendar, as_of.day, condition, exit, recipient) {
                Step::Unchanged => {}
                Step::Fired => out.push(change(AlertChangeKind::Fired, recipient, None, as_of.day)),
                Step::Rerouted { from } => {
                    let fired = rule_state.open.map_or(as_of.day, |open| open.fired);
                    out.push(change(AlertChangeKind::Rerouted, recipient, from, fired));
                }
                Step::Ended(open) => {
                    let held = self.held_on(index, student, state, as_of, params, open.fired);
                    let kind = if held { AlertChangeKind::Resolved } else { AlertChangeKind::Withdrawn };
                    out.push(change(kind, open.recipient, None, open.fired));
                }
            }
            match (position, rule_state.is_default()) {
                (Some(at), true) => {
                    alerts.swap_remove(at);
                }
                (Some(at), false) => alerts[at].1 = rule_state,
                (None, false) => alerts.push((index as u16, rule_state)),
                (None, true) => {}
            }
        }
    }

    /// Whether rule `index`'s condition held on `day`, as the student's records stand now.
    fn held_on(
        &mut self,
        index: usize,
        student: Sym,
        state: &StudentState,
        now: &AsOf,
        params: &StudentParams,
        day: Day,
    ) -> bool {
        let then = AsOf::new(day, now.calendar, params.attendance.window_instructional_days, now.terms);
        let evaluation = evaluate(student, state, &then, params, true, &mut EvaluationCache::default(), true);
        let Some(row) = evaluation.row else { return false };
        let view = StudentView { row: &row, consecutive_absences: consecutive_absences(state, &then) };
        self.evaluator.holds(&self.rules[index].condition, &view)
    }
}

/// The indicators and the records behind them, for one alert change.
fn evidence(
    needs: EvidenceNeeds,
    state: &StudentState,
    row: &StudentRow,
    streak: u32,
    as_of: &AsOf,
) -> Box<StudentEvidence> {
    let counted =
        |day: Day| day <= as_of.day && as_of.calendar.is_instructional(day) && state.segment_on(day).is_some();
    let mut absences: Vec<Day> = match needs.absences {
        AbsenceScope::None => Vec::new(),
        AbsenceScope::Year => state.absences.iter().map(|&(day, _)| day).filter(|&day| counted(day)).collect(),
        AbsenceScope::Window => {
            state.absences.iter().map(|&(day, _)| day).filter(|&day| counted(day) && as_of.within_window(day)).collect()
        }
        AbsenceScope::Streak => {
            let days = as_of.calendar.instructional_days();
            let through = days.partition_point(|&day| day <= as_of.day);
            days[through.saturating_sub(streak as usize)..through].to_vec()
        }
    };
    absences.sort_unstable();
    let mut health_visits: Vec<Day> = match needs.health_visits {
        true => state.health_visits.iter().copied().filter(|&day| as_of.within_window(day)).collect(),
        false => Vec::new(),
    };
    health_visits.sort_unstable();
    let mut incidents: Vec<_> = match needs.incidents {
        true => state.discipline.iter().filter(|d| d.date <= as_of.day).map(|d| (d.date, d.action)).collect(),
        false => Vec::new(),
    };
    incidents.sort_unstable();
    Box::new(StudentEvidence { row: row.clone(), consecutive_absences: streak, absences, health_visits, incidents })
}
