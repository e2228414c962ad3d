//! Synthetic district generator: a school year of canonical events
//! (`shared/spec/events.md`) written as NDJSON, one record a line, in arrival order.
//!
//! The district has the real district's shapes: about 80 % low-income, 20 % English
//! learners, 13 % special education, 3 % homeless and 1 % foster youth students; a
//! long-tailed absence propensity tuned so that about a quarter of students end the year
//! chronically absent; late entries, early exits and mid-year transfers; discipline,
//! grades at grading-period ends, nurse visits, counselor and PSW caseloads with
//! reassignments, class sections, help-desk tickets for the facilities and family queues;
//! about 1 % of dated records corrected (re-sent with the same `type` and `id`) and a few
//! withdrawn (`"deleted":true`) one to five instructional days later; and, when asked, a
//! handful of malformed lines.
//!
//! Arrival order: first the reference data (schools, staff, sections, the enrollments,
//! programs and caseloads of the students enrolled from the first day), then, for each
//! instructional day D: counselor replacements, enrollment changes (late entries, exits,
//! transfers, caseload reassignments), one attendance record per enrolled student (with
//! that day's discipline and nurse visits interleaved), grades on grading-period ends,
//! help-desk ticket steps, and the corrections and withdrawals that fall due on D.
//!
//! State is O(students + schools): a compact record per student, a few per school, and
//! small bounded buffers for pending corrections (five days) and ticket steps. Everything
//! is decided from the seed and the calendar, never from `days`, so a run of `days = k`
//! writes exactly the first k days of the run with more days.
//!
//! `generate` buffers its output itself (64 KiB writes), so `out` need not be buffered;
//! it flushes `out` before each `on_day` call.

#![allow(dead_code)]

use std::io::{self, Write};

use chrono::{Datelike, NaiveDate, Weekday};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Students in the district, e.g. 20_000 (demo) .. 600_000 (full district).
    pub students: u32,
    /// Schools, e.g. 40 .. 1_000 (at least 1).
    pub schools: u32,
    /// Instructional days to emit (clamped to the calendar's length).
    pub days: u32,
    pub seed: u64,
    /// Emit a few malformed lines (about one per two million lines, at least four, all
    /// four kinds, on the first day).
    pub malformed_lines: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { students: 20_000, schools: 40, days: 180, seed: 1, malformed_lines: true }
    }
}

/// What was written. `lines = records + malformed`; `corrections` counts the valid
/// records that re-send an already sent `type` + `id` (corrected attendance, discipline,
/// grades and visits, enrollments closed by an exit or transfer, ended caseloads, departed
/// staff, updated sections); `withdrawals` the `"deleted":true` records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateStats {
    pub lines: u64,
    pub records: u64,
    pub corrections: u64,
    pub withdrawals: u64,
    pub malformed: u64,
}

/// Writes a synthetic district year as canonical NDJSON, in arrival order, to `out`.
///
/// `instructional_days` is the school calendar's instructional days in order (weekdays
/// less holidays); the grading periods, late entries, transfers and so on are spread over
/// the whole calendar, and the first `opts.days` of its days are emitted. Calls
/// `on_day(day_index, date)` after the last line of each instructional day has been
/// written and `out` flushed (the live demo uses it to pace itself); pass `|_, _| {}`
/// otherwise. `out` need not be buffered: the generator writes in 64 KiB blocks.
/// Deterministic for a seed (ChaCha8).
pub fn generate<W: std::io::Write>(
    opts: &GenerateOptions,
    instructional_days: &[chrono::NaiveDate],
    out: W,
    mut on_day: impl FnMut(usize, chrono::NaiveDate),
) -> std::io::Result<GenerateStats> {
    if opts.schools == 0 && opts.students > 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "generate: schools must be at least 1"));
    }
    if instructional_days.is_empty() || opts.schools == 0 {
        return Ok(GenerateStats::default());
    }
    if instructional_days.len() > u16::MAX as usize - 2 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "generate: calendar too long"));
    }
    let mut g = Gen::new(opts, instructional_days, out);
    g.setup()?;
    let days = (opts.days as usize).min(instructional_days.len());
    for (d, &date) in instructional_days.iter().enumerate().take(days) {
        g.day(d)?;
        g.w.flush()?;
        on_day(d, date);
    }
    g.w.flush()?;
    Ok(g.w.stats)
}

// ---------------------------------------------------------------------------------------
// Domains and shapes

const LEVELS: [&str; 4] = ["elementary", "middle", "high", "span"];
const ELEM: u8 = 0;
const MIDDLE: u8 = 1;
const HIGH: u8 = 2;
const SPAN: u8 = 3;
const LEVEL_NAMES: [&str; 4] = ["Elementary", "Middle School", "High School", "Span School"];
/// Typical enrollment by level (students), scaled by a random factor per school.
const LEVEL_SIZE: [f64; 4] = [450.0, 900.0, 1600.0, 700.0];

const LOCAL_DISTRICTS: [&str; 6] = ["LD-North", "LD-Northwest", "LD-Central", "LD-East", "LD-South", "LD-West"];

const STATUS: [&str; 5] = ["present", "tardy", "absent_excused", "absent_unexcused", "suspended"];
const PRESENT: u8 = 0;
const TARDY: u8 = 1;
const ABS_EXC: u8 = 2;
const ABS_UNEXC: u8 = 3;
const SUSPENDED: u8 = 4;

const SUBJECTS: [&str; 5] = ["ela", "math", "science", "social_studies", "other"];
const SUBJ_CODE: [&str; 5] = ["ELA", "MATH", "SCI", "SOC", "ELEC"];
const MARKS: [&str; 5] = ["A", "B", "C", "D", "F"];
const PERIODS: [&str; 2] = ["P1", "final"];

const REASONS: [&str; 5] = ["illness", "injury", "mental_health", "chronic_condition", "other"];
const BEHAVIORS: [&str; 10] = [
    "defiance",
    "disruption",
    "fighting",
    "bullying",
    "harassment",
    "vandalism",
    "theft",
    "substance",
    "threat",
    "weapon",
];
const ACTIONS: [&str; 3] = ["referral", "in_school_suspension", "out_of_school_suspension"];
const REFERRAL: u8 = 0;
const ISS: u8 = 1;
const OSS: u8 = 2;

const PROGRAMS: [&str; 6] =
    ["low_income", "english_learner", "special_education", "homeless", "foster_youth", "attendance_improvement"];
const PROGRAM_SOURCES: [&str; 6] = ["nutrition", "sis", "seis", "sis", "cdss", "pupil_services"];
const F_LOW: u8 = 1;
const F_EL: u8 = 2;
const F_SPED: u8 = 4;
const F_HOMELESS: u8 = 8;
const F_FOSTER: u8 = 16;
const F_AIP: u8 = 32;
const F_PSW: u8 = 64;

const QUEUES: [&str; 2] = ["facilities", "family"];
const FACILITIES: u8 = 0;
const FAMILY: u8 = 1;
const PRIORITIES: [&str; 3] = ["emergency", "urgent", "routine"];
const FAC_CATS: [&str; 7] = ["plumbing", "electrical", "hvac", "roofing", "safety", "custodial", "grounds"];
const FAM_CATS: [&str; 5] = ["enrollment", "transportation", "records", "meals", "safety"];
const T_ACTIONS: [&str; 7] = ["opened", "assigned", "on_hold", "resumed", "resolved", "reopened", "closed"];
const T_OPENED: u8 = 0;
const T_ASSIGNED: u8 = 1;
const T_ON_HOLD: u8 = 2;
const T_RESUMED: u8 = 3;
const T_RESOLVED: u8 = 4;
const T_REOPENED: u8 = 5;
const T_CLOSED: u8 = 6;
/// Business windows (minutes after midnight): facilities 07:00-16:00, family 08:00-17:00.
const WINDOW: [(u32, u32); 2] = [(420, 960), (480, 1020)];

const FIRST: [&str; 24] = [
    "maria", "james", "ana", "david", "jose", "linda", "michael", "sofia", "daniel", "karen", "luis", "jennifer",
    "carlos", "patricia", "kevin", "rosa", "brian", "elena", "anthony", "grace", "miguel", "susan", "hector", "nancy",
];
const LAST: [&str; 24] = [
    "garcia",
    "smith",
    "hernandez",
    "johnson",
    "lopez",
    "williams",
    "martinez",
    "brown",
    "gonzalez",
    "jones",
    "rodriguez",
    "davis",
    "perez",
    "kim",
    "sanchez",
    "nguyen",
    "ramirez",
    "lee",
    "torres",
    "chen",
    "flores",
    "wilson",
    "rivera",
    "park",
];
const SCHOOL_NAMES: [&str; 40] = [
    "Lincoln",
    "Roosevelt",
    "Jefferson",
    "Washington",
    "Madison",
    "Garfield",
    "Hamilton",
    "Franklin",
    "Kennedy",
    "King",
    "Chavez",
    "Huerta",
    "Juarez",
    "Bethune",
    "Carver",
    "Douglass",
    "Emerson",
    "Fremont",
    "Grant",
    "Hoover",
    "Irving",
    "Jordan",
    "Kester",
    "Logan",
    "Marshall",
    "Nimitz",
    "Olympic",
    "Pacific",
    "Quincy",
    "Revere",
    "Sequoia",
    "Taft",
    "Union",
    "Valley",
    "Wilson",
    "Yorba",
    "Zane",
    "Arroyo",
    "Belmont",
    "Crenshaw",
];

/// Shares of the district's student population.
const P_LOW_INCOME: f64 = 0.80;
const P_EL: f64 = 0.20;
const P_SPED: f64 = 0.13;
const P_HOMELESS: f64 = 0.03;
const P_FOSTER: f64 = 0.01;
/// Absence propensity: log-normal, median and log-sd; a quarter of students above 10 %.
const ABS_MEDIAN: f64 = 0.045;
const ABS_SIGMA: f64 = 0.95;
/// Per student-day: nurse visit.
const P_HEALTH: f64 = 0.005;
/// Of dated records, re-sent with a change (x/4096) and withdrawn (y/4096).
const FIX_CORRECT: u32 = 41;
const FIX_WITHDRAW: u32 = 2;
/// Facilities tickets per school-day; family tickets per student-day.
const P_FAC_TICKET: f64 = 0.05;
const P_FAM_TICKET: f64 = 0.000_08;

