//! The upsert stage: turns the stream of records (each replacing or withdrawing the
//! previous version of its key) into fact changes for the dataflows.
//!
//! Design: one map from a 128-bit hash of (`type`, `id`) to the compact fact the key's
//! version in force contributes. A new version retracts the old fact (-1) and asserts
//! the new one (+1); a withdrawal only retracts. Identifiers are interned here, once.
//! Present/tardy attendance contributes no fact, so it is not stored either: a
//! correction from present to absent finds nothing to retract, which is right, since
//! the present version counted nowhere. The 128-bit key makes a collision between two
//! of the district's ~20 million stored keys about as likely as 1 in 10^24.

use model::{
    CaseloadRole, Day, DisciplineAction, Event, EventBody, Fact, Interner, Mark, ProgramKind,
    RecordKey, SchoolInfo, SchoolLevel, StudentFact, Subject, Sym,
};
use rustc_hash::FxHashMap;

/// The interners of every identifier space, owned by the upsert stage.
#[derive(Default, Debug)]
pub struct Names {
    pub students: Interner,
    pub schools: Interner,
    pub staff: Interner,
    pub courses: Interner,
    /// Local districts, communities of schools and maintenance regions.
    pub areas: Interner,
    pub terms: Interner,
}

/// What a stored key contributes, without the text the key itself carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stored {
    Absence {
        student: Sym,
        day: Day,
    },
    Enrollment {
        student: Sym,
        school: Sym,
        entry: Day,
        exit: Option<Day>,
    },
    Discipline {
        student: Sym,
        school: Sym,
        date: Day,
        action: DisciplineAction,
        days_hundredths: u32,
    },
    Grade {
        student: Sym,
        term: Sym,
        course: Sym,
        subject: Subject,
        mark: Mark,
        date: Day,
    },
    HealthVisit {
        student: Sym,
        date: Day,
    },
    Program {
        student: Sym,
        program: ProgramKind,
        begin: Day,
        end: Option<Day>,
    },
    Caseload {
        student: Sym,
        staff: Sym,
        role: CaseloadRole,
        begin: Day,
        end: Option<Day>,
    },
    /// The school's own id is the record's id.
    School {
        level: SchoolLevel,
        local_district: Sym,
        community: Sym,
        region: Sym,
    },
    Section {
        school: Sym,
        subject: Subject,
        enrolled: u32,
    },
}

/// Counts of what the stage has seen, for operators.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct UpsertStats {
    pub records: u64,
    /// Records that replaced a version in force which counted in some indicator.
    pub corrections: u64,
    pub withdrawals: u64,
}

/// The upsert stage. Feed records in arrival order; records of one key must arrive in order.
#[derive(Default)]
pub struct Upsert {
    pub names: Names,
    stored: FxHashMap<u128, Stored>,
    pub stats: UpsertStats,
}

fn key_hash(key: &RecordKey) -> u128 {
    // Seeding by type keeps equal ids of different types apart without copying the id.
    xxhash_rust::xxh3::xxh3_128_with_seed(key.id.as_bytes(), key.record_type as u64)
}

impl Upsert {
    pub fn new() -> Upsert {
        Upsert::default()
    }

    /// Applies one record; appends the fact changes it causes to `out`.
    pub fn apply(&mut self, event: &Event, out: &mut Vec<(Fact, isize)>) {
        self.stats.records += 1;
        let hash = key_hash(&event.key);
        let new = event.body.as_ref().and_then(|body| self.stored_of(body));
        let old = match new {
            Some(new) => self.stored.insert(hash, new),
            None => self.stored.remove(&hash),
        };
        match (&event.body, old.is_some()) {
            (None, _) => self.stats.withdrawals += 1,
            (Some(_), true) => self.stats.corrections += 1,
            (Some(_), false) => {}
        }
        if old == new {
            return;
        }
        if let Some(old) = old {
            out.push((self.fact_of(old, &event.key), -1));
        }
        if let Some(new) = new {
            out.push((self.fact_of(new, &event.key), 1));
        }
    }

    /// The number of keys whose versions in force contribute facts.
    pub fn stored_keys(&self) -> usize {
        self.stored.len()
    }

