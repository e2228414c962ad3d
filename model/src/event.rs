//! Canonical records of `events.md`, validated, with their identifiers still as text.

use crate::day::Day;
use crate::enums::*;
use compact_str::CompactString;

/// Identifier text; inline (no allocation) up to 24 bytes.
pub type Text = CompactString;

/// A record's identity: a later record with the same key replaces the earlier one.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RecordKey {
    pub record_type: RecordType,
    pub id: Text,
}

/// One validated canonical record; `body` is `None` for a withdrawal (`deleted: true`).
#[derive(Clone, PartialEq, Debug)]
pub struct Event {
    pub key: RecordKey,
    pub source: Text,
    pub body: Option<EventBody>,
}

/// The type-specific fields of a record (the envelope is in [`Event`]).
#[derive(Clone, PartialEq, Debug)]
pub enum EventBody {
    School {
        name: String,
        level: SchoolLevel,
        local_district: Text,
        community: Text,
        region: Text,
    },
    Staff {
        name: String,
        email: String,
        role: StaffRole,
        schools: Vec<Text>,
        region: Option<Text>,
        local_district: Option<Text>,
    },
    Enrollment {
        student_id: Text,
        school_id: Text,
        grade: i8,
        entry_date: Day,
        exit_date: Option<Day>,
    },
    Attendance {
        student_id: Text,
        school_id: Text,
        date: Day,
        status: AttendanceStatus,
    },
    Discipline {
        student_id: Text,
        school_id: Text,
        date: Day,
        behavior: Text,
        action: DisciplineAction,
        /// Suspension days in hundredths of a day (`days` may be fractional).
        days_hundredths: u32,
    },
    Grade {
        student_id: Text,
        school_id: Text,
        term: Text,
        grading_period: Text,
        course_id: Text,
        subject: Subject,
        mark: Mark,
        date: Day,
    },
    HealthVisit {
        student_id: Text,
        school_id: Text,
        date: Day,
        reason: HealthReason,
    },
    Program {
        student_id: Text,
        program: ProgramKind,
        begin_date: Day,
        end_date: Option<Day>,
    },
    Caseload {
        student_id: Text,
        staff_id: Text,
        role: CaseloadRole,
        begin_date: Day,
        end_date: Option<Day>,
    },
    Section {
        school_id: Text,
        course_id: Text,
        subject: Subject,
        enrolled: u32,
    },
    Ticket {
        ticket_id: Text,
        queue: TicketQueue,
        /// The instant, as seconds since the Unix epoch.
        at_unix_seconds: i64,
        /// The instant's calendar day in the district's time zone.
        local_day: Day,
        action: TicketAction,
        school_id: Option<Text>,
        category: Option<Text>,
        priority: Option<TicketPriority>,
        assignee: Option<Text>,
    },
}

impl EventBody {
    /// The day this record moves the replay clock to: the `date` of attendance,
    /// discipline, grade and health visits, and a ticket's local day.
    pub fn clock_day(&self) -> Option<Day> {
        match self {
            EventBody::Attendance { date, .. }
            | EventBody::Discipline { date, .. }
            | EventBody::Grade { date, .. }
            | EventBody::HealthVisit { date, .. } => Some(*date),
            EventBody::Ticket { local_day, .. } => Some(*local_day),
            _ => None,
        }
    }
}
