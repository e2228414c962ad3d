//! Criterion benches of the per-record and per-student kernels:
//!
//! - `decode_line`: one typical attendance line, one discipline line (the fast path);
//! - `upsert_apply`: the upsert stage on a day-by-day attendance stream for 10,000
//!   students (about 8 % absences), into a fresh stage and into one already holding
//!   two million absences (closer to a district's maps, which do not fit in cache);
//! - `evaluate`: one student's evaluation (a year of ~15 absences, 16 grades, two
//!   enrollments, a transfer, programs, a caseload, discipline and nurse visits), as of
//!   day 10 and day 180, with the whole row (snapshots) and contributions only (the
//!   daily pass).
//!
//! `cargo bench -p benches --bench kernels` (short measurements: 20 samples of ~3 s).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dataflows::evaluate::evaluate;
use dataflows::indicators::AsOf;
use dataflows::student_state::StudentState;
use dataflows::EngineParams;
use model::{CaseloadRole, Day, DisciplineAction, Event, Interner, Mark, ProgramKind, StudentFact, Subject, Sym};
use std::time::{Duration, Instant};

const ATTENDANCE: &str = r#"{"type":"attendance","id":"att-48213907","source":"sis","student_id":"stu-412877","school_id":"sch-731","date":"2027-02-03","status":"absent_unexcused"}"#;
const DISCIPLINE: &str = r#"{"type":"discipline","id":"dis-88124","source":"sis","student_id":"stu-412877","school_id":"sch-731","date":"2027-02-03","behavior":"disruption","action":"in_school_suspension","days":1}"#;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_line");
    for (name, line) in [("attendance", ATTENDANCE), ("discipline", DISCIPLINE)] {
        ingest::decode_line(line.as_bytes()).expect("a valid line");
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(name, |b| b.iter(|| ingest::decode_line(black_box(line.as_bytes()))));
    }
    group.finish();
}

/// splitmix64, to decide absences reproducibly.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn decoded(line: &str) -> Event {
    ingest::decode_line(line.as_bytes()).expect("a valid generated line")
}

fn enrollments(students: u64) -> Vec<Event> {
    (1..=students)
        .map(|s| {
            decoded(&format!(
                r#"{{"type":"enrollment","id":"enr-{s}","source":"sis","student_id":"stu-{s}","school_id":"sch-{}","grade":5,"entry_date":"2026-08-31","exit_date":null}}"#,
                s % 17 + 1
            ))
        })
        .collect()
}

/// One attendance record per student per day for `days` days from `first_day`; ids
/// continue from `first_id`. About 8 % are absences (excused, unexcused or suspended).
fn attendance(students: u64, calendar: &[Day], first_day: usize, days: usize, first_id: u64) -> Vec<Event> {
    let statuses = ["absent_excused", "absent_unexcused", "suspended"];
    let mut events = Vec::with_capacity(students as usize * days);
    let mut id = first_id;
    for day in &calendar[first_day..first_day + days] {
        for s in 1..=students {
            id += 1;
            let roll = mix(id) % 1000;
            let status = if roll < 80 {
                statuses[(roll % 3) as usize]
            } else if roll < 110 {
                "tardy"
            } else {
                "present"
            };
            events.push(decoded(&format!(
                r#"{{"type":"attendance","id":"att-{id}","source":"sis","student_id":"stu-{s}","school_id":"sch-{}","date":"{day}","status":"{status}"}}"#,
                s % 17 + 1
            )));
        }
    }
    events
}

