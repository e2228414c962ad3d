//! The durable alert log and outbox: every alert change and every notification is
//! recorded before it is acted upon, in an embedded SQLite file by default or in
//! PostgreSQL, with the same schema and the same statements for both.
//!
//! Design (the transactional outbox): an alert change is inserted under a key that names
//! it (rule, entity, day fired, change, day), so recording it again after a restart is a
//! no-op and no alert is logged twice. A notification enters the outbox as `pending`
//! before its first attempt and is marked `delivered` or `failed` after; after a crash,
//! the pending ones are sent again with the same idempotency key (the e-mail's
//! Message-ID, the webhook's `webhook-id`), so a notification may repeat only in the
//! window between the server accepting it and the log recording that, and then
//! recognisably.

use crate::delivery::{Notification, Outcome};

/// A store's failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("alert store: {doing}: {message}")]
pub struct StoreError {
    pub doing: &'static str,
    pub message: String,
}

fn failed<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> StoreError {
    move |error| StoreError { doing, message: error.to_string() }
}

/// One alert change as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedChange {
    /// Unique per change: `rule|entity|fired|change|day`.
    pub key: String,
    pub day: String,
    pub rule: String,
    pub entity: String,
    pub change: String,
    pub recipient: Option<String>,
    /// The evidence, as JSON text.
    pub evidence: String,
}

impl LoggedChange {
    pub fn key_of(rule: &str, entity: &str, fired: &str, change: &str, day: &str) -> String {
        format!("{rule}|{entity}|{fired}|{change}|{day}")
    }
}

/// An acknowledgement or a snooze by a recipient, as logged (local times in seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedAction {
    pub reference: String,
    /// The staff id acting: the alert's current recipient.
    pub staff: String,
    /// `acknowledged` or `snoozed`.
    pub action: String,
    /// Snoozed until then.
    pub until: Option<i64>,
    pub at: i64,
}

/// A silence as logged (local times in seconds; `None`: every rule, every recipient).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedSilence {
    pub id: String,
    pub rule: Option<String>,
    pub recipient: Option<String>,
    pub from: i64,
    pub until: i64,
    pub created_by: String,
    pub comment: String,
}

/// A notification in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub channel: String,
    pub notification: Notification,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// The statements, the same text for SQLite and PostgreSQL (`$n` parameters, which
/// SQLite numbers in order of appearance).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS alert_changes (
        change_key TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        rule TEXT NOT NULL,
        entity TEXT NOT NULL,
        change TEXT NOT NULL,
        recipient TEXT,
        evidence TEXT NOT NULL,
        seq BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS outbox (
        idempotency_key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        items TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        seq BIGINT NOT NULL
    )",
];
const REFERENCES: &str = "CREATE TABLE IF NOT EXISTS alert_references (
        alert_key TEXT PRIMARY KEY,
        reference TEXT NOT NULL UNIQUE
    )";
const ACTIONS: &str = "CREATE TABLE IF NOT EXISTS alert_actions (
        reference TEXT NOT NULL,
        staff TEXT NOT NULL,
        action TEXT NOT NULL,
        until_local BIGINT,
        at_local BIGINT NOT NULL,
        seq BIGINT NOT NULL
    )";
const INSERT_ACTION: &str = "INSERT INTO alert_actions (reference, staff, action, until_local, at_local, seq)
    VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alert_actions))";
const SELECT_ACTIONS: &str = "SELECT reference, staff, action, until_local, at_local FROM alert_actions ORDER BY seq";
const SILENCES: &str = "CREATE TABLE IF NOT EXISTS alert_silences (
        id TEXT PRIMARY KEY,
        rule TEXT,
        recipient TEXT,
        from_local BIGINT NOT NULL,
        until_local BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        seq BIGINT NOT NULL
    )";
const INSERT_SILENCE: &str =
    "INSERT INTO alert_silences (id, rule, recipient, from_local, until_local, created_by, comment, seq)
    VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alert_silences))";
const SELECT_SILENCES: &str =
    "SELECT id, rule, recipient, from_local, until_local, created_by, comment FROM alert_silences ORDER BY seq";
