//! The oracle: a deliberately naive recomputation of the indicator definitions of
//! `/work/shared/spec/metrics.md` (version 1) from the canonical events of
//! `/work/shared/spec/events.md`.
//!
//! Design: nothing here is incremental or clever. `compute` first resolves corrections and
//! deletions into the set of records in force, then, for every student, walks every
//! calendar day and asks the plain questions of the spec ("is the student enrolled on d?",
//! "which school is the student's school on d?", "is d an absence?"). Every threshold is
//! compared with integer arithmetic. `diff` compares the engine's rows with the oracle's
//! field by field (numbers with a tolerance of 1e-9, everything else exactly).
#![allow(dead_code)]

use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------
// Parameters and results
// ---------------------------------------------------------------------------------------

pub struct OracleParams {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub holidays: Vec<NaiveDate>,
    pub chronic_min_days_enrolled: i64,
    pub chronic_absence_min_percent: f64,
    pub window_instructional_days: usize,
    pub attendance_min_days_enrolled: i64,
    pub attendance_rate_below_percent: f64,
    pub behavior_min_suspensions: i64,
    pub behavior_min_incidents_30: i64,
    pub course_min_failing_core: i64,
    pub course_min_failing_marks: i64,
    /// Applies to subjects `ela`, `math` at school levels `middle`, `high`.
    pub section_cap: i64,
}

impl OracleParams {
    pub fn defaults(first_day: NaiveDate, last_day: NaiveDate, holidays: Vec<NaiveDate>) -> Self {
        OracleParams {
            first_day,
            last_day,
            holidays,
            chronic_min_days_enrolled: 31,
            chronic_absence_min_percent: 10.0,
            window_instructional_days: 30,
            attendance_min_days_enrolled: 10,
            attendance_rate_below_percent: 90.0,
            behavior_min_suspensions: 1,
            behavior_min_incidents_30: 2,
            course_min_failing_core: 1,
            course_min_failing_marks: 2,
            section_cap: 39,
        }
    }
}

pub struct Expected {
    /// Key: student_id.
    pub students: BTreeMap<String, Value>,
    /// Key: school_id.
    pub schools: BTreeMap<String, Value>,
    /// Key: (level, id).
    pub rollups: BTreeMap<(String, String), Value>,
}

// ---------------------------------------------------------------------------------------
// Small field helpers
// ---------------------------------------------------------------------------------------

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A string field; `None` when missing or null.
fn opt_str(rec: &Value, field: &str) -> Option<String> {
    match rec.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => Some(text(v)),
    }
}

fn req_str(rec: &Value, field: &str) -> String {
    opt_str(rec, field).unwrap_or_else(|| panic!("oracle: record lacks `{field}`: {rec}"))
}

fn parse_date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("oracle: bad date {s:?}: {e}"))
}

/// A date field; `None` when missing or null.
fn opt_date(rec: &Value, field: &str) -> Option<NaiveDate> {
    opt_str(rec, field).map(|s| parse_date(&s))
}

fn req_date(rec: &Value, field: &str) -> NaiveDate {
    parse_date(&req_str(rec, field))
}

fn num_f64(rec: &Value, field: &str) -> f64 {
    rec.get(field).and_then(Value::as_f64).unwrap_or_else(|| panic!("oracle: record lacks number `{field}`: {rec}"))
}

/// round(percent * 100): a percent with up to two decimals as an integer of hundredths.
fn hundredths(percent: f64) -> i128 {
    (percent * 100.0).round() as i128
}

// ---------------------------------------------------------------------------------------
// Exact decimal sums (for suspension `days`, compared against 1)
// ---------------------------------------------------------------------------------------

/// value = m / 10^scale
#[derive(Clone, Copy, Debug)]
struct Dec {
    m: i128,
    scale: u32,
}

impl Dec {
    fn zero() -> Dec {
        Dec { m: 0, scale: 0 }
    }

    /// The decimal a JSON number is written as (via the shortest round-trip form of its
    /// f64 value). `None` if it does not fit.
    fn from_json(v: &Value) -> Option<Dec> {
        if let Some(i) = v.as_i64() {
            return Some(Dec { m: i as i128, scale: 0 });
        }
        let f = v.as_f64()?;
        if !f.is_finite() {
            return None;
        }
        // Display for f64 never uses an exponent.
        let s = format!("{f}");
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let (int_part, frac_part) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int_part.len() + frac_part.len() > 36 {
            return None;
        }
        let digits = format!("{int_part}{frac_part}");
        let m: i128 = digits.parse().ok()?;
        Some(Dec { m: if neg { -m } else { m }, scale: frac_part.len() as u32 })
    }

    fn rescale(self, scale: u32) -> Option<Dec> {
        let factor = 10i128.checked_pow(scale - self.scale)?;
        Some(Dec { m: self.m.checked_mul(factor)?, scale })
    }

    fn add(self, other: Dec) -> Option<Dec> {
        let scale = self.scale.max(other.scale);
        let a = self.rescale(scale)?;
        let b = other.rescale(scale)?;
        Some(Dec { m: a.m.checked_add(b.m)?, scale })
    }

    /// self >= n
    fn at_least(self, n: i128) -> Option<bool> {
        let rhs = n.checked_mul(10i128.checked_pow(self.scale)?)?;
        Some(self.m >= rhs)
    }
}

/// Does the sum of these JSON numbers reach `n`? Exact when possible, f64 otherwise.
fn sum_at_least(values: &[&Value], n: i64) -> bool {
    let mut exact = Some(Dec::zero());
    for v in values {
        exact = match (exact, Dec::from_json(v)) {
            (Some(acc), Some(d)) => acc.add(d),
            _ => None,
        };
    }
    if let Some(ok) = exact.and_then(|d| d.at_least(n as i128)) {
        return ok;
    }
    let total: f64 = values.iter().map(|v| v.as_f64().unwrap_or(0.0)).sum();
    total >= n as f64
}

// ---------------------------------------------------------------------------------------
// Records in force
// ---------------------------------------------------------------------------------------

/// Replays the records in arrival order: the last record per (`type`, `id`) is in force,
/// and `"deleted": true` withdraws the key (until a later record of the key brings it back).
fn records_in_force(records: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut in_force: BTreeMap<(String, String), Value> = BTreeMap::new();
    for rec in records {
        let key = (req_str(rec, "type"), req_str(rec, "id"));
        let deleted = rec.get("deleted").and_then(Value::as_bool) == Some(true);
        if deleted {
            in_force.remove(&key);
        } else {
            in_force.insert(key, rec.clone());
        }
    }
    in_force
}

fn of_type<'a>(in_force: &'a BTreeMap<(String, String), Value>, ty: &str) -> Vec<&'a Value> {
    in_force.iter().filter(|((t, _), _)| t == ty).map(|(_, v)| v).collect()
}

