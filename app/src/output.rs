//! Writing indicator rows as NDJSON, with interned identifiers resolved to their text.

use dataflows::{Category, RollupKey};
use ingest::{Names, Rejected};
use model::{Interner, RollupLevel, SchoolInfo, SchoolRow, StudentRow, Sym};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::io::{self, Write};

fn json_text(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

fn optional_name(interner: &Interner, sym: Option<Sym>) -> String {
    sym.map_or_else(|| String::from("null"), |sym| json_text(interner.resolve(sym)))
}

/// One student row as a JSON object (no newline). `extra` fields come first (e.g. `as_of`).
pub fn student_json(names: &Names, row: &StudentRow, extra: &str) -> String {
    let programs: Vec<String> = row.programs.iter().map(|p| json_text(p.as_str())).collect();
    format!(
        concat!(
            "{{{}\"student_id\":{},\"days_enrolled\":{},\"days_absent\":{},\"attendance_rate\":{},",
            "\"chronically_absent\":{},\"days_enrolled_30\":{},\"days_absent_30\":{},\"attendance_rate_30\":{},",
            "\"suspensions\":{},\"suspension_days\":{}.{:02},\"incidents_30\":{},\"failing_marks\":{},",
            "\"failing_core\":{},\"health_visits_30\":{},\"programs\":[{}],\"counselor\":{},\"school\":{},",
            "\"attendance_flag\":{},\"behavior_flag\":{},\"course_flag\":{},\"tier\":{}}}"
        ),
        extra,
        json_text(names.students.resolve(row.student)),
        row.days_enrolled,
        row.days_absent,
        row.attendance_rate(),
        row.chronically_absent,
        row.days_enrolled_30,
        row.days_absent_30,
        row.attendance_rate_30(),
        row.suspensions,
        row.suspension_days_hundredths / 100,
        row.suspension_days_hundredths % 100,
        row.incidents_30,
        row.failing_marks,
        row.failing_core,
        row.health_visits_30,
        programs.join(","),
        optional_name(&names.staff, row.counselor),
        optional_name(&names.schools, row.school),
        row.attendance_flag,
        row.behavior_flag,
        row.course_flag,
        row.tier,
    )
}

/// The indicator fields shared by school and rollup rows (no braces).
fn school_fields(row: &SchoolRow) -> String {
    format!(
        concat!(
            "\"enrolled\":{},\"cumulative_enrollment\":{},\"chronic_absence_rate\":{},\"suspension_rate\":{},",
            "\"tier_1\":{},\"tier_2\":{},\"tier_3\":{},\"oversized_sections\":{}"
        ),
        row.enrolled,
        row.cumulative_enrollment,
        row.chronic_absence_rate(),
        row.suspension_rate(),
        row.tier_1,
        row.tier_2,
        row.tier_3,
        row.oversized_sections,
    )
}

pub fn school_json(names: &Names, school: Sym, row: &SchoolRow, extra: &str) -> String {
    format!("{{{extra}\"school_id\":{},{}}}", json_text(names.schools.resolve(school)), school_fields(row))
}

pub fn rollup_json(names: &Names, level: RollupLevel, id: Option<Sym>, row: &SchoolRow, extra: &str) -> String {
    let id = id.map_or_else(|| json_text("district"), |id| json_text(names.areas.resolve(id)));
    format!("{{{extra}\"level\":\"{}\",\"id\":{id},{}}}", level.as_str(), school_fields(row))
}

pub fn rejected_json(rejected: &Rejected) -> String {
    format!(
        "{{\"line\":{},\"reason\":{},\"raw\":{}}}",
        rejected.line,
        json_text(&rejected.reason.to_string()),
        json_text(&rejected.raw)
    )
}

/// School and rollup rows assembled from the dataflows' counts and directory.
pub struct SchoolTables {
    /// Per school record in force, by school id text.
    pub schools: BTreeMap<String, (Sym, SchoolRow)>,
    /// Per (level, id text): communities, local districts, the district.
    pub rollups: BTreeMap<(RollupLevel, String), (Option<Sym>, SchoolRow)>,
}

fn add(row: &mut SchoolRow, category: Category, count: i64) {
    let count = count.max(0) as u64;
    match category {
        Category::Enrolled => row.enrolled += count,
        Category::Tier(1) => row.tier_1 += count,
        Category::Tier(2) => row.tier_2 += count,
        Category::Tier(_) => row.tier_3 += count,
        Category::SchoolYear => row.cumulative_enrollment += count,
        Category::ChronicEligible => row.chronic_eligible += count,
        Category::ChronicallyAbsent => row.chronically_absent += count,
        Category::Suspended => row.suspended += count,
        Category::OversizedSection => row.oversized_sections += count,
    }
}

pub fn school_tables(
    names: &Names,
    counts: &FxHashMap<(RollupKey, Category), i64>,
    directory: &FxHashMap<(Sym, SchoolInfo), i64>,
) -> SchoolTables {
    let mut by_key: FxHashMap<RollupKey, SchoolRow> = FxHashMap::default();
    for (&(key, category), &count) in counts {
        add(by_key.entry(key).or_default(), category, count);
    }
    let row_of = |key| by_key.get(&key).copied().unwrap_or_default();
    let mut schools = BTreeMap::new();
    let mut rollups = BTreeMap::new();
    for &(school, info) in directory.keys() {
        schools.insert(names.schools.resolve(school).to_string(), (school, row_of(RollupKey::School(school))));
        for (level, id, key) in [
            (RollupLevel::Community, info.community, RollupKey::Community(info.community)),
            (RollupLevel::LocalDistrict, info.local_district, RollupKey::LocalDistrict(info.local_district)),
        ] {
            rollups.insert((level, names.areas.resolve(id).to_string()), (Some(id), row_of(key)));
        }
    }
    rollups.insert((RollupLevel::District, String::from("district")), (None, row_of(RollupKey::District)));
    SchoolTables { schools, rollups }
}

/// Writes lines to a file, buffered.
pub fn write_lines(path: &std::path::Path, lines: impl IntoIterator<Item = String>) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    for line in lines {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