const EXPIRE_SILENCE: &str = "UPDATE alert_silences SET until_local = $1 WHERE id = $2 AND until_local > $3";
const SELECT_NOTIFIED: &str = "SELECT items FROM outbox ORDER BY seq";
const INSERT_REFERENCE: &str =
    "INSERT INTO alert_references (alert_key, reference) VALUES ($1, $2) ON CONFLICT (alert_key) DO NOTHING";
const SELECT_REFERENCE: &str = "SELECT reference FROM alert_references WHERE alert_key = $1";
const INSERT_CHANGE: &str =
    "INSERT INTO alert_changes (change_key, day, rule, entity, change, recipient, evidence, seq)
    VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alert_changes))
    ON CONFLICT (change_key) DO NOTHING";
const SELECT_CHANGES: &str =
    "SELECT change_key, day, rule, entity, change, recipient, evidence FROM alert_changes ORDER BY seq";
const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (idempotency_key, channel, address, subject, body, items, state, attempts, seq)
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
    ON CONFLICT (idempotency_key) DO NOTHING";
const FINISH_OUTBOX: &str = "UPDATE outbox SET state = $1, attempts = $2, last_error = $3 WHERE idempotency_key = $4";
const SELECT_OUTBOX: &str =
    "SELECT channel, address, idempotency_key, subject, body, items, state, attempts, last_error
    FROM outbox WHERE state = $1 ORDER BY seq";

/// The alert log and outbox.
pub trait AlertStore {
    /// Logs a change; false when it was logged already (a replay after a restart).
    fn record_change(&mut self, change: &LoggedChange) -> Result<bool, StoreError>;
    /// Every change logged, in the order logged.
    fn changes(&mut self) -> Result<Vec<LoggedChange>, StoreError>;
    /// Puts a notification in the outbox as pending, before its first attempt; false when
    /// it is there already.
    fn enqueue(&mut self, channel: &str, notification: &Notification) -> Result<bool, StoreError>;
    /// Records what became of a notification.
    fn finish(&mut self, idempotency_key: &str, outcome: &Outcome) -> Result<(), StoreError>;
    /// The notifications in a state (`pending` after a restart: to send again).
    fn outbox(&mut self, state: &str) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The opaque reference of the alert `alert_key` (rule, entity, day fired): `fresh`
    /// the first time (a random value, so that nothing about the student can be read
    /// or guessed from it), the same ever after.
    fn reference(&mut self, alert_key: &str, fresh: &str) -> Result<String, StoreError>;
    /// Logs an acknowledgement or a snooze, before the pipeline acts on it.
    fn record_action(&mut self, action: &LoggedAction) -> Result<(), StoreError>;
    /// Every action logged, in the order logged.
    fn actions(&mut self) -> Result<Vec<LoggedAction>, StoreError>;
    /// The (reference, change) of every digest line ever put in the outbox, whatever
    /// became of it: what recipients have been (or are being) told.
    fn notified_items(&mut self) -> Result<Vec<(String, &'static str)>, StoreError>;
    /// Logs a new silence, before the pipeline applies it.
    fn record_silence(&mut self, silence: &LoggedSilence) -> Result<(), StoreError>;
    /// Ends silence `id` at `at` (if it lasted longer).
    fn expire_silence(&mut self, id: &str, at: i64) -> Result<(), StoreError>;
    /// Every silence logged, in the order logged.
    fn silences(&mut self) -> Result<Vec<LoggedSilence>, StoreError>;
}

fn outcome_columns(outcome: &Outcome) -> (&'static str, i64, Option<String>) {
    match outcome {
        Outcome::Delivered { attempts } => ("delivered", i64::from(*attempts), None),
        Outcome::Failed { attempts, error, .. } => ("failed", i64::from(*attempts), Some(error.clone())),
    }
}

/// The embedded store: one SQLite file (WAL, synchronous writes).
pub struct SqliteStore {
    connection: rusqlite::Connection,
}

impl SqliteStore {
    pub fn open(path: &std::path::Path) -> Result<SqliteStore, StoreError> {
        let connection = rusqlite::Connection::open(path).map_err(failed("opening the SQLite file"))?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(failed("setting the journal mode"))?;
        for statement in SCHEMA.iter().chain([&REFERENCES, &ACTIONS, &SILENCES]) {
            connection.execute(statement, []).map_err(failed("creating the schema"))?;
        }
        Ok(SqliteStore { connection })
    }
}

impl AlertStore for SqliteStore {
    fn record_change(&mut self, change: &LoggedChange) -> Result<bool, StoreError> {
        let c = change;
        let inserted = self
            .connection
            .execute(
                INSERT_CHANGE,
                rusqlite::params![c.key, c.day, c.rule, c.entity, c.change, c.recipient, c.evidence],
            )
            .map_err(failed("logging an alert change"))?;
        Ok(inserted == 1)
    }

