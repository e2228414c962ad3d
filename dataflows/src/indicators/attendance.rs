//! `days_enrolled`, `days_absent`, their last-30-days forms, and the per-school
//! student-school years behind the school indicators.
//!
//! Design: evaluated from scratch ([`attendance`]) only when a student's records change:
//! days enrolled are counted per stretch of the school timeline with the calendar's O(1)
//! instructional-day counts, and absences are walked once, each assigned to the school of
//! its day. When only the day moves, [`advance`] brings the counts forward: it adds the
//! instructional days that enter (one a day) and removes those that leave the 30-day
//! window, so a day's advance costs the same on day 10 and day 180. Days that are not
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

/// Attendance counts as of a day, kept per student between evaluations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttendanceAsOf {
    pub day: Day,
    pub window_start: Option<Day>,
    pub counts: Attendance,
}

impl AttendanceAsOf {
    pub fn compute(state: &StudentState, as_of: &AsOf) -> AttendanceAsOf {
        AttendanceAsOf { day: as_of.day, window_start: as_of.window_start, counts: attendance(state, as_of) }
    }
}

/// Moves `cached` forward to `as_of.day` (not before it) for records that have not
/// changed since it was computed.
pub fn advance(state: &StudentState, cached: &mut AttendanceAsOf, as_of: &AsOf) {
    debug_assert!(cached.day <= as_of.day);
    let calendar = as_of.calendar;
    let counts = &mut cached.counts;
    // Stretches that begin in between open their student-school years.
    for segment in state.segments.iter().filter(|s| cached.day < s.from && s.from <= as_of.day) {
        school_year(&mut counts.school_years, segment.school);
    }
    for &day in calendar.instructional_in(cached.day, as_of.day) {
        let Some(segment) = state.segment_on(day) else { continue };
        let absent = state.is_absent_on(day);
        counts.days_enrolled += 1;
        counts.days_absent += u32::from(absent);
        let year = school_year(&mut counts.school_years, segment.school);
        year.days_enrolled += 1;
        year.days_absent += u32::from(absent);
        if as_of.window_start.is_some_and(|start| start <= day) {
            counts.days_enrolled_30 += 1;
            counts.days_absent_30 += u32::from(absent);
        }
    }
    // Days that were in the old window and are not in the new one.
    if let (Some(old), Some(new)) = (cached.window_start, as_of.window_start) {
        for &day in calendar.instructional_in(Day(old.0 - 1), Day(new.0 - 1)) {
            if day > cached.day {
                break;
            }
            if state.segment_on(day).is_some() {
                counts.days_enrolled_30 -= 1;
                counts.days_absent_30 -= u32::from(state.is_absent_on(day));
            }
        }
    }
    cached.day = as_of.day;
    cached.window_start = as_of.window_start;
}

/// `consecutive_absences`: instructional days absent in a row, ending on the last
/// instructional day <= D (a day not enrolled ends the run). Used by alert rules, not by
/// the indicators of metrics.md. Walks back one look-up per day of the run.
pub fn consecutive_absences(state: &StudentState, as_of: &AsOf) -> u32 {
    if state.absences.is_empty() {
        return 0;
    }
    let days = as_of.calendar.instructional_days();
    let through = days.partition_point(|&day| day <= as_of.day);
    days[..through].iter().rev().take_while(|&&day| state.segment_on(day).is_some() && state.is_absent_on(day)).count()
        as u32
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

#[cfg(test)]
mod tests {
    use super::*;
    use config::Calendar;
    use model::{Interner, StudentFact};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn sorted(mut counts: Attendance) -> Attendance {
        counts.school_years.sort_by_key(|year| year.school);
        counts
    }

    /// Moving counts forward day by day (and by jumps) equals computing them afresh.
    #[test]
    fn advancing_equals_recomputing_on_random_students() {
        let first = Day::parse("2026-08-31").unwrap();
        let holidays = [Day(first.0 + 7), Day(first.0 + 30)].into();
        let calendar = Calendar::new(first, Day(first.0 + 120), holidays);
        let terms = Interner::default();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..300 {
            let mut state = StudentState::default();
            let mut scratch = Interner::default();
            for e in 0..rng.random_range(1..4) {
                let entry = Day(first.0 - 5 + rng.random_range(0..100));
                let exit = rng.random_bool(0.4).then(|| Day(entry.0 + rng.random_range(0..60)));
                let school = Sym(rng.random_range(0..3));
                let fact = StudentFact::Enrollment { school, entry, exit, tie: format!("e{e}").into() };
                state.apply(fact, 1, &mut scratch);
            }
            for _ in 0..rng.random_range(0..30) {
                let day = Day(first.0 - 3 + rng.random_range(0..125));
                state.apply(StudentFact::Absence { day }, 1, &mut scratch);
            }
            let window = rng.random_range(1..35);
            let mut day = Day(first.0 - 4);
            let mut cached = AttendanceAsOf::compute(&state, &AsOf::new(day, &calendar, window, &terms));
            while day.0 < first.0 + 130 {
                day = Day(day.0 + if rng.random_bool(0.8) { 1 } else { rng.random_range(2..40) });
                let as_of = AsOf::new(day, &calendar, window, &terms);
                advance(&state, &mut cached, &as_of);
                assert_eq!(
                    sorted(cached.counts.clone()),
                    sorted(attendance(&state, &as_of)),
                    "as of {day}, window {window}"
                );
            }
        }
    }
}
