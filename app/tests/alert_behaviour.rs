//! One test per user-visible alert behaviour, as data: rules, a timeline of canonical
//! records in arrival order, and the alert changes `wholechild replay --alerts` must
//! write (day, rule, student, change, recipient). The district clock follows the
//! records, so each day's records are applied on that day, in logical time.
//!
//! The calendar is the example's: 2026-08-31 is the first instructional day and
//! 2026-09-07 (Labor Day) a holiday.

mod support;

use serde_json::Value;
use support::cli::{scratch, wholechild};

/// The example configuration's calendar with `rules` (TOML) in place of the defaults.
fn config_with(dir: &std::path::Path, rules: &str) -> std::path::PathBuf {
    let example = include_str!("../../config/example.toml");
    let start = example.find("\n[calendar]\n").unwrap() + 1;
    let end = start + example[start + 1..].find("\n[").unwrap() + 1;
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("{}\n{rules}", &example[start..end])).unwrap();
    path
}

fn enrollment(student: &str, entry: &str) -> String {
    format!(
        r#"{{"type":"enrollment","id":"e-{student}","source":"sis","student_id":"{student}","school_id":"k1","grade":7,"entry_date":"{entry}","exit_date":null}}"#
    )
}

fn attendance(id: &str, student: &str, date: &str, status: &str) -> String {
    format!(
        r#"{{"type":"attendance","id":"{id}","source":"sis","student_id":"{student}","school_id":"k1","date":"{date}","status":"{status}"}}"#
    )
}

fn program(student: &str, program: &str, begin: &str) -> String {
    format!(
        r#"{{"type":"program","id":"p-{student}-{program}","source":"sis","student_id":"{student}","program":"{program}","begin_date":"{begin}","end_date":null}}"#
    )
}

fn caseload(id: &str, student: &str, staff: &str, begin: &str, end: Option<&str>) -> String {
    let end = end.map_or(String::from("null"), |end| format!("\"{end}\""));
    format!(
        r#"{{"type":"caseload","id":"{id}","source":"sis","student_id":"{student}","staff_id":"{staff}","role":"counselor","begin_date":"{begin}","end_date":{end}}}"#
    )
}

fn suspension(id: &str, student: &str, date: &str) -> String {
    format!(
        r#"{{"type":"discipline","id":"{id}","source":"sis","student_id":"{student}","school_id":"k1","date":"{date}","behavior":"fight","action":"out_of_school_suspension","days":2}}"#
    )
}

const SCHOOL: &str = r#"{"type":"school","id":"k1","source":"sis","name":"One","level":"middle","local_district":"ld1","community":"c1","region":"r1"}"#;

/// The instructional days of the example calendar from its first, `count` of them.
fn school_days(count: usize) -> Vec<String> {
    let config = config::Config::example();
    config.calendar.instructional_days().iter().take(count).map(|day| day.to_string()).collect()
}