const FLUSH_AT: usize = 1 << 16;
const NONE: u32 = u32::MAX;
const NOT_YET: u8 = 0;
const ENROLLED: u8 = 1;
const EXITED: u8 = 2;
const FIX_RING: usize = 8;
const STEP_RING: usize = 64;

// ---------------------------------------------------------------------------------------
// State

#[derive(Clone, Copy, Default)]
struct Student {
    school: u32,
    /// P(absent) on an ordinary day, times 2^32.
    abs_thr: u32,
    /// P(incident) per day at school, times 2^32.
    disc_thr: u32,
    enr_id: u32,
    csl_id: u32,
    csl_staff: u32,
    cslot: u32,
    psw_csl_id: u32,
    psw_staff: u32,
    enr_entry: u16,
    csl_begin: u16,
    psw_begin: u16,
    /// Out-of-school suspension through the day before this one.
    susp_until: u16,
    grade: i8,
    status: u8,
    flags: u8,
    ability: u8,
}

struct School {
    level: u8,
    ld: u8,
    community: u16,
    weight: f64,
    size: u32,
    cslot_start: u32,
    cslot_n: u32,
    psw_staff: u32,
    sec_start: u32,
    nsec: [u8; 5],
}

#[derive(Clone, Copy)]
struct Event {
    day: u16,
    kind: u8,
    student: u32,
}
const EV_LATE_ENTRY: u8 = 0;
const EV_EXIT: u8 = 1;
const EV_TRANSFER: u8 = 2;
const EV_REASSIGN: u8 = 3;

/// A pending correction or withdrawal of a dated record.
#[derive(Clone, Copy)]
struct Fix {
    id: u64,
    student: u32,
    school: u32,
    day: u16,
    kind: u8,
    withdraw: bool,
    f: [u8; 4],
}
const K_ATT: u8 = 0;
const K_DIS: u8 = 1;
const K_GRD: u8 = 2;
const K_HV: u8 = 3;

/// A help-desk ticket step due on some day.
#[derive(Clone, Copy)]
struct Step {
    minute: u16,
    action: u8,
    queue: u8,
    priority: u8,
    category: u8,
    assign: bool,
    ticket: u32,
    school: u32,
}

/// A contiguous run of schools served by one PSW or nurse.
struct Group {
    staff: u32,
    first: u32,
    count: u32,
    ld: u8,
}

struct Gen<'a, W: Write> {
    w: Writer<W>,
    rng: ChaCha8Rng,
    cal: &'a [NaiveDate],
    students: Vec<Student>,
    schools: Vec<School>,
    by_level: [Vec<u32>; 4],
    n_ld: usize,
    cslot_staff: Vec<u32>,
    cslot_school: Vec<u32>,
    psw_groups: Vec<Group>,
    nurse_groups: Vec<Group>,
    maint_staff: Vec<u32>,
    leads: Vec<u32>,
    admins: Vec<(u32, Option<u8>)>,
    n_staff: u32,
    events: Vec<Event>,
    ev_pos: usize,
    /// (day, before student, kind), sorted.
    malformed: Vec<(u16, u32, u8)>,
    mal_pos: usize,
    day_factor: Vec<u32>,
    terms: [String; 2],
    grade_days: Vec<(usize, u8, u8)>,
    aip_day: usize,
    s2_day: usize,
    p_leave: f64,
    fixes: Vec<Vec<Fix>>,
    steps: Vec<Vec<Step>>,
    departed: Vec<bool>,
    next_att: u64,
    next_dis: u64,
    next_grd: u64,
    next_hv: u64,
    next_prg: u64,
    next_csl: u32,
    next_enr: u32,
    next_tkt: u32,
    next_step: u64,
    next_sec: u32,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    let mut left = lambda;
    let mut n = 0;
    while left > 0.0 {
        let l = left.min(10.0);
        left -= l;
        let lim = (-l).exp();
        let mut p = 1.0;
        loop {
            p *= rng.random::<f64>();
            if p <= lim {
                break;
            }
            n += 1;
        }
    }
    n
}

fn prob_u32(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 4_294_967_295.0) as u32
}

/// US daylight time (second Sunday of March to first Sunday of November).
fn is_dst(d: NaiveDate) -> bool {
    let first_sunday = |m: u32| {
        let first = NaiveDate::from_ymd_opt(d.year(), m, 1).unwrap();
        1 + (7 - first.weekday().num_days_from_sunday()) % 7
    };
    let start = NaiveDate::from_ymd_opt(d.year(), 3, first_sunday(3) + 7).unwrap();
    let end = NaiveDate::from_ymd_opt(d.year(), 11, first_sunday(11)).unwrap();
    start <= d && d < end
}