    fn stored_of(&mut self, body: &EventBody) -> Option<Stored> {
        let n = &mut self.names;
        Some(match body {
            EventBody::Attendance {
                student_id,
                date,
                status,
                ..
            } => {
                if !status.is_absence() {
                    return None;
                }
                Stored::Absence {
                    student: n.students.intern(student_id),
                    day: *date,
                }
            }
            EventBody::Enrollment {
                student_id,
                school_id,
                entry_date,
                exit_date,
                ..
            } => Stored::Enrollment {
                student: n.students.intern(student_id),
                school: n.schools.intern(school_id),
                entry: *entry_date,
                exit: *exit_date,
            },
            EventBody::Discipline {
                student_id,
                school_id,
                date,
                action,
                days_hundredths,
                ..
            } => Stored::Discipline {
                student: n.students.intern(student_id),
                school: n.schools.intern(school_id),
                date: *date,
                action: *action,
                days_hundredths: *days_hundredths,
            },
            EventBody::Grade {
                student_id,
                term,
                course_id,
                subject,
                mark,
                date,
                ..
            } => Stored::Grade {
                student: n.students.intern(student_id),
                term: n.terms.intern(term),
                course: n.courses.intern(course_id),
                subject: *subject,
                mark: *mark,
                date: *date,
            },
            EventBody::HealthVisit {
                student_id, date, ..
            } => Stored::HealthVisit {
                student: n.students.intern(student_id),
                date: *date,
            },
            EventBody::Program {
                student_id,
                program,
                begin_date,
                end_date,
            } => Stored::Program {
                student: n.students.intern(student_id),
                program: *program,
                begin: *begin_date,
                end: *end_date,
            },
            EventBody::Caseload {
                student_id,
                staff_id,
                role,
                begin_date,
                end_date,
            } => Stored::Caseload {
                student: n.students.intern(student_id),
                staff: n.staff.intern(staff_id),
                role: *role,
                begin: *begin_date,
                end: *end_date,
            },
            EventBody::School {
                level,
                local_district,
                community,
                region,
                ..
            } => Stored::School {
                level: *level,
                local_district: n.areas.intern(local_district),
                community: n.areas.intern(community),
                region: n.areas.intern(region),
            },
            EventBody::Section {
                school_id,
                subject,
                enrolled,
                ..
            } => Stored::Section {
                school: n.schools.intern(school_id),
                subject: *subject,
                enrolled: *enrolled,
            },
            EventBody::Staff { .. } | EventBody::Ticket { .. } => return None,
        })
    }

    fn fact_of(&mut self, stored: Stored, key: &RecordKey) -> Fact {
        let tie = key.id.clone();
        let student = |student: Sym, fact: StudentFact| Fact::Student(student, fact);
        match stored {
            Stored::Absence { student: s, day } => student(s, StudentFact::Absence { day }),
            Stored::Enrollment {
                student: s,
                school,
                entry,
                exit,
            } => student(
                s,
                StudentFact::Enrollment {
                    school,
                    entry,
                    exit,
                    tie,
                },
            ),
            Stored::Discipline {
                student: s,
                school,
                date,
                action,
                days_hundredths,
            } => student(
                s,
                StudentFact::Discipline {
                    school,
                    date,
                    action,
                    days_hundredths,
                },
            ),
            Stored::Grade {
                student: s,
                term,
                course,
                subject,
                mark,
                date,
            } => student(
                s,
                StudentFact::Grade {
                    term: self.names.terms.resolve(term).into(),
                    course,
                    subject,
                    mark,
                    date,
                    tie,
                },
            ),
            Stored::HealthVisit { student: s, date } => {
                student(s, StudentFact::HealthVisit { date })
            }
            Stored::Program {
                student: s,
                program,
                begin,
                end,
            } => student(
                s,
                StudentFact::Program {
                    program,
                    begin,
                    end,
                },
            ),
            Stored::Caseload {
                student: s,
                staff,
                role,
                begin,
                end,
            } => student(
                s,
                StudentFact::Caseload {
                    staff,
                    role,
                    begin,
                    end,
                    tie,
                },
            ),
            Stored::School {
                level,
                local_district,
                community,
                region,
                ..
            } => Fact::School(
                self.names.schools.intern(&key.id),
                SchoolInfo {
                    level,
                    local_district,
                    community,
                    region,
                },
            ),
            Stored::Section {
                school,
                subject,
                enrolled,
            } => Fact::Section {
                school,
                subject,
                enrolled,
            },
        }
    }
}
