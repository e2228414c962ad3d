//! `programs`: the programs active on D, sorted by name.
//!
//! Design: a program record is active when `begin_date <= D` and (`end_date` is null or
//! `D < end_date`); several records of one program count once.

use super::AsOf;
use crate::student_state::StudentState;
use model::ProgramKind;

pub fn active_programs(state: &StudentState, as_of: &AsOf) -> Vec<ProgramKind> {
    let mut active: Vec<ProgramKind> = state
        .programs
        .iter()
        .filter(|p| p.begin <= as_of.day && p.end.is_none_or(|end| as_of.day < end))
        .map(|p| p.program)
        .collect();
    active.sort_unstable_by_key(|program| program.as_str());
    active.dedup();
    active
}
