//! The upsert stage: turns the stream of records (each replacing or withdrawing the
//! previous version of its key) into fact changes for the dataflows.
//!
//! Design: one map from a 128-bit hash of (`type`, `id`) to the compact fact the key's
//! version in force contributes. A new version retracts the old fact (-1) and asserts
//! the new one (+1); a withdrawal only retracts. Identifiers are interned here, once.
//! Present/tardy attendance contributes no fact, so it is not stored either: a
//! correction from present to absent finds nothing to retract, which is right, since
//! the present version counted nowhere. The 128-bit key makes a collision between two
//! of the district's ~20 million stored keys vanishingly unlikely (see [`KeyHash`]).

use model::{
    CaseloadRole, Day, DisciplineAction, Event, EventBody, Fact, Interner, Mark, ProgramKind, RecordKey, RecordType,
    SchoolInfo, SchoolLevel, StudentFact, Subject, Sym,
};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;
use std::collections::BTreeMap;

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

/// An optional day in four bytes (the maps below hold ~20 million of these).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct MaybeDay(i32);

impl MaybeDay {
    fn new(day: Option<Day>) -> MaybeDay {
        MaybeDay(day.map_or(i32::MIN, |day| day.0))
    }

    fn get(self) -> Option<Day> {
        (self.0 != i32::MIN).then_some(Day(self.0))
    }
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
        exit: MaybeDay,
    },
    Discipline {
        student: Sym,
        school: Sym,
        date: Day,
        action: DisciplineAction,
        days_hundredths: u32,
    },
    /// What the grade index keeps of a grade in force: only its student (see [`StoredKeys`]).
    GradeOf {
        student: Sym,
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
        end: MaybeDay,
    },
    Caseload {
        student: Sym,
        staff: Sym,
        role: CaseloadRole,
        begin: Day,
        end: MaybeDay,
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
    stored: StoredKeys,
    pub stats: UpsertStats,
    /// The staff directory in force (where notifications go): staff id -> entry.
    pub staff: FxHashMap<Sym, StaffEntry>,
    /// The class sections in force, by section id (for section alert rules).
    pub sections: BTreeMap<String, SectionEntry>,
}

/// A `staff` record as notifications need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffEntry {
    pub email: String,
    pub role: model::StaffRole,
    pub schools: Vec<Sym>,
    /// Interned in `Names::areas`.
    pub local_district: Option<Sym>,
}

/// A `section` record as section alert rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    pub school: Sym,
    pub subject: model::Subject,
    pub enrolled: u32,
}

/// A 128-bit hash of (type, id): 64 bits index the maps, 32 more confirm a match, so two
/// of the district's ~20 million keys would be confused with probability ~10^-15 a year.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct KeyHash {
    index: u64,
    check: u32,
}

fn key_hash(key: &RecordKey) -> KeyHash {
    // Seeding by type keeps equal ids of different types apart without copying the id.
    let hash = xxhash_rust::xxh3::xxh3_128_with_seed(key.id.as_bytes(), key.record_type as u64);
    KeyHash { index: hash as u64, check: (hash >> 64) as u32 }
}

/// The stored versions in force. Design: absences, by far the most numerous, get a map
/// of their own with 12-byte values (student, day); everything else shares one with
/// 24-byte values. Keys are 64-bit with a 32-bit check beside the value; the rare key
/// whose 64 bits collide with another's goes to a small overflow map, so nothing is
/// ever confused.
///
/// Grades, the second most numerous, keep only their student: the student's state holds
/// the version in force (it needs the record id anyway, to break ties), so a correction
/// withdraws the old grade by id ([`StudentFact::GradeWithdrawn`]) instead of retracting
/// a copy kept here. That halves what a district's ten million grades take.
#[derive(Default)]
struct StoredKeys {
    absences: HashedKeys<(Sym, Day)>,
    grades: HashedKeys<Sym>,
    others: HashedKeys<Stored>,
}

const _: () = assert!(std::mem::size_of::<Stored>() <= 20);

/// Values by [`KeyHash`]: 64-bit index -> (32-bit check, value), with an overflow map
/// for keys whose index is taken by another key.
struct HashedKeys<V> {
    map: FxHashMap<u64, (u32, V)>,
    overflow: FxHashMap<(u64, u32), V>,
}

impl<V> Default for HashedKeys<V> {
    fn default() -> Self {
        HashedKeys { map: FxHashMap::default(), overflow: FxHashMap::default() }
    }
}