    fn changes(&mut self) -> Result<Vec<LoggedChange>, StoreError> {
        let mut statement = self.connection.prepare(SELECT_CHANGES).map_err(failed("reading the alert log"))?;
        let rows = statement
            .query_map([], |row| {
                Ok(LoggedChange {
                    key: row.get(0)?,
                    day: row.get(1)?,
                    rule: row.get(2)?,
                    entity: row.get(3)?,
                    change: row.get(4)?,
                    recipient: row.get(5)?,
                    evidence: row.get(6)?,
                })
            })
            .map_err(failed("reading the alert log"))?;
        rows.collect::<Result<_, _>>().map_err(failed("reading the alert log"))
    }

    fn enqueue(&mut self, channel: &str, n: &Notification) -> Result<bool, StoreError> {
        let inserted = self
            .connection
            .execute(
                INSERT_OUTBOX,
                rusqlite::params![n.idempotency_key, channel, n.address, n.subject, n.body, encode_items(n)],
            )
            .map_err(failed("queueing a notification"))?;
        Ok(inserted == 1)
    }

    fn finish(&mut self, idempotency_key: &str, outcome: &Outcome) -> Result<(), StoreError> {
        let (state, attempts, error) = outcome_columns(outcome);
        self.connection
            .execute(FINISH_OUTBOX, rusqlite::params![state, attempts, error, idempotency_key])
            .map_err(failed("recording a delivery"))?;
        Ok(())
    }

    fn reference(&mut self, alert_key: &str, fresh: &str) -> Result<String, StoreError> {
        self.connection
            .execute(INSERT_REFERENCE, rusqlite::params![alert_key, fresh])
            .map_err(failed("naming an alert"))?;
        self.connection.query_row(SELECT_REFERENCE, [alert_key], |row| row.get(0)).map_err(failed("naming an alert"))
    }

    fn outbox(&mut self, state: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut statement = self.connection.prepare(SELECT_OUTBOX).map_err(failed("reading the outbox"))?;
        let rows = statement
            .query_map([state], |row| {
                Ok(outbox_entry(OutboxRow {
                    channel: row.get(0)?,
                    address: row.get(1)?,
                    idempotency_key: row.get(2)?,
                    subject: row.get(3)?,
                    body: row.get(4)?,
                    items: row.get(5)?,
                    state: row.get(6)?,
                    attempts: row.get::<_, i64>(7)?,
                    last_error: row.get(8)?,
                }))
            })
            .map_err(failed("reading the outbox"))?;
        rows.collect::<Result<_, _>>().map_err(failed("reading the outbox"))
    }

    fn record_action(&mut self, a: &LoggedAction) -> Result<(), StoreError> {
        self.connection
            .execute(INSERT_ACTION, rusqlite::params![a.reference, a.staff, a.action, a.until, a.at])
            .map_err(failed("logging an acknowledgement or snooze"))?;
        Ok(())
    }

    fn actions(&mut self) -> Result<Vec<LoggedAction>, StoreError> {
        let mut statement = self.connection.prepare(SELECT_ACTIONS).map_err(failed("reading the actions"))?;
        let rows = statement
            .query_map([], |row| {
                Ok(LoggedAction {
                    reference: row.get(0)?,
                    staff: row.get(1)?,
                    action: row.get(2)?,
                    until: row.get(3)?,
                    at: row.get(4)?,
                })
            })
            .map_err(failed("reading the actions"))?;
        rows.collect::<Result<_, _>>().map_err(failed("reading the actions"))
    }