/// Replays `lines` with `--alerts`; returns the alert lines and their objects.
fn backtest(name: &str, rules: &str, lines: &[String]) -> Vec<Value> {
    let dir = scratch(name);
    let config = config_with(&dir, rules);
    let events = dir.join("events.ndjson");
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let out = dir.join("out");
    let args = ["replay", "--config", config.to_str().unwrap(), "--events", events.to_str().unwrap()];
    wholechild(&[&args[..], &["--out", out.to_str().unwrap(), "--alerts"]].concat());
    let text = std::fs::read_to_string(out.join("alerts.ndjson")).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// (day, rule, student, change, recipient) of each alert line.
fn summary(alerts: &[Value]) -> Vec<(String, String, String, String, Option<String>)> {
    alerts
        .iter()
        .map(|alert| {
            let text = |key: &str| alert[key].as_str().unwrap().to_string();
            (text("day"), text("rule"), text("entity"), text("change"), alert["recipient"].as_str().map(String::from))
        })
        .collect()
}

fn change(
    day: &str,
    rule: &str,
    student: &str,
    kind: &str,
    to: Option<&str>,
) -> (String, String, String, String, Option<String>) {
    (day.into(), rule.into(), student.into(), kind.into(), to.map(String::from))
}

/// A day's attendance for student `s1` ("A" absent, "P" present), one record each.
fn days_of(days: &[String], marks: &str) -> Vec<String> {
    days.iter()
        .zip(marks.chars())
        .map(|(day, mark)| {
            let status = if mark == 'A' { "absent_unexcused" } else { "present" };
            attendance(&format!("a-{day}"), "s1", day, status)
        })
        .collect()
}

#[test]
fn an_alert_fires_only_after_its_condition_holds_for_days() {
    let rules = "[[rules]]\nid = \"absent_spell\"\ncondition = \"days_absent_30 >= 2\"\nfor_days = 3\n";
    let days = school_days(8);
    let mut lines = vec![SCHOOL.to_string(), enrollment("s1", &days[0]), caseload("c1", "s1", "t1", &days[0], None)];
    // Absent on days 1 and 2: the condition holds from day 2; the third day it holds is day 4.
    lines.extend(days_of(&days, "AAPPPPPP"));
    let alerts = backtest("for-days", rules, &lines);
    assert_eq!(summary(&alerts), [change(&days[3], "absent_spell", "s1", "fired", Some("t1"))]);
    let evidence = &alerts[0]["evidence"];
    assert_eq!(evidence["indicators"]["days_absent_30"], 2);
    assert_eq!(evidence["absence_dates"], serde_json::json!([days[0], days[1]]));
    assert_eq!(evidence["thresholds"][0]["margin"], 0.0);
}

#[test]
fn an_exit_condition_keeps_a_rate_hovering_at_the_threshold_from_flapping() {
    // Absent on days 1, 2 and 22: the rate is below 90% until day 20 (exactly 90%),
    // 90.5% on day 21, below again on day 22, and 92.1% on day 38.
    let mut marks = String::from("AA");
    marks.push_str(&"P".repeat(19));
    marks.push('A');
    marks.push_str(&"P".repeat(18));
    let days = school_days(marks.len());
    let mut lines = vec![SCHOOL.to_string(), enrollment("s1", &days[0])];
    lines.extend(days_of(&days, &marks));

    let with_exit =
        "[[rules]]\nid = \"low\"\ncondition = \"attendance_rate < 0.9\"\nexit = \"attendance_rate >= 0.92\"\n";
    let alerts = backtest("no-flap", with_exit, &lines);
    assert_eq!(
        summary(&alerts),
        [change(&days[0], "low", "s1", "fired", None), change(&days[37], "low", "s1", "resolved", None)]
    );

    // Without the exit condition the same days flap: resolved on day 20, fired again on 22.
    let without = "[[rules]]\nid = \"low\"\ncondition = \"attendance_rate < 0.9\"\n";
    let alerts = backtest("flap", without, &lines);
    let kinds: Vec<(String, String)> = summary(&alerts).into_iter().map(|(day, _, _, kind, _)| (day, kind)).collect();
    assert_eq!(
        kinds,
        [
            (days[0].clone(), "fired".into()),
            (days[19].clone(), "resolved".into()),
            (days[21].clone(), "fired".into()),
            (days[29].clone(), "resolved".into())
        ]
    );
}

#[test]
fn a_correction_withdraws_the_alert_it_raised_and_says_so() {
    let days = school_days(6);
    let mut lines = vec![
        SCHOOL.to_string(),
        enrollment("s1", &days[0]),
        program("s1", "homeless", &days[0]),
        caseload("c1", "s1", "t1", &days[0], None),
    ];
    lines.extend(days_of(&days[..3], "AAA"));
    // Day 4: the attendance office recodes day 2's absence as present (same id).
    lines.push(attendance("x", "s1", &days[3], "present"));
    lines.push(attendance(&format!("a-{}", days[1]), "s1", &days[1], "present"));
    let rules = config::DEFAULT_RULES_TOML;
    let alerts = backtest("withdrawn", rules, &lines);
    assert_eq!(
        summary(&alerts),
        [
            change(&days[2], "vulnerable_absences", "s1", "fired", Some("t1")),
            change(&days[3], "vulnerable_absences", "s1", "withdrawn", Some("t1")),
        ]
    );
    assert_eq!(alerts[0]["evidence"]["absence_dates"], serde_json::json!([days[0], days[1], days[2]]));
    let note = alerts[1]["evidence"]["note"].as_str().unwrap();
    assert!(note.starts_with("raised on data since corrected"), "{note}");
}

#[test]
fn an_alert_resolves_when_the_data_moves_on() {
    let days = school_days(6);
    let mut lines = vec![SCHOOL.to_string(), enrollment("s1", &days[0]), program("s1", "foster_youth", &days[0])];
    lines.extend(days_of(&days, "AAAPPP"));
    let alerts = backtest("resolved", config::DEFAULT_RULES_TOML, &lines);
    assert_eq!(
        summary(&alerts),
        [
            change(&days[2], "vulnerable_absences", "s1", "fired", None),
            change(&days[3], "vulnerable_absences", "s1", "resolved", None),
        ]
    );
}

#[test]
fn an_open_alert_follows_a_caseload_reassignment() {
    let days = school_days(6);
    let mut lines = vec![
        SCHOOL.to_string(),
        enrollment("s1", &days[0]),
        caseload("c1", "s1", "t1", &days[0], Some(&days[3])),
        caseload("c2", "s1", "t2", &days[3], None),
        attendance("x0", "s1", &days[0], "present"),
        suspension("d1", "s1", &days[1]),
    ];
    lines.extend(days_of(&days[2..], "PPPP"));
    let alerts = backtest("rerouted", config::DEFAULT_RULES_TOML, &lines);
    assert_eq!(
        summary(&alerts),
        [
            change(&days[1], "suspension", "s1", "fired", Some("t1")),
            change(&days[3], "suspension", "s1", "rerouted", Some("t2")),
        ]
    );
    assert_eq!(alerts[1]["evidence"]["previous_recipient"], "t1");
    assert_eq!(alerts[0]["evidence"]["incidents"][0]["action"], "out_of_school_suspension");
}

#[test]
fn the_backtest_is_the_same_for_every_worker_count_and_counts_load_per_week() {
    let dir = scratch("alert-workers");
    let events = dir.join("events.ndjson");
    let args = ["generate", "--students", "400", "--schools", "4", "--days", "60", "--seed", "3"];
    wholechild(&[&args[..], &["--out", events.to_str().unwrap()]].concat());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/example.toml");
    let mut outputs = Vec::new();
    for workers in ["1", "3"] {
        let out = dir.join(format!("out-{workers}"));
        let args =
            ["replay", "--config", config, "--events", events.to_str().unwrap(), "--alerts", "--workers", workers];
        wholechild(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        outputs.push((
            std::fs::read_to_string(out.join("alerts.ndjson")).unwrap(),
            std::fs::read_to_string(out.join("alert_load.ndjson")).unwrap(),
        ));
    }
    assert_eq!(outputs[0], outputs[1]);
    let (alerts, load) = &outputs[0];
    let fired = alerts.lines().filter(|line| line.contains("\"change\":\"fired\"")).count() as u64;
    assert!(fired > 10, "{fired} alerts fired in 60 days of 400 students");
    let counted: u64 =
        load.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["fired"].as_u64().unwrap()).sum();
    assert_eq!(counted, fired);
}

fn staff(id: &str, role: &str, schools: &str, local_district: Option<&str>) -> String {
    let district = local_district.map_or(String::new(), |district| format!(r#","local_district":"{district}""#));
    format!(
        r#"{{"type":"staff","id":"{id}","source":"hr","name":"N","email":"{id}@district.example","role":"{role}","schools":[{schools}]{district}}}"#
    )
}

fn section(id: &str, enrolled: u32) -> String {
    format!(
        r#"{{"type":"section","id":"{id}","source":"sis","school_id":"k1","course_id":"m7","subject":"math","enrolled":{enrolled}}}"#
    )
}

#[test]
fn an_oversized_section_goes_to_the_principal_and_resolves_when_corrected() {
    let days = school_days(3);
    let lines = vec![
        SCHOOL.to_string(),
        staff("p1", "principal", r#""k1""#, None),
        enrollment("s1", &days[0]),
        attendance("a0", "s1", &days[0], "present"),
        section("sec1", 41),
        attendance("a1", "s1", &days[1], "present"),
        section("sec1", 38),
        attendance("a2", "s1", &days[2], "present"),
    ];
    let alerts = backtest("section", config::DEFAULT_RULES_TOML, &lines);
    assert_eq!(
        summary(&alerts),
        [
            change(&days[0], "oversized_section", "sec1", "fired", Some("p1")),
            change(&days[1], "oversized_section", "sec1", "resolved", Some("p1")),
        ]
    );
    assert_eq!(alerts[0]["evidence"]["indicators"]["enrolled"], 41);
    assert_eq!(alerts[0]["evidence"]["indicators"]["cap"], 39);
}

#[test]
fn a_rise_in_a_schools_chronic_absence_goes_to_its_local_district() {
    // Ten students; s1-s3 absent on days 1-4 (chronic on days 31-40), s4-s7 absent on days
    // 36-41 (chronic from day 39). The rate is 30 % on days 31-38, 70 % on 39-40 and 40 %
    // from day 41: 20 days after day 31 (day 51) it has risen by 10 points; on day 59 the
    // rate 20 days before is day 39's 70 %, and the rise is gone.
    let days = school_days(60);
    let mut lines = vec![SCHOOL.to_string(), staff("d1", "district_admin", "", Some("ld1"))];
    for student in 0..10 {
        lines.push(enrollment(&format!("s{student}"), &days[0]));
    }
    for (index, day) in days.iter().enumerate() {
        lines.push(attendance(&format!("p-{day}"), "s0", day, "present"));
        let absent: &[u32] = match index {
            0..=3 => &[1, 2, 3],
            35..=40 => &[4, 5, 6, 7],
            _ => &[],
        };
        for student in absent {
            lines.push(attendance(&format!("a-{student}-{day}"), &format!("s{student}"), day, "absent_excused"));
        }
    }
    let alerts = backtest("school-rise", config::DEFAULT_RULES_TOML, &lines);
    let rises: Vec<&Value> = alerts.iter().filter(|alert| alert["rule"] == "school_chronic_rise").collect();
    let summary = summary(&rises.iter().map(|alert| (*alert).clone()).collect::<Vec<_>>());
    assert_eq!(
        summary,
        [
            change(&days[50], "school_chronic_rise", "k1", "fired", Some("d1")),
            change(&days[58], "school_chronic_rise", "k1", "resolved", Some("d1")),
        ]
    );
    let indicators = &rises[0]["evidence"]["indicators"];
    assert_eq!(
        (indicators["chronic_absence_rate"].as_f64(), indicators["chronic_absence_rate_20_days_ago"].as_f64()),
        (Some(0.4), Some(0.3))
    );
}
