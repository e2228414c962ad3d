//! `wholechild run` with `[alerts]`, against a real broker and a real SMTP server: an
//! alert raised by records from Kafka reaches the counselor's address from the staff
//! records as an e-mail naming no student, and to the alerts topic; after `kill -9` and a
//! restart, which
//! re-derives every alert from the topics, the alert log holds each change once and
//! nobody is e-mailed again. The alerts API acknowledges and snoozes, and both hold
//! across a restart. A generated district killed twice with alert changes logged and
//! waiting for their digests: each alert is logged once, every notification decided on
//! reaches the SMTP server, and every alert still open reached its current recipient. A
//! silence set through the API keeps an alert from being e-mailed, across a restart too.

mod support;

use rdkafka::message::Message;
use std::path::Path;
use std::time::{Duration, Instant};
use support::broker::*;
use support::cli::{scratch, wholechild};
use support::smtp::SmtpServer;

const RECORDS: [&str; 8] = [
    r#"{"type":"school","id":"k1","source":"sis","name":"One","level":"middle","local_district":"ld1","community":"c1","region":"r1"}"#,
    r#"{"type":"staff","id":"t1","source":"hr","name":"T One","email":"t1@district.example","role":"counselor","schools":["k1"]}"#,
    r#"{"type":"enrollment","id":"e1","source":"sis","student_id":"s1","school_id":"k1","grade":7,"entry_date":"2026-08-31","exit_date":null}"#,
    r#"{"type":"program","id":"p1","source":"sis","student_id":"s1","program":"homeless","begin_date":"2026-08-31","end_date":null}"#,
    r#"{"type":"caseload","id":"c1","source":"sis","student_id":"s1","staff_id":"t1","role":"counselor","begin_date":"2026-08-31","end_date":null}"#,
    r#"{"type":"attendance","id":"a1","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","status":"absent_unexcused"}"#,
    r#"{"type":"attendance","id":"a2","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-02","status":"absent_unexcused"}"#,
    r#"{"type":"attendance","id":"a3","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-03","status":"absent_excused"}"#,
];

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn logged_changes(store: &Path) -> Vec<(String, String, String)> {
    use alerts::AlertStore;
    let mut store = alerts::SqliteStore::open(store).unwrap();
    store.changes().unwrap().into_iter().map(|change| (change.rule, change.entity, change.change)).collect()
}

#[test]
fn a_live_alert_is_e_mailed_to_the_counselor_once_even_across_a_kill_9() {
    let dir = scratch("live-alerts");
    let broker = Broker::start(&dir.join("broker.log"));
    broker.create_topic("canonical", 2);
    broker.create_topic("dead-letters", 1);
    broker.create_topic("alerts", 1);
    let smtp = SmtpServer::start(&dir.join("mail"));
    let store = dir.join("alerts.sqlite");
    let alerts = format!(
        "[alerts]\nstore = \"sqlite:{}\"\ndashboard_url = \"https://dashboard.district.example\"\ntopic = \"alerts\"\ngroup_wait_seconds = 0\ngroup_interval_seconds = 0\ndelivery_hours = \"00:00-24:00\"\ndelivery_weekdays_only = false\n[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"wholechild <alerts@district.example>\"\n",
        store.display(),
        smtp.port
    );
    let config = kafka_config(&dir, &broker, "live-alerts", &["canonical"], &alerts);
    let events = dir.join("events.ndjson");
    std::fs::write(&events, RECORDS.join("\n") + "\n").unwrap();
    wholechild(&["produce", "--config", config.to_str().unwrap(), "--events", events.to_str().unwrap()]);
    let live = ["run", "--config", config.to_str().unwrap(), "--as-of", "2026-09-03", "--publish-ms", "50"];

    let first = Running::start(&live);
    wait_until("an e-mail", Duration::from_secs(60), || !smtp.messages().is_empty());
    let message = &smtp.messages()[0];
    assert!(message.contains("To: t1@district.example"), "{message}");
    assert!(message.contains("https://dashboard.district.example/alerts/"), "{message}");
    for private in ["s1", "homeless", "vulnerable", "absent"] {
        assert!(!message.contains(private), "`{private}` in the e-mail: {message}");
    }
    // The alerts topic got the change, keyed by the same opaque reference as the link.
    let published = broker.read_all("alerts", 1, Duration::from_secs(30));
    assert_eq!(published.len(), 1);
    let reference = String::from_utf8(published[0].key().unwrap().to_vec()).unwrap();
    assert!(message.contains(&format!("/alerts/{reference}")), "{reference} in {message}");
    let value: serde_json::Value = serde_json::from_slice(published[0].payload().unwrap()).unwrap();
    assert_eq!(
        (value["rule"].as_str(), value["entity"].as_str(), value["change"].as_str()),
        (Some("vulnerable_absences"), Some("s1"), Some("fired"))
    );
    first.kill_9();

    // The restart re-derives the alert from the topics: it is neither logged nor sent again.
    let second = Running::start(&live);
    let url = second.metrics_url();
    wait_until("every record applied", Duration::from_secs(60), || {
        metric_sum(&scrape(&url), "wholechild_record_effect_latency_seconds_count", "topic=\"canonical\"")
            >= RECORDS.len() as f64
    });
    std::thread::sleep(Duration::from_secs(1));
    let log = second.terminate();
    assert!(log.contains("alerts: 0 alert change(s) logged"), "{log}");
    assert_eq!(logged_changes(&store), [("vulnerable_absences".into(), "s1".into(), "fired".into())]);
    assert_eq!(smtp.messages().len(), 1, "nobody is e-mailed twice");
    assert_eq!(broker.read_all("alerts", 1, Duration::from_secs(10)).len(), 1, "nor published twice");
}

