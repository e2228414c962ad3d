//! Resolved metric, flag, section and SLA parameters (metrics.md defaults).
//!
//! Shares are kept in basis points (hundredths of a percent) so that every threshold
//! comparison is exact integer arithmetic.

use model::{SchoolLevel, Subject, TicketPriority};

/// Basis points: 10.0 % is 1,000.
pub type BasisPoints = u32;

/// `[attendance]`: chronic absence and the recent-days window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttendanceParams {
    pub chronic_min_days_enrolled: u32,
    pub chronic_absence_min: BasisPoints,
    pub window_instructional_days: u32,
}

impl Default for AttendanceParams {
    fn default() -> Self {
        AttendanceParams { chronic_min_days_enrolled: 31, chronic_absence_min: 1_000, window_instructional_days: 30 }
    }
}

impl AttendanceParams {
    /// `days_enrolled >= minimum` and `days_absent >= share x days_enrolled`.
    pub fn is_chronic(&self, days_enrolled: u32, days_absent: u32) -> bool {
        days_enrolled >= self.chronic_min_days_enrolled
            && u64::from(days_absent) * 10_000 >= u64::from(self.chronic_absence_min) * u64::from(days_enrolled)
    }
}

/// `[flags]`: the early-warning (ABC) flag thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagParams {
    pub attendance_min_days_enrolled: u32,
    pub attendance_rate_below: BasisPoints,
    pub behavior_min_suspensions: u32,
    pub behavior_min_incidents_30: u32,
    pub course_min_failing_core: u32,
    pub course_min_failing_marks: u32,
}

impl Default for FlagParams {
    fn default() -> Self {
        FlagParams {
            attendance_min_days_enrolled: 10,
            attendance_rate_below: 9_000,
            behavior_min_suspensions: 1,
            behavior_min_incidents_30: 2,
            course_min_failing_core: 1,
            course_min_failing_marks: 2,
        }
    }
}

/// `[sections]`: the class-size cap and where it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionParams {
    pub cap: u32,
    pub capped_subjects: Vec<Subject>,
    pub capped_levels: Vec<SchoolLevel>,
}

impl Default for SectionParams {
    fn default() -> Self {
        SectionParams {
            cap: 39,
            capped_subjects: vec![Subject::Ela, Subject::Math],
            capped_levels: vec![SchoolLevel::Middle, SchoolLevel::High],
        }
    }
}

impl SectionParams {
    pub fn is_oversized(&self, level: SchoolLevel, subject: Subject, enrolled: u32) -> bool {
        enrolled > self.cap && self.capped_subjects.contains(&subject) && self.capped_levels.contains(&level)
    }
}

/// Response and resolution targets of one queue and priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaTarget {
    pub response_business_hours: u32,
    pub resolution_business_days: u32,
}

/// One help-desk queue's business hours (minutes after local midnight) and targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSla {
    pub business_day_start_minute: u32,
    pub business_day_end_minute: u32,
    /// Per priority for `facilities`; the `family` queue has one target for any priority.
    pub targets: Vec<(Option<TicketPriority>, SlaTarget)>,
}

/// `[sla]`: help-desk service levels (used by the help-desk dataflows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaParams {
    pub at_risk: BasisPoints,
    pub breached: BasisPoints,
    pub facilities: QueueSla,
    pub family: QueueSla,
}

impl Default for SlaParams {
    fn default() -> Self {
        let target = |response_business_hours, resolution_business_days| SlaTarget {
            response_business_hours,
            resolution_business_days,
        };
        SlaParams {
            at_risk: 7_500,
            breached: 10_000,
            facilities: QueueSla {
                business_day_start_minute: 7 * 60,
                business_day_end_minute: 16 * 60,
                targets: vec![
                    (Some(TicketPriority::Emergency), target(1, 1)),
                    (Some(TicketPriority::Urgent), target(4, 3)),
                    (Some(TicketPriority::Routine), target(9, 10)),
                ],
            },
            family: QueueSla {
                business_day_start_minute: 8 * 60,
                business_day_end_minute: 17 * 60,
                targets: vec![(None, target(9, 5))],
            },
        }
    }
}
