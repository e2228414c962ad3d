//! Every rejection reason: the line is set aside with its number, reason and text, and
//! nothing else is lost (the figures equal those of the valid lines alone).

use std::path::{Path, PathBuf};
use std::process::Command;

fn replay(events: &Path, out: &Path) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml");
    let status = Command::new(env!("CARGO_BIN_EXE_wholechild"))
        .args(["replay", "--config", config.to_str().unwrap(), "--events", events.to_str().unwrap(), "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wholechild-rejected-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const VALID: &[&str] = &[
    r#"{"type":"school","id":"k1","source":"sis","name":"A","level":"middle","local_district":"ld1","community":"c1","region":"r1"}"#,
    r#"{"type":"enrollment","id":"e1","source":"sis","student_id":"s1","school_id":"k1","grade":7,"entry_date":"2026-08-31","exit_date":null}"#,
    r#"{"type":"enrollment","id":"e2","source":"sis","student_id":"s2","school_id":"k1","grade":7,"entry_date":"2026-08-31"}"#,
    r#"{"type":"attendance","id":"a1","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","status":"absent_excused"}"#,
    r#"{"type":"discipline","id":"d1","source":"sis","student_id":"s2","school_id":"k1","date":"2026-09-02","behavior":"x","action":"out_of_school_suspension","days":2}"#,
    r#"{"type":"ticket","id":"t1","source":"helpdesk","ticket_id":"T1","queue":"facilities","at":"2026-09-03T08:00:00-07:00","action":"opened","school_id":"k1","category":"hvac","priority":"urgent"}"#,
];

/// (line, the reason's expected wording)
const BAD: &[(&str, &str)] = &[
    (r#"{"type":"attendance","id":"b1","source":"sis","student_id":"s1""#, "invalid JSON: EOF while parsing"),
    (r#"[1,2,3]"#, "field `(record)`: expected a JSON object"),
    (
        r#"{"type":"enrollment","id":"b2","source":"sis","student_id":"s1","school_id":"k1","grade":"7","entry_date":"2026-08-31"}"#,
        "field `grade`: expected an integer",
    ),
    (
        r#"{"type":"attendance","id":"b3","source":"sis","student_id":7,"school_id":"k1","date":"2026-09-01","status":"present"}"#,
        "field `student_id`: expected a string",
    ),
    (r#"{"id":"b4","source":"sis"}"#, "missing required field `type`"),
    (r#"{"type":"attendance","source":"sis"}"#, "missing required field `id` for type `attendance`"),
    (r#"{"type":"attendance","id":"b5","student_id":"s1"}"#, "missing required field `source` for type `attendance`"),
    (
        r#"{"type":"discipline","id":"b6","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","behavior":"x","days":0}"#,
        "missing required field `action` for type `discipline`",
    ),
    (r#"{"type":"homework","id":"b7","source":"sis"}"#, "field `type`: expected one of: school staff"),
    (
        r#"{"type":"attendance","id":"b8","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","status":"half_day"}"#,
        "field `status`: expected one of: present tardy",
    ),
    (
        r#"{"type":"health_visit","id":"b9","source":"nurse","student_id":"s1","school_id":"k1","date":"2026-02-30","reason":"illness"}"#,
        "field `date`: expected a date YYYY-MM-DD",
    ),
    (
        r#"{"type":"ticket","id":"b10","source":"helpdesk","ticket_id":"T2","queue":"family","at":"2026-09-03 08:00","action":"opened","school_id":"k1","category":"x","priority":"urgent"}"#,
        "field `at`: expected an RFC 3339 instant with offset",
    ),
    (
        r#"{"type":"enrollment","id":"b11","source":"sis","student_id":"s1","school_id":"k1","grade":13,"entry_date":"2026-08-31"}"#,
        "field `grade`: out of range (-1 to 12)",
    ),
    (
        r#"{"type":"program","id":"b12","source":"sis","student_id":"s1","program":"homeless","begin_date":"2026-09-10","end_date":"2026-09-01"}"#,
        "field `end_date` is before `begin_date`",
    ),
];

#[test]
fn every_rejection_reason_is_kept_with_its_line_and_nothing_else_is_lost() {
    let dir = scratch();
    // Interleave: valid, bad, valid, bad, ...
    let mut mixed = Vec::new();
    let mut expected = Vec::new();
    for (index, (bad, reason)) in BAD.iter().enumerate() {
        if let Some(valid) = VALID.get(index) {
            mixed.push(valid.to_string());
        }
        mixed.push(bad.to_string());
        expected.push((mixed.len(), *bad, *reason));
    }
    std::fs::write(dir.join("mixed.ndjson"), mixed.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("valid.ndjson"), VALID.join("\n") + "\n").unwrap();
    replay(&dir.join("mixed.ndjson"), &dir.join("mixed"));
    replay(&dir.join("valid.ndjson"), &dir.join("valid"));

    let rejected: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("mixed/rejected.ndjson"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rejected.len(), BAD.len());
    for (row, (line, raw, reason)) in rejected.iter().zip(&expected) {
        assert_eq!(row["line"], *line as u64);
        assert_eq!(row["raw"], *raw);
        let text = row["reason"].as_str().unwrap();
        assert!(text.starts_with(reason), "line {line}: `{text}` should start with `{reason}`");
    }
    for file in ["students.ndjson", "schools.ndjson", "rollups.ndjson"] {
        let with_bad = std::fs::read_to_string(dir.join("mixed").join(file)).unwrap();
        assert!(!with_bad.is_empty());
        assert_eq!(with_bad, std::fs::read_to_string(dir.join("valid").join(file)).unwrap(), "{file}");
    }
    assert!(std::fs::read_to_string(dir.join("valid/rejected.ndjson")).unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reasons_never_quote_the_record() {
    for (line, _) in BAD {
        let reason = ingest::decode_line(line.as_bytes()).unwrap_err().to_string();
        for value in ["s1", "half_day", "2026-02-30", "homework", "b12"] {
            if line.contains(value) {
                assert!(!reason.contains(value), "`{reason}` quotes `{value}`");
            }
        }
    }
}
