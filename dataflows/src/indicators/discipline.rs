//! `suspensions`, `suspension_days`, `incidents_30`, and suspension days per school.
//!
//! Design: a student has a few discipline records; one pass over them.

use super::AsOf;
use crate::student_state::StudentState;
use model::{DisciplineAction, Sym};
use smallvec::SmallVec;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisciplineCounts {
    /// Out-of-school suspensions dated <= D.
    pub suspensions: u32,
    /// In-school plus out-of-school suspension days dated <= D, in hundredths.
    pub suspension_days_hundredths: u64,
    /// Records of any action within the last 30 days.
    pub incidents_30: u32,
    /// Suspension days (hundredths) by the record's `school_id`.
    pub suspension_days_by_school: SmallVec<[(Sym, u64); 2]>,
}

pub fn discipline(state: &StudentState, as_of: &AsOf) -> DisciplineCounts {
    let mut out = DisciplineCounts::default();
    for record in state.discipline.iter().filter(|record| record.date <= as_of.day) {
        if record.action == DisciplineAction::OutOfSchoolSuspension {
            out.suspensions += 1;
        }
        if record.action.is_suspension() {
            let days = u64::from(record.days_hundredths);
            out.suspension_days_hundredths += days;
            match out.suspension_days_by_school.iter_mut().find(|(school, _)| *school == record.school) {
                Some((_, total)) => *total += days,
                None => out.suspension_days_by_school.push((record.school, days)),
            }
        }
        if as_of.within_window(record.date) {
            out.incidents_30 += 1;
        }
    }
    out
}