/// Adds `delta` business minutes to (day, minute) in the window [ws, we).
fn add_business(day: usize, minute: u32, delta: u32, (ws, we): (u32, u32)) -> (usize, u32) {
    let (mut day, mut m) = (day, minute);
    if m < ws {
        m = ws;
    } else if m >= we {
        day += 1;
        m = ws;
    }
    let mut left = delta;
    while m + left >= we {
        left -= we - m;
        day += 1;
        m = ws;
    }
    (day, m + left)
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

impl<'a, W: Write> Gen<'a, W> {
    fn new(opts: &GenerateOptions, cal: &'a [NaiveDate], out: W) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let n_cal = cal.len();
        let n_sch = opts.schools as usize;
        let n_stu = opts.students as usize;

        // Schools: level quotas, shuffled; contiguous blocks of local districts, each
        // split into communities of 20-25 schools; one maintenance region per local district.
        let r = |x: f64| (x * n_sch as f64).round() as usize;
        let (mut n_high, mut n_mid, n_span) = (r(0.15), r(0.20), r(0.05));
        if n_sch >= 3 {
            n_high = n_high.max(1);
            n_mid = n_mid.max(1);
        }
        let mut levels = Vec::with_capacity(n_sch);
        for (lvl, n) in [(HIGH, n_high), (MIDDLE, n_mid), (SPAN, n_span)] {
            for _ in 0..n {
                if levels.len() + 1 < n_sch {
                    levels.push(lvl);
                }
            }
        }
        while levels.len() < n_sch {
            levels.push(ELEM);
        }
        for i in (1..n_sch).rev() {
            let j = rng.random_range(0..=i);
            levels.swap(i, j);
        }
        let n_ld = n_sch.min(LOCAL_DISTRICTS.len());
        let mut schools: Vec<School> = Vec::with_capacity(n_sch);
        let mut comm_base = 0usize;
        for ld in 0..n_ld {
            let lo = ld * n_sch / n_ld;
            let hi = (ld + 1) * n_sch / n_ld;
            let m = hi - lo;
            let n_comm = ((m as f64 / 22.5).round() as usize).max(1);
            for j in 0..m {
                let level = levels[lo + j];
                let weight = LEVEL_SIZE[level as usize] * (0.5 + rng.random::<f64>());
                schools.push(School {
                    level,
                    ld: ld as u8,
                    community: (comm_base + j * n_comm / m) as u16,
                    weight,
                    size: 0,
                    cslot_start: 0,
                    cslot_n: 0,
                    psw_staff: 0,
                    sec_start: 0,
                    nsec: [0; 5],
                });
            }
            comm_base += n_comm;
        }
        let mut by_level: [Vec<u32>; 4] = Default::default();
        for (i, s) in schools.iter().enumerate() {
            by_level[s.level as usize].push(i as u32);
        }
        let mut cum = Vec::with_capacity(n_sch);
        let mut total = 0.0;
        for s in &schools {
            total += s.weight;
            cum.push(total);
        }

        // Students.
        let abs_mu = ABS_MEDIAN.ln();
        let low_disc = prob_u32(0.000_05);
        let mid_disc = prob_u32(0.000_6);
        let high_disc = prob_u32(0.004);
        let mut students = Vec::with_capacity(n_stu);
        for i in 0..n_stu {
            let x = rng.random::<f64>() * total;
            let school = cum.partition_point(|&c| c <= x).min(n_sch - 1);
            let level = schools[school].level;
            let grade: i8 = match level {
                ELEM => {
                    let r = rng.random_range(0..13u8);
                    if r == 0 {
                        -1
                    } else {
                        ((r - 1) / 2) as i8
                    }
                }
                MIDDLE => 6 + rng.random_range(0..3) as i8,
                HIGH => 9 + rng.random_range(0..4) as i8,
                _ => rng.random_range(0..9) as i8,
            };
            let mut flags = 0u8;
            for (bit, p) in
                [(F_LOW, P_LOW_INCOME), (F_EL, P_EL), (F_SPED, P_SPED), (F_HOMELESS, P_HOMELESS), (F_FOSTER, P_FOSTER)]
            {
                if rng.random::<f64>() < p {
                    flags |= bit;
                }
            }
            let mut p_abs = (abs_mu + ABS_SIGMA * normal(&mut rng)).exp();
            if flags & F_HOMELESS != 0 {
                p_abs *= 1.5;
            }
            if flags & F_FOSTER != 0 {
                p_abs *= 1.3;
            }
            let p_abs = p_abs.min(0.9);
            let dr = rng.random::<f64>();
            let mut disc = if dr < 0.80 {
                low_disc
            } else if dr < 0.97 {
                mid_disc
            } else {
                high_disc
            };
            if level == MIDDLE || level == HIGH {
                disc = disc.saturating_mul(2);
            }
            if flags & (F_HOMELESS | F_FOSTER) != 0 || rng.random::<f64>() < 0.02 {
                flags |= F_PSW;
            }
            schools[school].size += 1;
            students.push(Student {
                school: school as u32,
                abs_thr: prob_u32(p_abs),
                disc_thr: disc,
                enr_id: i as u32 + 1,
                csl_id: NONE,
                csl_staff: NONE,
                cslot: 0,
                psw_csl_id: NONE,
                psw_staff: NONE,
                enr_entry: 0,
                csl_begin: 0,
                psw_begin: 0,
                susp_until: 0,
                grade,
                status: ENROLLED,
                flags,
                ability: rng.random(),
            });
        }

        // Staff: principals (staff i leads school i), counselors (~1 per 400 students),
        // PSWs (one per 4 schools) and nurses (one per 3) within a local district,
        // maintenance supervisors per region, help-desk leads, district admins.
        let mut n_staff = n_sch as u32;
        let mut cslot_staff = Vec::new();
        let mut cslot_school = Vec::new();
        for (i, s) in schools.iter_mut().enumerate() {
            let n = ((s.size + 200) / 400).max(1);
            s.cslot_start = cslot_staff.len() as u32;
            s.cslot_n = n;
            for _ in 0..n {
                cslot_staff.push(n_staff);
                cslot_school.push(i as u32);
                n_staff += 1;
            }
        }
        let groups = |per: u32, n_staff: &mut u32| {
            let mut gs = Vec::new();
            for ld in 0..n_ld {
                let lo = (ld * n_sch / n_ld) as u32;
                let hi = ((ld + 1) * n_sch / n_ld) as u32;
                let mut first = lo;
                while first < hi {
                    let count = per.min(hi - first);
                    gs.push(Group { staff: *n_staff, first, count, ld: ld as u8 });
                    *n_staff += 1;
                    first += count;
                }
            }
            gs
        };
        let psw_groups = groups(4, &mut n_staff);
        let nurse_groups = groups(3, &mut n_staff);
        for g in &psw_groups {
            for s in g.first..g.first + g.count {
                schools[s as usize].psw_staff = g.staff;
            }
        }
        let maint_staff: Vec<u32> = (0..n_ld as u32).map(|k| n_staff + k).collect();
        n_staff += n_ld as u32;
        let leads = vec![n_staff, n_staff + 1];
        n_staff += 2;
        let mut admins = vec![(n_staff, None)];
        n_staff += 1;
        for ld in 0..n_ld {
            admins.push((n_staff, Some(ld as u8)));
            n_staff += 1;
        }
        for s in students.iter_mut() {
            let sc = &schools[s.school as usize];
            s.cslot = sc.cslot_start + rng.random_range(0..sc.cslot_n);
        }

        // Sections: 1-3 per subject per school.
        let mut next_sec = 1u32;
        for s in schools.iter_mut() {
            s.sec_start = next_sec;
            for k in 0..5 {
                s.nsec[k] = 1 + rng.random_range(0..3u8);
                next_sec += s.nsec[k] as u32;
            }
        }

        // Enrollment changes over the year.
        let mut events = Vec::new();
        for (i, s) in students.iter_mut().enumerate() {
            let x = rng.random::<f64>();
            let i = i as u32;
            if x < 0.05 && n_cal >= 3 {
                let last = ((n_cal as f64 * 0.85) as usize).max(2);
                let day = rng.random_range(1..last) as u16;
                s.status = NOT_YET;
                s.enr_entry = day;
                events.push(Event { day, kind: EV_LATE_ENTRY, student: i });
            } else if x < 0.08 && n_cal > 12 {
                let day = rng.random_range(10..n_cal) as u16;
                events.push(Event { day, kind: EV_EXIT, student: i });
            } else if x < 0.12 && n_cal > 12 {
                let day = rng.random_range(5..n_cal - 5) as u16;
                events.push(Event { day, kind: EV_TRANSFER, student: i });
            }
            if rng.random::<f64>() < 0.03 && n_cal > 12 {
                let day = rng.random_range(10..n_cal) as u16;
                events.push(Event { day, kind: EV_REASSIGN, student: i });
            }
        }
        events.sort_by_key(|e| e.day);

        // Malformed lines: one of each kind on the first day, then one per ~2 million lines.
        let mut malformed = Vec::new();
        if opts.malformed_lines {
            for k in 0..4u32 {
                malformed.push((0u16, ((k as usize + 1) * n_stu / 5) as u32, k as u8));
            }
            let est = n_stu as f64 * n_cal as f64 * 1.03;
            let extra = (est / 2_000_000.0) as usize;
            for k in 0..extra {
                let day = rng.random_range(0..n_cal) as u16;
                let pos = rng.random_range(0..=n_stu) as u32;
                malformed.push((day, pos, (k % 4) as u8));
            }
            malformed.sort();
        }

        // Day factors: Mondays and Fridays, winter, and days next to a break see more absence.
        let mut day_factor = Vec::with_capacity(n_cal);
        for (k, date) in cal.iter().enumerate() {
            let mut f = match date.weekday() {
                Weekday::Mon => 1.10,
                Weekday::Tue => 0.96,
                Weekday::Wed => 0.93,
                Weekday::Thu => 0.96,
                Weekday::Fri => 1.08,
                _ => 1.0,
            };
            match date.month() {
                12 | 1 | 2 => f *= 1.15,
                8 | 9 => f *= 0.9,
                _ => {}
            }
            if k > 0 && (*date - cal[k - 1]).num_days() > 3 {
                f *= 1.25;
            }
            if k + 1 < n_cal && (cal[k + 1] - *date).num_days() > 3 {
                f *= 1.2;
            }
            day_factor.push((f * 65536.0) as u32);
        }

        // Terms and grading periods: two semesters, each with a progress period and a final.
        let y = if cal[0].month() >= 7 { cal[0].year() } else { cal[0].year() - 1 };
        let terms =
            [format!("{}-{:02}-S1", y, (y + 1).rem_euclid(100)), format!("{}-{:02}-S2", y, (y + 1).rem_euclid(100))];
        let mut grade_days: Vec<(usize, u8, u8)> = Vec::new();
        for (num, term, period) in [(1, 0u8, 0u8), (2, 0, 1), (3, 1, 0), (4, 1, 1)] {
            let day = (n_cal * num / 4).saturating_sub(1);
            if grade_days.last().is_none_or(|l| l.0 < day) {
                grade_days.push((day, term, period));
            }
        }

        let n_slots = cslot_staff.len();
        let w = Writer::new(out, cal);
        Gen {
            w,
            rng,
            cal,
            students,
            schools,
            by_level,
            n_ld,
            cslot_staff,
            cslot_school,
            psw_groups,
            nurse_groups,
            maint_staff,
            leads,
            admins,
            n_staff,
            events,
            ev_pos: 0,
            malformed,
            mal_pos: 0,
            day_factor,
            terms,
            grade_days,
            aip_day: n_cal / 4 + 5,
            s2_day: n_cal / 2,
            p_leave: 0.10 / n_cal as f64,
            fixes: (0..FIX_RING).map(|_| Vec::new()).collect(),
            steps: (0..STEP_RING).map(|_| Vec::new()).collect(),
            departed: vec![false; n_slots],
            next_att: 1,
            next_dis: 1,
            next_grd: 1,
            next_hv: 1,
            next_prg: 1,
            next_csl: 1,
            next_enr: n_stu as u32 + 1,
            next_tkt: 1,
            next_step: 1,
            next_sec,
        }
    }

    /// Reference data and the first day's enrollments, programs and caseloads.
    fn setup(&mut self) -> io::Result<()> {
        let n_sch = self.schools.len();
        for i in 0..n_sch {
            let s = &self.schools[i];
            let (level, ld, comm) = (s.level, s.ld, s.community);
            self.w.school(i as u32, level, ld, comm)?;
        }
        for i in 0..n_sch {
            let ld = self.schools[i].ld;
            self.w.staff(i as u32, "principal", i as u32..i as u32 + 1, None, Some(ld))?;
        }
        for slot in 0..self.cslot_staff.len() {
            let school = self.cslot_school[slot];
            let ld = self.schools[school as usize].ld;
            self.w.staff(self.cslot_staff[slot], "counselor", school..school + 1, None, Some(ld))?;
        }
        for (role, groups) in [("psw", &self.psw_groups), ("nurse", &self.nurse_groups)] {
            for g in groups {
                self.w.staff(g.staff, role, g.first..g.first + g.count, None, Some(g.ld))?;
            }
        }
        for (k, &st) in self.maint_staff.iter().enumerate() {
            self.w.staff(st, "maintenance_supervisor", 0..0, Some(k as u8), None)?;
        }
        for &st in &self.leads {
            self.w.staff(st, "helpdesk_lead", 0..0, None, None)?;
        }
        for &(st, ld) in &self.admins {
            self.w.staff(st, "district_admin", 0..0, None, ld)?;
        }
        for i in 0..n_sch {
            let level = self.schools[i].level;
            let big_ok = level == MIDDLE || level == HIGH;
            let mut id = self.schools[i].sec_start;
            for subj in 0..5u8 {
                for k in 1..=self.schools[i].nsec[subj as usize] {
                    let n = self.head_count(level, subj, big_ok);
                    self.w.section(id, i as u32, subj, k, n)?;
                    id += 1;
                }
            }
        }
        let n = self.students.len();
        for i in 0..n {
            let s = self.students[i];
            if s.status == ENROLLED {
                self.w.enrollment(s.enr_id, i as u32, s.school, s.grade, 0, None)?;
            }
        }
        for i in 0..n {
            if self.students[i].status == ENROLLED {
                self.begin_programs(i, 0)?;
            }
        }
        for i in 0..n {
            if self.students[i].status == ENROLLED {
                self.begin_caseloads(i, 0)?;
            }
        }
        Ok(())
    }

    fn head_count(&mut self, level: u8, subj: u8, big_ok: bool) -> u32 {
        if big_ok && subj < 2 && self.rng.random::<f64>() < 0.06 {
            self.rng.random_range(40..=44)
        } else if level == ELEM {
            self.rng.random_range(18..=30)
        } else {
            self.rng.random_range(20..=38)
        }
    }

    fn begin_programs(&mut self, i: usize, d: usize) -> io::Result<()> {
        let flags = self.students[i].flags;
        for p in 0..5u8 {
            if flags & (1 << p) != 0 {
                let id = self.next_prg;
                self.next_prg += 1;
                self.w.program(id, i as u32, p, d)?;
            }
        }
        Ok(())
    }

    fn begin_caseloads(&mut self, i: usize, d: usize) -> io::Result<()> {
        let s = &mut self.students[i];
        s.csl_staff = self.cslot_staff[s.cslot as usize];
        s.csl_id = self.next_csl;
        s.csl_begin = d as u16;
        self.next_csl += 1;
        self.w.caseload(s.csl_id, i as u32, s.csl_staff, "counselor", s.csl_begin as usize, None)?;
        if s.flags & F_PSW != 0 {
            s.psw_staff = self.schools[s.school as usize].psw_staff;
            s.psw_csl_id = self.next_csl;
            s.psw_begin = d as u16;
            self.next_csl += 1;
            self.w.caseload(s.psw_csl_id, i as u32, s.psw_staff, "psw", d, None)?;
        }
        Ok(())
    }

    fn end_caseloads(&mut self, i: usize, d: usize) -> io::Result<()> {
        let s = self.students[i];
        if s.csl_id != NONE {
            self.w.caseload(s.csl_id, i as u32, s.csl_staff, "counselor", s.csl_begin as usize, Some(d))?;
            self.w.stats.corrections += 1;
        }
        if s.psw_csl_id != NONE {
            self.w.caseload(s.psw_csl_id, i as u32, s.psw_staff, "psw", s.psw_begin as usize, Some(d))?;
            self.w.stats.corrections += 1;
        }
        let s = &mut self.students[i];
        s.csl_id = NONE;
        s.psw_csl_id = NONE;
        Ok(())
    }

    fn day(&mut self, d: usize) -> io::Result<()> {
        self.departures(d)?;
        self.lifecycle(d)?;
        self.attendance(d)?;
        let grading = self.grade_days.iter().find(|g| g.0 == d).copied();
        if let Some((_, term, period)) = grading {
            self.grades(d, term, period)?;
        }
        if d == self.aip_day {
            self.attendance_improvement(d)?;
        }
        if d == self.s2_day && d > 0 {
            self.section_updates()?;
        }
        self.tickets(d)?;
        self.due_fixes(d)
    }

    /// A counselor leaves: the staff record is re-sent without schools, a replacement is
    /// hired, and the caseloads move to the replacement.
    fn departures(&mut self, d: usize) -> io::Result<()> {
        let mut any = false;
        for slot in 0..self.cslot_staff.len() {
            if self.rng.random::<f64>() < self.p_leave {
                any = true;
                self.departed[slot] = true;
                let school = self.cslot_school[slot];
                let ld = self.schools[school as usize].ld;
                self.w.staff(self.cslot_staff[slot], "counselor", 0..0, None, Some(ld))?;
                self.w.stats.corrections += 1;
                let new = self.n_staff;
                self.n_staff += 1;
                self.cslot_staff[slot] = new;
                self.w.staff(new, "counselor", school..school + 1, None, Some(ld))?;
            }
        }
        if !any {
            return Ok(());
        }
        for i in 0..self.students.len() {
            let s = self.students[i];
            if s.status == ENROLLED && self.departed[s.cslot as usize] && s.csl_id != NONE {
                self.w.caseload(s.csl_id, i as u32, s.csl_staff, "counselor", s.csl_begin as usize, Some(d))?;
                self.w.stats.corrections += 1;
                let s = &mut self.students[i];
                s.csl_staff = self.cslot_staff[s.cslot as usize];
                s.csl_id = self.next_csl;
                s.csl_begin = d as u16;
                self.next_csl += 1;
                self.w.caseload(s.csl_id, i as u32, s.csl_staff, "counselor", d, None)?;
            }
        }
        self.departed.iter_mut().for_each(|x| *x = false);
        Ok(())
    }

    fn lifecycle(&mut self, d: usize) -> io::Result<()> {
        while self.ev_pos < self.events.len() && self.events[self.ev_pos].day as usize <= d {
            let ev = self.events[self.ev_pos];
            self.ev_pos += 1;
            let i = ev.student as usize;
            let s = self.students[i];
            match ev.kind {
                EV_LATE_ENTRY if s.status == NOT_YET => {
                    self.students[i].status = ENROLLED;
                    self.students[i].enr_entry = d as u16;
                    self.w.enrollment(s.enr_id, i as u32, s.school, s.grade, d, None)?;
                    self.begin_programs(i, d)?;
                    self.begin_caseloads(i, d)?;
                }
                EV_EXIT if s.status == ENROLLED => {
                    self.w.enrollment(s.enr_id, i as u32, s.school, s.grade, s.enr_entry as usize, Some(d))?;
                    self.w.stats.corrections += 1;
                    self.end_caseloads(i, d)?;
                    self.students[i].status = EXITED;
                }
                EV_TRANSFER if s.status == ENROLLED && s.enr_entry as usize != d => {
                    let Some(to) = self.transfer_target(s.school, s.grade) else {
                        continue;
                    };
                    self.w.enrollment(s.enr_id, i as u32, s.school, s.grade, s.enr_entry as usize, Some(d))?;
                    self.w.stats.corrections += 1;
                    self.end_caseloads(i, d)?;
                    let sc = &self.schools[to as usize];
                    let cslot = sc.cslot_start + self.rng.random_range(0..sc.cslot_n);
                    let st = &mut self.students[i];
                    st.school = to;
                    st.cslot = cslot;
                    st.enr_id = self.next_enr;
                    st.enr_entry = d as u16;
                    self.next_enr += 1;
                    self.w.enrollment(st.enr_id, i as u32, to, s.grade, d, None)?;
                    self.begin_caseloads(i, d)?;
                }
                EV_REASSIGN if s.status == ENROLLED && s.csl_id != NONE && s.csl_begin as usize != d => {
                    let sc = &self.schools[s.school as usize];
                    if sc.cslot_n < 2 {
                        continue;
                    }
                    let k = self.rng.random_range(1..sc.cslot_n);
                    let cslot = sc.cslot_start + (s.cslot - sc.cslot_start + k) % sc.cslot_n;
                    self.w.caseload(s.csl_id, i as u32, s.csl_staff, "counselor", s.csl_begin as usize, Some(d))?;
                    self.w.stats.corrections += 1;
                    let st = &mut self.students[i];
                    st.cslot = cslot;
                    st.csl_staff = self.cslot_staff[cslot as usize];
                    st.csl_id = self.next_csl;
                    st.csl_begin = d as u16;
                    self.next_csl += 1;
                    self.w.caseload(st.csl_id, i as u32, st.csl_staff, "counselor", d, None)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Another school that serves `grade`, if there is one.
    fn transfer_target(&mut self, from: u32, grade: i8) -> Option<u32> {
        let a: &[u32] = match grade {
            ..=5 => &self.by_level[ELEM as usize],
            6..=8 => &self.by_level[MIDDLE as usize],
            _ => &self.by_level[HIGH as usize],
        };
        let b: &[u32] = if (0..=8).contains(&grade) { &self.by_level[SPAN as usize] } else { &[] };
        let n = a.len() + b.len();
        if n < 2 {
            return None;
        }
        for _ in 0..8 {
            let k = self.rng.random_range(0..n);
            let to = if k < a.len() { a[k] } else { b[k - a.len()] };
            if to != from {
                return Some(to);
            }
        }
        None
    }

    fn next_mal(&self, d: usize) -> usize {
        match self.malformed.get(self.mal_pos) {
            Some(&(day, pos, _)) if day as usize == d => pos as usize,
            _ => usize::MAX,
        }
    }

    fn emit_malformed(&mut self, d: usize, i: usize) -> io::Result<()> {
        let kind = self.malformed[self.mal_pos].2;
        self.mal_pos += 1;
        let n = self.students.len().max(1);
        let stu = (i % n) as u32;
        let school = self.students.get(i % n).map_or(0, |s| s.school);
        let w = &mut self.w;
        match kind {
            0 => {
                // Not JSON: a line cut short.
                let id = self.next_att;
                self.next_att += 1;
                w.head(b"attendance", b"att-", id, b"sis");
                w.ref_id(b"student_id", b"stu-", stu as u64 + 1);
                w.ref_id(b"school_id", b"sch-", school as u64 + 1);
                w.raw(b",\"date\":\"");
                let date = w.dates[d];
                w.raw(&date[..8]);
            }
            1 => {
                // A discipline record without its `action`.
                let id = self.next_dis;
                self.next_dis += 1;
                w.head(b"discipline", b"dis-", id, b"sis");
                w.ref_id(b"student_id", b"stu-", stu as u64 + 1);
                w.ref_id(b"school_id", b"sch-", school as u64 + 1);
                w.date_field(b"date", d);
                w.str_field(b"behavior", b"defiance");
                w.raw(b",\"days\":0}");
            }
            2 => {
                // A status outside the domain.
                let id = self.next_att;
                self.next_att += 1;
                w.head(b"attendance", b"att-", id, b"sis");
                w.ref_id(b"student_id", b"stu-", stu as u64 + 1);
                w.ref_id(b"school_id", b"sch-", school as u64 + 1);
                w.date_field(b"date", d);
                w.str_field(b"status", b"half_day");
                w.raw(b"}");
            }
            _ => {
                // A date that does not exist.
                let id = self.next_hv;
                self.next_hv += 1;
                w.head(b"health_visit", b"hv-", id, b"nurse");
                w.ref_id(b"student_id", b"stu-", stu as u64 + 1);
                w.ref_id(b"school_id", b"sch-", school as u64 + 1);
                w.raw(b",\"date\":\"");
                let date = w.dates[d];
                w.raw(&date[..5]);
                w.raw(b"02-30\"");
                w.str_field(b"reason", b"illness");
                w.raw(b"}");
            }
        }
        w.end_malformed()
    }

    /// One attendance record per enrolled student, with the day's incidents and visits.
    fn attendance(&mut self, d: usize) -> io::Result<()> {
        let f = self.day_factor[d] as u64;
        let health_thr = prob_u32(P_HEALTH);
        let n = self.students.len();
        let mut next_mal = self.next_mal(d);
        for i in 0..n {
            while next_mal == i {
                self.emit_malformed(d, i)?;
                next_mal = self.next_mal(d);
            }
            let Gen { w, rng, students, fixes, .. } = self;
            let s = &mut students[i];
            if s.status != ENROLLED {
                continue;
            }
            let r1 = rng.next_u64();
            let status = if (d as u16) < s.susp_until {
                SUSPENDED
            } else {
                let thr = ((s.abs_thr as u64 * f) >> 16).min(u32::MAX as u64) as u32;
                if (r1 as u32) < thr {
                    if ((r1 >> 32) as u8) < 140 {
                        ABS_EXC
                    } else {
                        ABS_UNEXC
                    }
                } else if (r1 >> 40) & 0xfff < 164 {
                    TARDY
                } else {
                    PRESENT
                }
            };
            let id = self.next_att;
            self.next_att += 1;
            w.attendance(id, i as u32, s.school, d, status)?;
            let fx = (r1 >> 52) as u32;
            if fx < FIX_CORRECT + FIX_WITHDRAW {
                let fix = Fix {
                    id,
                    student: i as u32,
                    school: s.school,
                    day: d as u16,
                    kind: K_ATT,
                    withdraw: fx >= FIX_CORRECT,
                    f: [status, 0, 0, 0],
                };
                schedule(fixes, rng, d, fix);
            }
            if status > TARDY {
                continue;
            }
            let r2 = rng.next_u64();
            if (r2 as u32) < s.disc_thr {
                let r = rng.next_u64();
                let behavior = (r % BEHAVIORS.len() as u64) as u8;
                let a = (r >> 8) & 0xff;
                let (action, days) = if a < 184 {
                    (REFERRAL, 0u8)
                } else if a < 220 {
                    (ISS, 1 + ((r >> 16) % 3) as u8)
                } else {
                    (OSS, 1 + ((r >> 16) % 3) as u8)
                };
                if action == OSS {
                    s.susp_until = (d + 1 + days as usize) as u16;
                }
                let id = self.next_dis;
                self.next_dis += 1;
                w.discipline(id, i as u32, s.school, d, behavior, action, days)?;
                let fx = ((r >> 24) & 0xfff) as u32;
                // Discipline entered in error is withdrawn more often than attendance.
                if fx < FIX_CORRECT + 80 {
                    let fix = Fix {
                        id,
                        student: i as u32,
                        school: s.school,
                        day: d as u16,
                        kind: K_DIS,
                        withdraw: fx >= FIX_CORRECT,
                        f: [behavior, action, days, 0],
                    };
                    schedule(fixes, rng, d, fix);
                }
            }
            if ((r2 >> 32) as u32) < health_thr {
                let r = rng.next_u64();
                let x = r & 0xff;
                let reason = if x < 128 {
                    0
                } else if x < 180 {
                    1
                } else if x < 212 {
                    2
                } else if x < 238 {
                    3
                } else {
                    4
                };
                let id = self.next_hv;
                self.next_hv += 1;
                w.health(id, i as u32, s.school, d, reason)?;
                let fx = ((r >> 8) & 0xfff) as u32;
                if fx < FIX_CORRECT + 20 {
                    let fix = Fix {
                        id,
                        student: i as u32,
                        school: s.school,
                        day: d as u16,
                        kind: K_HV,
                        withdraw: fx >= FIX_CORRECT,
                        f: [reason, 0, 0, 0],
                    };
                    schedule(fixes, rng, d, fix);
                }
            }
        }
        while next_mal != usize::MAX {
            self.emit_malformed(d, n)?;
            next_mal = self.next_mal(d);
        }
        Ok(())
    }

    /// Marks in the four core subjects for every enrolled student.
    fn grades(&mut self, d: usize, term: u8, period: u8) -> io::Result<()> {
        let Gen { w, rng, students, fixes, schools, terms, .. } = self;
        let term_s = terms[term as usize].as_bytes();
        for (i, s) in students.iter().enumerate() {
            if s.status != ENROLLED {
                continue;
            }
            let penalty = ((s.abs_thr as u64 * 600) >> 32).min(120) as i32;
            let nsec = schools[s.school as usize].nsec;
            for subj in 0..4u8 {
                let r = rng.next_u64();
                let noise = (r & 0x7f) as i32 - 64;
                let x = s.ability as i32 + noise + 40 - penalty;
                let mark = match x {
                    ..20 => 4u8,
                    20..50 => 3,
                    50..110 => 2,
                    110..180 => 1,
                    _ => 0,
                };
                let k = (i % nsec[subj as usize] as usize) as u8 + 1;
                let id = self.next_grd;
                self.next_grd += 1;
                w.grade(id, i as u32, s.school, term_s, period, subj, k, mark, d)?;
                let fx = ((r >> 32) & 0xfff) as u32;
                if fx < FIX_CORRECT + 4 {
                    let fix = Fix {
                        id,
                        student: i as u32,
                        school: s.school,
                        day: d as u16,
                        kind: K_GRD,
                        withdraw: fx >= FIX_CORRECT,
                        f: [term, period, subj, k * 8 + mark],
                    };
                    schedule(fixes, rng, d, fix);
                }
            }
        }
        Ok(())
    }

    /// A quarter into the year, many of the most absent students join an attendance
    /// improvement program.
    fn attendance_improvement(&mut self, d: usize) -> io::Result<()> {
        let thr = prob_u32(0.12);
        for i in 0..self.students.len() {
            let s = self.students[i];
            if s.status == ENROLLED && s.abs_thr > thr && s.flags & F_AIP == 0 && self.rng.random::<bool>() {
                self.students[i].flags |= F_AIP;
                let id = self.next_prg;
                self.next_prg += 1;
                self.w.program(id, i as u32, 5, d)?;
            }
        }
        Ok(())
    }

    /// At the start of the second semester some sections' head counts change.
    fn section_updates(&mut self) -> io::Result<()> {
        for i in 0..self.schools.len() {
            let level = self.schools[i].level;
            let big_ok = level == MIDDLE || level == HIGH;
            let mut id = self.schools[i].sec_start;
            for subj in 0..5u8 {
                for k in 1..=self.schools[i].nsec[subj as usize] {
                    if self.rng.random::<f64>() < 0.4 {
                        let n = self.head_count(level, subj, big_ok);
                        self.w.section(id, i as u32, subj, k, n)?;
                        self.w.stats.corrections += 1;
                    }
                    id += 1;
                }
            }
        }
        Ok(())
    }

    fn tickets(&mut self, d: usize) -> io::Result<()> {
        for school in 0..self.schools.len() {
            if self.rng.random::<f64>() < P_FAC_TICKET {
                self.open_ticket(d, FACILITIES, school as u32);
            }
        }
        if !self.students.is_empty() {
            let n = poisson(&mut self.rng, self.students.len() as f64 * P_FAM_TICKET);
            for _ in 0..n {
                let k = self.rng.random_range(0..self.students.len());
                let school = self.students[k].school;
                self.open_ticket(d, FAMILY, school);
            }
        }
        let mut due = std::mem::take(&mut self.steps[d % STEP_RING]);
        due.sort_by_key(|s| s.minute);
        for step in &due {
            let id = self.next_step;
            self.next_step += 1;
            let region = self.schools[step.school as usize].ld;
            let lead = self.leads[step.ticket as usize % self.leads.len()];
            self.w.ticket(id, step, d, region, lead)?;
        }
        due.clear();
        self.steps[d % STEP_RING] = due;
        Ok(())
    }

    /// Schedules the whole life of a ticket opened on day `d`.
    fn open_ticket(&mut self, d: usize, queue: u8, school: u32) {
        let rng = &mut self.rng;
        let ticket = self.next_tkt;
        self.next_tkt += 1;
        let window = WINDOW[queue as usize];
        let (priority, category, resp_t, res_t) = if queue == FACILITIES {
            let x = rng.random::<f64>();
            let p = if x < 0.1 {
                0u8
            } else if x < 0.4 {
                1
            } else {
                2
            };
            let (a, b) = [(60.0, 540.0), (240.0, 1620.0), (540.0, 5400.0)][p as usize];
            (p, rng.random_range(0..FAC_CATS.len()) as u8, a, b)
        } else {
            let p = if rng.random::<f64>() < 0.25 { 1u8 } else { 2 };
            (p, rng.random_range(0..FAM_CATS.len()) as u8, 540.0, 2700.0)
        };
        let (ws, we) = window;
        let t0 = if rng.random::<f64>() < 0.88 {
            rng.random_range(ws..we)
        } else if rng.random::<bool>() {
            rng.random_range(ws - 90..ws)
        } else {
            rng.random_range(we..we + 240)
        };
        let frac = |rng: &mut ChaCha8Rng, ok: f64, lo: f64, hi: f64, late_hi: f64| {
            if rng.random::<f64>() < ok {
                rng.random_range(lo..hi)
            } else {
                rng.random_range(1.05..late_hi)
            }
        };
        let resp = ((frac(rng, 0.88, 0.05, 0.9, 2.0) * resp_t) as u32).max(1);
        let res = ((frac(rng, 0.85, 0.15, 0.95, 2.5) * res_t) as u32).max(resp + 5);
        let mut plan: [(u32, u8); 8] = [(0, 0); 8];
        let mut n = 0;
        let mut push = |at: u32, action: u8| {
            plan[n] = (at, action);
            n += 1;
        };
        push(resp, T_ASSIGNED);
        let mut pause = 0;
        if rng.random::<f64>() < 0.1 {
            let h = rng.random_range(resp + 1..res);
            pause = rng.random_range(60..1080);
            push(h, T_ON_HOLD);
            push(h + pause, T_RESUMED);
        }
        let mut last = res + pause;
        push(last, T_RESOLVED);
        if rng.random::<f64>() < 0.05 {
            let reopen = last + rng.random_range(30..600);
            push(reopen, T_REOPENED);
            last = reopen + rng.random_range(60..900);
            push(last, T_RESOLVED);
        }
        push(last + rng.random_range(120..1620), T_CLOSED);
        let base =
            Step { minute: t0 as u16, action: T_OPENED, queue, priority, category, assign: false, ticket, school };
        self.steps[d % STEP_RING].push(base);
        for &(at, action) in &plan[..n] {
            let (day, minute) = add_business(d, t0, at, window);
            if day >= d + STEP_RING || day >= self.cal.len() {
                break;
            }
            let step = Step { minute: minute as u16, action, assign: action == T_ASSIGNED, ..base };
            self.steps[day % STEP_RING].push(step);
        }
    }

    fn due_fixes(&mut self, d: usize) -> io::Result<()> {
        let mut due = std::mem::take(&mut self.fixes[d % FIX_RING]);
        for fix in &due {
            let (ty, prefix, source): (&[u8], &[u8], &[u8]) = match fix.kind {
                K_ATT => (b"attendance", b"att-", b"sis"),
                K_DIS => (b"discipline", b"dis-", b"sis"),
                K_GRD => (b"grade", b"grd-", b"gradebook"),
                _ => (b"health_visit", b"hv-", b"nurse"),
            };
            if fix.withdraw {
                self.w.deleted(ty, prefix, fix.id, source)?;
                self.w.stats.withdrawals += 1;
                continue;
            }
            let r = self.rng.next_u64();
            let day = fix.day as usize;
            match fix.kind {
                K_ATT => {
                    let x = r % 10;
                    let status = match fix.f[0] {
                        ABS_EXC | ABS_UNEXC if x < 5 => PRESENT,
                        ABS_EXC | ABS_UNEXC if x < 8 => ABS_EXC + ABS_UNEXC - fix.f[0],
                        ABS_EXC | ABS_UNEXC => TARDY,
                        PRESENT if x < 6 => ABS_UNEXC,
                        PRESENT => TARDY,
                        TARDY => PRESENT,
                        _ => ABS_EXC,
                    };
                    self.w.attendance(fix.id, fix.student, fix.school, day, status)?;
                }
                K_DIS => {
                    let [behavior, action, days, _] = fix.f;
                    let (behavior, action, days) = if action == REFERRAL && r % 10 < 4 {
                        (behavior, ISS, 1)
                    } else if action == ISS && r % 10 < 5 {
                        (behavior, ISS, 1 + ((days as u64 + r / 10) % 3) as u8)
                    } else {
                        let b =
                            (behavior as u64 + 1 + (r >> 8) % (BEHAVIORS.len() as u64 - 1)) % BEHAVIORS.len() as u64;
                        (b as u8, action, days)
                    };
                    self.w.discipline(fix.id, fix.student, fix.school, day, behavior, action, days)?;
                }
                K_GRD => {
                    let [term, period, subj, km] = fix.f;
                    let (k, mark) = (km / 8, km % 8);
                    // Mostly a regrade upward; never outside A..F.
                    let mark = if mark == 0 {
                        1
                    } else if mark == 4 || !r.is_multiple_of(4) {
                        mark - 1
                    } else {
                        mark + 1
                    };
                    let term_s = self.terms[term as usize].as_bytes();
                    self.w.grade(fix.id, fix.student, fix.school, term_s, period, subj, k, mark, day)?;
                }
                _ => {
                    let reason = ((fix.f[0] as u64 + 1 + r % 4) % 5) as u8;
                    self.w.health(fix.id, fix.student, fix.school, day, reason)?;
                }
            }
            self.w.stats.corrections += 1;
        }
        due.clear();
        self.fixes[d % FIX_RING] = due;
        Ok(())
    }
}

/// Queues a correction or withdrawal one to five instructional days after `d`.
fn schedule(fixes: &mut [Vec<Fix>], rng: &mut ChaCha8Rng, d: usize, fix: Fix) {
    let due = d + 1 + rng.random_range(0..5usize);
    fixes[due % FIX_RING].push(fix);
}

// ---------------------------------------------------------------------------------------
// Output

struct Writer<W: Write> {
    out: W,
    buf: Vec<u8>,
    stats: GenerateStats,
    dates: Vec<[u8; 10]>,
    offsets: Vec<&'static [u8]>,
}

#[inline]
fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn two(v: u32) -> [u8; 2] {
    [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]
}

impl<W: Write> Writer<W> {
    fn new(out: W, cal: &[NaiveDate]) -> Self {
        let dates = cal
            .iter()
            .map(|d| {
                let y = d.year().rem_euclid(10_000) as u32;
                let mut a = [0u8; 10];
                a[..2].copy_from_slice(&two(y / 100));
                a[2..4].copy_from_slice(&two(y % 100));
                a[4] = b'-';
                a[5..7].copy_from_slice(&two(d.month()));
                a[7] = b'-';
                a[8..10].copy_from_slice(&two(d.day()));
                a
            })
            .collect();
        let offsets = cal.iter().map(|&d| if is_dst(d) { &b"-07:00"[..] } else { &b"-08:00"[..] }).collect();
        Writer { out, buf: Vec::with_capacity(FLUSH_AT + 4096), stats: GenerateStats::default(), dates, offsets }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    #[inline]
    fn raw(&mut self, x: &[u8]) {
        self.buf.extend_from_slice(x);
    }

    #[inline]
    fn num(&mut self, v: u64) {
        put_u64(&mut self.buf, v);
    }

    /// `{"type":"<ty>","id":"<prefix><id>","source":"<src>"`
    #[inline]
    fn head(&mut self, ty: &[u8], prefix: &[u8], id: u64, src: &[u8]) {
        self.raw(b"{\"type\":\"");
        self.raw(ty);
        self.raw(b"\",\"id\":\"");
        self.raw(prefix);
        self.num(id);
        self.raw(b"\",\"source\":\"");
        self.raw(src);
        self.raw(b"\"");
    }

    #[inline]
    fn key(&mut self, key: &[u8]) {
        self.raw(b",\"");
        self.raw(key);
        self.raw(b"\":");
    }

    #[inline]
    fn ref_id(&mut self, key: &[u8], prefix: &[u8], n: u64) {
        self.key(key);
        self.raw(b"\"");
        self.raw(prefix);
        self.num(n);
        self.raw(b"\"");
    }

    #[inline]
    fn str_field(&mut self, key: &[u8], val: &[u8]) {
        self.key(key);
        self.raw(b"\"");
        self.raw(val);
        self.raw(b"\"");
    }

    #[inline]
    fn date_field(&mut self, key: &[u8], day: usize) {
        self.key(key);
        self.raw(b"\"");
        let d = self.dates[day];
        self.raw(&d);
        self.raw(b"\"");
    }

    fn opt_date_field(&mut self, key: &[u8], day: Option<usize>) {
        match day {
            Some(day) => self.date_field(key, day),
            None => {
                self.key(key);
                self.raw(b"null");
            }
        }
    }

    #[inline]
    fn end(&mut self) -> io::Result<()> {
        self.buf.extend_from_slice(b"}\n");
        self.stats.lines += 1;
        self.stats.records += 1;
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn end_malformed(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        self.stats.lines += 1;
        self.stats.malformed += 1;
        Ok(())
    }

    fn school(&mut self, i: u32, level: u8, ld: u8, community: u16) -> io::Result<()> {
        self.head(b"school", b"sch-", i as u64 + 1, b"sis");
        self.key(b"name");
        self.raw(b"\"");
        let names = SCHOOL_NAMES.len() as u32;
        self.raw(SCHOOL_NAMES[(i % names) as usize].as_bytes());
        self.raw(b" ");
        self.raw(LEVEL_NAMES[level as usize].as_bytes());
        if i >= names {
            self.raw(b" No. ");
            self.num((i / names + 1) as u64);
        }
        self.raw(b"\"");
        self.str_field(b"level", LEVELS[level as usize].as_bytes());
        self.str_field(b"local_district", LOCAL_DISTRICTS[ld as usize].as_bytes());
        self.key(b"community");
        self.raw(b"\"COS-");
        self.raw(&two(community as u32 + 1));
        if community >= 99 {
            self.buf.truncate(self.buf.len() - 2);
            self.num(community as u64 + 1);
        }
        self.raw(b"\"");
        self.key(b"region");
        self.raw(b"\"R");
        self.num(ld as u64 + 1);
        self.raw(b"\"");
        self.end()
    }

    fn staff(
        &mut self,
        idx: u32,
        role: &str,
        schools: std::ops::Range<u32>,
        region: Option<u8>,
        ld: Option<u8>,
    ) -> io::Result<()> {
        let h = mix(idx as u64 ^ 0x5eed);
        let first = FIRST[(h % FIRST.len() as u64) as usize].as_bytes();
        let last = LAST[((h >> 16) % LAST.len() as u64) as usize].as_bytes();
        self.head(b"staff", b"stf-", idx as u64 + 1, b"hr");
        self.key(b"name");
        self.raw(b"\"");
        self.buf.push(first[0].to_ascii_uppercase());
        self.raw(&first[1..]);
        self.raw(b" ");
        self.buf.push(last[0].to_ascii_uppercase());
        self.raw(&last[1..]);
        self.raw(b"\"");
        self.key(b"email");
        self.raw(b"\"");
        self.raw(first);
        self.raw(b".");
        self.raw(last);
        self.num(idx as u64 + 1);
        self.raw(b"@district.example.org\"");
        self.str_field(b"role", role.as_bytes());
        self.key(b"schools");
        self.raw(b"[");
        for (k, s) in schools.enumerate() {
            if k > 0 {
                self.raw(b",");
            }
            self.raw(b"\"sch-");
            self.num(s as u64 + 1);
            self.raw(b"\"");
        }
        self.raw(b"]");
        if let Some(r) = region {
            self.key(b"region");
            self.raw(b"\"R");
            self.num(r as u64 + 1);
            self.raw(b"\"");
        }
        if let Some(ld) = ld {
            self.str_field(b"local_district", LOCAL_DISTRICTS[ld as usize].as_bytes());
        }
        self.end()
    }

    fn course(&mut self, school: u32, subj: u8, k: u8) {
        self.key(b"course_id");
        self.raw(b"\"sch-");
        self.num(school as u64 + 1);
        self.raw(b"-");
        self.raw(SUBJ_CODE[subj as usize].as_bytes());
        self.raw(b"-");
        self.num(k as u64);
        self.raw(b"\"");
    }

    fn section(&mut self, id: u32, school: u32, subj: u8, k: u8, enrolled: u32) -> io::Result<()> {
        self.head(b"section", b"sec-", id as u64, b"sis");
        self.ref_id(b"school_id", b"sch-", school as u64 + 1);
        self.course(school, subj, k);
        self.str_field(b"subject", SUBJECTS[subj as usize].as_bytes());
        self.key(b"enrolled");
        self.num(enrolled as u64);
        self.end()
    }

    fn enrollment(
        &mut self,
        id: u32,
        stu: u32,
        school: u32,
        grade: i8,
        entry: usize,
        exit: Option<usize>,
    ) -> io::Result<()> {
        self.head(b"enrollment", b"enr-", id as u64, b"sis");
        self.ref_id(b"student_id", b"stu-", stu as u64 + 1);
        self.ref_id(b"school_id", b"sch-", school as u64 + 1);
        self.key(b"grade");
        if grade < 0 {
            self.raw(b"-");
        }
        self.num(grade.unsigned_abs() as u64);
        self.date_field(b"entry_date", entry);
        self.opt_date_field(b"exit_date", exit);
        self.end()
    }

    fn program(&mut self, id: u64, stu: u32, program: u8, begin: usize) -> io::Result<()> {
        self.head(b"program", b"prg-", id, PROGRAM_SOURCES[program as usize].as_bytes());
        self.ref_id(b"student_id", b"stu-", stu as u64 + 1);
        self.str_field(b"program", PROGRAMS[program as usize].as_bytes());
        self.date_field(b"begin_date", begin);
        self.opt_date_field(b"end_date", None);
        self.end()
    }

    fn caseload(
        &mut self,
        id: u32,
        stu: u32,
        staff: u32,
        role: &str,
        begin: usize,
        end: Option<usize>,
    ) -> io::Result<()> {
        self.head(b"caseload", b"csl-", id as u64, b"sis");
        self.ref_id(b"student_id", b"stu-", stu as u64 + 1);
        self.ref_id(b"staff_id", b"stf-", staff as u64 + 1);
        self.str_field(b"role", role.as_bytes());
        self.date_field(b"begin_date", begin);
        self.opt_date_field(b"end_date", end);
        self.end()
    }

    #[inline]
    fn attendance(&mut self, id: u64, stu: u32, school: u32, day: usize, status: u8) -> io::Result<()> {
        self.raw(b"{\"type\":\"attendance\",\"id\":\"att-");
        self.num(id);
        self.raw(b"\",\"source\":\"sis\",\"student_id\":\"stu-");
        self.num(stu as u64 + 1);
        self.raw(b"\",\"school_id\":\"sch-");
        self.num(school as u64 + 1);
        self.raw(b"\",\"date\":\"");
        let d = self.dates[day];
        self.raw(&d);
        self.raw(b"\",\"status\":\"");
        self.raw(STATUS[status as usize].as_bytes());
        self.raw(b"\"");
        self.end()
    }

    #[allow(clippy::too_many_arguments)]
    fn discipline(
        &mut self,
        id: u64,
        stu: u32,
        school: u32,
        day: usize,
        behavior: u8,
        action: u8,
        days: u8,
    ) -> io::Result<()> {
        self.head(b"discipline", b"dis-", id, b"sis");
        self.ref_id(b"student_id", b"stu-", stu as u64 + 1);
        self.ref_id(b"school_id", b"sch-", school as u64 + 1);
        self.date_field(b"date", day);
        self.str_field(b"behavior", BEHAVIORS[behavior as usize].as_bytes());
        self.str_field(b"action", ACTIONS[action as usize].as_bytes());
        self.key(b"days");
        self.num(days as u64);
        self.end()
    }

    #[allow(clippy::too_many_arguments)]
    fn grade(
        &mut self,
        id: u64,
        stu: u32,
        school: u32,
        term: &[u8],
        period: u8,
        subj: u8,
        k: u8,
        mark: u8,
        day: usize,
    ) -> io::Result<()> {
        self.head(b"grade", b"grd-", id, b"gradebook");
        self.ref_id(b"student_id", b"stu-", stu as u64 + 1);
        self.ref_id(b"school_id", b"sch-", school as u64 + 1);
        self.str_field(b"term", term);
        self.str_field(b"grading_period", PERIODS[period as usize].as_bytes());
        self.course(school, subj, k);
        self.str_field(b"subject", SUBJECTS[subj as usize].as_bytes());
        self.str_field(b"mark", MARKS[mark as usize].as_bytes());
        self.date_field(b"date", day);
        self.end()
    }

    fn health(&mut self, id: u64, stu: u32, school: u32, day: usize, reason: u8) -> io::Result<()> {
        self.head(b"health_visit", b"hv-", id, b"nurse");
        self.ref_id(b"student_id", b"stu-", stu as u64 + 1);
        self.ref_id(b"school_id", b"sch-", school as u64 + 1);
        self.date_field(b"date", day);
        self.str_field(b"reason", REASONS[reason as usize].as_bytes());
        self.end()
    }

    fn ticket(&mut self, id: u64, step: &Step, day: usize, region: u8, lead: u32) -> io::Result<()> {
        self.head(b"ticket", b"tks-", id, b"helpdesk");
        self.ref_id(b"ticket_id", b"tkt-", step.ticket as u64);
        self.str_field(b"queue", QUEUES[step.queue as usize].as_bytes());
        self.key(b"at");
        self.raw(b"\"");
        let d = self.dates[day];
        self.raw(&d);
        self.raw(b"T");
        let m = step.minute as u32;
        self.raw(&two(m / 60 % 24));
        self.raw(b":");
        self.raw(&two(m % 60));
        self.raw(b":");
        self.raw(&two((step.ticket.wrapping_mul(37) + step.action as u32 * 11) % 60));
        let off = self.offsets[day];
        self.raw(off);
        self.raw(b"\"");
        self.str_field(b"action", T_ACTIONS[step.action as usize].as_bytes());
        if step.action == T_OPENED {
            self.ref_id(b"school_id", b"sch-", step.school as u64 + 1);
            let cats: &[&str] = if step.queue == FACILITIES { &FAC_CATS } else { &FAM_CATS };
            self.str_field(b"category", cats[step.category as usize].as_bytes());
            self.str_field(b"priority", PRIORITIES[step.priority as usize].as_bytes());
        }
        if step.assign {
            if step.queue == FACILITIES {
                self.key(b"assignee");
                self.raw(b"\"facilities-R");
                self.num(region as u64 + 1);
                self.raw(b"\"");
            } else {
                self.ref_id(b"assignee", b"stf-", lead as u64 + 1);
            }
        }
        self.end()
    }

    fn deleted(&mut self, ty: &[u8], prefix: &[u8], id: u64, src: &[u8]) -> io::Result<()> {
        self.head(ty, prefix, id, src);
        self.raw(b",\"deleted\":true");
        self.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    /// The 2026-27 calendar of `config/example.toml`: 180 instructional days.
    fn calendar() -> Vec<NaiveDate> {
        let d = |m: u32, day: u32| {
            let y = if m >= 7 { 2026 } else { 2027 };
            NaiveDate::from_ymd_opt(y, m, day).unwrap()
        };
        let mut holidays = vec![d(9, 7), d(9, 25), d(11, 11), d(1, 18), d(2, 15), d(5, 31)];
        holidays.extend((23..=27).map(|x| d(11, x)));
        holidays.extend((21..=31).map(|x| d(12, x)));
        holidays.extend((1..=8).map(|x| d(1, x)));
        holidays.extend((29..=31).map(|x| d(3, x)));
        holidays.extend((1..=2).map(|x| d(4, x)));
        let mut days = Vec::new();
        let mut day = d(8, 31);
        while day <= d(6, 21) {
            if day.weekday().num_days_from_monday() < 5 && !holidays.contains(&day) {
                days.push(day);
            }
            day = day.succ_opt().unwrap();
        }
        days
    }

    fn run(opts: &GenerateOptions, cal: &[NaiveDate]) -> (Vec<u8>, GenerateStats) {
        let mut out = Vec::new();
        let stats = generate(opts, cal, &mut out, |_, _| {}).unwrap();
        (out, stats)
    }

    fn opts(students: u32, schools: u32, days: u32, seed: u64) -> GenerateOptions {
        GenerateOptions { students, schools, days, seed, malformed_lines: true }
    }

    fn date(v: &Value) -> Result<NaiveDate, String> {
        let s = v.as_str().ok_or("date not a string")?;
        if s.len() != 10 {
            return Err(format!("bad date {s}"));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("bad date {s}"))
    }

    /// Checks a record against events.md; Ok(type) when it is valid.
    fn validate(v: &Value) -> Result<String, String> {
        let o = v.as_object().ok_or("not an object")?;
        let s = |k: &str| o.get(k).and_then(Value::as_str).ok_or(format!("missing {k}"));
        let one_of = |k: &str, dom: &[&str]| -> Result<(), String> {
            let x = s(k)?;
            if dom.contains(&x) {
                Ok(())
            } else {
                Err(format!("{k} = {x} outside its domain"))
            }
        };
        let opt_date = |k: &str| match o.get(k) {
            Some(Value::Null) => Ok(()),
            Some(x) => date(x).map(|_| ()),
            None => Err(format!("missing {k}")),
        };
        let req_date = |k: &str| o.get(k).ok_or(format!("missing {k}")).and_then(date).map(|_| ());
        let ty = s("type")?.to_string();
        s("id")?;
        s("source")?;
        if o.get("deleted") == Some(&Value::Bool(true)) {
            return Ok(ty);
        }
        match ty.as_str() {
            "school" => {
                s("name")?;
                one_of("level", &LEVELS)?;
                s("local_district")?;
                s("community")?;
                s("region")?;
            }
            "staff" => {
                s("name")?;
                s("email")?;
                one_of(
                    "role",
                    &[
                        "teacher",
                        "counselor",
                        "psw",
                        "nurse",
                        "principal",
                        "maintenance_supervisor",
                        "helpdesk_lead",
                        "district_admin",
                    ],
                )?;
                let schools = o.get("schools").and_then(Value::as_array).ok_or("missing schools")?;
                if !schools.iter().all(Value::is_string) {
                    return Err("schools not strings".into());
                }
            }
            "enrollment" => {
                s("student_id")?;
                s("school_id")?;
                let g = o.get("grade").and_then(Value::as_i64).ok_or("missing grade")?;
                if !(-1..=12).contains(&g) {
                    return Err("grade".into());
                }
                req_date("entry_date")?;
                opt_date("exit_date")?;
            }
            "attendance" => {
                s("student_id")?;
                s("school_id")?;
                req_date("date")?;
                one_of("status", &STATUS)?;
            }
            "discipline" => {
                s("student_id")?;
                s("school_id")?;
                req_date("date")?;
                s("behavior")?;
                one_of("action", &["referral", "in_school_suspension", "out_of_school_suspension", "expulsion"])?;
                o.get("days").and_then(Value::as_f64).ok_or("missing days")?;
            }
            "grade" => {
                s("student_id")?;
                s("school_id")?;
                s("term")?;
                s("grading_period")?;
                s("course_id")?;
                one_of("subject", &SUBJECTS)?;
                one_of("mark", &MARKS)?;
                req_date("date")?;
            }
            "health_visit" => {
                s("student_id")?;
                s("school_id")?;
                req_date("date")?;
                one_of("reason", &REASONS)?;
            }
            "program" => {
                s("student_id")?;
                one_of(
                    "program",
                    &[
                        "homeless",
                        "foster_youth",
                        "group_home",
                        "juvenile_returnee",
                        "attendance_improvement",
                        "english_learner",
                        "special_education",
                        "low_income",
                    ],
                )?;
                req_date("begin_date")?;
                opt_date("end_date")?;
            }
            "caseload" => {
                s("student_id")?;
                s("staff_id")?;
                one_of("role", &["counselor", "psw"])?;
                req_date("begin_date")?;
                opt_date("end_date")?;
            }
            "section" => {
                s("school_id")?;
                s("course_id")?;
                one_of("subject", &SUBJECTS)?;
                o.get("enrolled").and_then(Value::as_u64).ok_or("missing enrolled")?;
            }
            "ticket" => {
                s("ticket_id")?;
                one_of("queue", &QUEUES)?;
                chrono::DateTime::parse_from_rfc3339(s("at")?).map_err(|e| format!("bad at: {e}"))?;
                one_of("action", &T_ACTIONS)?;
                if s("action")? == "opened" {
                    s("school_id")?;
                    s("category")?;
                    one_of("priority", &PRIORITIES)?;
                }
            }
            other => return Err(format!("unknown type {other}")),
        }
        Ok(ty)
    }

    #[test]
    fn generate_is_deterministic_for_a_seed() {
        let cal = calendar();
        let o = opts(800, 6, 25, 7);
        let (a, sa) = run(&o, &cal);
        let (b, sb) = run(&o, &cal);
        assert!(a == b, "same seed, different bytes");
        assert_eq!(sa, sb);
        assert_eq!(sa.lines as usize, a.iter().filter(|&&c| c == b'\n').count());
        let (c, _) = run(&opts(800, 6, 25, 8), &cal);
        assert!(a != c, "another seed, same bytes");
        // Fewer days: exactly a prefix of the longer run.
        let (p, _) = run(&opts(800, 6, 12, 7), &cal);
        assert!(a.starts_with(&p));
    }

    #[test]
    fn generate_calls_on_day_after_each_day() {
        let cal = calendar();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        generate(&opts(300, 4, 5, 1), &cal, &mut out, |i, d| seen.push((i, d))).unwrap();
        let want: Vec<_> = cal[..5].iter().copied().enumerate().collect();
        assert_eq!(seen, want);
        let (_, stats) = run(&GenerateOptions { days: 0, ..opts(300, 4, 0, 1) }, &cal);
        assert!(stats.records > 300 && stats.malformed == 0);
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn generate_has_the_district_shapes() {
        let cal = calendar();
        let (bytes, stats) = run(&opts(2_000, 10, 60, 42), &cal);
        let text = std::str::from_utf8(&bytes).unwrap();

        let mut rejected = 0u64;
        let mut accepted = 0u64;
        let mut by_type: HashMap<String, u64> = HashMap::new();
        // Latest version of each record.
        let mut latest: HashMap<(String, String), Option<Value>> = HashMap::new(); // None: withdrawn
        let mut dated_originals = 0u64;
        let mut dated_corrections = 0u64;
        let mut resent = 0u64;
        let mut withdrawn = 0u64;
        let mut ticket_last: HashMap<String, chrono::DateTime<chrono::FixedOffset>> = HashMap::new();
        for line in text.lines() {
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => {
                    rejected += 1;
                    continue;
                }
            };
            let ty = match validate(&v) {
                Ok(ty) => ty,
                Err(_) => {
                    rejected += 1;
                    continue;
                }
            };
            accepted += 1;
            *by_type.entry(ty.clone()).or_default() += 1;
            let key = (ty.clone(), v["id"].as_str().unwrap().to_string());
            let deleted = v.get("deleted") == Some(&Value::Bool(true));
            let dated = matches!(ty.as_str(), "attendance" | "discipline" | "grade" | "health_visit");
            match latest.get(&key) {
                Some(_) if deleted => withdrawn += 1,
                Some(_) => {
                    resent += 1;
                    if dated {
                        dated_corrections += 1;
                    }
                }
                None => {
                    assert!(!deleted, "withdrawal of an unseen record: {line}");
                    if dated {
                        dated_originals += 1;
                    }
                }
            }
            if ty == "ticket" && !deleted {
                let at = chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap();
                let t = v["ticket_id"].as_str().unwrap().to_string();
                match ticket_last.get(&t) {
                    Some(prev) => assert!(*prev < at, "ticket steps out of order: {line}"),
                    None => assert_eq!(v["action"], "opened", "{line}"),
                }
                ticket_last.insert(t, at);
            }
            latest.insert(key, if deleted { None } else { Some(v) });
        }
        assert_eq!(stats.lines, text.lines().count() as u64);
        assert_eq!(stats.malformed, rejected);
        assert!(rejected >= 3, "malformed lines: {rejected}");
        assert_eq!(stats.records, accepted);
        assert_eq!(stats.corrections, resent);
        assert_eq!(stats.withdrawals, withdrawn);
        for ty in [
            "school",
            "staff",
            "section",
            "enrollment",
            "program",
            "caseload",
            "attendance",
            "discipline",
            "grade",
            "health_visit",
            "ticket",
        ] {
            assert!(by_type.get(ty).copied().unwrap_or(0) > 0, "no {ty} records");
        }

        // Final state.
        let live = || latest.iter().filter_map(|((ty, _), v)| v.as_ref().map(|v| (ty.as_str(), v)));
        let mut enrollments: HashMap<&str, Vec<(&str, NaiveDate, Option<NaiveDate>)>> = HashMap::new();
        let mut programs: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut counselors: HashMap<&str, Vec<(NaiveDate, Option<NaiveDate>)>> = HashMap::new();
        for (ty, v) in live() {
            let stu = || v["student_id"].as_str().unwrap();
            let end = |k: &str| {
                if v[k].is_null() {
                    None
                } else {
                    Some(date(&v[k]).unwrap())
                }
            };
            match ty {
                "enrollment" => enrollments.entry(stu()).or_default().push((
                    v["school_id"].as_str().unwrap(),
                    date(&v["entry_date"]).unwrap(),
                    end("exit_date"),
                )),
                "program" => {
                    programs.entry(v["program"].as_str().unwrap()).or_default().insert(stu());
                }
                "caseload" if v["role"] == "counselor" => {
                    counselors.entry(stu()).or_default().push((date(&v["begin_date"]).unwrap(), end("end_date")))
                }
                _ => {}
            }
        }
        let students = enrollments.len() as f64;
        let mut shares = Vec::new();
        for (p, want, tol) in [
            ("low_income", 0.80, 0.04),
            ("english_learner", 0.20, 0.03),
            ("special_education", 0.13, 0.03),
            ("homeless", 0.03, 0.015),
            ("foster_youth", 0.01, 0.008),
        ] {
            let share = programs.get(p).map_or(0, |s| s.len()) as f64 / students;
            shares.push(format!("{p} {:.1}%", share * 100.0));
            assert!((share - want).abs() <= tol, "{p}: {share:.4} vs {want}");
        }

        // Attendance: one a student-day, covered by an enrollment at that school and by a
        // counselor caseload.
        let mut days: HashMap<&str, (u32, u32)> = HashMap::new();
        let mut student_days = HashSet::new();
        for (ty, v) in live() {
            if ty != "attendance" {
                continue;
            }
            let stu = v["student_id"].as_str().unwrap();
            let school = v["school_id"].as_str().unwrap();
            let d = date(&v["date"]).unwrap();
            assert!(student_days.insert((stu, d)), "two attendance records for {stu} on {d}");
            let covered = enrollments[stu]
                .iter()
                .any(|&(s, entry, exit)| s == school && entry <= d && exit.is_none_or(|x| d < x));
            assert!(covered, "attendance not covered by an enrollment: {v}");
            let csl = counselors.get(stu).is_some_and(|c| c.iter().any(|&(b, e)| b <= d && e.is_none_or(|e| d < e)));
            assert!(csl, "no counselor for {stu} on {d}");
            let e = days.entry(stu).or_default();
            e.0 += 1;
            if matches!(v["status"].as_str().unwrap(), "absent_excused" | "absent_unexcused" | "suspended") {
                e.1 += 1;
            }
        }
        let eligible: Vec<_> = days.values().filter(|d| d.0 >= 31).collect();
        let chronic = eligible.iter().filter(|d| d.1 * 10 >= d.0).count() as f64 / eligible.len() as f64;
        let absent: u32 = days.values().map(|d| d.1).sum();
        let enrolled: u32 = days.values().map(|d| d.0).sum();
        let correction_share = dated_corrections as f64 / dated_originals as f64;
        eprintln!(
            "shapes: {} | chronically absent {:.1}% of {} students with >= 31 days | absence rate {:.1}% | \
             dated records corrected {:.2}% | all corrections {:.2}% of records | withdrawals {} | malformed {} | {:?}",
            shares.join(", "),
            chronic * 100.0,
            eligible.len(),
            absent as f64 * 100.0 / enrolled as f64,
            correction_share * 100.0,
            stats.corrections as f64 * 100.0 / stats.records as f64,
            stats.withdrawals,
            stats.malformed,
            by_type,
        );
        assert!((0.15..=0.35).contains(&chronic), "chronic absence {chronic}");
        assert!((0.005..=0.02).contains(&correction_share), "corrections {correction_share}");
        assert!(stats.withdrawals > 0);
    }

    /// `cargo test --release -p wholechild generate -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn generate_speed() {
        let cal = calendar();
        let start = std::time::Instant::now();
        let stats = generate(&opts(100_000, 170, 20, 1), &cal, io::sink(), |_, _| {}).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{} lines in {:.2} s: {:.2} million lines/s ({:?})",
            stats.lines,
            secs,
            stats.lines as f64 / secs / 1e6,
            stats
        );
    }
}
