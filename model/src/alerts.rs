//! Alert changes, as the dataflows emit them (identifiers still interned).

use crate::{Day, DisciplineAction, StudentRow, Sym};

/// What happened to a (rule, entity) alert.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum AlertChangeKind {
    /// Its condition came to hold (for `for_days` days).
    Fired,
    /// It ended as the data moved on (its exit condition held).
    Resolved,
    /// It ended because the data it was raised on was corrected or withdrawn: as the
    /// records stand now, its condition did not hold on the day it fired.
    Withdrawn,
    /// A caseload reassignment moved the open alert to a new recipient.
    Rerouted,
}

impl AlertChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChangeKind::Fired => "fired",
            AlertChangeKind::Resolved => "resolved",
            AlertChangeKind::Withdrawn => "withdrawn",
            AlertChangeKind::Rerouted => "rerouted",
        }
    }
}

/// The evidence behind a student alert change: the student's indicators at the change
/// and the dated records that the rule's indicators counted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StudentEvidence {
    pub row: StudentRow,
    pub consecutive_absences: u32,
    /// Absence dates counted by the indicators the rule reads.
    pub absences: Vec<Day>,
    /// Health-visit dates within the last 30 days, when the rule reads them.
    pub health_visits: Vec<Day>,
    /// Discipline records dated up to the day, when the rule reads discipline.
    pub incidents: Vec<(Day, DisciplineAction)>,
}

/// One change of a student alert.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StudentAlertChange {
    /// The epoch (and the day it is as of) whose evaluation made the change.
    pub epoch: u64,
    pub day: Day,
    /// Index of the rule in the configuration's `rules`.
    pub rule: u16,
    pub student: Sym,
    pub kind: AlertChangeKind,
    /// Who hears of it (the counselor on the day), if anybody is assigned.
    pub recipient: Option<Sym>,
    /// For `rerouted`, who had it before.
    pub previous_recipient: Option<Sym>,
    /// The day the alert fired.
    pub fired: Day,
    /// The indicators at the change (none when the student has no row any more, as when
    /// the enrollment was withdrawn).
    pub evidence: Option<Box<StudentEvidence>>,
}