/// Two homeless students, each with three consecutive absences and a counselor of their
/// own: one `vulnerable_absences` alert to each counselor.
fn two_counselors_records() -> Vec<String> {
    let mut records = vec![RECORDS[0].to_string()];
    for n in 1..=2 {
        records.extend([
            format!(r#"{{"type":"staff","id":"t{n}","source":"hr","name":"T {n}","email":"t{n}@district.example","role":"counselor","schools":["k1"]}}"#),
            format!(r#"{{"type":"enrollment","id":"e{n}","source":"sis","student_id":"s{n}","school_id":"k1","grade":7,"entry_date":"2026-08-31","exit_date":null}}"#),
            format!(r#"{{"type":"program","id":"p{n}","source":"sis","student_id":"s{n}","program":"homeless","begin_date":"2026-08-31","end_date":null}}"#),
            format!(r#"{{"type":"caseload","id":"c{n}","source":"sis","student_id":"s{n}","staff_id":"t{n}","role":"counselor","begin_date":"2026-08-31","end_date":null}}"#),
        ]);
        for (day, date) in ["2026-09-01", "2026-09-02", "2026-09-03"].iter().enumerate() {
            records.push(format!(r#"{{"type":"attendance","id":"a{n}-{day}","source":"sis","student_id":"s{n}","school_id":"k1","date":"{date}","status":"absent_unexcused"}}"#));
        }
    }
    records
}

const API_TOKEN: &str = "test-token-0123456789abcdef";

/// POSTs to the alerts API; the status and the JSON answer.
fn api(base: &str, path: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = agent
        .post(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body);
    answer(response)
}

/// GETs (or DELETEs) from the alerts API; the status and the JSON answer.
fn api_without_body(method: &str, base: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{base}{path}");
    let authorization = format!("Bearer {token}");
    let response = match method {
        "DELETE" => agent.delete(&url).header("Authorization", &authorization).call(),
        _ => agent.get(&url).header("Authorization", &authorization).call(),
    };
    answer(response)
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, serde_json::Value) {
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap_or_default())
}

/// The alerts API's base URL, from the engine's log.
fn api_base(running: &Running) -> String {
    let line = running.wait_for_line(Duration::from_secs(30), |line| line.starts_with("alerts API: "));
    line["alerts API: ".len()..].trim_end_matches("/api/alerts/").to_string()
}

fn mail_to(smtp: &SmtpServer, staff: &str) -> Vec<String> {
    let to = format!("To: {staff}@district.example");
    smtp.messages().into_iter().filter(|message| message.contains(&to)).collect()
}

fn reference_in(message: &str) -> String {
    let start = message.find("/alerts/").unwrap() + "/alerts/".len();
    message[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect()
}

#[test]
fn an_acknowledged_or_snoozed_alert_is_not_repeated_even_after_a_kill_9() {
    let dir = scratch("alerts-api");
    let broker = Broker::start(&dir.join("broker.log"));
    broker.create_topic("canonical", 2);
    broker.create_topic("dead-letters", 1);
    let smtp = SmtpServer::start(&dir.join("mail"));
    let token_file = dir.join("api-token");
    std::fs::write(&token_file, format!("{API_TOKEN}\n")).unwrap();
    let alerts = format!(
        "[alerts]\nstore = \"sqlite:{}\"\ndashboard_url = \"https://dashboard.district.example\"\ngroup_wait_seconds = 0\ngroup_interval_seconds = 0\nrepeat_interval_seconds = 2\ndelivery_hours = \"00:00-24:00\"\ndelivery_weekdays_only = false\n[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"wholechild <alerts@district.example>\"\n[alerts.api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        dir.join("alerts.sqlite").display(),
        smtp.port,
        token_file.display()
    );
    let config = kafka_config(&dir, &broker, "alerts-api", &["canonical"], &alerts);
    let events = dir.join("events.ndjson");
    std::fs::write(&events, two_counselors_records().join("\n") + "\n").unwrap();
    wholechild(&["produce", "--config", config.to_str().unwrap(), "--events", events.to_str().unwrap()]);
    let live = ["run", "--config", config.to_str().unwrap(), "--as-of", "2026-09-03", "--publish-ms", "50"];

    let first = Running::start(&live);
    let base = api_base(&first);
    wait_until("an e-mail to each counselor", Duration::from_secs(60), || {
        !mail_to(&smtp, "t1").is_empty() && !mail_to(&smtp, "t2").is_empty()
    });
    let (t1_alert, t2_alert) = (reference_in(&mail_to(&smtp, "t1")[0]), reference_in(&mail_to(&smtp, "t2")[0]));
    let acknowledge = |reference: &str| format!("/api/alerts/{reference}/acknowledge");

    // Refused: no token, a staff member the alert was not sent to, a snooze without a time.
    assert_eq!(api(&base, &acknowledge(&t1_alert), "wrong", r#"{"staff":"t1"}"#).0, 401);
    assert_eq!(api(&base, &acknowledge(&t2_alert), API_TOKEN, r#"{"staff":"t1"}"#).0, 404);
    let snooze = format!("/api/alerts/{t2_alert}/snooze");
    assert_eq!(api(&base, &snooze, API_TOKEN, r#"{"staff":"t2","until":"soon"}"#).0, 400);
    assert_eq!(api(&base, &acknowledge(&t1_alert), API_TOKEN, r#"{"staf":"t1"}"#).0, 400);

    let (status, answer) = api(&base, &acknowledge(&t1_alert), API_TOKEN, r#"{"staff":"t1"}"#);
    assert_eq!((status, answer["action"].as_str()), (200, Some("acknowledged")), "{answer}");
    // t2's alert, not acknowledged, is repeated every 2 seconds; t1's is not.
    wait_until("a reminder to t2", Duration::from_secs(30), || mail_to(&smtp, "t2").len() >= 2);
    let (status, _) = api(&base, &snooze, API_TOKEN, r#"{"staff":"t2","until":"2030-01-01T07:00"}"#);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(1)); // a reminder already handed over may land
    let t2_count = mail_to(&smtp, "t2").len();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(mail_to(&smtp, "t1").len(), 1, "acknowledged: not repeated");
    assert_eq!(mail_to(&smtp, "t2").len(), t2_count, "snoozed: not repeated");
    first.kill_9();

    // After a restart both alerts are known again as told, with their acknowledgement
    // and snooze: nothing is sent again, nor repeated.
    let second = Running::start(&live);
    let url = second.metrics_url();
    wait_until("every record applied", Duration::from_secs(60), || {
        metric_sum(&scrape(&url), "wholechild_record_effect_latency_seconds_count", "topic=\"canonical\"")
            >= two_counselors_records().len() as f64
    });
    std::thread::sleep(Duration::from_secs(5));
    let log = second.terminate();
    assert!(log.contains("alerts: 0 alert change(s) logged"), "{log}");
    assert_eq!(mail_to(&smtp, "t1").len(), 1, "{log}");
    assert_eq!(mail_to(&smtp, "t2").len(), t2_count, "{log}");
}

/// (staff id, e-mail address) of every `staff` record in `events`.
fn staff_addresses(events: &Path) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(events).unwrap();
    text.lines()
        .filter(|line| line.contains(r#""type":"staff""#))
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            (value["id"].as_str().unwrap().to_string(), value["email"].as_str().unwrap().to_string())
        })
        .collect()
}

fn applied(url: &str) -> f64 {
    metric_sum(&scrape(url), "wholechild_record_effect_latency_seconds_count", "topic=\"canonical\"")
}

#[test]
fn after_kill_9_with_many_alerts_in_flight_each_change_is_logged_once_and_every_notice_arrives() {
    use alerts::AlertStore;
    let dir = scratch("alerts-crash");
    let broker = Broker::start(&dir.join("broker.log"));
    broker.create_topic("canonical", 3);
    broker.create_topic("dead-letters", 1);
    let smtp = SmtpServer::start(&dir.join("mail"));
    let store_path = dir.join("alerts.sqlite");
    let alerts = format!(
        "[alerts]\nstore = \"sqlite:{}\"\ndashboard_url = \"https://dashboard.district.example\"\ngroup_wait_seconds = 3\ngroup_interval_seconds = 3\ndaily_budget = 0\ndelivery_hours = \"00:00-24:00\"\ndelivery_weekdays_only = false\n[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"wholechild <alerts@district.example>\"\n",
        store_path.display(),
        smtp.port
    );
    let config = kafka_config(&dir, &broker, "alerts-crash", &["canonical"], &alerts);
    let config_arg = config.to_str().unwrap();
    let events = dir.join("events.ndjson");
    let generate = ["generate", "--students", "300", "--schools", "4", "--days", "60", "--seed", "8"];
    wholechild(&[&generate[..], &["--out", events.to_str().unwrap()]].concat());
    let backtest = wholechild(&[
        "replay",
        "--config",
        config_arg,
        "--events",
        events.to_str().unwrap(),
        "--out",
        dir.join("replay").to_str().unwrap(),
        "--alerts",
    ]);
    let as_of = &backtest[backtest.find(" as of ").expect(&backtest) + 7..][..10];
    let produced =
        wholechild(&["produce", "--config", config_arg, "--events", events.to_str().unwrap(), "--tombstones"]);
    let total: f64 = produced[produced.find("published ").unwrap() + 10..].split(' ').next().unwrap().parse().unwrap();
    let live = ["run", "--config", config_arg, "--as-of", as_of, "--publish-ms", "50"];

    let logged = || alerts::SqliteStore::open(&store_path).unwrap().changes().unwrap().len();
    // 1. Killed with many alert changes logged and waiting for their digest (group_wait).
    let first = Running::start(&live);
    wait_until("alert changes logged", Duration::from_secs(60), || logged() >= 20);
    first.kill_9();
    // 2. Killed again once the first digests are going out.
    let second = Running::start(&live);
    wait_until("the first e-mails", Duration::from_secs(60), || !smtp.messages().is_empty());
    second.kill_9();
    // 3. Left to consume everything and deliver what is due, then stopped cleanly.
    let last = Running::start(&live);
    let url = last.metrics_url();
    wait_until("every record applied", Duration::from_secs(120), || applied(&url) >= total);
    // Delivered: nothing pending in the outbox, and no new e-mail for five seconds
    // (longer than the grouping waits).
    let mut quiet_since = (Instant::now(), smtp.messages().len());
    wait_until("the outbox delivered", Duration::from_secs(60), || {
        let pending = alerts::SqliteStore::open(&store_path).unwrap().outbox("pending").unwrap().len();
        let sent = smtp.messages().len();
        if pending > 0 || sent != quiet_since.1 {
            quiet_since = (Instant::now(), sent);
        }
        quiet_since.0.elapsed() >= Duration::from_secs(5)
    });
    last.terminate();

    let mut store = alerts::SqliteStore::open(&store_path).unwrap();
    let changes = store.changes().unwrap();
    assert!(changes.len() >= 50, "many alerts in flight: {} changes", changes.len());
    // Each alert fired once in the log (an alert is its rule, entity and day fired).
    let mut alerts: std::collections::BTreeMap<String, Vec<&alerts::LoggedChange>> = Default::default();
    for change in &changes {
        let fired: serde_json::Value = serde_json::from_str(&change.evidence).unwrap();
        let key = format!("{}|{}|{}", change.rule, change.entity, fired["fired"].as_str().unwrap());
        alerts.entry(key).or_default().push(change);
    }
    for (key, history) in &alerts {
        let fires = history.iter().filter(|change| change.change == "fired").count();
        assert!(fires <= 1, "{key} fired {fires} times in the log");
    }
    // Every notification decided on reached the SMTP server, with its Message-ID.
    let messages = smtp.messages().join("\n");
    for entry in store.outbox("delivered").unwrap() {
        let id = format!("Message-ID: <{}@wholechild>", entry.notification.idempotency_key);
        assert!(messages.contains(&id), "{id} was delivered");
    }
    assert!(store.outbox("failed").unwrap().is_empty());
    // Every alert still open was told to its current recipient.
    let addresses = staff_addresses(&events);
    // Bodies are quoted-printable: long lines are folded with `=` at the end.
    let unfolded: Vec<String> = smtp.messages().iter().map(|message| message.replace("=\r\n", "")).collect();
    let mut open = 0;
    for (key, history) in &alerts {
        let last = history.last().unwrap();
        let Some(recipient) = &last.recipient else { continue };
        if last.change != "fired" && last.change != "rerouted" {
            continue;
        }
        open += 1;
        let reference = store.reference(key, "not-a-new-alert").unwrap();
        let to = format!("To: {}", addresses[recipient]);
        let link = format!("/alerts/{reference}");
        let told = unfolded.iter().any(|message| message.contains(&to) && message.contains(&link));
        assert!(told, "open alert {key} ({reference}) was not e-mailed to {recipient}");
    }
    assert!(open >= 10, "{open} open alerts checked");
}

#[test]
fn a_silenced_rule_is_not_notified_and_its_silence_holds_across_a_kill_9() {
    let dir = scratch("silence");
    let broker = Broker::start(&dir.join("broker.log"));
    broker.create_topic("canonical", 2);
    broker.create_topic("dead-letters", 1);
    let smtp = SmtpServer::start(&dir.join("mail"));
    let token_file = dir.join("api-token");
    std::fs::write(&token_file, API_TOKEN).unwrap();
    let store = dir.join("alerts.sqlite");
    let alerts = format!(
        "[alerts]\nstore = \"sqlite:{}\"\ndashboard_url = \"https://dashboard.district.example\"\ngroup_wait_seconds = 0\ngroup_interval_seconds = 0\ndelivery_hours = \"00:00-24:00\"\ndelivery_weekdays_only = false\n[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"wholechild <alerts@district.example>\"\n[alerts.api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        store.display(),
        smtp.port,
        token_file.display()
    );
    let config = kafka_config(&dir, &broker, "silence", &["canonical"], &alerts);
    let live = ["run", "--config", config.to_str().unwrap(), "--as-of", "2026-09-03", "--publish-ms", "50"];

    let first = Running::start(&live);
    let base = api_base(&first);
    let silence = r#"{"rule":"vulnerable_absences","until":"2030-01-01T00:00","created_by":"t-ops","comment":"attendance export re-sent in error"}"#;
    assert_eq!(
        api(
            &base,
            "/api/silences",
            API_TOKEN,
            r#"{"rule":"no_such_rule","until":"2030-01-01T00:00","created_by":"t","comment":"c"}"#
        )
        .0,
        400
    );
    assert_eq!(
        api(&base, "/api/silences", API_TOKEN, r#"{"until":"2030-01-01T00:00","created_by":"t","comment":""}"#).0,
        400
    );
    assert_eq!(api(&base, "/api/silences", "wrong", silence).0, 401);
    let (status, created) = api(&base, "/api/silences", API_TOKEN, silence);
    assert_eq!((status, created["active"].as_bool()), (201, Some(true)), "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The records that raise the alert arrive while it is silenced: logged, not e-mailed.
    let events = dir.join("events.ndjson");
    std::fs::write(&events, RECORDS.join("\n") + "\n").unwrap();
    wholechild(&["produce", "--config", config.to_str().unwrap(), "--events", events.to_str().unwrap()]);
    wait_until("the alert logged", Duration::from_secs(60), || !logged_changes(&store).is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert!(smtp.messages().is_empty(), "silenced");
    first.kill_9();

    // After a restart the silence still holds (the change, never told, is offered to
    // the pipeline again, and silenced again).
    let second = Running::start(&live);
    let base = api_base(&second);
    let url = second.metrics_url();
    wait_until("every record applied", Duration::from_secs(60), || {
        metric_sum(&scrape(&url), "wholechild_record_effect_latency_seconds_count", "topic=\"canonical\"")
            >= RECORDS.len() as f64
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(smtp.messages().is_empty(), "still silenced after the restart");
    let (status, listed) = api_without_body("GET", &base, "/api/silences", API_TOKEN);
    assert_eq!((status, listed[0]["id"].as_str(), listed[0]["active"].as_bool()), (200, Some(id.as_str()), Some(true)));
    let (status, ended) = api_without_body("DELETE", &base, &format!("/api/silences/{id}"), API_TOKEN);
    assert_eq!((status, ended["active"].as_bool()), (200, Some(false)), "{ended}");
    assert_eq!(api_without_body("DELETE", &base, "/api/silences/unknown", API_TOKEN).0, 404);
    second.terminate();
}
