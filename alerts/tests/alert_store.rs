//! The durable alert log and outbox: the same tests against the embedded SQLite file and
//! the machine's PostgreSQL server (127.0.0.1:5432, database `test`; each test in a
//! schema of its own). A change logged twice is logged once; a notification queued
//! before its attempt and finished after is no longer pending; one whose process died
//! between the two is pending after a restart, with the same idempotency key.

use alerts::{
    AlertStore, LoggedAction, LoggedChange, LoggedSilence, Notification, Outcome, PostgresStore, SqliteStore,
};
use std::path::PathBuf;

const POSTGRES: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// Opens the store named `kind` for test `name`; opening it again reopens the same data.
fn open(kind: &str, name: &str) -> Box<dyn AlertStore> {
    match kind {
        "sqlite" => Box::new(SqliteStore::open(&sqlite_path(name)).unwrap()),
        "postgres" => {
            let schema = format!("wholechild_test_{}_{name}", std::process::id());
            Box::new(PostgresStore::connect(POSTGRES, &schema).unwrap_or_else(|error| {
                panic!("{error} (the tests need PostgreSQL on 127.0.0.1:5432, database `test`)")
            }))
        }
        other => unreachable!("{other}"),
    }
}

fn sqlite_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wholechild-store-{}-{name}.sqlite", std::process::id()))
}

fn fresh(kind: &str, name: &str) -> Box<dyn AlertStore> {
    let _ = std::fs::remove_file(sqlite_path(name));
    if kind == "postgres" {
        let mut client = postgres::Client::connect(POSTGRES, postgres::NoTls).unwrap();
        let schema = format!("wholechild_test_{}_{name}", std::process::id());
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).unwrap();
    }
    open(kind, name)
}

fn change(day: &str, kind: &str) -> LoggedChange {
    LoggedChange {
        key: LoggedChange::key_of("tier_3", "s1", "2026-09-14", kind, day),
        day: day.to_string(),
        rule: String::from("tier_3"),
        entity: String::from("s1"),
        change: kind.to_string(),
        recipient: Some(String::from("t1")),
        evidence: String::from(r#"{"indicators":{"tier":3}}"#),
    }
}

fn notification(key: &str) -> Notification {
    Notification {
        address: String::from("t1@district.example"),
        idempotency_key: key.to_string(),
        subject: String::from("wholechild: 1 early-warning alert update(s)"),
        body: String::from("- new: https://d/alerts/r-1\n"),
        items: vec![(String::from("r-1"), "new", String::from("https://d/alerts/r-1"))],
    }
}

fn a_change_logged_twice_is_logged_once(kind: &str) {
    let mut store = fresh(kind, "once");
    assert!(store.record_change(&change("2026-09-14", "fired")).unwrap());
    assert!(!store.record_change(&change("2026-09-14", "fired")).unwrap());
    assert!(store.record_change(&change("2026-09-16", "withdrawn")).unwrap());
    // After a restart, the same changes replayed are not logged again.
    drop(store);
    let mut store = open(kind, "once");
    assert!(!store.record_change(&change("2026-09-14", "fired")).unwrap());
    let logged: Vec<(String, String)> =
        store.changes().unwrap().into_iter().map(|change| (change.day, change.change)).collect();
    assert_eq!(logged, [("2026-09-14".into(), "fired".into()), ("2026-09-16".into(), "withdrawn".into())]);
}

fn a_notification_is_pending_until_its_outcome_is_recorded(kind: &str) {
    let mut store = fresh(kind, "outbox");
    assert!(store.enqueue("email", &notification("k1")).unwrap());
    assert!(!store.enqueue("email", &notification("k1")).unwrap(), "queued once");
    assert!(store.enqueue("webhook", &notification("k2")).unwrap());
    store.finish("k1", &Outcome::Delivered { attempts: 2 }).unwrap();
    let failure = Outcome::Failed { attempts: 1, permanent: true, error: String::from("550 no such user") };
    store.finish("k2", &failure).unwrap();
    assert!(store.outbox("pending").unwrap().is_empty());
    let delivered = store.outbox("delivered").unwrap();
    assert_eq!((delivered[0].notification.idempotency_key.as_str(), delivered[0].attempts), ("k1", 2));
    let failed = store.outbox("failed").unwrap();
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such user"));
}

fn a_notification_interrupted_by_a_crash_is_pending_after_restart_with_its_key(kind: &str) {
    let mut store = fresh(kind, "crash");
    store.enqueue("webhook", &notification("k9")).unwrap();
    drop(store); // the process dies between queueing and recording the outcome
    let mut store = open(kind, "crash");
    let pending = store.outbox("pending").unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].channel, "webhook");
    assert_eq!(pending[0].notification, notification("k9"), "the same text, items and idempotency key");
}

