//! Latency of a correction to a past day, from the record's arrival to every affected
//! indicator updated, with the district clock at day K (the issue's target: p99 at most
//! 20 ms, and flat within 20 % between K = 10 and K = 180).
//!
//! ```text
//! cargo run --release -p benches --example correction_latency -- \
//!     --students 600000 --schools 1000 --days-list 10,180 --corrections 300
//! ```
//!
//! For each K in `--days-list`, in its own `dataflows::run` (the previous engine, feeder
//! and tracking are dropped before the next K is loaded, so the peak memory is that of
//! the largest K, not the sum): the generated district's first K instructional days are
//! streamed from the generator (on a thread, through an in-memory pipe) through
//! `ingest::read_ndjson` and the app's `Feeder`, exactly as `demo`/`replay` drive the
//! engine, and day K is closed. Then `--corrections` corrections are applied one at a
//! time, each in its own epoch as of day K: an attendance record of 1..10 instructional
//! days back is re-sent with the same `type` + `id` and its status flipped (an absence
//! to `present`, a present or tardy day to `absent_unexcused`), decoded by
//! `ingest::decode_line`, fed through the `Feeder`, and the epoch closed. The time is
//! measured from just before `Feeder::feed` to the return of `Engine::close_epoch`
//! (which returns once every output reflects the epoch).
//!
//! Two out of three corrections are of a random student's random record in the window;
//! one in three targets a student whose absences are near the chronic-absence or
//! attendance-flag threshold (from counts of the student's attendance records seen in
//! the stream, which ignore the stream's own corrections, so "near" is approximate).
//! Each correction's effect is checked: the engine's school and rollup counts are
//! compared before and after (outside the timed span), and the corrections that
//! changed any count, a chronic-absence count, or a tier count are reported.
//!
//! After each correction (outside its timed span) an epoch with nothing fed is closed and
//! timed too: its latency is the fixed cost of an epoch (every worker's pass over its
//! students, progress tracking, waking the other workers), measured under the same
//! machine conditions as the corrections, so the two can be compared on a noisy machine.
//!
//! Percentiles are nearest-rank over all corrections (no warm-up is discarded; with 200
//! corrections p99 is the second largest). Prints a markdown table and one JSON line
//! (prefixed `JSON `). Run one process per K (`--days-list 180`) to measure each with a
//! fresh heap. `--latencies-out FILE` writes every correction's latency; with
//! `--pause-before-corrections SECS` the process sleeps after loading, to attach `perf`.

use dataflows::{Category, EngineParams, RollupKey, Snapshot};
use ingest::Decoded;
use model::{Day, EventBody};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use wholechild::driver::{DriverOptions, Feeder, Observer};
use wholechild::generate::{generate, GenerateOptions};

struct Args {
    students: u32,
    schools: u32,
    days_list: Vec<u32>,
    corrections: usize,
    workers: usize,
    decode_threads: usize,
    seed: u64,
    /// Seconds to sleep between loading and the corrections (to attach `perf -p`).
    pause: f64,
    /// Where to write every correction's latency (tab-separated), if anywhere.
    latencies_out: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        students: 100_000,
        schools: 170,
        days_list: vec![10, 180],
        corrections: 200,
        workers: 2,
        decode_threads: 2,
        seed: 1,
        pause: 0.0,
        latencies_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--students" => args.students = parse(&value()),
            "--schools" => args.schools = parse(&value()),
            "--days-list" => args.days_list = value().split(',').map(parse).collect(),
            "--corrections" => args.corrections = parse(&value()),
            "--workers" => args.workers = parse(&value()),
            "--decode-threads" => args.decode_threads = parse(&value()),
            "--seed" => args.seed = parse(&value()),
            "--pause-before-corrections" => args.pause = parse(&value()),
            "--latencies-out" => args.latencies_out = Some(value()),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if args.days_list.is_empty() || args.days_list.contains(&0) || args.corrections == 0 {
        usage("--days-list needs days >= 1 and --corrections at least 1");
    }
    args
}

