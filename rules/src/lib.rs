//! Pure rule semantics: the early-warning (ABC) flags and the tier of `metrics.md`,
//! as functions of a student's indicator values and the configured thresholds, and the
//! alert rules of `[[rules]]` at run time ([`alerting`]). The dataflows call these.
//!
//! ```
//! let flags = config::FlagParams::default();
//! // 9 absences in 60 days: attendance rate 85% < 90%.
//! assert!(rules::attendance_flag(&flags, 60, 9));
//! assert_eq!(rules::tier(true, false, true), 3);
//! ```

pub mod alerting;

use config::FlagParams;

/// `days_enrolled >= minimum` and `attendance_rate < threshold`, in exact arithmetic:
/// `(enrolled - absent) / enrolled < below` as `(enrolled - absent) * 10000 < below * enrolled`.
pub fn attendance_flag(flags: &FlagParams, days_enrolled: u32, days_absent: u32) -> bool {
    let present = u64::from(days_enrolled.saturating_sub(days_absent));
    days_enrolled >= flags.attendance_min_days_enrolled
        && days_enrolled > 0
        && present * 10_000 < u64::from(flags.attendance_rate_below) * u64::from(days_enrolled)
}

/// `suspensions >= minimum` or `incidents_30 >= minimum`.
pub fn behavior_flag(flags: &FlagParams, suspensions: u32, incidents_30: u32) -> bool {
    suspensions >= flags.behavior_min_suspensions || incidents_30 >= flags.behavior_min_incidents_30
}

/// `failing_core >= minimum` or `failing_marks >= minimum`.
pub fn course_flag(flags: &FlagParams, failing_core: u32, failing_marks: u32) -> bool {
    failing_core >= flags.course_min_failing_core || failing_marks >= flags.course_min_failing_marks
}

/// 1 + the number of flags set, at most 2: 1 on track, 2 one flag, 3 two or three.
pub fn tier(attendance: bool, behavior: bool, course: bool) -> u8 {
    1 + (u8::from(attendance) + u8::from(behavior) + u8::from(course)).min(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendance_flag_boundaries() {
        let flags = FlagParams::default();
        // Exactly 90% is not below 90%.
        assert!(!attendance_flag(&flags, 10, 1));
        assert!(attendance_flag(&flags, 10, 2));
        // Fewer than 10 days enrolled never flags.
        assert!(!attendance_flag(&flags, 9, 9));
        assert!(!attendance_flag(&flags, 0, 0));
    }

    #[test]
    fn behavior_and_course_flag_boundaries() {
        let flags = FlagParams::default();
        assert!(behavior_flag(&flags, 1, 0));
        assert!(!behavior_flag(&flags, 0, 1));
        assert!(behavior_flag(&flags, 0, 2));
        assert!(course_flag(&flags, 1, 1));
        assert!(!course_flag(&flags, 0, 1));
        assert!(course_flag(&flags, 0, 2));
    }

    #[test]
    fn tier_counts_flags_up_to_two() {
        assert_eq!(tier(false, false, false), 1);
        assert_eq!(tier(false, true, false), 2);
        assert_eq!(tier(true, true, false), 3);
        assert_eq!(tier(true, true, true), 3);
    }
}
