//! `failing_marks` and `failing_core`.
//!
//! Design: among grade records dated <= D, the current term is the greatest `term`; in
//! it, each course's latest mark (greatest date, ties greatest id) counts. A student has
//! tens of grade records: two passes over them, with nothing allocated. The result only
//! changes when the day reaches the next grade's date, so [`FailingAsOf`] keeps it until
//! then (or until the student's records change).

use super::AsOf;
use crate::student_state::{Grade, StudentState};
use model::{Day, Mark, Subject};
use smallvec::SmallVec;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailingCourses {
    pub failing_marks: u32,
    pub failing_core: u32,
}

/// Failing courses as of a day, valid until the next grade date after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailingAsOf {
    pub day: Day,
    /// The earliest grade date after `day`: from then on the result may differ.
    pub next_change: Option<Day>,
    pub failing: FailingCourses,
}

impl FailingAsOf {
    pub fn compute(state: &StudentState, as_of: &AsOf) -> FailingAsOf {
        let next_change = state.grades.iter().map(|grade| grade.date).filter(|&date| date > as_of.day).min();
        FailingAsOf { day: as_of.day, next_change, failing: failing_courses(state, as_of) }
    }

    /// Whether the result holds on `day` for unchanged records.
    pub fn holds_on(&self, day: Day) -> bool {
        self.day <= day && self.next_change.is_none_or(|next| day < next)
    }
}

pub fn failing_courses(state: &StudentState, as_of: &AsOf) -> FailingCourses {
    let dated = || state.grades.iter().filter(|grade| grade.date <= as_of.day);
    // Terms are interned: compare them by name.
    let mut term = None;
    for grade in dated() {
        if term.is_none_or(|best| grade.term != best && as_of.terms.resolve(grade.term) > as_of.terms.resolve(best)) {
            term = Some(grade.term);
        }
    }
    let Some(term) = term else { return FailingCourses::default() };
    // Each course's latest mark: greatest date, ties greatest id.
    let mut latest: SmallVec<[&Grade; 8]> = SmallVec::new();
    for grade in dated().filter(|grade| grade.term == term) {
        match latest.iter_mut().find(|best| best.course == grade.course) {
            Some(best) if (grade.date, &grade.tie) > (best.date, &best.tie) => *best = grade,
            Some(_) => {}
            None => latest.push(grade),
        }
    }
    let mut out = FailingCourses::default();
    for grade in latest.iter().filter(|grade| grade.mark == Mark::F) {
        out.failing_marks += 1;
        if matches!(grade.subject, Subject::Ela | Subject::Math) {
            out.failing_core += 1;
        }
    }
    out
}
