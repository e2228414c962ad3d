//! Facts: the interned, compact form in which records enter the dataflows.
//!
//! Each record in force contributes at most one fact with multiplicity +1; a correction
//! retracts the old fact (-1) and asserts the new one (+1). Attendance records that are
//! not absences contribute nothing (a day without an absence counts as present), which
//! keeps the year's ~100 million "present" records out of the dataflow state.

use crate::day::Day;
use crate::enums::*;
use crate::event::Text;
use crate::intern::Sym;
use serde::{Deserialize, Serialize};

/// A fact about one student, keyed by the student's symbol in [`Fact::Student`].
///
/// `tie` fields carry the record id where the definitions break ties by "greatest id".
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum StudentFact {
    Enrollment {
        school: Sym,
        entry: Day,
        exit: Option<Day>,
        tie: Text,
    },
    /// One absence record for the day (several records on one day are several facts).
    Absence {
        day: Day,
    },
    Discipline {
        school: Sym,
        date: Day,
        action: DisciplineAction,
        days_hundredths: u32,
    },
    Grade {
        term: Text,
        course: Sym,
        subject: Subject,
        mark: Mark,
        date: Day,
        tie: Text,
    },
    /// Withdraws the student's grade whose record id is `tie` (always with diff -1):
    /// the upsert stage keeps only a grade's student, not a copy of its version.
    GradeWithdrawn {
        tie: Text,
    },
    HealthVisit {
        date: Day,
    },
    Program {
        program: ProgramKind,
        begin: Day,
        end: Option<Day>,
    },
    Caseload {
        staff: Sym,
        role: CaseloadRole,
        begin: Day,
        end: Option<Day>,
        tie: Text,
    },
}

/// What the indicator dataflows need to know of a `school` record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SchoolInfo {
    pub level: SchoolLevel,
    pub local_district: Sym,
    pub community: Sym,
    pub region: Sym,
}

/// A fact as it enters the dataflows.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Fact {
    Student(Sym, StudentFact),
    School(Sym, SchoolInfo),
    /// A class section: its school, subject and head count (`section` records).
    Section {
        school: Sym,
        subject: Subject,
        enrolled: u32,
    },
}
