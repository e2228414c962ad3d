//! Local time in seconds, and the hours in which notifications may go out.

/// An instant in the district's local time (America/Los_Angeles), as seconds since
/// 1970-01-01 00:00 local. Days are `seconds / 86400` (day 0 was a Thursday).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LocalTime(pub i64);

impl LocalTime {
    pub fn from_day_and_minute(day: i64, minute: i64) -> LocalTime {
        LocalTime(day * 86_400 + minute * 60)
    }

    pub fn day(self) -> i64 {
        self.0.div_euclid(86_400)
    }

    pub fn minute_of_day(self) -> i64 {
        self.0.rem_euclid(86_400) / 60
    }

    /// Monday 0 .. Sunday 6.
    pub fn weekday(self) -> i64 {
        (self.day() + 3).rem_euclid(7)
    }

    pub fn plus_seconds(self, seconds: i64) -> LocalTime {
        LocalTime(self.0 + seconds)
    }
}

/// The hours of the day (and whether only weekdays) in which digests may be delivered;
/// one due outside them waits for the next opening (no email at 2 a.m.).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeliveryHours {
    /// Minutes after midnight: from `start` (inclusive) to `end` (exclusive).
    pub start_minute: i64,
    pub end_minute: i64,
    pub weekdays_only: bool,
}

impl Default for DeliveryHours {
    /// 07:00 to 19:00, Monday to Friday.
    fn default() -> Self {
        DeliveryHours { start_minute: 7 * 60, end_minute: 19 * 60, weekdays_only: true }
    }
}

impl DeliveryHours {
    pub fn is_open(&self, at: LocalTime) -> bool {
        let minute = at.minute_of_day();
        (!self.weekdays_only || at.weekday() < 5) && self.start_minute <= minute && minute < self.end_minute
    }

    /// `at` if open then, else the next opening.
    pub fn next_open(&self, at: LocalTime) -> LocalTime {
        if self.is_open(at) {
            return at;
        }
        let mut day = at.day();
        if at.minute_of_day() >= self.start_minute {
            day += 1; // today's opening has passed (or today is closed)
        }
        loop {
            let opening = LocalTime::from_day_and_minute(day, self.start_minute);
            if self.is_open(opening) {
                return opening;
            }
            day += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-04 is a Friday: day 20_791 since 1970-01-01.
    const FRIDAY: i64 = 20_791;

    #[test]
    fn weekdays_and_minutes() {
        assert_eq!(LocalTime::from_day_and_minute(FRIDAY, 0).weekday(), 4);
        assert_eq!(LocalTime::from_day_and_minute(FRIDAY, 125).minute_of_day(), 125);
    }

    #[test]
    fn a_time_outside_the_hours_waits_for_the_next_opening() {
        let hours = DeliveryHours::default();
        let two_am = LocalTime::from_day_and_minute(FRIDAY, 120);
        assert_eq!(hours.next_open(two_am), LocalTime::from_day_and_minute(FRIDAY, 420));
        let friday_evening = LocalTime::from_day_and_minute(FRIDAY, 20 * 60);
        // Saturday and Sunday are closed: Monday 07:00.
        assert_eq!(hours.next_open(friday_evening), LocalTime::from_day_and_minute(FRIDAY + 3, 420));
        let noon = LocalTime::from_day_and_minute(FRIDAY, 720);
        assert_eq!(hours.next_open(noon), noon);
    }
}