impl<V> HashedKeys<V> {
    /// Stores `new` for the key; returns the value it replaced.
    fn insert(&mut self, key: KeyHash, new: V) -> Option<V> {
        match self.map.entry(key.index) {
            Entry::Vacant(slot) => {
                slot.insert((key.check, new));
                None
            }
            Entry::Occupied(mut slot) if slot.get().0 == key.check => {
                Some(std::mem::replace(&mut slot.get_mut().1, new))
            }
            Entry::Occupied(_) => self.overflow.insert((key.index, key.check), new),
        }
    }

    /// Removes the key's value; returns it.
    fn remove(&mut self, key: KeyHash) -> Option<V> {
        match self.map.entry(key.index) {
            Entry::Occupied(slot) if slot.get().0 == key.check => Some(slot.remove().1),
            Entry::Occupied(_) => self.overflow.remove(&(key.index, key.check)),
            Entry::Vacant(_) => None,
        }
    }

    fn len(&self) -> usize {
        self.map.len() + self.overflow.len()
    }
}

impl StoredKeys {
    /// Stores `new` for the key; returns the version it replaced.
    fn insert(&mut self, record_type: RecordType, key: KeyHash, new: Stored) -> Option<Stored> {
        match (record_type, new) {
            (RecordType::Attendance, Stored::Absence { student, day }) => {
                self.absences.insert(key, (student, day)).map(|(student, day)| Stored::Absence { student, day })
            }
            (RecordType::Grade, Stored::Grade { student, .. }) => {
                self.grades.insert(key, student).map(|student| Stored::GradeOf { student })
            }
            _ => self.others.insert(key, new),
        }
    }

    /// Removes the key's version; returns it.
    fn remove(&mut self, record_type: RecordType, key: KeyHash) -> Option<Stored> {
        match record_type {
            RecordType::Attendance => self.absences.remove(key).map(|(student, day)| Stored::Absence { student, day }),
            RecordType::Grade => self.grades.remove(key).map(|student| Stored::GradeOf { student }),
            _ => self.others.remove(key),
        }
    }

    fn len(&self) -> usize {
        self.absences.len() + self.grades.len() + self.others.len()
    }
}

impl Upsert {
    pub fn new() -> Upsert {
        Upsert::default()
    }

