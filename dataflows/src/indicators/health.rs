//! `health_visits_30`: health visits dated within the last 30 days.
//!
//! Design: one pass over the student's visits (a few a year).

use super::AsOf;
use crate::student_state::StudentState;

pub fn health_visits_30(state: &StudentState, as_of: &AsOf) -> u32 {
    state.health_visits.iter().filter(|&&date| as_of.within_window(date)).count() as u32
}
