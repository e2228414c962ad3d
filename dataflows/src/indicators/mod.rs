//! The student indicators of `metrics.md`, one group per file, each a free function of
//! one student's consolidated records and the day they are evaluated as of.

pub mod attendance;
pub mod caseload;
pub mod discipline;
pub mod grades;
pub mod health;
pub mod programs;

use config::Calendar;
use model::{Day, Interner};

/// The day figures are "as of", with the window it implies.
#[derive(Clone, Copy, Debug)]
pub struct AsOf<'a> {
    pub day: Day,
    pub calendar: &'a Calendar,
    /// First day of the last-30-instructional-days window; `None` when no instructional
    /// day is `<= day` (then nothing is within the window).
    pub window_start: Option<Day>,
    /// The grading terms grades refer to, for ordering them by name.
    pub terms: &'a Interner,
}

impl<'a> AsOf<'a> {
    pub fn new(day: Day, calendar: &'a Calendar, window_days: u32, terms: &'a Interner) -> AsOf<'a> {
        AsOf { day, calendar, window_start: calendar.window_start(day, window_days), terms }
    }

    /// A dated record is within the window when its date is from the window's first day to D.
    pub fn within_window(&self, date: Day) -> bool {
        self.window_start.is_some_and(|start| start <= date && date <= self.day)
    }
}