// ---------------------------------------------------------------------------------------
// Enrollments
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Enrollment {
    id: String,
    student: String,
    school: String,
    entry: NaiveDate,
    exit: Option<NaiveDate>,
}

impl Enrollment {
    fn covers(&self, d: NaiveDate) -> bool {
        self.entry <= d && self.exit.is_none_or(|x| d < x)
    }
}

/// The enrollment that decides the school on day d: among those covering d, the latest
/// entry_date, ties greatest id. `None` when the student is not enrolled on d.
fn winning_enrollment<'a>(enrs: &[&'a Enrollment], d: NaiveDate) -> Option<&'a Enrollment> {
    let mut best: Option<&'a Enrollment> = None;
    for e in enrs {
        if !e.covers(d) {
            continue;
        }
        best = match best {
            None => Some(e),
            Some(b) if (e.entry, &e.id) > (b.entry, &b.id) => Some(e),
            Some(b) => Some(b),
        };
    }
    best
}

fn school_on(enrs: &[&Enrollment], d: NaiveDate) -> Option<String> {
    winning_enrollment(enrs, d).map(|e| e.school.clone())
}

// ---------------------------------------------------------------------------------------
// compute
// ---------------------------------------------------------------------------------------

const ABSENCE_STATUSES: [&str; 3] = ["absent_excused", "absent_unexcused", "suspended"];
const SUSPENSION_ACTIONS: [&str; 2] = ["in_school_suspension", "out_of_school_suspension"];

/// Per-school counts; rollups are sums of these, so their ratios pool the student-school
/// years of their schools.
#[derive(Clone, Debug, Default)]
struct SchoolCounts {
    enrolled: i64,
    cumulative_enrollment: i64,
    chronic_eligible: i64,
    chronic: i64,
    suspended: i64,
    tiers: [i64; 3],
    oversized_sections: i64,
}

impl SchoolCounts {
    fn add(&mut self, o: &SchoolCounts) {
        self.enrolled += o.enrolled;
        self.cumulative_enrollment += o.cumulative_enrollment;
        self.chronic_eligible += o.chronic_eligible;
        self.chronic += o.chronic;
        self.suspended += o.suspended;
        for k in 0..3 {
            self.tiers[k] += o.tiers[k];
        }
        self.oversized_sections += o.oversized_sections;
    }

    fn indicators(&self) -> Vec<(&'static str, Value)> {
        let chronic_rate = if self.chronic_eligible == 0 {
            Value::Null
        } else {
            json!(self.chronic as f64 / self.chronic_eligible as f64)
        };
        let suspension_rate = if self.cumulative_enrollment == 0 {
            Value::Null
        } else {
            json!(self.suspended as f64 / self.cumulative_enrollment as f64)
        };
        vec![
            ("enrolled", json!(self.enrolled)),
            ("cumulative_enrollment", json!(self.cumulative_enrollment)),
            ("chronic_absence_rate", chronic_rate),
            ("suspension_rate", suspension_rate),
            ("tier_1", json!(self.tiers[0])),
            ("tier_2", json!(self.tiers[1])),
            ("tier_3", json!(self.tiers[2])),
            ("oversized_sections", json!(self.oversized_sections)),
        ]
    }
}

fn is_chronic(enrolled: i64, absent: i64, p: &OracleParams) -> bool {
    enrolled >= p.chronic_min_days_enrolled
        && (absent as i128) * 10000 >= hundredths(p.chronic_absence_min_percent) * (enrolled as i128)
}

