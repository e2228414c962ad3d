//! Hand-worked cases for every boundary in metrics.md: 31 days, 10 %, 90 %, the 30-day
//! window, ties, transfers between schools, records on non-instructional days.

mod support;

use serde_json::{json, Value};
use support::engine::run_records;

/// Two weeks of September with Labor Day, then on: 2026-08-31 is a Monday.
const CONFIG: &str = "[calendar]\nfirst_day = 2026-08-31\nlast_day = 2026-12-18\nholidays = [2026-09-07]\n";

/// The n-th instructional day (1-based).
fn day(n: usize) -> String {
    let config = config::Config::parse(CONFIG).unwrap();
    config.calendar.instructional_days()[n - 1].to_string()
}

fn school(id: &str, level: &str) -> Value {
    json!({"type":"school","id":id,"source":"sis","name":"S","level":level,"local_district":"ld1","community":"c1","region":"r1"})
}

fn enrollment(id: &str, student: &str, school: &str, entry: &str, exit: Option<&str>) -> Value {
    json!({"type":"enrollment","id":id,"source":"sis","student_id":student,"school_id":school,"grade":7,"entry_date":entry,"exit_date":exit})
}

fn attendance(id: &str, student: &str, date: &str, status: &str) -> Value {
    json!({"type":"attendance","id":id,"source":"sis","student_id":student,"school_id":"k1","date":date,"status":status})
}

fn absences(student: &str, days: &[usize]) -> Vec<Value> {
    days.iter().map(|&n| attendance(&format!("{student}-a{n}"), student, &day(n), "absent_unexcused")).collect()
}

fn int(value: &Value, field: &str) -> i64 {
    value[field].as_i64().unwrap_or_else(|| panic!("{field} in {value}"))
}

#[test]
fn chronic_absence_needs_31_days_enrolled_and_ten_percent_absent() {
    let mut records = vec![
        school("k1", "middle"),
        enrollment("e1", "s1", "k1", &day(1), None),
        enrollment("e2", "s2", "k1", &day(1), None),
        enrollment("e3", "s3", "k1", &day(2), None),
    ];
    records.extend(absences("s1", &[1, 2, 3])); // 3 of 31: 9.7 %
    records.extend(absences("s2", &[1, 2, 3, 4])); // 4 of 31: 12.9 %
    records.extend(absences("s3", &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11])); // 10 of 30 days
    let rows = run_records(CONFIG, &records, Some(&day(31)), 2);
    assert_eq!((int(rows.student("s1"), "days_enrolled"), int(rows.student("s1"), "days_absent")), (31, 3));
    assert_eq!(rows.student("s1")["chronically_absent"], false);
    assert_eq!(rows.student("s2")["chronically_absent"], true);
    assert_eq!(int(rows.student("s3"), "days_enrolled"), 30);
    assert_eq!(rows.student("s3")["chronically_absent"], false);
    // Two of the school's three school years have 31 days; one of them is chronic.
    assert_eq!(rows.school("k1")["chronic_absence_rate"], 0.5);
    assert_eq!(int(rows.school("k1"), "cumulative_enrollment"), 3);
}

#[test]
fn exactly_ten_percent_is_chronic() {
    let mut records = vec![school("k1", "middle"), enrollment("e1", "s1", "k1", &day(1), None)];
    records.extend(absences("s1", &[1, 2, 3, 4]));
    let rows = run_records(CONFIG, &records, Some(&day(40)), 1);
    assert_eq!(rows.student("s1")["chronically_absent"], true, "4 of 40 days is 10 %");
    assert_eq!(rows.student("s1")["attendance_rate"], 0.9);
}

#[test]
fn the_attendance_flag_is_below_ninety_percent_and_needs_ten_days() {
    let mut records = vec![
        school("k1", "middle"),
        enrollment("e1", "s1", "k1", &day(1), None),
        enrollment("e2", "s2", "k1", &day(1), None),
        enrollment("e3", "s3", "k1", &day(2), None),
    ];
    records.extend(absences("s1", &[1])); // 90 %: not below
    records.extend(absences("s2", &[1, 2])); // 80 %
    records.extend(absences("s3", &[2, 3, 4, 5, 6])); // 9 days enrolled
    let rows = run_records(CONFIG, &records, Some(&day(10)), 2);
    assert_eq!(rows.student("s1")["attendance_flag"], false);
    assert_eq!(rows.student("s2")["attendance_flag"], true);
    assert_eq!(rows.student("s2")["tier"], 2);
    assert_eq!(rows.student("s3")["attendance_flag"], false);
    assert_eq!(int(rows.school("k1"), "tier_2"), 1);
    assert_eq!(int(rows.school("k1"), "tier_1"), 2);
}

#[test]
fn the_30_day_window_starts_on_the_30th_most_recent_instructional_day() {
    // As of day 40 the window is days 11..=40.
    let saturday = "2026-09-26"; // between instructional days 19 and 20
    let mut records = vec![school("k1", "middle"), enrollment("e1", "s1", "k1", &day(1), None)];
    records.extend(absences("s1", &[10, 11]));
    records.push(json!({"type":"discipline","id":"d1","source":"sis","student_id":"s1","school_id":"k1","date":saturday,"behavior":"b","action":"referral","days":0}));
    records.push(json!({"type":"discipline","id":"d2","source":"sis","student_id":"s1","school_id":"k1","date":day(10),"behavior":"b","action":"referral","days":0}));
    records.push(json!({"type":"health_visit","id":"h1","source":"nurse","student_id":"s1","school_id":"k1","date":day(11),"reason":"illness"}));
    records.push(json!({"type":"health_visit","id":"h2","source":"nurse","student_id":"s1","school_id":"k1","date":day(10),"reason":"illness"}));
    let rows = run_records(CONFIG, &records, Some(&day(40)), 1);
    let s1 = rows.student("s1");
    assert_eq!((int(s1, "days_enrolled_30"), int(s1, "days_absent_30")), (30, 1));
    assert_eq!(int(s1, "incidents_30"), 1, "the Saturday referral is inside, day 10's is not");
    assert_eq!(int(s1, "health_visits_30"), 1);
    assert_eq!(s1["behavior_flag"], false);
}

