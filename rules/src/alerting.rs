//! Alert rules at run time: a student's indicators as the variables of a rule's CEL
//! expressions, and the state machine that turns "the condition holds" into an alert
//! firing, resolving or moving to a new recipient.
//!
//! Design: a rule's outcome is a pure function of the few indicators it names, so each
//! expression keeps a memo from those values to its outcome. At district scale most
//! students share the values a rule reads (`tier == 3` reads one small number), so the
//! interpreter runs a few thousand times a day, not once per student per rule.

use config::{AlertRule, Calendar, RuleExpression, STUDENT_VARIABLES};
use model::{Day, StudentRow, Sym};
use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One student's indicators as a rule sees them: the row, and what rules need beyond it.
#[derive(Clone, Copy, Debug)]
pub struct StudentView<'a> {
    pub row: &'a StudentRow,
    /// Instructional days absent in a row, ending on D.
    pub consecutive_absences: u32,
}

/// An indicator's value, exact and hashable (rates as fractions, programs as a bit set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Variable {
    Int(i64),
    /// `numerator / denominator`, or null when the denominator is 0.
    Rate(u64, u64),
    Hundredths(u64),
    Bool(bool),
    /// Bit `i` set: program kind `i` is active.
    Programs(u16),
}

/// The value of [`STUDENT_VARIABLES`]`[index]` for a student.
pub fn variable(view: &StudentView, index: usize) -> Variable {
    let row = view.row;
    let int = |value: u32| Variable::Int(i64::from(value));
    match STUDENT_VARIABLES[index].0 {
        "days_enrolled" => int(row.days_enrolled),
        "days_absent" => int(row.days_absent),
        "attendance_rate" => rate(row.attendance_rate()),
        "chronically_absent" => Variable::Bool(row.chronically_absent),
        "days_enrolled_30" => int(row.days_enrolled_30),
        "days_absent_30" => int(row.days_absent_30),
        "attendance_rate_30" => rate(row.attendance_rate_30()),
        "suspensions" => int(row.suspensions),
        "suspension_days" => Variable::Hundredths(row.suspension_days_hundredths),
        "incidents_30" => int(row.incidents_30),
        "failing_marks" => int(row.failing_marks),
        "failing_core" => int(row.failing_core),
        "health_visits_30" => int(row.health_visits_30),
        "programs" => Variable::Programs(row.programs.iter().fold(0, |bits, &kind| bits | 1 << kind as u16)),
        "attendance_flag" => Variable::Bool(row.attendance_flag),
        "behavior_flag" => Variable::Bool(row.behavior_flag),
        "course_flag" => Variable::Bool(row.course_flag),
        "tier" => Variable::Int(i64::from(row.tier)),
        "consecutive_absences" => int(view.consecutive_absences),
        other => unreachable!("STUDENT_VARIABLES names `{other}`, which has no value here"),
    }
}

fn rate(rate: model::Rate) -> Variable {
    Variable::Rate(rate.numerator, rate.denominator)
}

impl Variable {
    /// The CEL value of the variable.
    pub fn to_cel(self) -> cel::Value {
        match self {
            Variable::Int(value) => cel::Value::Int(value),
            Variable::Rate(_, 0) => cel::Value::Null,
            Variable::Rate(numerator, denominator) => cel::Value::Float(numerator as f64 / denominator as f64),
            Variable::Hundredths(value) => cel::Value::Float(value as f64 / 100.0),
            Variable::Bool(value) => cel::Value::Bool(value),
            Variable::Programs(bits) => {
                let names = model::ProgramKind::ALL
                    .iter()
                    .filter(|&&kind| bits & (1 << kind as u16) != 0)
                    .map(|kind| cel::Value::String(Arc::new(kind.as_str().to_string())))
                    .collect();
                cel::Value::List(Arc::new(names))
            }
        }
    }

    /// The value as a number, for an evidence margin (null rates and lists have none).
    pub fn as_number(self) -> Option<f64> {
        match self {
            Variable::Int(value) => Some(value as f64),
            Variable::Rate(_, 0) | Variable::Programs(_) => None,
            Variable::Rate(numerator, denominator) => Some(numerator as f64 / denominator as f64),
            Variable::Hundredths(value) => Some(value as f64 / 100.0),
            Variable::Bool(value) => Some(f64::from(u8::from(value))),
        }
    }
}