pub fn compute(records: &[Value], params: &OracleParams, as_of: NaiveDate) -> Expected {
    let d_as_of = as_of;
    let in_force = records_in_force(records);

    // ---- Instructional days <= D, and the last-30-days window ----
    let holidays: BTreeSet<NaiveDate> = params.holidays.iter().copied().collect();
    let mut instructional: Vec<NaiveDate> = Vec::new();
    let mut day = params.first_day;
    while day <= params.last_day && day <= d_as_of {
        let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        if weekday && !holidays.contains(&day) {
            instructional.push(day);
        }
        day = day.succ_opt().unwrap();
    }
    let instructional_set: BTreeSet<NaiveDate> = instructional.iter().copied().collect();
    let window_days: Vec<NaiveDate> = {
        let n = instructional.len();
        let k = params.window_instructional_days.min(n);
        instructional[n - k..].to_vec()
    };
    // "within the last 30 days": window_start <= date <= D; nothing when there is no window.
    let window_start: Option<NaiveDate> = window_days.first().copied();
    let in_window = |date: NaiveDate| match window_start {
        Some(start) => start <= date && date <= d_as_of,
        None => false,
    };

    // ---- Records in force, by type ----
    let enrollments: Vec<Enrollment> = of_type(&in_force, "enrollment")
        .into_iter()
        .map(|r| Enrollment {
            id: req_str(r, "id"),
            student: req_str(r, "student_id"),
            school: req_str(r, "school_id"),
            entry: req_date(r, "entry_date"),
            exit: opt_date(r, "exit_date"),
        })
        .filter(|e| e.entry <= d_as_of)
        .collect();
    let attendance = of_type(&in_force, "attendance");
    let discipline: Vec<&Value> =
        of_type(&in_force, "discipline").into_iter().filter(|r| req_date(r, "date") <= d_as_of).collect();
    let grades: Vec<&Value> =
        of_type(&in_force, "grade").into_iter().filter(|r| req_date(r, "date") <= d_as_of).collect();
    let health: Vec<&Value> =
        of_type(&in_force, "health_visit").into_iter().filter(|r| req_date(r, "date") <= d_as_of).collect();
    let programs: Vec<&Value> =
        of_type(&in_force, "program").into_iter().filter(|r| req_date(r, "begin_date") <= d_as_of).collect();
    let caseloads: Vec<&Value> =
        of_type(&in_force, "caseload").into_iter().filter(|r| req_date(r, "begin_date") <= d_as_of).collect();
    let sections = of_type(&in_force, "section");
    let school_recs = of_type(&in_force, "school");

    // ---- Students: those with at least one enrollment with entry_date <= D ----
    let student_ids: BTreeSet<String> = enrollments.iter().map(|e| e.student.clone()).collect();

    let mut students: BTreeMap<String, Value> = BTreeMap::new();
    let mut student_tier: BTreeMap<String, i64> = BTreeMap::new();
    // (school, student) -> (days enrolled, days absent) for every student-school year.
    let mut ssys: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();

    for sid in &student_ids {
        let enrs: Vec<&Enrollment> = enrollments.iter().filter(|e| &e.student == sid).collect();

        // Calendar dates on which some attendance record of the student says absent.
        let absence_dates: BTreeSet<NaiveDate> = attendance
            .iter()
            .filter(|r| &req_str(r, "student_id") == sid)
            .filter(|r| ABSENCE_STATUSES.contains(&req_str(r, "status").as_str()))
            .map(|r| req_date(r, "date"))
            .collect();
        let enrolled_on = |d: NaiveDate| enrs.iter().any(|e| e.covers(d));
        let absent_on = |d: NaiveDate| enrolled_on(d) && absence_dates.contains(&d);

        // Attendance, whole year and window.
        let days_enrolled = instructional.iter().filter(|d| enrolled_on(**d)).count() as i64;
        let days_absent = instructional.iter().filter(|d| absent_on(**d)).count() as i64;
        let days_enrolled_30 = window_days.iter().filter(|d| enrolled_on(**d)).count() as i64;
        let days_absent_30 = window_days.iter().filter(|d| absent_on(**d)).count() as i64;
        let rate = |absent: i64, enrolled: i64| {
            if enrolled == 0 {
                Value::Null
            } else {
                json!(1.0 - absent as f64 / enrolled as f64)
            }
        };
        let chronically_absent = is_chronic(days_enrolled, days_absent, params);

        // Discipline.
        let my_discipline: Vec<&Value> =
            discipline.iter().copied().filter(|r| &req_str(r, "student_id") == sid).collect();
        let suspensions =
            my_discipline.iter().filter(|r| req_str(r, "action") == "out_of_school_suspension").count() as i64;
        let suspension_days: f64 = my_discipline
            .iter()
            .filter(|r| SUSPENSION_ACTIONS.contains(&req_str(r, "action").as_str()))
            .map(|r| num_f64(r, "days"))
            .sum();
        let incidents_30 = my_discipline.iter().filter(|r| in_window(req_date(r, "date"))).count() as i64;

        // Grades: current term = greatest term; per course the latest record.
        let my_grades: Vec<&Value> = grades.iter().copied().filter(|r| &req_str(r, "student_id") == sid).collect();
        let current_term: Option<String> = my_grades.iter().map(|r| req_str(r, "term")).max();
        let mut failing_marks = 0i64;
        let mut failing_core = 0i64;
        if let Some(term) = &current_term {
            let in_term: Vec<&Value> = my_grades.iter().copied().filter(|r| &req_str(r, "term") == term).collect();
            let courses: BTreeSet<String> = in_term.iter().map(|r| req_str(r, "course_id")).collect();
            for course in &courses {
                let latest = in_term
                    .iter()
                    .copied()
                    .filter(|r| &req_str(r, "course_id") == course)
                    .max_by_key(|r| (req_date(r, "date"), req_str(r, "id")))
                    .unwrap();
                if req_str(latest, "mark") == "F" {
                    failing_marks += 1;
                    let subject = req_str(latest, "subject");
                    if subject == "ela" || subject == "math" {
                        failing_core += 1;
                    }
                }
            }
        }

        // Health visits in the window.
        let health_visits_30 = health
            .iter()
            .filter(|r| &req_str(r, "student_id") == sid)
            .filter(|r| in_window(req_date(r, "date")))
            .count() as i64;

        // Programs and counselor active on D.
        let active_on_d =
            |r: &Value| req_date(r, "begin_date") <= d_as_of && opt_date(r, "end_date").is_none_or(|end| d_as_of < end);
        let my_programs: BTreeSet<String> = programs
            .iter()
            .filter(|r| &req_str(r, "student_id") == sid)
            .filter(|r| active_on_d(r))
            .map(|r| req_str(r, "program"))
            .collect();
        let counselor: Option<String> = caseloads
            .iter()
            .filter(|r| &req_str(r, "student_id") == sid)
            .filter(|r| req_str(r, "role") == "counselor")
            .filter(|r| active_on_d(r))
            .max_by_key(|r| (req_date(r, "begin_date"), req_str(r, "id")))
            .map(|r| req_str(r, "staff_id"));

        // School: the school on D if enrolled on D, else the latest entry_date <= D.
        let school: Option<String> = match school_on(&enrs, d_as_of) {
            Some(s) => Some(s),
            None => enrs.iter().max_by_key(|e| (e.entry, e.id.clone())).map(|e| e.school.clone()),
        };

        // Flags and tier (integer comparisons only).
        let attendance_flag = days_enrolled >= params.attendance_min_days_enrolled
            && ((days_enrolled - days_absent) as i128) * 10000
                < hundredths(params.attendance_rate_below_percent) * (days_enrolled as i128);
        let behavior_flag =
            suspensions >= params.behavior_min_suspensions || incidents_30 >= params.behavior_min_incidents_30;
        let course_flag =
            failing_core >= params.course_min_failing_core || failing_marks >= params.course_min_failing_marks;
        let flags = [attendance_flag, behavior_flag, course_flag].iter().filter(|f| **f).count() as i64;
        let tier = 1 + flags.min(2);
        student_tier.insert(sid.clone(), tier);

        students.insert(
            sid.clone(),
            json!({
                "student_id": sid,
                "days_enrolled": days_enrolled,
                "days_absent": days_absent,
                "attendance_rate": rate(days_absent, days_enrolled),
                "chronically_absent": chronically_absent,
                "days_enrolled_30": days_enrolled_30,
                "days_absent_30": days_absent_30,
                "attendance_rate_30": rate(days_absent_30, days_enrolled_30),
                "suspensions": suspensions,
                "suspension_days": suspension_days,
                "incidents_30": incidents_30,
                "failing_marks": failing_marks,
                "failing_core": failing_core,
                "health_visits_30": health_visits_30,
                "programs": my_programs.into_iter().collect::<Vec<_>>(),
                "counselor": counselor,
                "school": school,
                "attendance_flag": attendance_flag,
                "behavior_flag": behavior_flag,
                "course_flag": course_flag,
                "tier": tier,
            }),
        );

        // Student-school years: walk every calendar day from the earliest entry to D.
        let earliest = enrs.iter().map(|e| e.entry).min().unwrap();
        let mut d = earliest;
        while d <= d_as_of {
            if let Some(sch) = school_on(&enrs, d) {
                let entry = ssys.entry((sch, sid.clone())).or_insert((0, 0));
                if instructional_set.contains(&d) {
                    entry.0 += 1;
                    if absent_on(d) {
                        entry.1 += 1;
                    }
                }
            }
            d = d.succ_opt().unwrap();
        }
    }

    // ---- Schools ----
    let mut school_counts: BTreeMap<String, SchoolCounts> = BTreeMap::new();
    for rec in &school_recs {
        let school_id = req_str(rec, "id");
        let level = opt_str(rec, "level").unwrap_or_default();
        let mut c = SchoolCounts::default();

        // Enrolled on D, and their tiers.
        for sid in &student_ids {
            let enrs: Vec<&Enrollment> = enrollments.iter().filter(|e| &e.student == sid).collect();
            if school_on(&enrs, d_as_of).as_deref() == Some(school_id.as_str()) {
                c.enrolled += 1;
                let tier = student_tier[sid];
                c.tiers[(tier - 1) as usize] += 1;
            }
        }

        // Student-school years.
        for ((sch, sid), (enrolled, absent)) in &ssys {
            if sch != &school_id {
                continue;
            }
            c.cumulative_enrollment += 1;
            if *enrolled >= params.chronic_min_days_enrolled {
                c.chronic_eligible += 1;
                if is_chronic(*enrolled, *absent, params) {
                    c.chronic += 1;
                }
            }
            let days: Vec<&Value> = discipline
                .iter()
                .filter(|r| &req_str(r, "student_id") == sid)
                .filter(|r| req_str(r, "school_id") == school_id)
                .filter(|r| SUSPENSION_ACTIONS.contains(&req_str(r, "action").as_str()))
                .map(|r| r.get("days").unwrap_or(&Value::Null))
                .collect();
            if sum_at_least(&days, 1) {
                c.suspended += 1;
            }
        }

        // Oversized sections.
        if level == "middle" || level == "high" {
            for s in &sections {
                if req_str(s, "school_id") != school_id {
                    continue;
                }
                let subject = req_str(s, "subject");
                if subject != "ela" && subject != "math" {
                    continue;
                }
                let over = match s.get("enrolled") {
                    Some(v) if v.as_i64().is_some() => v.as_i64().unwrap() > params.section_cap,
                    Some(v) => v.as_f64().is_some_and(|f| f > params.section_cap as f64),
                    None => false,
                };
                if over {
                    c.oversized_sections += 1;
                }
            }
        }

        school_counts.insert(school_id, c);
    }

    let mut schools: BTreeMap<String, Value> = BTreeMap::new();
    for (school_id, c) in &school_counts {
        let mut row = serde_json::Map::new();
        row.insert("school_id".into(), json!(school_id));
        for (k, v) in c.indicators() {
            row.insert(k.into(), v);
        }
        schools.insert(school_id.clone(), Value::Object(row));
    }

    // ---- Rollups: sums of the member schools' counts ----
    let mut rollup_counts: BTreeMap<(String, String), SchoolCounts> = BTreeMap::new();
    // The district row exists even before any school record is in force.
    rollup_counts.insert(("district".to_string(), "district".to_string()), SchoolCounts::default());
    for rec in &school_recs {
        let school_id = req_str(rec, "id");
        let c = &school_counts[&school_id];
        let mut keys = vec![("district".to_string(), "district".to_string())];
        if let Some(community) = opt_str(rec, "community") {
            keys.push(("community".to_string(), community));
        }
        if let Some(ld) = opt_str(rec, "local_district") {
            keys.push(("local_district".to_string(), ld));
        }
        for key in keys {
            rollup_counts.entry(key).or_default().add(c);
        }
    }
    let mut rollups: BTreeMap<(String, String), Value> = BTreeMap::new();
    for ((level, id), c) in &rollup_counts {
        let mut row = serde_json::Map::new();
        row.insert("level".into(), json!(level));
        row.insert("id".into(), json!(id));
        for (k, v) in c.indicators() {
            row.insert(k.into(), v);
        }
        rollups.insert((level.clone(), id.clone()), Value::Object(row));
    }

    Expected { students, schools, rollups }
}

