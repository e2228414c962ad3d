//! Indicator rows, as computed by the dataflows (identifiers still interned).

use crate::enums::ProgramKind;
use crate::intern::Sym;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An exact ratio `numerator / denominator`, or none when the denominator is zero.
/// Kept exact so two computations of one definition compare exactly; rendered with
/// nine decimals.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
}

impl Rate {
    pub fn new(numerator: u64, denominator: u64) -> Rate {
        Rate { numerator, denominator }
    }

    /// `1 - part / whole`, the form of the attendance rates.
    pub fn complement(part: u64, whole: u64) -> Rate {
        Rate::new(whole.saturating_sub(part), whole)
    }

    pub fn value(self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

impl fmt::Display for Rate {
    /// `null`, or the value rounded half-up to nine decimals (exact integer arithmetic).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.denominator == 0 {
            return write!(f, "null");
        }
        let scaled = (u128::from(self.numerator) * 1_000_000_000 * 2 + u128::from(self.denominator))
            / (2 * u128::from(self.denominator));
        write!(f, "{}.{:09}", scaled / 1_000_000_000, scaled % 1_000_000_000)
    }
}

/// One student's whole-child indicators as of a day (metrics.md, "Student indicators").
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct StudentRow {
    pub student: Sym,
    pub days_enrolled: u32,
    pub days_absent: u32,
    pub chronically_absent: bool,
    pub days_enrolled_30: u32,
    pub days_absent_30: u32,
    pub suspensions: u32,
    pub suspension_days_hundredths: u64,
    pub incidents_30: u32,
    pub failing_marks: u32,
    pub failing_core: u32,
    pub health_visits_30: u32,
    /// Active programs, sorted by wire name.
    pub programs: Vec<ProgramKind>,
    pub counselor: Option<Sym>,
    pub school: Option<Sym>,
    pub attendance_flag: bool,
    pub behavior_flag: bool,
    pub course_flag: bool,
    pub tier: u8,
}

impl StudentRow {
    pub fn attendance_rate(&self) -> Rate {
        Rate::complement(u64::from(self.days_absent), u64::from(self.days_enrolled))
    }

    pub fn attendance_rate_30(&self) -> Rate {
        Rate::complement(u64::from(self.days_absent_30), u64::from(self.days_enrolled_30))
    }
}

/// The counts behind a school's or a rollup's indicators; ratios are derived from them,
/// so a rollup pools student-school years instead of averaging rates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct SchoolRow {
    pub enrolled: u64,
    pub cumulative_enrollment: u64,
    /// Student-school years with at least the chronic minimum of days enrolled.
    pub chronic_eligible: u64,
    pub chronically_absent: u64,
    /// Student-school years with at least one suspension day at the school.
    pub suspended: u64,
    pub tier_1: u64,
    pub tier_2: u64,
    pub tier_3: u64,
    pub oversized_sections: u64,
}

impl SchoolRow {
    pub fn chronic_absence_rate(&self) -> Rate {
        Rate::new(self.chronically_absent, self.chronic_eligible)
    }

    pub fn suspension_rate(&self) -> Rate {
        Rate::new(self.suspended, self.cumulative_enrollment)
    }
}

/// The three rollup levels, in output order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum RollupLevel {
    Community,
    LocalDistrict,
    District,
}

impl RollupLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RollupLevel::Community => "community",
            RollupLevel::LocalDistrict => "local_district",
            RollupLevel::District => "district",
        }
    }
}

/// A rollup's counts: `id` is a community or local district symbol, unused for the district.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct RollupRow {
    pub level: RollupLevel,
    pub id: Sym,
    pub counts: SchoolRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_render_with_nine_decimals_or_null() {
        assert_eq!(Rate::new(1, 3).to_string(), "0.333333333");
        assert_eq!(Rate::new(2, 3).to_string(), "0.666666667");
        assert_eq!(Rate::new(5, 5).to_string(), "1.000000000");
        assert_eq!(Rate::new(0, 0).to_string(), "null");
        assert_eq!(Rate::complement(3, 31).to_string(), "0.903225806");
    }
}