    fn notified_items(&mut self) -> Result<Vec<(String, &'static str)>, StoreError> {
        let mut statement = self.connection.prepare(SELECT_NOTIFIED).map_err(failed("reading the outbox"))?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0)).map_err(failed("reading the outbox"))?;
        let items: Vec<String> = rows.collect::<Result<_, _>>().map_err(failed("reading the outbox"))?;
        Ok(items_told(&items))
    }

    fn record_silence(&mut self, v: &LoggedSilence) -> Result<(), StoreError> {
        self.connection
            .execute(
                INSERT_SILENCE,
                rusqlite::params![v.id, v.rule, v.recipient, v.from, v.until, v.created_by, v.comment],
            )
            .map_err(failed("logging a silence"))?;
        Ok(())
    }

    fn expire_silence(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        self.connection.execute(EXPIRE_SILENCE, rusqlite::params![at, id, at]).map_err(failed("ending a silence"))?;
        Ok(())
    }

    fn silences(&mut self) -> Result<Vec<LoggedSilence>, StoreError> {
        let mut statement = self.connection.prepare(SELECT_SILENCES).map_err(failed("reading the silences"))?;
        let rows = statement
            .query_map([], |row| {
                Ok(LoggedSilence {
                    id: row.get(0)?,
                    rule: row.get(1)?,
                    recipient: row.get(2)?,
                    from: row.get(3)?,
                    until: row.get(4)?,
                    created_by: row.get(5)?,
                    comment: row.get(6)?,
                })
            })
            .map_err(failed("reading the silences"))?;
        rows.collect::<Result<_, _>>().map_err(failed("reading the silences"))
    }
}

/// The (reference, change) pairs of outbox rows' items.
fn items_told(rows: &[String]) -> Vec<(String, &'static str)> {
    rows.iter().flat_map(|text| decode_items(text)).map(|(reference, change, _)| (reference, change)).collect()
}

/// An outbox row as read.
struct OutboxRow {
    channel: String,
    address: String,
    idempotency_key: String,
    subject: String,
    body: String,
    items: String,
    state: String,
    attempts: i64,
    last_error: Option<String>,
}

fn outbox_entry(row: OutboxRow) -> OutboxEntry {
    let notification = Notification {
        address: row.address,
        idempotency_key: row.idempotency_key,
        subject: row.subject,
        body: row.body,
        items: decode_items(&row.items),
    };
    OutboxEntry {
        channel: row.channel,
        notification,
        state: row.state,
        attempts: row.attempts as u32,
        last_error: row.last_error,
    }
}

/// A notification's items as lines of `reference TAB change TAB link` (none of the three
/// holds a tab or a newline: references are hex, links are URLs).
fn encode_items(notification: &Notification) -> String {
    let lines: Vec<String> =
        notification.items.iter().map(|(reference, change, link)| format!("{reference}\t{change}\t{link}")).collect();
    lines.join("\n")
}

fn decode_items(text: &str) -> Vec<(String, &'static str, String)> {
    const CHANGES: [&str; 7] = ["new", "reminder", "resolved", "withdrawn", "reassigned", "moved_away", "escalated"];
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let (reference, change, link) = (parts.next()?, parts.next()?, parts.next()?);
            let change = CHANGES.into_iter().find(|known| *known == change)?;
            Some((reference.to_string(), change, link.to_string()))
        })
        .collect()
}

/// The store in PostgreSQL (one schema of a database; `search_path` chooses it).
pub struct PostgresStore {
    client: postgres::Client,
}

impl PostgresStore {
    /// `url` as libpq takes it, e.g. `host=127.0.0.1 user=postgres dbname=wholechild`;
    /// the tables go in `schema` (created if missing).
    pub fn connect(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(failed("connecting to PostgreSQL"))?;
        let schema = schema.replace('"', "");
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\";"))
            .map_err(failed("choosing the schema"))?;
        for statement in SCHEMA.iter().chain([&REFERENCES, &ACTIONS, &SILENCES]) {
            client.batch_execute(statement).map_err(failed("creating the schema"))?;
        }
        Ok(PostgresStore { client })
    }
}

impl AlertStore for PostgresStore {
    fn record_change(&mut self, change: &LoggedChange) -> Result<bool, StoreError> {
        let c = change;
        let inserted = self
            .client
            .execute(INSERT_CHANGE, &[&c.key, &c.day, &c.rule, &c.entity, &c.change, &c.recipient, &c.evidence])
            .map_err(failed("logging an alert change"))?;
        Ok(inserted == 1)
    }