/// Evaluates rule expressions on student views, remembering outcomes by the values read.
#[derive(Default)]
pub struct Evaluator {
    context: cel::Context<'static, 'static>,
    memo: FxHashMap<u64, bool>,
    /// Evaluations that failed at run time (a null rate compared with a number, say):
    /// they count as "does not hold".
    pub errors: u64,
}

/// Outcomes remembered before the memo is emptied (each entry is 9 bytes and a slot).
const MEMO_LIMIT: usize = 1 << 20;

impl Evaluator {
    /// Whether a student `expression` holds for `view`.
    pub fn holds(&mut self, expression: &RuleExpression, view: &StudentView) -> bool {
        self.holds_with(expression, |index| variable(view, index))
    }

    /// Whether `expression` holds when its variable `i` has the value `value_of(i)`
    /// (indices into its entity's variables).
    pub fn holds_with(&mut self, expression: &RuleExpression, value_of: impl Fn(usize) -> Variable) -> bool {
        let mut hasher = rustc_hash::FxHasher::default();
        Arc::as_ptr(&expression.program).hash(&mut hasher);
        for &index in &expression.variables {
            value_of(index).hash(&mut hasher);
        }
        let key = hasher.finish();
        if let Some(&outcome) = self.memo.get(&key) {
            return outcome;
        }
        let names = expression.entity.variables();
        for &index in &expression.variables {
            self.context.add_variable_from_value(names[index].0, value_of(index).to_cel());
        }
        let outcome = match expression.program.execute(&self.context) {
            Ok(cel::Value::Bool(outcome)) => outcome,
            _ => {
                self.errors += 1;
                false
            }
        };
        if self.memo.len() >= MEMO_LIMIT {
            self.memo.clear();
        }
        self.memo.insert(key, outcome);
        outcome
    }
}

/// An alert that has fired and not yet resolved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OpenAlert {
    pub fired: Day,
    pub recipient: Option<Sym>,
}

/// One (rule, student) pair's state between evaluations.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RuleState {
    /// The first day of the current run of days on which the condition held.
    pub held_since: Option<Day>,
    pub open: Option<OpenAlert>,
}

impl RuleState {
    pub fn is_default(&self) -> bool {
        *self == RuleState::default()
    }
}

/// What an evaluation did to a (rule, student) pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    Unchanged,
    /// The alert fired (its condition held for `for_days`).
    Fired,
    /// The open alert ended (its exit condition held): the caller decides whether it
    /// resolved or was withdrawn (its condition no longer holds as of the day it fired).
    Ended(OpenAlert),
    /// The open alert moved to a new recipient (a caseload reassignment).
    Rerouted {
        from: Option<Sym>,
    },
}

