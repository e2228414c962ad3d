//! `counselor` and `school`: who the student's counselor is, and which school is theirs.
//!
//! Design: the counselor is the active `counselor` caseload with the latest
//! `begin_date` (ties: greatest id). The school is the school on D from the timeline,
//! else the school of the enrollment with the latest `entry_date <= D` (ties: greatest id).

use super::AsOf;
use crate::student_state::StudentState;
use model::{CaseloadRole, Sym};

pub fn counselor(state: &StudentState, as_of: &AsOf) -> Option<Sym> {
    state
        .caseloads
        .iter()
        .filter(|c| {
            c.role == CaseloadRole::Counselor && c.begin <= as_of.day && c.end.is_none_or(|end| as_of.day < end)
        })
        .max_by(|a, b| (a.begin, &a.tie).cmp(&(b.begin, &b.tie)))
        .map(|c| c.staff)
}

pub fn school(state: &StudentState, as_of: &AsOf) -> Option<Sym> {
    if let Some(segment) = state.segment_on(as_of.day) {
        return Some(segment.school);
    }
    state
        .enrollments
        .iter()
        .filter(|e| e.entry <= as_of.day)
        .max_by(|a, b| (a.entry, &a.tie).cmp(&(b.entry, &b.tie)))
        .map(|e| e.school)
}