// ---------------------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------------------

const TOLERANCE: f64 = 1e-9;

fn diff_value(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            // Written so that NaN counts as a difference.
            let within = matches!(
                (x - y).abs().partial_cmp(&TOLERANCE),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            );
            if !within {
                out.push(format!("{path}: expected {expected}, engine {actual}"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_value(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: expected {x}, engine lacks the field")),
                    (None, Some(y)) => out.push(format!("{p}: unexpected field, engine {y}")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: expected {expected}, engine {actual}"));
            } else {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    diff_value(&format!("{path}[{i}]"), x, y, out);
                }
            }
        }
        (a, b) => {
            if a != b {
                out.push(format!("{path}: expected {expected}, engine {actual}"));
            }
        }
    }
}

fn diff_table<K: Ord + Clone + std::fmt::Debug>(
    table: &str,
    expected: &BTreeMap<K, Value>,
    actual_rows: &[Value],
    key_of: impl Fn(&Value) -> Option<K>,
    out: &mut Vec<String>,
) {
    let mut actual: BTreeMap<K, &Value> = BTreeMap::new();
    for row in actual_rows {
        match key_of(row) {
            None => out.push(format!("{table}: engine row without a key: {row}")),
            Some(k) => {
                if let std::collections::btree_map::Entry::Vacant(slot) = actual.entry(k.clone()) {
                    slot.insert(row);
                } else {
                    out.push(format!("{table} {k:?}: duplicate engine row: {row}"));
                }
            }
        }
    }
    for (k, exp) in expected {
        match actual.get(k) {
            None => out.push(format!("{table} {k:?}: missing engine row; expected {exp}")),
            Some(act) => diff_value(&format!("{table} {k:?}"), exp, act, out),
        }
    }
    for (k, act) in &actual {
        if !expected.contains_key(k) {
            out.push(format!("{table} {k:?}: extra engine row {act}"));
        }
    }
}

/// Compares engine output rows with the oracle's; returns human-readable differences
/// (empty = equal).
pub fn diff(expected: &Expected, students: &[Value], schools: &[Value], rollups: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let str_key = |field: &'static str| move |row: &Value| row.get(field).and_then(Value::as_str).map(str::to_string);
    diff_table("student", &expected.students, students, str_key("student_id"), &mut out);
    diff_table("school", &expected.schools, schools, str_key("school_id"), &mut out);
    diff_table(
        "rollup",
        &expected.rollups,
        rollups,
        |row: &Value| {
            let level = row.get("level")?.as_str()?.to_string();
            let id = row.get("id")?.as_str()?.to_string();
            Some((level, id))
        },
        &mut out,
    );
    out
}

// ---------------------------------------------------------------------------------------
// Self-checks of the oracle, worked by hand
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s)
    }

    /// 2025-09-01 is a Monday. No holidays unless a test adds them.
    fn params() -> OracleParams {
        OracleParams::defaults(d("2025-09-01"), d("2026-06-12"), vec![])
    }

    fn school(id: &str, level: &str, community: &str, ld: &str) -> Value {
        json!({"type": "school", "id": id, "source": "sis", "name": id, "level": level,
               "local_district": ld, "community": community, "region": "r1"})
    }

    fn enr(id: &str, student: &str, school: &str, entry: &str, exit: Option<&str>) -> Value {
        json!({"type": "enrollment", "id": id, "source": "sis", "student_id": student,
               "school_id": school, "grade": 7, "entry_date": entry, "exit_date": exit})
    }

    fn att(id: &str, student: &str, school: &str, date: &str, status: &str) -> Value {
        json!({"type": "attendance", "id": id, "source": "sis", "student_id": student,
               "school_id": school, "date": date, "status": status})
    }

    fn disc(id: &str, student: &str, school: &str, date: &str, action: &str, days: f64) -> Value {
        json!({"type": "discipline", "id": id, "source": "sis", "student_id": student,
               "school_id": school, "date": date, "behavior": "b1", "action": action, "days": days})
    }

    fn grade(id: &str, student: &str, term: &str, course: &str, subject: &str, mark: &str, date: &str) -> Value {
        json!({"type": "grade", "id": id, "source": "sis", "student_id": student, "school_id": "A",
               "term": term, "grading_period": "P1", "course_id": course, "subject": subject,
               "mark": mark, "date": date})
    }

    fn deleted(ty: &str, id: &str) -> Value {
        json!({"type": ty, "id": id, "source": "sis", "deleted": true})
    }

    fn get<'a>(row: &'a Value, k: &str) -> &'a Value {
        row.get(k).unwrap_or_else(|| panic!("no field {k} in {row}"))
    }

    /// The first n instructional days from 2025-09-01 (no holidays): Mon-Fri.
    fn weekdays_from_sep1(n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut day = d("2025-09-01");
        while out.len() < n {
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                out.push(day.format("%Y-%m-%d").to_string());
            }
            day = day.succ_opt().unwrap();
        }
        out
    }

    #[test]
    fn chronic_threshold_31_days() {
        // 31 instructional days from Mon 2025-09-01 end on Mon 2025-10-13 (6 weeks + 1 day).
        assert_eq!(weekdays_from_sep1(31).last().unwrap(), "2025-10-13");
        let as_of = d("2025-10-13");
        for (absences, chronic) in [(3, false), (4, true)] {
            let mut recs = vec![school("A", "middle", "c1", "ld1"), enr("e1", "s1", "A", "2025-09-01", None)];
            // Absences on Sep 2, 3, 4, 5 (as many as needed).
            for (i, day) in ["2025-09-02", "2025-09-03", "2025-09-04", "2025-09-05"].iter().take(absences).enumerate() {
                recs.push(att(&format!("a{i}"), "s1", "A", day, "absent_unexcused"));
            }
            let exp = compute(&recs, &params(), as_of);
            let s = &exp.students["s1"];
            assert_eq!(get(s, "days_enrolled"), &json!(31));
            assert_eq!(get(s, "days_absent"), &json!(absences));
            assert_eq!(get(s, "chronically_absent"), &json!(chronic));
            // Window: the last 30 instructional days are Sep 2 .. Oct 13, so all absences count.
            assert_eq!(get(s, "days_enrolled_30"), &json!(30));
            assert_eq!(get(s, "days_absent_30"), &json!(absences));
            let rate = get(s, "attendance_rate").as_f64().unwrap();
            assert!((rate - (1.0 - absences as f64 / 31.0)).abs() < 1e-12);
            // 28/31 = 0.903 and 27/31 = 0.871: the flag is set only with 4 absences.
            assert_eq!(get(s, "attendance_flag"), &json!(chronic));
            assert_eq!(get(s, "tier"), &json!(if chronic { 2 } else { 1 }));
            let sch = &exp.schools["A"];
            assert_eq!(get(sch, "chronic_absence_rate"), &json!(if chronic { 1.0 } else { 0.0 }));
            assert_eq!(get(sch, "enrolled"), &json!(1));
            assert_eq!(get(sch, "cumulative_enrollment"), &json!(1));
            assert_eq!(get(sch, "suspension_rate"), &json!(0.0));
        }
        // One day earlier: 30 days enrolled, not eligible, chronic rate null.
        let recs = vec![school("A", "middle", "c1", "ld1"), enr("e1", "s1", "A", "2025-09-01", None)];
        let exp = compute(&recs, &params(), d("2025-10-10"));
        assert_eq!(get(&exp.students["s1"], "days_enrolled"), &json!(30));
        assert_eq!(get(&exp.schools["A"], "chronic_absence_rate"), &Value::Null);
    }

    #[test]
    fn attendance_flag_exactly_90_percent_is_not_flagged() {
        // 10 days enrolled (Sep 1..12), 1 absence: rate 0.9, not < 0.9. 2 absences: flagged.
        let base = vec![enr("e1", "s1", "A", "2025-09-01", None), att("a1", "s1", "A", "2025-09-02", "absent_excused")];
        let exp = compute(&base, &params(), d("2025-09-12"));
        let s = &exp.students["s1"];
        assert_eq!(get(s, "days_enrolled"), &json!(10));
        assert_eq!(get(s, "attendance_flag"), &json!(false));
        let mut two = base.clone();
        two.push(att("a2", "s1", "A", "2025-09-03", "suspended"));
        let exp = compute(&two, &params(), d("2025-09-12"));
        assert_eq!(get(&exp.students["s1"], "attendance_flag"), &json!(true));
        // 9 days enrolled with 2 absences: too few days for the flag.
        let exp = compute(&two, &params(), d("2025-09-11"));
        assert_eq!(get(&exp.students["s1"], "days_enrolled"), &json!(9));
        assert_eq!(get(&exp.students["s1"], "attendance_flag"), &json!(false));
    }

    #[test]
    fn weekends_holidays_and_unenrolled_days_do_not_count() {
        let p = OracleParams::defaults(d("2025-09-01"), d("2026-06-12"), vec![d("2025-09-01")]);
        let recs = vec![
            enr("e1", "s1", "A", "2025-09-01", Some("2025-09-05")), // enrolled Sep 1..4
            att("a1", "s1", "A", "2025-09-01", "absent_unexcused"), // holiday
            att("a2", "s1", "A", "2025-09-06", "absent_unexcused"), // Saturday
            att("a3", "s1", "A", "2025-09-08", "absent_unexcused"), // not enrolled
            att("a4", "s1", "A", "2025-09-03", "tardy"),
            att("a5", "s1", "B", "2025-09-04", "present"),
            att("a6", "s1", "B", "2025-09-04", "absent_excused"), // any absence wins
        ];
        let exp = compute(&recs, &p, d("2025-09-10"));
        let s = &exp.students["s1"];
        assert_eq!(get(s, "days_enrolled"), &json!(3)); // Sep 2, 3, 4
        assert_eq!(get(s, "days_absent"), &json!(1)); // Sep 4
        assert_eq!(get(s, "school"), &json!("A")); // not enrolled on D: latest enrollment
                                                   // No school records: no school rows, no rollups.
        assert!(exp.schools.is_empty());
        assert_eq!(
            exp.rollups.keys().cloned().collect::<Vec<_>>(),
            vec![("district".to_string(), "district".to_string())]
        );
        // Before the first day: student row exists, nothing counted, window empty.
        let exp = compute(&[enr("e1", "s1", "A", "2025-08-20", None)], &p, d("2025-08-25"));
        let s = &exp.students["s1"];
        assert_eq!(get(s, "days_enrolled"), &json!(0));
        assert_eq!(get(s, "attendance_rate"), &Value::Null);
        assert_eq!(get(s, "attendance_rate_30"), &Value::Null);
        // Entry after D: no row.
        let exp = compute(&[enr("e1", "s1", "A", "2025-09-02", None)], &p, d("2025-09-01"));
        assert!(exp.students.is_empty());
    }

    #[test]
    fn transfer_splits_student_school_years() {
        // A: Sep 1..12 (exit Sep 15) = 10 days, B: Sep 15..19 = 5 days.
        let recs = vec![
            school("A", "middle", "c1", "ld1"),
            school("B", "high", "c1", "ld2"),
            school("C", "elementary", "c2", "ld2"),
            enr("e1", "s1", "A", "2025-09-01", Some("2025-09-15")),
            enr("e2", "s1", "B", "2025-09-15", None),
            att("a1", "s1", "A", "2025-09-03", "absent_unexcused"),
            att("a2", "s1", "A", "2025-09-16", "absent_unexcused"), // counted at B
            disc("d1", "s1", "A", "2025-09-04", "in_school_suspension", 0.5),
            disc("d2", "s1", "A", "2025-09-05", "out_of_school_suspension", 0.5),
            disc("d3", "s1", "B", "2025-09-16", "in_school_suspension", 0.5),
        ];
        let exp = compute(&recs, &params(), d("2025-09-19"));
        let s = &exp.students["s1"];
        assert_eq!(get(s, "days_enrolled"), &json!(15));
        assert_eq!(get(s, "days_absent"), &json!(2));
        assert_eq!(get(s, "school"), &json!("B"));
        assert_eq!(get(s, "suspensions"), &json!(1));
        assert_eq!(get(s, "suspension_days"), &json!(1.5));
        assert_eq!(get(s, "incidents_30"), &json!(3));
        assert_eq!(get(s, "behavior_flag"), &json!(true));

        let a = &exp.schools["A"];
        assert_eq!(get(a, "enrolled"), &json!(0));
        assert_eq!(get(a, "cumulative_enrollment"), &json!(1));
        assert_eq!(get(a, "suspension_rate"), &json!(1.0)); // 0.5 + 0.5 >= 1 at A
        assert_eq!(get(a, "tier_3"), &json!(0));
        let b = &exp.schools["B"];
        assert_eq!(get(b, "enrolled"), &json!(1));
        assert_eq!(get(b, "cumulative_enrollment"), &json!(1));
        assert_eq!(get(b, "suspension_rate"), &json!(0.0)); // only 0.5 at B
                                                            // Attendance (13/15 < 0.9) and behavior flags: tier 3.
        assert_eq!(get(s, "attendance_flag"), &json!(true));
        assert_eq!(get(s, "tier"), &json!(3));
        assert_eq!(get(b, "tier_3"), &json!(1));
        assert_eq!(get(b, "tier_1"), &json!(0));
        let c = &exp.schools["C"];
        assert_eq!(get(c, "cumulative_enrollment"), &json!(0));
        assert_eq!(get(c, "suspension_rate"), &Value::Null);
        assert_eq!(get(c, "chronic_absence_rate"), &Value::Null);

        let c1 = &exp.rollups[&("community".to_string(), "c1".to_string())];
        assert_eq!(get(c1, "cumulative_enrollment"), &json!(2));
        assert_eq!(get(c1, "enrolled"), &json!(1));
        assert_eq!(get(c1, "suspension_rate"), &json!(0.5));
        let ld2 = &exp.rollups[&("local_district".to_string(), "ld2".to_string())];
        assert_eq!(get(ld2, "cumulative_enrollment"), &json!(1));
        assert_eq!(get(ld2, "suspension_rate"), &json!(0.0));
        let dist = &exp.rollups[&("district".to_string(), "district".to_string())];
        assert_eq!(get(dist, "cumulative_enrollment"), &json!(2));
        assert_eq!(get(dist, "tier_3"), &json!(1));
        assert_eq!(exp.rollups.len(), 5); // district, c1, c2, ld1, ld2
    }

    #[test]
    fn school_chronic_rate_uses_only_days_at_that_school() {
        // s1 at A for 31 days with 4 absences, then to B: chronic at A.
        // s2 at A for 31 days with 3 absences: not chronic. s3 at A 5 days only: not eligible.
        let days = weekdays_from_sep1(40);
        let exit = days[31].clone(); // first day after the 31st
        let mut recs = vec![
            school("A", "middle", "c1", "ld1"),
            school("B", "middle", "c1", "ld1"),
            enr("e1", "s1", "A", "2025-09-01", Some(&exit)),
            enr("e2", "s1", "B", &exit, None),
            enr("e3", "s2", "A", "2025-09-01", None),
            enr("e4", "s3", "A", "2025-09-01", Some("2025-09-08")),
        ];
        for (i, day) in days.iter().enumerate().take(4) {
            recs.push(att(&format!("s1a{i}"), "s1", "A", day, "absent_unexcused"));
        }
        for (i, day) in days.iter().enumerate().take(3) {
            recs.push(att(&format!("s2a{i}"), "s2", "A", day, "absent_unexcused"));
        }
        let exp = compute(&recs, &params(), d(&days[39]));
        let a = &exp.schools["A"];
        assert_eq!(get(a, "cumulative_enrollment"), &json!(3));
        assert_eq!(get(a, "enrolled"), &json!(1)); // s2
        assert_eq!(get(a, "chronic_absence_rate"), &json!(0.5));
        let b = &exp.schools["B"];
        assert_eq!(get(b, "cumulative_enrollment"), &json!(1));
        assert_eq!(get(b, "chronic_absence_rate"), &Value::Null); // 9 days at B
                                                                  // s2 overall: 40 days, 3 absences: not chronic; s1 overall 40 days, 4 absences: 400 >= 400.
        assert_eq!(get(&exp.students["s1"], "chronically_absent"), &json!(true));
        assert_eq!(get(&exp.students["s2"], "chronically_absent"), &json!(false));
        let dist = &exp.rollups[&("district".to_string(), "district".to_string())];
        assert_eq!(get(dist, "chronic_absence_rate"), &json!(0.5)); // pooled: 1 of 2 eligible SSYs
        assert_eq!(get(dist, "cumulative_enrollment"), &json!(4));
    }

    #[test]
    fn overlapping_enrollments_latest_entry_wins() {
        let recs = vec![
            school("A", "middle", "c1", "ld1"),
            school("B", "middle", "c1", "ld1"),
            enr("e1", "s1", "A", "2025-09-01", None),
            enr("e2", "s1", "B", "2025-09-08", None),
            // Same entry date as e2: the greater id ("e3" > "e2") wins from Sep 8.
            enr("e3", "s1", "A", "2025-09-08", None),
        ];
        let exp = compute(&recs, &params(), d("2025-09-12"));
        assert_eq!(get(&exp.students["s1"], "school"), &json!("A"));
        assert_eq!(get(&exp.students["s1"], "days_enrolled"), &json!(10));
        assert_eq!(get(&exp.schools["A"], "cumulative_enrollment"), &json!(1));
        assert_eq!(get(&exp.schools["B"], "cumulative_enrollment"), &json!(0));
        // Without e3, B wins from Sep 8: two SSYs.
        let exp = compute(&recs[..4], &params(), d("2025-09-12"));
        assert_eq!(get(&exp.students["s1"], "school"), &json!("B"));
        assert_eq!(get(&exp.schools["A"], "cumulative_enrollment"), &json!(1));
        assert_eq!(get(&exp.schools["B"], "cumulative_enrollment"), &json!(1));
        assert_eq!(get(&exp.schools["A"], "enrolled"), &json!(0));
        assert_eq!(get(&exp.schools["B"], "enrolled"), &json!(1));
        // A weekend-only stay still makes an SSY: C from Sat Sep 6, exit Mon Sep 8.
        let mut recs2 = recs[..2].to_vec();
        recs2.push(school("C", "middle", "c1", "ld1"));
        recs2.push(enr("e9", "s1", "C", "2025-09-06", Some("2025-09-08")));
        let exp = compute(&recs2, &params(), d("2025-09-12"));
        assert_eq!(get(&exp.schools["C"], "cumulative_enrollment"), &json!(1));
        assert_eq!(get(&exp.schools["A"], "cumulative_enrollment"), &json!(0));
        assert_eq!(get(&exp.students["s1"], "days_enrolled"), &json!(0));
        assert_eq!(get(&exp.students["s1"], "school"), &json!("C"));
    }

    #[test]
    fn corrections_and_deletions() {
        let mut recs = vec![
            school("A", "middle", "c1", "ld1"),
            enr("e1", "s1", "A", "2025-09-01", None),
            att("a1", "s1", "A", "2025-09-03", "absent_unexcused"),
        ];
        let as_of = d("2025-09-12");
        assert_eq!(get(&compute(&recs, &params(), as_of).students["s1"], "days_absent"), &json!(1));
        // Correction: a1 is now present.
        recs.push(att("a1", "s1", "A", "2025-09-03", "present"));
        assert_eq!(get(&compute(&recs, &params(), as_of).students["s1"], "days_absent"), &json!(0));
        // Correction back to an absence, on another day.
        recs.push(att("a1", "s1", "A", "2025-09-04", "absent_excused"));
        assert_eq!(get(&compute(&recs, &params(), as_of).students["s1"], "days_absent"), &json!(1));
        // Deleting the attendance record.
        recs.push(deleted("attendance", "a1"));
        assert_eq!(get(&compute(&recs, &params(), as_of).students["s1"], "days_absent"), &json!(0));
        // Deleting the enrollment removes the student and empties the school.
        recs.push(deleted("enrollment", "e1"));
        let exp = compute(&recs, &params(), as_of);
        assert!(exp.students.is_empty());
        assert_eq!(get(&exp.schools["A"], "cumulative_enrollment"), &json!(0));
        // A later record of the key brings it back (with a later entry date).
        recs.push(enr("e1", "s1", "A", "2025-09-08", None));
        let exp = compute(&recs, &params(), as_of);
        assert_eq!(get(&exp.students["s1"], "days_enrolled"), &json!(5));
        // Deleting the school removes its row and every rollup.
        recs.push(deleted("school", "A"));
        let exp = compute(&recs, &params(), as_of);
        assert!(exp.schools.is_empty());
        assert_eq!(
            exp.rollups.keys().cloned().collect::<Vec<_>>(),
            vec![("district".to_string(), "district".to_string())]
        );
        assert_eq!(get(&exp.students["s1"], "school"), &json!("A"));
    }

    #[test]
    fn grades_current_term_and_latest_mark() {
        let recs = vec![
            enr("e1", "s1", "A", "2025-09-01", None),
            grade("g1", "s1", "2025-26-S1", "m1", "math", "F", "2025-09-10"),
            grade("g2", "s1", "2025-26-S1", "m1", "math", "C", "2025-09-20"), // later: not F
            grade("g3", "s1", "2025-26-S1", "e1", "ela", "F", "2025-09-10"),
            grade("g4", "s1", "2025-26-S1", "e1", "ela", "B", "2025-09-10"), // same date, greater id
            grade("g5", "s1", "2025-26-S1", "sc", "science", "F", "2025-09-11"),
            grade("g6", "s1", "2025-26-S1", "ss", "social_studies", "F", "2025-09-11"),
            grade("g7", "s1", "2025-26-S2", "m2", "math", "F", "2025-10-20"), // future term, after D
        ];
        let exp = compute(&recs, &params(), d("2025-09-15"));
        let s = &exp.students["s1"];
        // m1: g1 F (g2 is after D); e1: g4 B; sc F; ss F.
        assert_eq!(get(s, "failing_marks"), &json!(3));
        assert_eq!(get(s, "failing_core"), &json!(1));
        assert_eq!(get(s, "course_flag"), &json!(true));
        let exp = compute(&recs, &params(), d("2025-09-25"));
        let s = &exp.students["s1"];
        assert_eq!(get(s, "failing_marks"), &json!(2));
        assert_eq!(get(s, "failing_core"), &json!(0));
        assert_eq!(get(s, "course_flag"), &json!(true));
        // In S2 only m2 counts.
        let exp = compute(&recs, &params(), d("2025-10-20"));
        let s = &exp.students["s1"];
        assert_eq!(get(s, "failing_marks"), &json!(1));
        assert_eq!(get(s, "failing_core"), &json!(1));
    }

    #[test]
    fn window_programs_counselor_and_tier() {
        // 40 instructional days: Sep 1 .. Oct 24. The window is the last 30: Sep 15 .. Oct 24.
        let days = weekdays_from_sep1(40);
        assert_eq!(days[10], "2025-09-15");
        let as_of = d(&days[39]);
        let recs = vec![
            enr("e1", "s1", "A", "2025-09-01", None),
            att("a1", "s1", "A", "2025-09-12", "absent_unexcused"), // before the window
            att("a2", "s1", "A", "2025-09-15", "absent_unexcused"), // first window day
            disc("d1", "s1", "A", "2025-09-14", "referral", 0.0),   // Sunday before the window
            disc("d2", "s1", "A", "2025-09-15", "referral", 0.0),
            disc("d3", "s1", "A", "2025-10-25", "referral", 0.0), // after D
            json!({"type": "health_visit", "id": "h1", "source": "nurse", "student_id": "s1",
                   "school_id": "A", "date": "2025-10-18", "reason": "illness"}), // a Saturday in window
            json!({"type": "program", "id": "p1", "source": "sis", "student_id": "s1",
                   "program": "low_income", "begin_date": "2025-09-01", "end_date": null}),
            json!({"type": "program", "id": "p2", "source": "sis", "student_id": "s1",
                   "program": "english_learner", "begin_date": "2025-09-01", "end_date": days[39]}),
            json!({"type": "program", "id": "p3", "source": "sis", "student_id": "s1",
                   "program": "homeless", "begin_date": "2025-09-01", "end_date": null}),
            json!({"type": "program", "id": "p4", "source": "sis", "student_id": "s1",
                   "program": "homeless", "begin_date": "2025-09-02", "end_date": null}),
            json!({"type": "caseload", "id": "k1", "source": "sis", "student_id": "s1",
                   "staff_id": "t1", "role": "counselor", "begin_date": "2025-09-01", "end_date": null}),
            json!({"type": "caseload", "id": "k2", "source": "sis", "student_id": "s1",
                   "staff_id": "t2", "role": "counselor", "begin_date": "2025-09-10", "end_date": null}),
            json!({"type": "caseload", "id": "k3", "source": "sis", "student_id": "s1",
                   "staff_id": "t3", "role": "psw", "begin_date": "2025-09-20", "end_date": null}),
        ];
        let exp = compute(&recs, &params(), as_of);
        let s = &exp.students["s1"];
        assert_eq!(get(s, "days_enrolled_30"), &json!(30));
        assert_eq!(get(s, "days_absent_30"), &json!(1));
        assert_eq!(get(s, "days_absent"), &json!(2));
        assert_eq!(get(s, "incidents_30"), &json!(1));
        assert_eq!(get(s, "health_visits_30"), &json!(1));
        assert_eq!(get(s, "programs"), &json!(["homeless", "low_income"]));
        assert_eq!(get(s, "counselor"), &json!("t2"));
        assert_eq!(get(s, "behavior_flag"), &json!(false));
        assert_eq!(get(s, "tier"), &json!(1));
    }

    #[test]
    fn suspension_rate_sums_exactly_and_oversized_sections() {
        let recs = vec![
            school("M", "middle", "c1", "ld1"),
            school("E", "elementary", "c1", "ld1"),
            enr("e1", "s1", "M", "2025-09-01", None),
            enr("e2", "s2", "M", "2025-09-01", None),
            enr("e3", "s3", "M", "2025-09-01", None),
            // s1: 0.1 + 0.2 + 0.7 = 1 exactly.
            disc("d1", "s1", "M", "2025-09-02", "in_school_suspension", 0.1),
            disc("d2", "s1", "M", "2025-09-03", "in_school_suspension", 0.2),
            disc("d3", "s1", "M", "2025-09-04", "out_of_school_suspension", 0.7),
            // s2: 0.3 * 3 = 0.9.
            disc("d4", "s2", "M", "2025-09-02", "in_school_suspension", 0.3),
            disc("d5", "s2", "M", "2025-09-03", "in_school_suspension", 0.3),
            disc("d6", "s2", "M", "2025-09-04", "in_school_suspension", 0.3),
            // s3: an expulsion with days does not count.
            disc("d7", "s3", "M", "2025-09-02", "expulsion", 5.0),
            json!({"type": "section", "id": "x1", "source": "sis", "school_id": "M", "course_id": "c", "subject": "ela", "enrolled": 40}),
            json!({"type": "section", "id": "x2", "source": "sis", "school_id": "M", "course_id": "c", "subject": "math", "enrolled": 39}),
            json!({"type": "section", "id": "x3", "source": "sis", "school_id": "M", "course_id": "c", "subject": "science", "enrolled": 50}),
            json!({"type": "section", "id": "x4", "source": "sis", "school_id": "E", "course_id": "c", "subject": "ela", "enrolled": 50}),
        ];
        let exp = compute(&recs, &params(), d("2025-09-12"));
        let m = &exp.schools["M"];
        let rate = get(m, "suspension_rate").as_f64().unwrap();
        assert!((rate - 1.0 / 3.0).abs() < 1e-12, "{rate}");
        assert_eq!(get(m, "oversized_sections"), &json!(1));
        assert_eq!(get(&exp.schools["E"], "oversized_sections"), &json!(0));
        let c1 = &exp.rollups[&("community".to_string(), "c1".to_string())];
        assert_eq!(get(c1, "oversized_sections"), &json!(1));
        assert_eq!(get(c1, "enrolled"), &json!(3));
        // Dated after D: nothing.
        let exp = compute(&recs, &params(), d("2025-09-01"));
        assert_eq!(get(&exp.schools["M"], "suspension_rate"), &json!(0.0));
    }

    #[test]
    fn diff_reports_differences() {
        let recs = vec![
            school("A", "middle", "c1", "ld1"),
            enr("e1", "s1", "A", "2025-09-01", None),
            att("a1", "s1", "A", "2025-09-03", "absent_unexcused"),
        ];
        let exp = compute(&recs, &params(), d("2025-09-12"));
        let students: Vec<Value> = exp.students.values().cloned().collect();
        let schools: Vec<Value> = exp.schools.values().cloned().collect();
        let rollups: Vec<Value> = exp.rollups.values().cloned().collect();
        assert!(diff(&exp, &students, &schools, &rollups).is_empty());

        // Within tolerance; an integer written as a float.
        let mut st = students.clone();
        let r = st[0]["attendance_rate"].as_f64().unwrap();
        st[0]["attendance_rate"] = json!(r + 1e-12);
        st[0]["days_enrolled"] = json!(10.0);
        assert!(diff(&exp, &st, &schools, &rollups).is_empty());

        // Beyond tolerance, a wrong bool, a null for a number, an extra field.
        let mut st = students.clone();
        st[0]["attendance_rate"] = json!(r + 1e-6);
        st[0]["chronically_absent"] = json!(true);
        st[0]["attendance_rate_30"] = Value::Null;
        st[0]["extra"] = json!(1);
        let out = diff(&exp, &st, &schools, &rollups);
        assert_eq!(out.len(), 4, "{out:#?}");

        // Missing, extra and duplicate rows.
        let out = diff(&exp, &[], &schools, &rollups);
        assert_eq!(out.len(), 1, "{out:#?}");
        let mut sc = schools.clone();
        sc.push(json!({"school_id": "Z"}));
        sc.push(schools[0].clone());
        let out = diff(&exp, &students, &sc, &rollups);
        assert_eq!(out.len(), 2, "{out:#?}");
        let mut ro = rollups.clone();
        ro[0]["tier_1"] = json!(7);
        let out = diff(&exp, &students, &schools, &ro);
        assert_eq!(out.len(), 1, "{out:#?}");
        // Program order matters.
        let mut st = students.clone();
        st[0]["programs"] = json!(["x"]);
        assert_eq!(diff(&exp, &st, &schools, &rollups).len(), 1);
    }
}