fn upsert(c: &mut Criterion) {
    let config = config::Config::example();
    let calendar = config.calendar.instructional_days().to_vec();
    let students = 10_000u64;
    let days = 5;
    let enrolled = enrollments(students);
    let stream = attendance(students, &calendar, 0, days, 0);
    let fresh = || {
        let mut upsert = ingest::Upsert::new();
        let mut out = Vec::new();
        for event in &enrolled {
            upsert.apply(event, &mut out);
        }
        upsert
    };

    let mut group = c.benchmark_group("upsert_apply");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function("attendance_10k_students_x_5_days", |b| {
        b.iter_batched(
            fresh,
            |mut upsert| {
                let mut out = Vec::with_capacity(4);
                for event in &stream {
                    upsert.apply(event, &mut out);
                    out.clear();
                }
                upsert
            },
            BatchSize::LargeInput,
        )
    });

    // A stage already holding ~2 million absences (as of day ~120 for 200,000 students);
    // each iteration applies a new day's records (new ids), so the maps keep growing a
    // little, as they do in a live district.
    let mut big = ingest::Upsert::new();
    let mut out = Vec::new();
    let mut next_id = 1u64 << 40;
    for _ in 0..200 {
        for event in attendance_absences(10_000, next_id) {
            big.apply(&event, &mut out);
            out.clear();
        }
        next_id += 10_000;
    }
    let mut next_day = 0usize;
    group.throughput(Throughput::Elements(students));
    group.bench_function("attendance_10k_students_1_day_into_2M_stored", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let events = attendance(students, &calendar, next_day % 170, 1, next_id);
                next_id += students;
                next_day += 1;
                let start = Instant::now();
                for event in &events {
                    big.apply(event, &mut out);
                    out.clear();
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// Absences only, with ids from `first_id`, for filling a large stage.
fn attendance_absences(count: u64, first_id: u64) -> Vec<Event> {
    (0..count)
        .map(|k| {
            let id = first_id + k;
            decoded(&format!(
                r#"{{"type":"attendance","id":"att-{id}","source":"sis","student_id":"stu-{}","school_id":"sch-1","date":"2026-09-01","status":"absent_excused"}}"#,
                mix(id) % 200_000 + 1
            ))
        })
        .collect()
}

/// A typical year for one student: two enrollments (a transfer at day 100), 15
/// absences, 16 grades (4 courses x 2 terms x 2 grading periods), 2 programs, a
/// counselor caseload, 2 discipline incidents and 2 nurse visits.
fn student_state(calendar: &[Day], terms: &mut Interner) -> StudentState {
    let mut state = StudentState::default();
    let (a, b) = (Sym(3), Sym(8));
    let mut facts = vec![
        StudentFact::Enrollment { school: a, entry: calendar[0], exit: Some(calendar[100]), tie: "enr-1".into() },
        StudentFact::Enrollment { school: b, entry: calendar[100], exit: None, tie: "enr-2".into() },
        StudentFact::Program { program: ProgramKind::LowIncome, begin: calendar[0], end: None },
        StudentFact::Program { program: ProgramKind::EnglishLearner, begin: calendar[0], end: None },
        StudentFact::Caseload {
            staff: Sym(41),
            role: CaseloadRole::Counselor,
            begin: calendar[0],
            end: None,
            tie: "csl-1".into(),
        },
        StudentFact::Discipline {
            school: a,
            date: calendar[40],
            action: DisciplineAction::Referral,
            days_hundredths: 0,
        },
        StudentFact::Discipline {
            school: b,
            date: calendar[150],
            action: DisciplineAction::OutOfSchoolSuspension,
            days_hundredths: 200,
        },
        StudentFact::HealthVisit { date: calendar[20] },
        StudentFact::HealthVisit { date: calendar[170] },
    ];
    for k in 0..15 {
        facts.push(StudentFact::Absence { day: calendar[3 + k * 12] });
    }
    let subjects = [Subject::Ela, Subject::Math, Subject::Science, Subject::SocialStudies];
    let marks = [Mark::B, Mark::C, Mark::F, Mark::A, Mark::D, Mark::B, Mark::C, Mark::A];
    let mut n = 0;
    for (term, periods) in [("2026-fall", [45, 88]), ("2027-spring", [135, 179])] {
        for (p, &day) in periods.iter().enumerate() {
            for (c, &subject) in subjects.iter().enumerate() {
                n += 1;
                facts.push(StudentFact::Grade {
                    term: term.into(),
                    course: Sym(c as u32 + 10 * p as u32),
                    subject,
                    mark: marks[n % marks.len()],
                    date: calendar[day],
                    tie: format!("grd-{n}").as_str().into(),
                });
            }
        }
    }
    for fact in facts {
        assert!(state.apply(fact, 1, terms));
    }
    state
}

fn evaluation(c: &mut Criterion) {
    let config = config::Config::example();
    let params = EngineParams::from_config(&config);
    let calendar = config.calendar.instructional_days().to_vec();
    let mut terms = Interner::default();
    let state = student_state(&calendar, &mut terms);
    let window = params.student.attendance.window_instructional_days;
    let mut group = c.benchmark_group("evaluate");
    for day in [10usize, 180] {
        let as_of = AsOf::new(calendar[day - 1], &config.calendar, window, &terms);
        let row = evaluate(Sym(7), &state, &as_of, &params.student, true, &mut Default::default(), true)
            .row
            .expect("enrolled");
        if day == 180 {
            assert_eq!((row.days_enrolled, row.days_absent, row.failing_marks > 0), (180, 15, true));
        }
        // The daily pass for a student whose records did not change: the counts kept from
        // the day before move forward one day (what every untouched student costs a day).
        let previous = AsOf::new(calendar[day - 2], &config.calendar, window, &terms);
        let mut warmed = dataflows::evaluate::EvaluationCache::default();
        evaluate(Sym(7), &state, &previous, &params.student, false, &mut warmed, true);
        group.bench_function(format!("next_day_unchanged_records_day_{day}"), |b| {
            b.iter_batched(
                || warmed.clone(),
                |mut cache| evaluate(black_box(Sym(7)), &state, &as_of, &params.student, false, &mut cache, false),
                criterion::BatchSize::SmallInput,
            )
        });
        // From scratch, with the row (a snapshot) and without (contributions only).
        for (name, with_row) in [("student_row", true), ("contributions_only", false)] {
            group.bench_function(format!("{name}_day_{day}"), |b| {
                b.iter(|| {
                    evaluate(
                        black_box(Sym(7)),
                        black_box(&state),
                        black_box(&as_of),
                        &params.student,
                        with_row,
                        &mut Default::default(),
                        true,
                    )
                })
            });
        }
    }
    group.finish();
}

fn short() -> Criterion {
    Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = kernels;
    config = short();
    targets = decode, upsert, evaluation
}
criterion_main!(kernels);