fn parse<T: std::str::FromStr>(text: &str) -> T {
    text.trim().parse().unwrap_or_else(|_| usage(&format!("cannot parse {text:?}")))
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: correction_latency [--students N] [--schools N] [--days-list 10,180] \
         [--corrections N] [--workers N] [--decode-threads N] [--seed N] [--pause-before-corrections SECS] \
         [--latencies-out FILE]"
    );
    std::process::exit(2)
}

/// An attendance record kept as a correction candidate (id 0: none).
#[derive(Clone, Copy, Default)]
struct Pick {
    id: u64,
    school: u32,
    day: Day,
}

/// Per student: one random absence and one random present/tardy record of the window,
/// and the student's attendance records and absences seen over the whole stream.
#[derive(Clone, Copy, Default)]
struct Track {
    absent: Pick,
    present: Pick,
    absent_seen: u16,
    present_seen: u16,
    records: u16,
    absences: u16,
}

/// Keeps correction candidates from the attendance records of days 1..10 back.
struct Tracker {
    window: (Day, Day),
    students: Vec<Track>,
    withdrawn: HashSet<u64>,
    rng: Rng,
}

fn number(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?.parse().ok()
}

impl Tracker {
    fn observe(&mut self, event: &model::Event) {
        if event.key.record_type != model::RecordType::Attendance {
            return;
        }
        let Some(id) = number(&event.key.id, "att-") else { return };
        let Some(EventBody::Attendance { student_id, school_id, date, status }) = &event.body else {
            self.withdrawn.insert(id);
            return;
        };
        let (Some(student), Some(school)) = (number(student_id, "stu-"), number(school_id, "sch-")) else { return };
        let index = student as usize - 1;
        if index >= self.students.len() {
            self.students.resize(index + 1, Track::default());
        }
        let track = &mut self.students[index];
        track.records = track.records.saturating_add(1);
        if status.is_absence() {
            track.absences = track.absences.saturating_add(1);
        }
        // A re-sent record (the stream's own corrections) replaces its earlier version.
        if track.absent.id == id {
            track.absent = Pick::default();
        }
        if track.present.id == id {
            track.present = Pick::default();
        }
        if *date < self.window.0 || *date > self.window.1 {
            return;
        }
        let pick = Pick { id, school: school as u32, day: *date };
        // Reservoir of one per kind: each record of the window equally likely.
        let (slot, seen) = if status.is_absence() {
            (&mut track.absent, &mut track.absent_seen)
        } else {
            (&mut track.present, &mut track.present_seen)
        };
        *seen = seen.saturating_add(1);
        if self.rng.below(u64::from(*seen)) == 0 {
            *slot = pick;
        }
    }
}

/// splitmix64: enough randomness for choosing students, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One correction to apply: the record, and whether it was aimed at a threshold.
struct Correction {
    student: usize,
    pick: Pick,
    to_absent: bool,
    targeted: bool,
}

/// Chooses the corrections; each record is corrected at most once.
fn choose(tracker: &mut Tracker, n: usize) -> Vec<Correction> {
    // Students whose one flipped day may cross the chronic (absences >= 10 % of days,
    // at least 31 days) or attendance-flag (absences > 10 %, at least 10 days) line.
    let mut near_up = Vec::new(); // present -> absent may cross
    let mut near_down = Vec::new(); // absent -> present may cross
    for (index, track) in tracker.students.iter().enumerate() {
        let (days, absences) = (u32::from(track.records), u32::from(track.absences));
        if days < 10 {
            continue;
        }
        if track.present.id != 0 && absences * 10 <= days && days <= (absences + 1) * 10 {
            near_up.push(index);
        }
        if track.absent.id != 0 && absences > 0 && (absences - 1) * 10 <= days && days <= absences * 10 {
            near_down.push(index);
        }
    }
    let mut chosen = Vec::with_capacity(n);
    let mut attempts = 0usize;
    while chosen.len() < n {
        attempts += 1;
        assert!(attempts < 1_000 * n + 1_000_000, "too few attendance records in the window to correct");
        let rng = &mut tracker.rng;
        let targeted = chosen.len() % 3 == 2 && (!near_up.is_empty() || !near_down.is_empty());
        let (student, to_absent) = if targeted {
            let up = near_down.is_empty() || (!near_up.is_empty() && rng.below(2) == 0);
            let list = if up { &near_up } else { &near_down };
            (list[rng.below(list.len() as u64) as usize], up)
        } else {
            (rng.below(tracker.students.len() as u64) as usize, rng.below(2) == 0)
        };
        let track = &mut tracker.students[student];
        let slot = if to_absent { &mut track.present } else { &mut track.absent };
        if slot.id == 0 || tracker.withdrawn.contains(&slot.id) {
            continue;
        }
        chosen.push(Correction { student, pick: std::mem::take(slot), to_absent, targeted });
    }
    chosen
}