/// Advances a pair's state for an evaluation as of `day`. `condition` says whether the
/// rule's condition holds; `exit` is asked only for an open alert of a rule with an exit
/// condition; `recipient` is who would receive the alert today.
pub fn step(
    state: &mut RuleState,
    rule: &AlertRule,
    calendar: &Calendar,
    day: Day,
    condition: bool,
    exit: impl FnOnce() -> bool,
    recipient: Option<Sym>,
) -> Step {
    state.held_since = match (condition, state.held_since) {
        (false, _) => None,
        (true, Some(since)) if since <= day => Some(since),
        (true, _) => Some(day),
    };
    if let Some(open) = state.open {
        let ended = match rule.exit {
            Some(_) => exit(),
            None => !condition,
        };
        if ended {
            state.open = None;
            return Step::Ended(open);
        }
        if open.recipient != recipient {
            state.open = Some(OpenAlert { recipient, ..open });
            return Step::Rerouted { from: open.recipient };
        }
        return Step::Unchanged;
    }
    let Some(since) = state.held_since else {
        return Step::Unchanged;
    };
    if rule.for_days == 0 || calendar.count_between(since, day) >= rule.for_days {
        state.open = Some(OpenAlert { fired: day, recipient });
        return Step::Fired;
    }
    Step::Unchanged
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Config;

    fn config(rules: &str) -> Config {
        Config::parse(&format!("[calendar]\nfirst_day = 2026-08-31\nlast_day = 2026-10-30\n{rules}")).unwrap()
    }

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    const HOVERING: &str = "[[rules]]\nid = \"low_attendance\"\ncondition = \"attendance_rate < 0.9\"\nexit = \"attendance_rate >= 0.92\"\nfor_days = 3\n";

    #[test]
    fn a_rule_fires_only_after_holding_for_days_instructional_days() {
        let config = config(HOVERING);
        let rule = &config.rules[0];
        let mut state = RuleState::default();
        // Thursday, Friday, (weekend), Monday: the third instructional day fires.
        let days = ["2026-09-03", "2026-09-04", "2026-09-05", "2026-09-06"];
        for text in days {
            let step = step(&mut state, rule, &config.calendar, day(text), true, || false, Some(Sym(1)));
            assert_eq!(step, Step::Unchanged, "{text}");
        }
        // 2026-09-07 is a weekday; the example calendar here has no holidays.
        assert_eq!(step(&mut state, rule, &config.calendar, day("2026-09-07"), true, || false, None), Step::Fired);
        assert_eq!(state.open, Some(OpenAlert { fired: day("2026-09-07"), recipient: None }));
    }

    #[test]
    fn a_break_in_the_condition_starts_the_count_again() {
        let config = config(HOVERING);
        let rule = &config.rules[0];
        let mut state = RuleState::default();
        step(&mut state, rule, &config.calendar, day("2026-09-01"), true, || false, None);
        step(&mut state, rule, &config.calendar, day("2026-09-02"), true, || false, None);
        step(&mut state, rule, &config.calendar, day("2026-09-03"), false, || false, None);
        assert_eq!(step(&mut state, rule, &config.calendar, day("2026-09-04"), true, || false, None), Step::Unchanged);
        assert_eq!(state.held_since, Some(day("2026-09-04")));
    }

    #[test]
    fn an_open_alert_with_an_exit_condition_does_not_flap_around_the_threshold() {
        let config = config(HOVERING);
        let rule = &config.rules[0];
        let open = OpenAlert { fired: day("2026-09-01"), recipient: Some(Sym(1)) };
        let mut state = RuleState { held_since: Some(day("2026-09-01")), open: Some(open) };
        // The rate climbs to 90.5%: the condition no longer holds, the exit not yet.
        let step_on = |state: &mut RuleState, text, condition, exit| {
            step(state, rule, &config.calendar, day(text), condition, || exit, Some(Sym(1)))
        };
        assert_eq!(step_on(&mut state, "2026-09-02", false, false), Step::Unchanged);
        assert_eq!(step_on(&mut state, "2026-09-03", true, false), Step::Unchanged);
        assert_eq!(step_on(&mut state, "2026-09-04", false, true), Step::Ended(open));
        assert!(state.is_default());
    }

    #[test]
    fn a_reassignment_reroutes_an_open_alert() {
        let config = config("[[rules]]\nid = \"t3\"\ncondition = \"tier == 3\"\n");
        let rule = &config.rules[0];
        let mut state = RuleState::default();
        step(&mut state, rule, &config.calendar, day("2026-09-01"), true, || false, Some(Sym(1)));
        let moved = step(&mut state, rule, &config.calendar, day("2026-09-02"), true, || false, Some(Sym(2)));
        assert_eq!(moved, Step::Rerouted { from: Some(Sym(1)) });
        assert_eq!(state.open.unwrap().recipient, Some(Sym(2)));
    }

    #[test]
    fn the_evaluator_reads_indicators_and_treats_a_null_rate_as_not_holding() {
        let config =
            config("[[rules]]\nid = \"low\"\ncondition = \"attendance_rate < 0.9 && 'homeless' in programs\"\n");
        let condition = &config.rules[0].condition;
        let mut evaluator = Evaluator::default();
        let mut row = StudentRow { days_enrolled: 20, days_absent: 3, ..StudentRow::default() };
        row.programs = vec![model::ProgramKind::Homeless];
        assert!(evaluator.holds(condition, &StudentView { row: &row, consecutive_absences: 0 }));
        row.days_absent = 2; // exactly 90%
        assert!(!evaluator.holds(condition, &StudentView { row: &row, consecutive_absences: 0 }));
        // Null (no day enrolled) is not below 90%.
        let empty = StudentRow::default();
        assert!(!evaluator.holds(condition, &StudentView { row: &empty, consecutive_absences: 0 }));
    }

    #[test]
    fn an_expression_that_fails_at_run_time_does_not_hold_and_is_counted() {
        let config = config("[[rules]]\nid = \"ratio\"\ncondition = \"days_absent / days_enrolled > 0\"\n");
        let mut evaluator = Evaluator::default();
        let row = StudentRow::default(); // 0 / 0
        assert!(!evaluator.holds(&config.rules[0].condition, &StudentView { row: &row, consecutive_absences: 0 }));
        assert_eq!(evaluator.errors, 1);
    }
}