    fn changes(&mut self) -> Result<Vec<LoggedChange>, StoreError> {
        let rows = self.client.query(SELECT_CHANGES, &[]).map_err(failed("reading the alert log"))?;
        Ok(rows
            .iter()
            .map(|row| LoggedChange {
                key: row.get(0),
                day: row.get(1),
                rule: row.get(2),
                entity: row.get(3),
                change: row.get(4),
                recipient: row.get(5),
                evidence: row.get(6),
            })
            .collect())
    }

    fn enqueue(&mut self, channel: &str, n: &Notification) -> Result<bool, StoreError> {
        let inserted = self
            .client
            .execute(INSERT_OUTBOX, &[&n.idempotency_key, &channel, &n.address, &n.subject, &n.body, &encode_items(n)])
            .map_err(failed("queueing a notification"))?;
        Ok(inserted == 1)
    }

    fn finish(&mut self, idempotency_key: &str, outcome: &Outcome) -> Result<(), StoreError> {
        let (state, attempts, error) = outcome_columns(outcome);
        let attempts = attempts as i32;
        self.client
            .execute(FINISH_OUTBOX, &[&state, &attempts, &error, &idempotency_key])
            .map_err(failed("recording a delivery"))?;
        Ok(())
    }

    fn reference(&mut self, alert_key: &str, fresh: &str) -> Result<String, StoreError> {
        self.client.execute(INSERT_REFERENCE, &[&alert_key, &fresh]).map_err(failed("naming an alert"))?;
        let row = self.client.query_one(SELECT_REFERENCE, &[&alert_key]).map_err(failed("naming an alert"))?;
        Ok(row.get(0))
    }

    fn outbox(&mut self, state: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self.client.query(SELECT_OUTBOX, &[&state]).map_err(failed("reading the outbox"))?;
        Ok(rows
            .iter()
            .map(|row| {
                outbox_entry(OutboxRow {
                    channel: row.get(0),
                    address: row.get(1),
                    idempotency_key: row.get(2),
                    subject: row.get(3),
                    body: row.get(4),
                    items: row.get(5),
                    state: row.get(6),
                    attempts: i64::from(row.get::<_, i32>(7)),
                    last_error: row.get(8),
                })
            })
            .collect())
    }

    fn record_action(&mut self, a: &LoggedAction) -> Result<(), StoreError> {
        self.client
            .execute(INSERT_ACTION, &[&a.reference, &a.staff, &a.action, &a.until, &a.at])
            .map_err(failed("logging an acknowledgement or snooze"))?;
        Ok(())
    }

    fn actions(&mut self) -> Result<Vec<LoggedAction>, StoreError> {
        let rows = self.client.query(SELECT_ACTIONS, &[]).map_err(failed("reading the actions"))?;
        Ok(rows
            .iter()
            .map(|row| LoggedAction {
                reference: row.get(0),
                staff: row.get(1),
                action: row.get(2),
                until: row.get(3),
                at: row.get(4),
            })
            .collect())
    }

    fn notified_items(&mut self) -> Result<Vec<(String, &'static str)>, StoreError> {
        let rows = self.client.query(SELECT_NOTIFIED, &[]).map_err(failed("reading the outbox"))?;
        let items: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        Ok(items_told(&items))
    }

    fn record_silence(&mut self, v: &LoggedSilence) -> Result<(), StoreError> {
        self.client
            .execute(INSERT_SILENCE, &[&v.id, &v.rule, &v.recipient, &v.from, &v.until, &v.created_by, &v.comment])
            .map_err(failed("logging a silence"))?;
        Ok(())
    }

    fn expire_silence(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        self.client.execute(EXPIRE_SILENCE, &[&at, &id, &at]).map_err(failed("ending a silence"))?;
        Ok(())
    }

    fn silences(&mut self) -> Result<Vec<LoggedSilence>, StoreError> {
        let rows = self.client.query(SELECT_SILENCES, &[]).map_err(failed("reading the silences"))?;
        Ok(rows
            .iter()
            .map(|row| LoggedSilence {
                id: row.get(0),
                rule: row.get(1),
                recipient: row.get(2),
                from: row.get(3),
                until: row.get(4),
                created_by: row.get(5),
                comment: row.get(6),
            })
            .collect())
    }
}