fn correction_line(c: &Correction) -> String {
    let status = if c.to_absent { "absent_unexcused" } else { "present" };
    format!(
        "{{\"type\":\"attendance\",\"id\":\"att-{}\",\"source\":\"sis\",\"student_id\":\"stu-{}\",\
         \"school_id\":\"sch-{}\",\"date\":\"{}\",\"status\":\"{status}\"}}",
        c.pick.id,
        c.student + 1,
        c.pick.school,
        c.pick.day
    )
}

struct Quiet;
impl Observer for Quiet {}

/// What one clock day's run measured.
#[derive(Default)]
struct Outcome {
    day: u32,
    as_of: String,
    load_seconds: f64,
    lines: u64,
    close_day_ms: f64,
    latencies_ms: Vec<f64>,
    /// Epochs closed with nothing fed, one after each correction: the fixed cost of an epoch.
    empty_ms: Vec<f64>,
    /// Per correction: (epoch, changed any count, targeted, to absent).
    details: Vec<(u64, bool, bool, bool)>,
    changed_any: usize,
    changed_chronic: usize,
    changed_tier: usize,
    targeted: usize,
    targeted_changed: usize,
    count_entries: usize,
    /// Absent -> present re-sends the upsert stage did not count as corrections.
    not_corrections: usize,
    rss_mib: f64,
    peak_rss_mib: f64,
}

type Counts = HashMap<(RollupKey, Category), i64>;

fn snapshot_counts(engine: &dataflows::Engine) -> Counts {
    engine.outputs().counts.lock().expect("counts").iter().map(|(k, v)| (*k, *v)).collect()
}

/// Which kinds of count differ between two snapshots: (any, chronic, tier).
fn differences(before: &Counts, after: &Counts) -> (bool, bool, bool) {
    let mut kinds = (false, false, false);
    for key in before.keys().chain(after.keys()) {
        if before.get(key) != after.get(key) {
            kinds.0 = true;
            match key.1 {
                Category::ChronicallyAbsent | Category::ChronicEligible => kinds.1 = true,
                Category::Tier(_) => kinds.2 = true,
                _ => {}
            }
        }
    }
    kinds
}

fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn run_day(args: &Args, k: u32) -> Outcome {
    let config = config::Config::example();
    let calendar: Vec<Day> = config.calendar.instructional_days().to_vec();
    assert!(k as usize <= calendar.len(), "day {k} is past the calendar's {} instructional days", calendar.len());
    let dates: Vec<_> = calendar.iter().map(|day| day.to_date()).collect();
    let clock_day = calendar[k as usize - 1];
    // Days 1..10 instructional days before day K.
    let window = (calendar[(k as usize).saturating_sub(11)], calendar[(k as usize).saturating_sub(2)]);
    let options = GenerateOptions {
        students: args.students,
        schools: args.schools,
        days: k,
        seed: args.seed,
        malformed_lines: false,
    };
    let (corrections, workers, decode_threads, pause) =
        (args.corrections, args.workers, args.decode_threads, args.pause);
    let seed = args.seed;
    let students = args.students as usize;
    let result = dataflows::run(workers, EngineParams::from_config(&config), move |engine| {
        let mut outcome = Outcome { day: k, as_of: clock_day.to_string(), ..Outcome::default() };
        let start = Instant::now();
        let (reader, writer) = std::io::pipe().expect("pipe");
        let generator = std::thread::spawn(move || generate(&options, &dates, writer, |_, _| {}));
        let driver_options = DriverOptions::following_input(false, None, decode_threads);
        let mut feeder = Feeder::new();
        let mut tracker = Tracker {
            window,
            students: vec![Track::default(); students],
            withdrawn: HashSet::new(),
            rng: Rng(seed ^ 0x5eed_0000 ^ u64::from(k)),
        };
        for block in ingest::read_ndjson(reader, decode_threads) {
            for decoded in block.expect("reading the generated stream") {
                outcome.lines += 1;
                if let Decoded::Record { event, .. } = &decoded {
                    tracker.observe(event);
                }
                feeder.feed(engine, decoded, &driver_options, &mut Quiet).expect("feeding");
            }
        }
        generator.join().expect("generator thread").expect("generating");
        assert_eq!(feeder.clock, Some(clock_day), "the stream should end on day {k}");
        let close = Instant::now();
        engine.close_epoch(clock_day, Snapshot::None);
        outcome.close_day_ms = close.elapsed().as_secs_f64() * 1e3;
        outcome.load_seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "day {k} ({clock_day}): loaded {} lines in {:.1} s (closing the day: {:.1} ms); {} students tracked",
            outcome.lines,
            outcome.load_seconds,
            outcome.close_day_ms,
            tracker.students.len()
        );

        let chosen = choose(&mut tracker, corrections);
        drop(tracker);
        if pause > 0.0 {
            eprintln!("pausing {pause} s before the corrections (pid {})", std::process::id());
            std::thread::sleep(Duration::from_secs_f64(pause));
        }
        let mut before = snapshot_counts(engine);
        outcome.count_entries = before.len();
        for correction in &chosen {
            let line = correction_line(correction);
            let event = ingest::decode_line(line.as_bytes()).expect("a valid correction line");
            let decoded = Decoded::Record { line: 0, event };
            let corrections_before = feeder.upsert.stats.corrections;
            let timer = Instant::now();
            feeder.feed(engine, decoded, &driver_options, &mut Quiet).expect("feeding a correction");
            let epoch = engine.close_epoch(clock_day, Snapshot::None);
            let elapsed = timer.elapsed();
            outcome.latencies_ms.push(elapsed.as_secs_f64() * 1e3);
            // A present day stores nothing, so present -> absent is a new fact rather than
            // a counted correction; absent -> present must have replaced a version in force.
            if !correction.to_absent && feeder.upsert.stats.corrections != corrections_before + 1 {
                outcome.not_corrections += 1;
                eprintln!("warning: not applied as a correction: {line}");
            }
            let after = snapshot_counts(engine);
            let (any, chronic, tier) = differences(&before, &after);
            outcome.details.push((epoch, any, correction.targeted, correction.to_absent));
            outcome.changed_any += usize::from(any);
            outcome.changed_chronic += usize::from(chronic);
            outcome.changed_tier += usize::from(tier);
            if correction.targeted {
                outcome.targeted += 1;
                outcome.targeted_changed += usize::from(any);
            }
            before = after;
            // The same epoch with nothing in it, under the same machine conditions.
            let timer = Instant::now();
            engine.close_epoch(clock_day, Snapshot::None);
            outcome.empty_ms.push(timer.elapsed().as_secs_f64() * 1e3);
        }
        outcome
    });
    let mut outcome = result.expect("the dataflow run");
    outcome.rss_mib = memory_mib("VmRSS:");
    outcome.peak_rss_mib = memory_mib("VmHWM:");
    outcome
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let args = parse_args();
    eprintln!(
        "correction latency: {} students, {} schools, clock days {:?}, {} corrections each, {} workers",
        args.students, args.schools, args.days_list, args.corrections, args.workers
    );
    let mut outcomes = Vec::new();
    for &k in &args.days_list {
        // Each run's engine, feeder and tracking are dropped when run_day returns.
        outcomes.push(run_day(&args, k));
    }

    println!();
    println!(
        "Correction latency, {} students / {} schools, {} workers, {} corrections per clock day \
         (feed + close_epoch, ms):",
        args.students, args.schools, args.workers, args.corrections
    );
    println!();
    println!(
        "| clock day | as of | load (s) | lines | p50 | p90 | p99 | max | changed counts | chronic | tier | \
         targeted changed | empty epoch p50 / p99 | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for outcome in &outcomes {
        let mut sorted = outcome.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let (p50, p90, p99, max) =
            (percentile(&sorted, 0.5), percentile(&sorted, 0.9), percentile(&sorted, 0.99), sorted[sorted.len() - 1]);
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        let mut empty = outcome.empty_ms.clone();
        empty.sort_by(f64::total_cmp);
        let (empty_p50, empty_p99) = (percentile(&empty, 0.5), percentile(&empty, 0.99));
        p50s.push(p50);
        p99s.push(p99);
        println!(
            "| {} | {} | {:.1} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} | {} | {} | {}/{} | {:.2} / {:.2} | {:.0} |",
            outcome.day,
            outcome.as_of,
            outcome.load_seconds,
            outcome.lines,
            p50,
            p90,
            p99,
            max,
            outcome.changed_any,
            sorted.len(),
            outcome.changed_chronic,
            outcome.changed_tier,
            outcome.targeted_changed,
            outcome.targeted,
            empty_p50,
            empty_p99,
            outcome.peak_rss_mib
        );
        rows.push(serde_json::json!({
            "day": outcome.day,
            "as_of": outcome.as_of,
            "load_s": outcome.load_seconds,
            "lines": outcome.lines,
            "close_day_ms": outcome.close_day_ms,
            "corrections": sorted.len(),
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "max_ms": max,
            "mean_ms": mean,
            "empty_epoch_p50_ms": empty_p50,
            "empty_epoch_p99_ms": empty_p99,
            "changed_counts": outcome.changed_any,
            "changed_chronic": outcome.changed_chronic,
            "changed_tier": outcome.changed_tier,
            "targeted": outcome.targeted,
            "targeted_changed": outcome.targeted_changed,
            "count_entries": outcome.count_entries,
            "not_corrections": outcome.not_corrections,
            "rss_mib": outcome.rss_mib,
            "peak_rss_mib": outcome.peak_rss_mib,
        }));
    }
    let ratio = |values: &[f64]| (values.len() >= 2).then(|| values[values.len() - 1] / values[0]);
    let (p99_ratio, p50_ratio) = (ratio(&p99s), ratio(&p50s));
    println!();
    if let (Some(p99_ratio), Some(p50_ratio)) = (p99_ratio, p50_ratio) {
        let (first, last) = (outcomes[0].day, outcomes[outcomes.len() - 1].day);
        println!(
            "p99(day {last}) / p99(day {first}) = {p99_ratio:.2}; p50(day {last}) / p50(day {first}) = {p50_ratio:.2} \
             (target: p99 <= 20 ms, ratio within 0.8..1.2)"
        );
    }
    for outcome in &outcomes {
        println!(
            "day {}: load {:.1} s, closing the day {:.1} ms, {} count entries, RSS {:.0} MiB after the run",
            outcome.day, outcome.load_seconds, outcome.close_day_ms, outcome.count_entries, outcome.rss_mib
        );
    }
    if let Some(path) = &args.latencies_out {
        let mut text = String::from("day\tindex\tepoch\tms\tchanged\ttargeted\tto_absent\n");
        for outcome in &outcomes {
            for (index, (ms, (epoch, changed, targeted, to_absent))) in
                outcome.latencies_ms.iter().zip(&outcome.details).enumerate()
            {
                text.push_str(&format!(
                    "{}\t{index}\t{epoch}\t{ms:.4}\t{}\t{}\t{}\n",
                    outcome.day, *changed as u8, *targeted as u8, *to_absent as u8
                ));
            }
        }
        std::fs::write(path, text).expect("writing the latencies");
    }
    let json = serde_json::json!({
        "bench": "correction_latency",
        "students": args.students,
        "schools": args.schools,
        "workers": args.workers,
        "decode_threads": args.decode_threads,
        "seed": args.seed,
        "corrections": args.corrections,
        "results": rows,
        "p99_ratio": p99_ratio,
        "p50_ratio": p50_ratio,
    });
    println!("JSON {json}");
}
