//! One student's consolidated records: the multiset of facts in force, kept compact.
//!
//! Design: facts arrive as +1/-1 changes; each kind lives in a small vector (a student
//! has a handful of enrollments, tens of absences and grades). The school timeline
//! (which school is the student's on each day) is derived from the enrollments and
//! cached, since every evaluation needs it and enrollments rarely change.

use compact_str::CompactString;
use model::{CaseloadRole, Day, DisciplineAction, Interner, Mark, ProgramKind, StudentFact, Subject, Sym};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    pub school: Sym,
    pub entry: Day,
    pub exit: Option<Day>,
    pub tie: CompactString,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discipline {
    pub school: Sym,
    pub date: Day,
    pub action: DisciplineAction,
    pub days_hundredths: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grade {
    /// The term, interned in the worker's term table (terms are few; a grade is one of
    /// the ~10 million records a district holds, so four bytes instead of 24 matter).
    pub term: Sym,
    pub course: Sym,
    pub subject: Subject,
    pub mark: Mark,
    pub date: Day,
    pub tie: CompactString,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub program: ProgramKind,
    pub begin: Day,
    pub end: Option<Day>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caseload {
    pub staff: Sym,
    pub role: CaseloadRole,
    pub begin: Day,
    pub end: Option<Day>,
    pub tie: CompactString,
}

/// A stretch of days on which one school is the student's school: `from..until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub from: Day,
    /// Exclusive end; `None` while open.
    pub until: Option<Day>,
    pub school: Sym,
}

impl Segment {
    pub fn covers(&self, day: Day) -> bool {
        self.from <= day && self.until.is_none_or(|until| day < until)
    }
}

/// Everything in force about one student.
#[derive(Clone, Debug, Default)]
pub struct StudentState {
    pub enrollments: Vec<Enrollment>,
    /// Absence records per day, sorted by day: (day, records).
    pub absences: Vec<(Day, u32)>,
    pub discipline: Vec<Discipline>,
    pub grades: Vec<Grade>,
    pub health_visits: Vec<Day>,
    pub programs: Vec<Program>,
    pub caseloads: Vec<Caseload>,
    /// The school timeline derived from `enrollments`, sorted by `from`.
    pub segments: Vec<Segment>,
}

/// Removes one element equal to `item`; false when there was none.
fn remove_one<T: PartialEq>(items: &mut Vec<T>, item: &T) -> bool {
    match items.iter().position(|x| x == item) {
        Some(index) => {
            items.swap_remove(index);
            true
        }
        None => false,
    }
}

/// Adds (`diff` = +1) or removes (-1) one item of a multiset.
/// Vectors grow one element at a time while small: most students have one or two
/// enrollments, programs and caseloads, and the default growth (to four) would double
/// what 600,000 students' records take.
fn change<T: PartialEq>(items: &mut Vec<T>, item: T, diff: isize) -> bool {
    if diff > 0 {
        if items.len() == items.capacity() && items.len() < 8 {
            items.reserve_exact(1);
        }
        items.push(item);
        true
    } else {
        remove_one(items, &item)
    }
}

impl StudentState {
    /// Applies one fact change; returns false if a retraction found nothing to retract
    /// (which the upsert stage never sends).
    pub fn apply(&mut self, fact: StudentFact, diff: isize, terms: &mut Interner) -> bool {
        debug_assert!(diff == 1 || diff == -1);
        match fact {
            StudentFact::Enrollment { school, entry, exit, tie } => {
                let changed = change(&mut self.enrollments, Enrollment { school, entry, exit, tie }, diff);
                self.segments = school_timeline(&self.enrollments);
                changed
            }
            StudentFact::Absence { day } => self.change_absence(day, diff),
            StudentFact::Discipline { school, date, action, days_hundredths } => {
                change(&mut self.discipline, Discipline { school, date, action, days_hundredths }, diff)
            }
            StudentFact::Grade { term, course, subject, mark, date, tie } => {
                change(&mut self.grades, Grade { term: terms.intern(&term), course, subject, mark, date, tie }, diff)
            }
            StudentFact::GradeWithdrawn { tie } => {
                debug_assert_eq!(diff, -1, "a grade is withdrawn, never added, by id");
                match self.grades.iter().position(|grade| grade.tie == tie) {
                    Some(index) => {
                        self.grades.swap_remove(index);
                        true
                    }
                    None => false,
                }
            }
            StudentFact::HealthVisit { date } => change(&mut self.health_visits, date, diff),
            StudentFact::Program { program, begin, end } => {
                change(&mut self.programs, Program { program, begin, end }, diff)
            }
            StudentFact::Caseload { staff, role, begin, end, tie } => {
                change(&mut self.caseloads, Caseload { staff, role, begin, end, tie }, diff)
            }
        }
    }

    fn change_absence(&mut self, day: Day, diff: isize) -> bool {
        match self.absences.binary_search_by_key(&day, |&(d, _)| d) {
            Ok(index) if diff > 0 => self.absences[index].1 += 1,
            Ok(index) => {
                self.absences[index].1 -= 1;
                if self.absences[index].1 == 0 {
                    self.absences.remove(index);
                }
            }
            Err(index) if diff > 0 => self.absences.insert(index, (day, 1)),
            Err(_) => return false,
        }
        true
    }

    /// True when nothing is in force for this student.
    pub fn is_empty(&self) -> bool {
        self.enrollments.is_empty()
            && self.absences.is_empty()
            && self.discipline.is_empty()
            && self.grades.is_empty()
            && self.health_visits.is_empty()
            && self.programs.is_empty()
            && self.caseloads.is_empty()
    }

    /// Whether some absence record covers `day` (enrolled or not).
    pub fn is_absent_on(&self, day: Day) -> bool {
        self.absences.binary_search_by_key(&day, |&(d, _)| d).is_ok()
    }

    /// The segment covering `day`, if the student is enrolled on it.
    pub fn segment_on(&self, day: Day) -> Option<&Segment> {
        let index = self.segments.partition_point(|segment| segment.from <= day);
        index.checked_sub(1).map(|i| &self.segments[i]).filter(|segment| segment.covers(day))
    }
}

/// The school on each day: among enrollments covering a day, the latest `entry_date`
/// wins, ties broken by the greatest record id. Built from the enrollments' boundaries
/// (a student has a handful), so it costs nothing per day.
pub fn school_timeline(enrollments: &[Enrollment]) -> Vec<Segment> {
    let mut boundaries: Vec<Day> = enrollments.iter().flat_map(|e| std::iter::once(e.entry).chain(e.exit)).collect();
    boundaries.sort_unstable();
    boundaries.dedup();
    let mut segments: Vec<Segment> = Vec::new();
    for (index, &from) in boundaries.iter().enumerate() {
        let until = boundaries.get(index + 1).copied();
        let winner = enrollments
            .iter()
            .filter(|e| e.entry <= from && e.exit.is_none_or(|exit| from < exit))
            .max_by(|a, b| (a.entry, &a.tie).cmp(&(b.entry, &b.tie)));
        let Some(winner) = winner else { continue };
        match segments.last_mut() {
            Some(last) if last.school == winner.school && last.until == Some(from) => last.until = until,
            _ => segments.push(Segment { from, until, school: winner.school }),
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i32) -> Day {
        Day(n)
    }

    fn enrollment(school: u32, entry: i32, exit: Option<i32>, tie: &str) -> Enrollment {
        Enrollment { school: Sym(school), entry: day(entry), exit: exit.map(day), tie: tie.into() }
    }

    #[test]
    fn a_later_overlapping_enrollment_wins_and_the_earlier_resumes() {
        let timeline = school_timeline(&[enrollment(1, 0, None, "a"), enrollment(2, 10, Some(20), "b")]);
        assert_eq!(
            timeline,
            vec![
                Segment { from: day(0), until: Some(day(10)), school: Sym(1) },
                Segment { from: day(10), until: Some(day(20)), school: Sym(2) },
                Segment { from: day(20), until: None, school: Sym(1) },
            ]
        );
    }

    #[test]
    fn ties_on_entry_go_to_the_greatest_id_and_gaps_are_not_enrolled() {
        let timeline = school_timeline(&[
            enrollment(1, 0, Some(5), "a"),
            enrollment(2, 0, Some(5), "b"),
            enrollment(3, 8, None, "c"),
        ]);
        assert_eq!(timeline[0], Segment { from: day(0), until: Some(day(5)), school: Sym(2) });
        assert_eq!(timeline[1], Segment { from: day(8), until: None, school: Sym(3) });
        let state = StudentState { segments: timeline, ..Default::default() };
        assert!(state.segment_on(day(6)).is_none());
        assert_eq!(state.segment_on(day(100)).unwrap().school, Sym(3));
    }

    #[test]
    fn absences_are_a_multiset_per_day() {
        let mut state = StudentState::default();
        let terms = &mut Interner::default();
        assert!(state.apply(StudentFact::Absence { day: day(3) }, 1, terms));
        assert!(state.apply(StudentFact::Absence { day: day(3) }, 1, terms));
        assert!(state.apply(StudentFact::Absence { day: day(3) }, -1, terms));
        assert_eq!(state.absences, vec![(day(3), 1)]);
        assert!(state.apply(StudentFact::Absence { day: day(3) }, -1, terms));
        assert!(!state.apply(StudentFact::Absence { day: day(3) }, -1, terms));
        assert!(state.is_empty());
    }
}
