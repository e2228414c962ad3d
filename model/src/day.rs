//! A calendar day in the district's time zone, as a day number.

use chrono::{Datelike, NaiveDate};
use std::fmt;

/// A calendar day: days since 1970-01-01. `Ord`, `Copy`, four bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Day(pub i32);

const UNIX_EPOCH_FROM_CE: i32 = 719_163;

impl Day {
    /// Parses exactly `YYYY-MM-DD`, rejecting anything else (no times, no spaces).
    pub fn parse(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
        Some(Day::from_date(date))
    }

    pub fn from_date(date: NaiveDate) -> Day {
        Day(date.num_days_from_ce() - UNIX_EPOCH_FROM_CE)
    }

    pub fn to_date(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.0 + UNIX_EPOCH_FROM_CE).expect("day number within chrono's range")
    }

    pub fn next(self) -> Day {
        Day(self.0 + 1)
    }

    /// Monday..Friday.
    pub fn is_weekday(self) -> bool {
        self.to_date().weekday().num_days_from_monday() < 5
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_date().format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_strict_iso_dates() {
        assert_eq!(Day::parse("1970-01-02"), Some(Day(1)));
        assert!(Day::parse("2026-02-30").is_none());
        assert!(Day::parse("2026-2-03").is_none());
        assert!(Day::parse("2026-02-03T00:00").is_none());
        assert!(Day::parse("+026-02-03").is_none());
    }

    #[test]
    fn weekday_of_a_known_monday() {
        let monday = Day::parse("2026-08-31").unwrap();
        assert!(monday.is_weekday());
        assert!(!Day(monday.0 + 5).is_weekday());
    }
}
