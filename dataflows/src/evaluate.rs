//! One student's whole row as of D, and what the student contributes to school counts.

use crate::indicators::attendance::AttendanceAsOf;
use crate::indicators::grades::FailingAsOf;
use crate::indicators::{attendance, caseload, discipline, health, programs, AsOf};
use crate::student_state::StudentState;
use config::{AttendanceParams, FlagParams};
use model::{StudentRow, Sym};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// What a student adds to one school's counts (each +1 while it holds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Category {
    /// Enrolled on D with this school as the school on D.
    Enrolled,
    /// Enrolled on D here, by tier.
    Tier(u8),
    /// A student-school year.
    SchoolYear,
    /// A student-school year with at least the chronic minimum of days enrolled.
    ChronicEligible,
    /// ... and chronically absent at this school.
    ChronicallyAbsent,
    /// A student-school year with at least one suspension day in this school's records.
    Suspended,
    /// A section over its cap (from `section` records, not students).
    OversizedSection,
}

/// The thresholds a student's evaluation needs.
#[derive(Clone, Debug)]
pub struct StudentParams {
    pub attendance: AttendanceParams,
    pub flags: FlagParams,
}

/// The (school, category) pairs a student contributes, sorted; inline, since every
/// student is evaluated every day and most have three to six.
pub type Contributions = SmallVec<[(Sym, Category); 8]>;

/// What one evaluation leaves for the next, per student: attendance counts to move
/// forward, failing courses until the next grade date.
#[derive(Clone, Debug, Default)]
pub struct EvaluationCache {
    pub attendance: Option<AttendanceAsOf>,
    pub failing: Option<FailingAsOf>,
}

/// A student's evaluation: the row (none before any enrollment dated <= D, and none when
/// not asked for) and the (school, category) pairs the student contributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub row: Option<StudentRow>,
    pub contributions: Contributions,
}

/// Evaluates a student as of a day. The row is built only `with_row` (snapshots): the
/// daily pass needs only the contributions, which need the three flags but not the
/// programs, counselor or health visits. `cache` carries what can be carried from one
/// evaluation to the next when `records_changed` is false.
pub fn evaluate(
    student: Sym,
    state: &StudentState,
    as_of: &AsOf,
    params: &StudentParams,
    with_row: bool,
    cache: &mut EvaluationCache,
    records_changed: bool,
) -> Evaluation {
    if !state.enrollments.iter().any(|e| e.entry <= as_of.day) {
        *cache = EvaluationCache::default(); // results of records since changed must not be carried on
        return Evaluation::default();
    }
    // Counts kept from the last evaluation move forward with the day unless the records
    // changed (or the day went back, as a final `--as-of` may).
    let reusable = matches!(&cache.attendance, Some(cached) if !records_changed && cached.day <= as_of.day);
    match &mut cache.attendance {
        Some(cached) if reusable => attendance::advance(state, cached, as_of),
        slot => *slot = Some(AttendanceAsOf::compute(state, as_of)),
    }
    let attendance = &cache.attendance.as_ref().expect("just set").counts;
    let failing = match cache.failing {
        Some(cached) if !records_changed && cached.holds_on(as_of.day) => cached.failing,
        _ => cache.failing.insert(FailingAsOf::compute(state, as_of)).failing,
    };
    let discipline = discipline::discipline(state, as_of);
    let attendance_flag = rules::attendance_flag(&params.flags, attendance.days_enrolled, attendance.days_absent);
    let behavior_flag = rules::behavior_flag(&params.flags, discipline.suspensions, discipline.incidents_30);
    let course_flag = rules::course_flag(&params.flags, failing.failing_core, failing.failing_marks);
    let tier = rules::tier(attendance_flag, behavior_flag, course_flag);
    let row = with_row.then(|| StudentRow {
        student,
        days_enrolled: attendance.days_enrolled,
        days_absent: attendance.days_absent,
        chronically_absent: params.attendance.is_chronic(attendance.days_enrolled, attendance.days_absent),
        days_enrolled_30: attendance.days_enrolled_30,
        days_absent_30: attendance.days_absent_30,
        suspensions: discipline.suspensions,
        suspension_days_hundredths: discipline.suspension_days_hundredths,
        incidents_30: discipline.incidents_30,
        failing_marks: failing.failing_marks,
        failing_core: failing.failing_core,
        health_visits_30: health::health_visits_30(state, as_of),
        programs: programs::active_programs(state, as_of),
        counselor: caseload::counselor(state, as_of),
        school: caseload::school(state, as_of),
        attendance_flag,
        behavior_flag,
        course_flag,
        tier,
    });
    let mut contributions = Contributions::new();
    if let Some(segment) = state.segment_on(as_of.day) {
        contributions.push((segment.school, Category::Enrolled));
        contributions.push((segment.school, Category::Tier(tier)));
    }
    for year in &attendance.school_years {
        contributions.push((year.school, Category::SchoolYear));
        if year.days_enrolled >= params.attendance.chronic_min_days_enrolled {
            contributions.push((year.school, Category::ChronicEligible));
        }
        if params.attendance.is_chronic(year.days_enrolled, year.days_absent) {
            contributions.push((year.school, Category::ChronicallyAbsent));
        }
        let suspended =
            discipline.suspension_days_by_school.iter().any(|&(school, days)| school == year.school && days >= 100);
        if suspended {
            contributions.push((year.school, Category::Suspended));
        }
    }
    contributions.sort_unstable();
    Evaluation { row, contributions }
}