    /// Applies one record; appends the fact changes it causes to `out`.
    pub fn apply(&mut self, event: &Event, out: &mut Vec<(Fact, isize)>) {
        self.stats.records += 1;
        match event.key.record_type {
            model::RecordType::Staff => self.apply_staff(event),
            model::RecordType::Section => self.apply_section(event),
            _ => {}
        }
        let hash = key_hash(&event.key);
        let new = event.body.as_ref().and_then(|body| self.stored_of(body));
        let record_type = event.key.record_type;
        let old = match new {
            Some(new) => self.stored.insert(record_type, hash, new),
            None => self.stored.remove(record_type, hash),
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

    /// Keeps the staff directory (who receives which alerts, at which address) current.
    fn apply_staff(&mut self, event: &Event) {
        let staff = self.names.staff.intern(&event.key.id);
        match &event.body {
            Some(EventBody::Staff { email, role, schools, local_district, .. }) => {
                let entry = StaffEntry {
                    email: email.clone(),
                    role: *role,
                    schools: schools.iter().map(|school| self.names.schools.intern(school)).collect(),
                    local_district: local_district.as_ref().map(|area| self.names.areas.intern(area)),
                };
                self.staff.insert(staff, entry);
            }
            _ => {
                self.staff.remove(&staff);
            }
        }
    }

    /// Keeps the section directory current.
    fn apply_section(&mut self, event: &Event) {
        match &event.body {
            Some(EventBody::Section { school_id, subject, enrolled, .. }) => {
                let entry = SectionEntry {
                    school: self.names.schools.intern(school_id),
                    subject: *subject,
                    enrolled: *enrolled,
                };
                self.sections.insert(event.key.id.to_string(), entry);
            }
            _ => {
                self.sections.remove(event.key.id.as_str());
            }
        }
    }

    /// The number of keys whose versions in force contribute facts.
    pub fn stored_keys(&self) -> usize {
        self.stored.len()
    }

    fn stored_of(&mut self, body: &EventBody) -> Option<Stored> {
        let n = &mut self.names;
        Some(match body {
            EventBody::Attendance { student_id, date, status, .. } => {
                if !status.is_absence() {
                    return None;
                }
                Stored::Absence { student: n.students.intern(student_id), day: *date }
            }
            EventBody::Enrollment { student_id, school_id, entry_date, exit_date, .. } => Stored::Enrollment {
                student: n.students.intern(student_id),
                school: n.schools.intern(school_id),
                entry: *entry_date,
                exit: MaybeDay::new(*exit_date),
            },
            EventBody::Discipline { student_id, school_id, date, action, days_hundredths, .. } => Stored::Discipline {
                student: n.students.intern(student_id),
                school: n.schools.intern(school_id),
                date: *date,
                action: *action,
                days_hundredths: *days_hundredths,
            },
            EventBody::Grade { student_id, term, course_id, subject, mark, date, .. } => Stored::Grade {
                student: n.students.intern(student_id),
                term: n.terms.intern(term),
                course: n.courses.intern(course_id),
                subject: *subject,
                mark: *mark,
                date: *date,
            },
            EventBody::HealthVisit { student_id, date, .. } => {
                Stored::HealthVisit { student: n.students.intern(student_id), date: *date }
            }
            EventBody::Program { student_id, program, begin_date, end_date } => Stored::Program {
                student: n.students.intern(student_id),
                program: *program,
                begin: *begin_date,
                end: MaybeDay::new(*end_date),
            },
            EventBody::Caseload { student_id, staff_id, role, begin_date, end_date } => Stored::Caseload {
                student: n.students.intern(student_id),
                staff: n.staff.intern(staff_id),
                role: *role,
                begin: *begin_date,
                end: MaybeDay::new(*end_date),
            },
            EventBody::School { level, local_district, community, region, .. } => Stored::School {
                level: *level,
                local_district: n.areas.intern(local_district),
                community: n.areas.intern(community),
                region: n.areas.intern(region),
            },
            EventBody::Section { school_id, subject, enrolled, .. } => {
                Stored::Section { school: n.schools.intern(school_id), subject: *subject, enrolled: *enrolled }
            }
            EventBody::Staff { .. } | EventBody::Ticket { .. } => return None,
        })
    }

    fn fact_of(&mut self, stored: Stored, key: &RecordKey) -> Fact {
        let tie = key.id.clone();
        let student = |student: Sym, fact: StudentFact| Fact::Student(student, fact);
        match stored {
            Stored::Absence { student: s, day } => student(s, StudentFact::Absence { day }),
            Stored::Enrollment { student: s, school, entry, exit } => {
                student(s, StudentFact::Enrollment { school, entry, exit: exit.get(), tie })
            }
            Stored::Discipline { student: s, school, date, action, days_hundredths } => {
                student(s, StudentFact::Discipline { school, date, action, days_hundredths })
            }
            Stored::GradeOf { student: s } => student(s, StudentFact::GradeWithdrawn { tie }),
            Stored::Grade { student: s, term, course, subject, mark, date } => student(
                s,
                StudentFact::Grade { term: self.names.terms.resolve(term).into(), course, subject, mark, date, tie },
            ),
            Stored::HealthVisit { student: s, date } => student(s, StudentFact::HealthVisit { date }),
            Stored::Program { student: s, program, begin, end } => {
                student(s, StudentFact::Program { program, begin, end: end.get() })
            }
            Stored::Caseload { student: s, staff, role, begin, end } => {
                student(s, StudentFact::Caseload { staff, role, begin, end: end.get(), tie })
            }
            Stored::School { level, local_district, community, region, .. } => Fact::School(
                self.names.schools.intern(&key.id),
                SchoolInfo { level, local_district, community, region },
            ),
            Stored::Section { school, subject, enrolled } => Fact::Section { school, subject, enrolled },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_line;

    fn apply(upsert: &mut Upsert, line: &str) -> Vec<(Fact, isize)> {
        let mut out = Vec::new();
        upsert.apply(&decode_line(line.as_bytes()).unwrap(), &mut out);
        out
    }

    fn attendance(id: &str, day: &str, status: &str) -> String {
        format!(
            r#"{{"type":"attendance","id":"{id}","source":"sis","student_id":"s1","school_id":"k1","date":"{day}","status":"{status}"}}"#
        )
    }

    #[test]
    fn a_correction_retracts_the_old_fact_and_asserts_the_new() {
        let mut upsert = Upsert::new();
        let absent = apply(&mut upsert, &attendance("a1", "2026-09-01", "absent_excused"));
        assert_eq!(absent.len(), 1);
        let moved = apply(&mut upsert, &attendance("a1", "2026-09-02", "absent_unexcused"));
        let day = |text| Day::parse(text).unwrap();
        let student = upsert.names.students.get("s1").unwrap();
        assert_eq!(
            moved,
            vec![
                (Fact::Student(student, StudentFact::Absence { day: day("2026-09-01") }), -1),
                (Fact::Student(student, StudentFact::Absence { day: day("2026-09-02") }), 1),
            ]
        );
        assert_eq!(upsert.stats.corrections, 1);
    }

    #[test]
    fn present_days_store_nothing_and_a_recode_to_present_retracts_the_absence() {
        let mut upsert = Upsert::new();
        assert!(apply(&mut upsert, &attendance("a1", "2026-09-01", "present")).is_empty());
        assert_eq!(upsert.stored_keys(), 0);
        assert_eq!(apply(&mut upsert, &attendance("a1", "2026-09-01", "suspended")).len(), 1);
        let recoded = apply(&mut upsert, &attendance("a1", "2026-09-01", "tardy"));
        assert_eq!(recoded.len(), 1);
        assert_eq!(recoded[0].1, -1);
        assert_eq!(upsert.stored_keys(), 0);
    }

    #[test]
    fn a_withdrawal_retracts_and_a_resend_of_the_same_version_changes_nothing() {
        let mut upsert = Upsert::new();
        apply(&mut upsert, &attendance("a1", "2026-09-01", "absent_excused"));
        assert!(apply(&mut upsert, &attendance("a1", "2026-09-01", "absent_excused")).is_empty());
        let withdrawn = apply(&mut upsert, r#"{"type":"attendance","id":"a1","source":"sis","deleted":true}"#);
        assert_eq!(withdrawn.len(), 1);
        assert_eq!(withdrawn[0].1, -1);
        assert_eq!(upsert.stats.withdrawals, 1);
        // A withdrawal of a key never seen changes nothing.
        assert!(apply(&mut upsert, r#"{"type":"grade","id":"nope","source":"sis","deleted":true}"#).is_empty());
    }

    #[test]
    fn a_grade_correction_withdraws_the_old_grade_by_id() {
        let mut upsert = Upsert::new();
        let grade = |mark: &str| {
            format!(
                r#"{{"type":"grade","id":"g1","source":"sis","student_id":"s1","school_id":"k1","term":"T1","grading_period":"P1","course_id":"m","subject":"math","mark":"{mark}","date":"2026-09-01"}}"#
            )
        };
        assert_eq!(apply(&mut upsert, &grade("F")).len(), 1);
        let corrected = apply(&mut upsert, &grade("C"));
        let student = upsert.names.students.get("s1").unwrap();
        assert_eq!(corrected[0], (Fact::Student(student, StudentFact::GradeWithdrawn { tie: "g1".into() }), -1));
        assert!(matches!(&corrected[1], (Fact::Student(_, StudentFact::Grade { mark: Mark::C, .. }), 1)));
        let withdrawn = apply(&mut upsert, r#"{"type":"grade","id":"g1","source":"sis","deleted":true}"#);
        assert_eq!(withdrawn, vec![(Fact::Student(student, StudentFact::GradeWithdrawn { tie: "g1".into() }), -1)]);
        assert_eq!(upsert.stored_keys(), 0);
    }

    #[test]
    fn equal_ids_of_different_types_are_different_keys() {
        let mut upsert = Upsert::new();
        apply(&mut upsert, &attendance("x1", "2026-09-01", "absent_excused"));
        let visit = r#"{"type":"health_visit","id":"x1","source":"nurse","student_id":"s1","school_id":"k1","date":"2026-09-01","reason":"injury"}"#;
        assert_eq!(apply(&mut upsert, visit).len(), 1);
        assert_eq!(upsert.stored_keys(), 2);
    }

    #[test]
    fn keys_whose_64_bit_index_collides_are_kept_apart() {
        for record_type in [RecordType::HealthVisit, RecordType::Attendance] {
            let mut keys = StoredKeys::default();
            let one = KeyHash { index: 42, check: 1 };
            let two = KeyHash { index: 42, check: 2 };
            let a = Stored::Absence { student: Sym(1), day: Day(1) };
            let b = Stored::Absence { student: Sym(2), day: Day(2) };
            assert_eq!(keys.insert(record_type, one, a), None);
            assert_eq!(keys.insert(record_type, two, b), None);
            assert_eq!(keys.len(), 2);
            assert_eq!(keys.insert(record_type, two, a), Some(b));
            assert_eq!(keys.remove(record_type, two), Some(a));
            assert_eq!(keys.remove(record_type, two), None);
            assert_eq!(keys.remove(record_type, one), Some(a));
            assert_eq!(keys.len(), 0);
        }
    }
}
