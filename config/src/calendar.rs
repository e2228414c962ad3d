//! The school calendar: which days are instructional, and counting them in O(1).

use model::Day;
use std::collections::BTreeSet;

/// Instructional days: the weekdays from `first_day` to `last_day`, less `holidays`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    pub first_day: Day,
    pub last_day: Day,
    pub holidays: BTreeSet<Day>,
    instructional: Vec<Day>,
    /// `count_through[i]`: instructional days from `first_day` to `first_day + i`.
    count_through: Vec<u32>,
}

impl Calendar {
    /// Builds a calendar; the caller has checked `first_day <= last_day`.
    pub fn new(first_day: Day, last_day: Day, holidays: BTreeSet<Day>) -> Calendar {
        let mut instructional = Vec::new();
        let mut count_through = Vec::new();
        let mut day = first_day;
        while day <= last_day {
            if day.is_weekday() && !holidays.contains(&day) {
                instructional.push(day);
            }
            count_through.push(instructional.len() as u32);
            day = day.next();
        }
        Calendar { first_day, last_day, holidays, instructional, count_through }
    }

    /// The instructional days, in order.
    pub fn instructional_days(&self) -> &[Day] {
        &self.instructional
    }

    pub fn is_instructional(&self, day: Day) -> bool {
        day >= self.first_day && day <= self.last_day && self.count_through(day) != self.count_through(Day(day.0 - 1))
    }

    /// Instructional days `<= day`.
    pub fn count_through(&self, day: Day) -> u32 {
        if day < self.first_day {
            0
        } else if day > self.last_day {
            self.instructional.len() as u32
        } else {
            self.count_through[(day.0 - self.first_day.0) as usize]
        }
    }

    /// Instructional days in `from..=through` (zero when `from > through`).
    pub fn count_between(&self, from: Day, through: Day) -> u32 {
        if from > through {
            return 0;
        }
        self.count_through(through) - self.count_through(Day(from.0 - 1))
    }

    /// The instructional days `d` with `after < d <= through`, in order.
    pub fn instructional_in(&self, after: Day, through: Day) -> &[Day] {
        let from = self.count_through(after) as usize;
        let to = (self.count_through(through) as usize).max(from);
        &self.instructional[from..to]
    }

    /// The first of the `window` most recent instructional days `<= day`, or `None`
    /// when no instructional day is `<= day` (then nothing is "within the window").
    pub fn window_start(&self, day: Day, window: u32) -> Option<Day> {
        let through = self.count_through(day) as usize;
        (through > 0).then(|| self.instructional[through.saturating_sub(window as usize)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    #[test]
    fn counts_weekdays_less_holidays() {
        // 2026-08-31 is a Monday; two weeks with the Monday of the second a holiday.
        let calendar = Calendar::new(day("2026-08-31"), day("2026-09-11"), [day("2026-09-07")].into());
        assert_eq!(calendar.instructional_days().len(), 9);
        assert_eq!(calendar.count_through(day("2026-08-30")), 0);
        assert_eq!(calendar.count_through(day("2026-09-06")), 5);
        assert_eq!(calendar.count_through(day("2026-09-07")), 5);
        assert_eq!(calendar.count_through(day("2027-01-01")), 9);
        assert_eq!(calendar.count_between(day("2026-09-04"), day("2026-09-08")), 2);
        assert!(!calendar.is_instructional(day("2026-09-05")));
    }

    #[test]
    fn instructional_days_in_a_half_open_range() {
        let calendar = Calendar::new(day("2026-08-31"), day("2026-09-11"), [day("2026-09-07")].into());
        assert_eq!(
            calendar.instructional_in(day("2026-09-03"), day("2026-09-08")),
            [day("2026-09-04"), day("2026-09-08")]
        );
        assert!(calendar.instructional_in(day("2026-09-08"), day("2026-09-08")).is_empty());
        assert!(calendar.instructional_in(day("2026-09-09"), day("2026-09-01")).is_empty());
        assert_eq!(calendar.instructional_in(day("2020-01-01"), day("2026-08-31")), [day("2026-08-31")]);
    }

    #[test]
    fn window_start_counts_back_instructional_days() {
        let calendar = Calendar::new(day("2026-08-31"), day("2026-09-11"), [day("2026-09-07")].into());
        assert_eq!(calendar.window_start(day("2026-08-30"), 3), None);
        assert_eq!(calendar.window_start(day("2026-09-01"), 3), Some(day("2026-08-31")));
        assert_eq!(calendar.window_start(day("2026-09-08"), 3), Some(day("2026-09-03")));
        // A Saturday: the window ends on the Saturday, and starts three instructional days back.
        assert_eq!(calendar.window_start(day("2026-09-05"), 3), Some(day("2026-09-02")));
    }
}