fn an_alert_keeps_its_reference_across_restarts(kind: &str) {
    let mut store = fresh(kind, "reference");
    assert_eq!(store.reference("tier_3|s1|2026-09-14", "r-aaaa").unwrap(), "r-aaaa");
    assert_eq!(store.reference("tier_3|s1|2026-09-14", "r-bbbb").unwrap(), "r-aaaa");
    drop(store);
    let mut store = open(kind, "reference");
    assert_eq!(store.reference("tier_3|s1|2026-09-14", "r-cccc").unwrap(), "r-aaaa");
    assert_eq!(store.reference("tier_3|s2|2026-09-14", "r-dddd").unwrap(), "r-dddd");
}

fn acknowledgements_and_what_was_told_survive_a_restart(kind: &str) {
    let mut store = fresh(kind, "actions");
    store.enqueue("email", &notification("k1")).unwrap();
    let acknowledged = LoggedAction {
        reference: "r-1".into(),
        staff: "t1".into(),
        action: "acknowledged".into(),
        until: None,
        at: 10,
    };
    let snoozed = LoggedAction { action: "snoozed".into(), until: Some(99), at: 20, ..acknowledged.clone() };
    store.record_action(&acknowledged).unwrap();
    store.record_action(&snoozed).unwrap();
    drop(store);
    let mut store = open(kind, "actions");
    assert_eq!(store.actions().unwrap(), [acknowledged, snoozed]);
    assert_eq!(store.notified_items().unwrap(), [(String::from("r-1"), "new")]);
}

fn a_silence_survives_a_restart_and_ends_when_expired(kind: &str) {
    let mut store = fresh(kind, "silences");
    let silence = LoggedSilence {
        id: String::from("s-1"),
        rule: Some(String::from("health_visits")),
        recipient: None,
        from: 100,
        until: 10_000,
        created_by: String::from("t-ops"),
        comment: String::from("nurse system re-sending last week"),
    };
    store.record_silence(&silence).unwrap();
    drop(store);
    let mut store = open(kind, "silences");
    assert_eq!(store.silences().unwrap(), std::slice::from_ref(&silence));
    store.expire_silence("s-1", 500).unwrap();
    store.expire_silence("s-1", 900).unwrap(); // ended already: stays ended at 500
    assert_eq!(store.silences().unwrap(), [LoggedSilence { until: 500, ..silence }]);
}

#[test]
fn sqlite_a_silence_survives_a_restart_and_ends_when_expired() {
    a_silence_survives_a_restart_and_ends_when_expired("sqlite");
}

#[test]
fn postgres_a_silence_survives_a_restart_and_ends_when_expired() {
    a_silence_survives_a_restart_and_ends_when_expired("postgres");
}

#[test]
fn sqlite_acknowledgements_and_what_was_told_survive_a_restart() {
    acknowledgements_and_what_was_told_survive_a_restart("sqlite");
}

#[test]
fn postgres_acknowledgements_and_what_was_told_survive_a_restart() {
    acknowledgements_and_what_was_told_survive_a_restart("postgres");
}

#[test]
fn sqlite_an_alert_keeps_its_reference_across_restarts() {
    an_alert_keeps_its_reference_across_restarts("sqlite");
}

#[test]
fn postgres_an_alert_keeps_its_reference_across_restarts() {
    an_alert_keeps_its_reference_across_restarts("postgres");
}

#[test]
fn sqlite_a_change_logged_twice_is_logged_once() {
    a_change_logged_twice_is_logged_once("sqlite");
}

#[test]
fn postgres_a_change_logged_twice_is_logged_once() {
    a_change_logged_twice_is_logged_once("postgres");
}

#[test]
fn sqlite_a_notification_is_pending_until_its_outcome_is_recorded() {
    a_notification_is_pending_until_its_outcome_is_recorded("sqlite");
}

#[test]
fn postgres_a_notification_is_pending_until_its_outcome_is_recorded() {
    a_notification_is_pending_until_its_outcome_is_recorded("postgres");
}

#[test]
fn sqlite_a_notification_interrupted_by_a_crash_is_pending_after_restart_with_its_key() {
    a_notification_interrupted_by_a_crash_is_pending_after_restart_with_its_key("sqlite");
}

#[test]
fn postgres_a_notification_interrupted_by_a_crash_is_pending_after_restart_with_its_key() {
    a_notification_interrupted_by_a_crash_is_pending_after_restart_with_its_key("postgres");
}
