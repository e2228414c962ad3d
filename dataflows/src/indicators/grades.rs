//! `failing_marks` and `failing_core`.
//!
//! Design: among grade records dated <= D, the current term is the greatest `term`; in
//! it, each course's latest mark (greatest date, ties greatest id) counts. A student has
//! tens of grade records, so this is a sort of a short list.

use super::AsOf;
use crate::student_state::{Grade, StudentState};
use model::{Mark, Subject};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailingCourses {
    pub failing_marks: u32,
    pub failing_core: u32,
}

pub fn failing_courses(state: &StudentState, as_of: &AsOf) -> FailingCourses {
    let dated: Vec<&Grade> = state.grades.iter().filter(|grade| grade.date <= as_of.day).collect();
    // Terms are interned: compare them by name.
    let Some(term) = dated.iter().map(|grade| grade.term).max_by_key(|&term| as_of.terms.resolve(term)) else {
        return FailingCourses::default();
    };
    let mut current: Vec<&Grade> = dated.iter().copied().filter(|grade| grade.term == term).collect();
    // Latest first within each course.
    current.sort_by(|a, b| (a.course, b.date, &b.tie).cmp(&(b.course, a.date, &a.tie)));
    current.dedup_by_key(|grade| grade.course);
    let mut out = FailingCourses::default();
    for grade in current.iter().filter(|grade| grade.mark == Mark::F) {
        out.failing_marks += 1;
        if matches!(grade.subject, Subject::Ela | Subject::Math) {
            out.failing_core += 1;
        }
    }
    out
}