#[test]
fn records_on_non_instructional_days_count_nowhere() {
    let records = vec![
        school("k1", "middle"),
        enrollment("e1", "s1", "k1", &day(1), None),
        attendance("a1", "s1", "2026-09-05", "absent_unexcused"), // a Saturday
        attendance("a2", "s1", "2026-09-07", "absent_excused"),   // Labor Day
        attendance("a3", "s1", &day(6), "present"),
    ];
    let rows = run_records(CONFIG, &records, Some(&day(6)), 1);
    let s1 = rows.student("s1");
    assert_eq!((int(s1, "days_enrolled"), int(s1, "days_absent")), (6, 0));
}

#[test]
fn several_records_on_one_day_count_once_and_any_absence_wins() {
    let records = vec![
        school("k1", "middle"),
        enrollment("e1", "s1", "k1", &day(1), None),
        attendance("a1", "s1", &day(2), "present"),
        attendance("a2", "s1", &day(2), "absent_excused"),
        attendance("a3", "s1", &day(2), "suspended"),
    ];
    let rows = run_records(CONFIG, &records, Some(&day(5)), 1);
    assert_eq!(int(rows.student("s1"), "days_absent"), 1);
}

#[test]
fn a_transfer_splits_the_student_school_years() {
    let mut records = vec![
        school("k1", "middle"),
        school("k2", "high"),
        enrollment("e1", "s1", "k1", &day(1), Some(&day(11))),
        enrollment("e2", "s1", "k2", &day(11), None),
    ];
    records.extend(absences("s1", &[5, 12]));
    let rows = run_records(CONFIG, &records, Some(&day(20)), 2);
    let s1 = rows.student("s1");
    assert_eq!((int(s1, "days_enrolled"), int(s1, "days_absent")), (20, 2));
    assert_eq!(s1["school"], "k2");
    assert_eq!((int(rows.school("k1"), "enrolled"), int(rows.school("k1"), "cumulative_enrollment")), (0, 1));
    assert_eq!((int(rows.school("k2"), "enrolled"), int(rows.school("k2"), "cumulative_enrollment")), (1, 1));
    // The district pools student-school years: two for one student.
    assert_eq!(int(rows.rollup("district", "district"), "cumulative_enrollment"), 2);
    assert_eq!(int(rows.rollup("district", "district"), "enrolled"), 1);
}

#[test]
fn overlapping_enrollments_on_one_entry_date_go_to_the_greatest_id() {
    let records = vec![
        school("k1", "middle"),
        school("k2", "middle"),
        enrollment("e1", "s1", "k1", &day(1), None),
        enrollment("e2", "s1", "k2", &day(1), None),
        attendance("a1", "s1", &day(3), "present"),
    ];
    let rows = run_records(CONFIG, &records, None, 1);
    assert_eq!(rows.student("s1")["school"], "k2");
    assert_eq!(int(rows.student("s1"), "days_enrolled"), 3, "overlapping enrollments count each day once");
    assert_eq!(int(rows.school("k1"), "cumulative_enrollment"), 0);
}

#[test]
fn a_correction_to_a_past_day_is_as_if_the_old_version_was_never_seen() {
    let mut records = vec![school("k1", "middle"), enrollment("e1", "s1", "k1", &day(1), None)];
    records.extend(absences("s1", &[1, 2, 3, 4]));
    records.push(attendance("late", "s1", &day(31), "present"));
    let before = run_records(CONFIG, &records, None, 1);
    assert_eq!(before.student("s1")["chronically_absent"], true);
    // Day 2's absence is recoded as present (a field trip), on day 31.
    records.push(attendance("s1-a2", "s1", &day(2), "present"));
    let after = run_records(CONFIG, &records, None, 2);
    let without =
        run_records(CONFIG, &records.iter().filter(|r| r["id"] != "s1-a2").cloned().collect::<Vec<_>>(), None, 1);
    assert_eq!(after.student("s1")["chronically_absent"], false);
    assert_eq!(after.students, without.students);
    assert_eq!(after.schools, without.schools);
    assert_eq!(after.school("k1")["chronic_absence_rate"], 0.0);
}

#[test]
fn oversized_sections_count_only_capped_subjects_at_capped_levels() {
    let section = |id: &str, school: &str, subject: &str, enrolled: u32| json!({"type":"section","id":id,"source":"sis","school_id":school,"course_id":id,"subject":subject,"enrolled":enrolled});
    let records = vec![
        school("k1", "middle"),
        school("k2", "elementary"),
        section("x1", "k1", "math", 40),
        section("x2", "k1", "ela", 39),
        section("x3", "k1", "science", 45),
        section("x4", "k2", "math", 45),
        attendance("a", "s", &day(1), "present"),
    ];
    let rows = run_records(CONFIG, &records, None, 1);
    assert_eq!(int(rows.school("k1"), "oversized_sections"), 1);
    assert_eq!(int(rows.school("k2"), "oversized_sections"), 0);
    assert_eq!(int(rows.rollup("community", "c1"), "oversized_sections"), 1);
    assert_eq!(rows.school("k2")["chronic_absence_rate"], Value::Null, "a school without students has null rates");
}
