//! The `wholechild replay` and `generate` commands, run as a user runs them.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wholechild")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wholechild-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml")
}

fn run(args: &[&str]) -> String {
    let output = Command::new(binary()).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stderr).unwrap()
}

fn generate(dir: &Path, students: &str, days: &str) -> PathBuf {
    let events = dir.join("events.ndjson");
    run(&[
        "generate",
        "--students",
        students,
        "--schools",
        "6",
        "--days",
        days,
        "--seed",
        "3",
        "--out",
        events.to_str().unwrap(),
    ]);
    events
}

fn replay(events: &Path, out: &Path, extra: &[&str]) -> String {
    let config = example_config();
    let mut args = vec!["replay", "--config", config.to_str().unwrap(), "--events", events.to_str().unwrap()];
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    run(&args)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn replay_gives_identical_files_for_every_worker_count() {
    let dir = scratch("workers");
    let events = generate(&dir, "1500", "50");
    let mut outputs = Vec::new();
    for workers in ["1", "2", "4"] {
        let out = dir.join(format!("out{workers}"));
        replay(&events, &out, &["--workers", workers]);
        outputs.push(out);
    }
    for file in ["students.ndjson", "schools.ndjson", "rollups.ndjson", "rejected.ndjson"] {
        let first = std::fs::read(outputs[0].join(file)).unwrap();
        assert!(!first.is_empty(), "{file} is empty");
        for other in &outputs[1..] {
            assert!(first == std::fs::read(other.join(file)).unwrap(), "{file} differs with {}", other.display());
        }
    }
    let students = lines(&outputs[0].join("students.ndjson"));
    assert!(students.len() > 1400, "one row per enrolled student");
    let ids: Vec<&str> = students.iter().map(|row| row["student_id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "sorted by student_id");
    let rollups = lines(&outputs[0].join("rollups.ndjson"));
    assert_eq!(rollups.last().unwrap()["level"], "district");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn replay_reads_standard_input_as_it_reads_a_file() {
    let dir = scratch("stdin");
    let events = generate(&dir, "300", "20");
    replay(&events, &dir.join("from_file"), &[]);
    let mut child = Command::new(binary())
        .args(["replay", "--config", example_config().to_str().unwrap(), "--events", "-", "--out"])
        .arg(dir.join("from_stdin"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::copy(&mut std::fs::File::open(&events).unwrap(), child.stdin.as_mut().unwrap()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    for file in ["students.ndjson", "schools.ndjson", "rollups.ndjson", "rejected.ndjson"] {
        assert_eq!(
            std::fs::read(dir.join("from_file").join(file)).unwrap(),
            std::fs::read(dir.join("from_stdin").join(file)).unwrap()
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn daily_history_ends_with_the_final_figures_and_as_of_moves_the_day() {
    let dir = scratch("daily");
    let events = generate(&dir, "400", "25");
    replay(&events, &dir.join("out"), &["--daily"]);
    let daily = lines(&dir.join("out/daily/students.ndjson"));
    let finals = lines(&dir.join("out/students.ndjson"));
    let config = config::Config::example();
    let days: Vec<String> = config.calendar.instructional_days()[..25].iter().map(|d| d.to_string()).collect();
    let reported: std::collections::BTreeSet<String> =
        daily.iter().map(|row| row["as_of"].as_str().unwrap().to_string()).collect();
    assert_eq!(reported.into_iter().collect::<Vec<_>>(), days, "a snapshot for each instructional day");
    // The latest daily row of each student equals the final row.
    let mut latest = std::collections::BTreeMap::new();
    for row in &daily {
        let mut row = row.clone();
        row.as_object_mut().unwrap().remove("as_of");
        latest.insert(row["student_id"].as_str().unwrap().to_string(), row);
    }
    for row in &finals {
        assert_eq!(&latest[row["student_id"].as_str().unwrap()], row);
    }
    // Figures as of day 10 count 10 instructional days at most.
    replay(&events, &dir.join("as_of"), &["--as-of", &days[9]]);
    let early = lines(&dir.join("as_of/students.ndjson"));
    assert!(early.iter().all(|row| row["days_enrolled"].as_i64().unwrap() <= 10));
    assert!(early.iter().any(|row| row["days_enrolled"].as_i64().unwrap() == 10));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_configuration_is_refused_with_every_problem() {
    let dir = scratch("config");
    let config = dir.join("bad.toml");
    std::fs::write(
        &config,
        "[calendar]\nfirst_day = 2026-08-31\n[flags]\ncourse_min_failing_marks = \"two\"\ncolour = 1\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args([
            "replay",
            "--config",
            config.to_str().unwrap(),
            "--events",
            "-",
            "--out",
            dir.join("out").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("3 problem(s)"), "{message}");
    assert!(message.contains("calendar.last_day: missing"), "{message}");
    assert!(message.contains("line 4: flags.course_min_failing_marks: expected an integer"), "{message}");
    assert!(message.contains("line 5: flags.colour: unknown key"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let dir = scratch("generate");
    let one = generate(&dir, "200", "10");
    let first = std::fs::read(&one).unwrap();
    let two = generate(&dir, "200", "10");
    assert_eq!(first, std::fs::read(two).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}
