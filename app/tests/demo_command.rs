//! `wholechild demo`, run as a user runs it: the generated district streamed through the
//! embedded Kafka broker ends with the figures `replay` computes from the same district.

mod support;

use serde_json::Value;
use support::cli::{scratch, wholechild};

fn number_before(text: &str, word: &str) -> u64 {
    let at = text.find(word).unwrap_or_else(|| panic!("`{word}` in {text}"));
    text[..at].trim_end().rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_demo_streams_a_generated_district_through_its_embedded_broker_to_replays_figures() {
    let dir = scratch("demo");
    let district = ["--students", "300", "--schools", "4", "--days", "20", "--seed", "4"];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wholechild"))
        .args([&["demo"][..], &district, &["--seconds-per-day", "0"]].concat())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("embedded Kafka broker"), "{stderr}");
    let screen = String::from_utf8(output.stdout).unwrap();
    let ended = &screen[screen.rfind("stream ended: ").expect(&screen)..];

    let events = dir.join("events.ndjson");
    wholechild(&[&["generate"][..], &district, &["--out", events.to_str().unwrap()]].concat());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/example.toml");
    let out = dir.join("replay");
    let replayed = wholechild(&[
        "replay",
        "--config",
        config,
        "--events",
        events.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(number_before(ended, "records"), number_before(&replayed, "records"), "{ended}\n{replayed}");
    assert_eq!(number_before(ended, "malformed"), number_before(&replayed, "lines;"), "{ended}\n{replayed}");
    let as_of = &replayed[replayed.find(" as of ").unwrap() + 7..][..10];
    assert!(ended.contains(&format!("figures as of {as_of}")), "{ended}");

    // The last summary's district line shows replay's district rollup.
    let rollups = std::fs::read_to_string(out.join("rollups.ndjson")).unwrap();
    let district: Value = rollups
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|row| row["level"] == "district")
        .unwrap();
    let expected = format!(
        "district: {} enrolled | tier 1 {} | tier 2 {} | tier 3 {}",
        district["enrolled"], district["tier_1"], district["tier_2"], district["tier_3"]
    );
    let last_summary = &screen[screen.rfind("wholechild live demo:").unwrap()..];
    assert!(last_summary.contains(&expected), "{expected} in:\n{last_summary}");
}
