//! `days_enrolled`, `days_absent`, their last-30-days forms, and the per-school
//! student-school years behind the school indicators.
//!
//! Design: days enrolled are counted per stretch of the school timeline with the
//! calendar's O(1) instructional-day counts, never day by day; absences are walked once
//! (a student has tens), each assigned to the school of its day. Days that are not
//! instructional, or on which the student is not enrolled, count nowhere.

use super::AsOf;
use crate::student_state::StudentState;
use model::{Day, Sym};
use smallvec::SmallVec;

/// One student-school year: days at one school, as of D.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchoolYear {
    pub school: Sym,
    pub days_enrolled: u32,
    pub days_absent: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attendance {
    pub days_enrolled: u32,
    pub days_absent: u32,
    pub days_enrolled_30: u32,
    pub days_absent_30: u32,
    /// Student-school years: schools that were the student's school on some day <= D.
    pub school_years: SmallVec<[SchoolYear; 2]>,
}

fn school_year(years: &mut SmallVec<[SchoolYear; 2]>, school: Sym) -> &mut SchoolYear {
    match years.iter().position(|year| year.school == school) {
        Some(index) => &mut years[index],
        None => {
            years.push(SchoolYear { school, days_enrolled: 0, days_absent: 0 });
            years.last_mut().expect("just pushed")
        }
    }
}

pub fn attendance(state: &StudentState, as_of: &AsOf) -> Attendance {
    let mut out = Attendance::default();
    let calendar = as_of.calendar;
    for segment in state.segments.iter().filter(|segment| segment.from <= as_of.day) {
        let last = segment.until.map_or(as_of.day, |until| Day(until.0 - 1).min(as_of.day));
        let days = calendar.count_between(segment.from, last);
        out.days_enrolled += days;
        school_year(&mut out.school_years, segment.school).days_enrolled += days;
        if let Some(start) = as_of.window_start {
            out.days_enrolled_30 += calendar.count_between(segment.from.max(start), last);
        }
    }
    for &(day, _) in state.absences.iter().take_while(|&&(day, _)| day <= as_of.day) {
        let Some(segment) = state.segment_on(day) else {
            continue;
        };
        if !calendar.is_instructional(day) {
            continue;
        }
        out.days_absent += 1;
        school_year(&mut out.school_years, segment.school).days_absent += 1;
        if as_of.within_window(day) {
            out.days_absent_30 += 1;
        }
    }
    out
}
