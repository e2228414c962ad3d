//! The live engine's alerts (`[alerts]` in the configuration): every alert change the
//! dataflows report is logged in the alert store once, fed to the notification pipeline,
//! and each digest the pipeline emits is put in the outbox and then delivered, by e-mail
//! to the recipient's address from the `staff` records and to the webhook, on a thread of
//! its own (a slow SMTP server never holds up the dataflows).
//!
//! After a restart the engine re-derives every alert from the topics; the store knows
//! the changes it logged already and what the outbox told of them. A change logged and
//! told before is taken back into the pipeline as told (nobody is told twice, and an open
//! alert is still repeated, acknowledged and escalated, its clocks restarted); one logged
//! but not yet told (the run died while it waited for its digest) goes through the
//! pipeline again, so nobody misses it. The outbox's pending notifications are sent
//! again with their idempotency keys. Acknowledgements and snoozes from the alerts API
//! (`alert_api`) are logged before the pipeline acts on them, and applied again to the
//! alerts taken back after a restart.

use crate::alert_api::{Action, Answer, Command, NewSilence, Request};
use crate::alert_log::{entity_evidence_json, evidence_json};
use crate::entity_alerts::EntityAlertChange;
use alerts::{
    deliver, AlertEvent, AlertStore, Change, DeliveryHours, LocalTime, LoggedAction, LoggedChange, LoggedSilence,
    Notification, Notifier, Pipeline, PipelineConfig, RetryPolicy, Silence,
};
use anyhow::{anyhow, Context, Result};
use config::{AlertRule, AlertStoreConfig, AlertsConfig, RecipientRole, SmtpSecurityConfig};
use ingest::{Names, StaffEntry};
use model::{AlertChangeKind, StudentAlertChange, Sym};
use rand::Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

/// A notification for the delivery thread: its channel (`email`, `webhook`) and text.
type Delivery = (&'static str, Notification);

pub struct LiveAlerts {
    store: Box<dyn AlertStore + Send>,
    pipeline: Pipeline,
    rules: Vec<AlertRule>,
    dashboard_url: String,
    email: bool,
    webhook: bool,
    deliveries: Option<Sender<Delivery>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The `alerts` topic, when configured.
    topic: Option<ingest::kafka::Publisher>,
    fallback_recipient: Option<String>,
    /// (reference, digest line) of everything the outbox ever told (at start).
    told_before: FxHashSet<(String, &'static str)>,
    /// The acknowledgements and snoozes logged, by reference (at start).
    actions_before: FxHashMap<String, Vec<LoggedAction>>,
    /// Every silence logged (the pipeline holds the same).
    silences: Vec<LoggedSilence>,
    /// Requests from the alerts API, when `[alerts.api]` is configured.
    api: Option<Receiver<Request>>,
    /// Where the alerts API listens.
    pub api_address: Option<std::net::SocketAddr>,
    /// Alert changes logged (and so new) since start.
    pub logged: u64,
}

fn open_store(config: &AlertStoreConfig) -> Result<Box<dyn AlertStore + Send>> {
    Ok(match config {
        AlertStoreConfig::Sqlite(path) => Box::new(alerts::SqliteStore::open(path)?),
        AlertStoreConfig::Postgres { url, schema } => Box::new(alerts::PostgresStore::connect(url, schema)?),
    })
}

/// The district's local time now, as the pipeline counts it.
pub fn local_now() -> LocalTime {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::America::Los_Angeles);
    LocalTime(now.naive_local().and_utc().timestamp())
}

impl LiveAlerts {
    /// Opens the store, builds the notifiers, starts the delivery thread and hands it the
    /// notifications a previous run left pending.
    pub fn start(
        config: &AlertsConfig,
        rules: &[AlertRule],
        calendar: &config::Calendar,
        kafka: Option<&config::KafkaConfig>,
    ) -> Result<LiveAlerts> {
        let mut store = open_store(&config.store)?;
        let topic = match (&config.topic, kafka) {
            (Some(topic), Some(kafka)) => Some(ingest::kafka::Publisher::connect(kafka, topic)?),
            _ => None,
        };
        let email = match &config.email {
            Some(email) => Some(alerts::EmailNotifier::new(&smtp_settings(email)).map_err(|e| anyhow!(e))?),
            None => None,
        };
        let webhook = match &config.webhook {
            Some(webhook) => {
                let secret = match (&webhook.secret_file, &webhook.secret_env) {
                    (Some(file), _) => std::fs::read_to_string(file)
                        .with_context(|| format!("reading alerts.webhook.secret_file {}", file.display()))?,
                    (None, Some(name)) => {
                        std::env::var(name).with_context(|| format!("the environment has no {name}"))?
                    }
                    (None, None) => unreachable!("the configuration requires a secret"),
                };
                let notifier = alerts::WebhookNotifier::new(
                    &webhook.url,
                    secret.trim(),
                    Duration::from_secs(10),
                    alerts::webhook::unix_now,
                );
                Some((webhook.url.clone(), notifier.map_err(|e| anyhow!(e))?))
            }
            None => None,
        };
        let pending = store.outbox("pending")?;
        let told_before = store.notified_items()?.into_iter().collect();
        let mut actions_before: FxHashMap<String, Vec<LoggedAction>> = FxHashMap::default();
        for action in store.actions()? {
            actions_before.entry(action.reference.clone()).or_default().push(action);
        }
        let silences = store.silences()?;
        let (api_address, api) = match &config.api {
            Some(api) => {
                let (address, requests) = crate::alert_api::serve(api.listen, read_api_token(api)?)?;
                (Some(address), Some(requests))
            }
            None => (None, None),
        };
        let thread_store = open_store(&config.store)?;
        let (deliveries, queue) = channel::<Delivery>();
        let (has_email, has_webhook) = (email.is_some(), webhook.is_some());
        let thread = std::thread::Builder::new().name(String::from("alert-delivery")).spawn(move || {
            let mut store = thread_store;
            let webhook = webhook.map(|(_, notifier)| notifier);
            let mut random = rand::rng();
            for (channel, notification) in queue {
                let notifier: &dyn Notifier = match (channel, &email, &webhook) {
                    ("email", Some(email), _) => email,
                    ("webhook", _, Some(webhook)) => webhook,
                    _ => continue, // a channel no longer configured: it stays pending
                };
                let outcome =
                    deliver(notifier, &notification, RetryPolicy::default(), std::thread::sleep, || random.random());
                if let alerts::Outcome::Failed { error, .. } = &outcome {
                    eprintln!("alerts: a {channel} notification was not delivered: {error}");
                }
                if let Err(error) = store.finish(&notification.idempotency_key, &outcome) {
                    eprintln!("alerts: {error}");
                }
            }
        })?;
        if !pending.is_empty() {
            eprintln!("alerts: sending again {} notification(s) left pending by the last run", pending.len());
        }
        for entry in pending {
            let channel = if entry.channel == "webhook" { "webhook" } else { "email" };
            let _ = deliveries.send((channel, entry.notification));
        }
        let mut pipeline = Pipeline::new(pipeline_config(config, calendar));
        pipeline.set_silences(silences.iter().map(silence_of).collect());
        Ok(LiveAlerts {
            store,
            pipeline,
            rules: rules.to_vec(),
            dashboard_url: config.dashboard_url.clone(),
            email: has_email,
            webhook: has_webhook,
            deliveries: Some(deliveries),
            thread: Some(thread),
            topic,
            fallback_recipient: config.fallback_recipient.clone(),
            told_before,
            actions_before,
            silences,
            api,
            api_address,
            logged: 0,
        })
    }

    /// Logs the changes the dataflows reported; those new to the log go to the pipeline.
    pub fn record(
        &mut self,
        upsert: &ingest::Upsert,
        directory: &FxHashMap<Sym, model::SchoolInfo>,
        changes: Vec<StudentAlertChange>,
        now: LocalTime,
    ) -> Result<()> {
        let names = &upsert.names;
        for change in changes {
            let rule = &self.rules[usize::from(change.rule)];
            let entity = names.students.resolve(change.student);
            let fired = change.fired.to_string();
            let recipient = change.recipient.map(|staff| names.staff.resolve(staff).to_string());
            let evidence = evidence_json(rule, &change, names);
            let logged = logged_change(rule, entity, change.kind, change.day, &recipient, &evidence);
            let previous = change.previous_recipient.map(|staff| names.staff.resolve(staff).to_string());
            // The student's school's principal, then its local district.
            let school = change.evidence.as_ref().and_then(|evidence| evidence.row.school);
            let chain =
                escalation_chain(&[RecipientRole::Principal, RecipientRole::LocalDistrict], school, directory, upsert);
            let routing = Routing { recipient, previous, escalation: chain };
            self.push_new(&logged, &fired, change.kind, routing, now)?;
        }
        Ok(())
    }

    /// Logs school and section alert changes; those new to the log go to the pipeline.
    pub fn record_entities(
        &mut self,
        upsert: &ingest::Upsert,
        directory: &FxHashMap<Sym, model::SchoolInfo>,
        changes: Vec<EntityAlertChange>,
        now: LocalTime,
    ) -> Result<()> {
        let names = &upsert.names;
        for change in changes {
            let rule = &self.rules[change.rule];
            let fired = change.fired.to_string();
            let recipient = change.recipient.map(|staff| names.staff.resolve(staff).to_string());
            let evidence = entity_evidence_json(rule, &change, names);
            let logged = logged_change(rule, &change.entity, change.kind, change.day, &recipient, &evidence);
            let previous = change.previous_recipient.map(|staff| names.staff.resolve(staff).to_string());
            let chain = match rule.recipient {
                RecipientRole::Principal => {
                    escalation_chain(&[RecipientRole::LocalDistrict], change.school, directory, upsert)
                }
                _ => Vec::new(),
            };
            let routing = Routing { recipient, previous, escalation: chain };
            self.push_new(&logged, &fired, change.kind, routing, now)?;
        }
        Ok(())
    }

    /// Logs one change; if it is new, names its alert and hands it to the pipeline.
    fn push_new(
        &mut self,
        logged: &LoggedChange,
        fired: &str,
        kind: AlertChangeKind,
        routing: Routing,
        now: LocalTime,
    ) -> Result<()> {
        let Routing { recipient, previous, escalation } = routing;
        let new = self.store.record_change(logged)?;
        let fresh = format!("{:016x}", rand::rng().random::<u64>());
        let reference = self.store.reference(&format!("{}|{}|{fired}", logged.rule, logged.entity), &fresh)?;
        if new {
            self.logged += 1;
        }
        if let (Some(topic), true) = (&self.topic, new) {
            let message = serde_json::json!({
                "reference": reference,
                "rule": logged.rule,
                "entity": logged.entity,
                "change": logged.change,
                "day": logged.day,
                "fired": fired,
                "recipient": recipient,
                "evidence": serde_json::from_str::<serde_json::Value>(&logged.evidence).unwrap_or_default(),
            });
            topic.send(Some(reference.as_bytes()), message.to_string().as_bytes())?;
        }
        let Some(recipient) = recipient.or_else(|| self.fallback_recipient.clone()) else {
            if new {
                eprintln!(
                    "alerts: an alert change of rule {} has no recipient (nobody assigned, no fallback)",
                    logged.rule
                );
            }
            return Ok(());
        };
        let (change, line) = match kind {
            AlertChangeKind::Fired => (Change::Fired, "new"),
            AlertChangeKind::Resolved => (Change::Resolved, "resolved"),
            AlertChangeKind::Withdrawn => (Change::Withdrawn, "withdrawn"),
            AlertChangeKind::Rerouted => (Change::Rerouted { from: previous }, "reassigned"),
        };
        let told = !new && self.told_before.contains(&(reference.clone(), line));
        let event = AlertEvent { at: now, reference, rule: logged.rule.clone(), recipient, change, escalation };
        match told {
            false => self.pipeline.push(event),
            true => self.restore(event),
        }
        Ok(())
    }

    /// Takes back an alert change an earlier run told of, with the recipient's actions.
    fn restore(&mut self, event: AlertEvent) {
        let (reference, recipient) = (event.reference.clone(), event.recipient.clone());
        self.pipeline.restore(event);
        for action in self.actions_before.get(&reference).into_iter().flatten() {
            if action.staff == recipient {
                match action.until {
                    None => self.pipeline.acknowledge(&recipient, &reference),
                    Some(until) => self.pipeline.snooze(&recipient, &reference, LocalTime(until)),
                };
            }
        }
    }

    /// Answers the alerts API's requests: each action is logged, then acted upon.
    pub fn answer_requests(&mut self, now: LocalTime) {
        let Some(requests) = &self.api else { return };
        let requests: Vec<Request> = requests.try_iter().collect();
        for request in requests {
            let answer = self.answer(request.command, now).unwrap_or_else(|error| Answer::Failed(error.to_string()));
            let _ = request.reply.send(answer);
        }
    }

    fn answer(&mut self, command: Command, now: LocalTime) -> Result<Answer> {
        Ok(match command {
            Command::Act { reference, staff, action } => match self.act(&reference, &staff, action, now)? {
                true => {
                    let name = if action == Action::Acknowledge { "acknowledged" } else { "snoozed" };
                    Answer::Done(serde_json::json!({ "reference": reference, "staff": staff, "action": name }))
                }
                false => Answer::NotFound("no open alert of this reference was sent to this staff member"),
            },
            Command::Silence(silence) => self.silence(silence)?,
            Command::ExpireSilence { id } => match self.silences.iter().position(|silence| silence.id == id) {
                None => Answer::NotFound("no silence of this id"),
                Some(index) => {
                    self.store.expire_silence(&id, now.0)?;
                    let silence = &mut self.silences[index];
                    silence.until = silence.until.min(now.0);
                    let json = silence_json(silence, now);
                    self.pipeline.set_silences(self.silences.iter().map(silence_of).collect());
                    Answer::Done(json)
                }
            },
            Command::ListSilences => {
                Answer::Done(self.silences.iter().map(|silence| silence_json(silence, now)).collect())
            }
        })
    }

    /// Logs a new silence, then applies it.
    fn silence(&mut self, silence: NewSilence) -> Result<Answer> {
        if let Some(rule) = &silence.rule {
            if !self.rules.iter().any(|known| known.id == *rule) {
                return Ok(Answer::Invalid(format!("rule: no rule `{rule}` in the configuration")));
            }
        }
        let logged = LoggedSilence {
            id: format!("{:016x}", rand::rng().random::<u64>()),
            rule: silence.rule,
            recipient: silence.recipient,
            from: silence.from.0,
            until: silence.until.0,
            created_by: silence.created_by,
            comment: silence.comment,
        };
        self.store.record_silence(&logged)?;
        let json = silence_json(&logged, silence.from);
        self.silences.push(logged);
        self.pipeline.set_silences(self.silences.iter().map(silence_of).collect());
        Ok(Answer::Done(json))
    }

    /// Logs and applies one acknowledgement or snooze; false when `staff` was told of no
    /// open alert `reference`.
    fn act(&mut self, reference: &str, staff: &str, action: Action, now: LocalTime) -> Result<bool> {
        if !self.pipeline.is_open_for(staff, reference) {
            return Ok(false);
        }
        let (name, until) = match action {
            Action::Acknowledge => ("acknowledged", None),
            Action::Snooze { until } => ("snoozed", Some(until.0)),
        };
        let logged = LoggedAction {
            reference: reference.to_string(),
            staff: staff.to_string(),
            action: name.to_string(),
            until,
            at: now.0,
        };
        self.store.record_action(&logged)?;
        match action {
            Action::Acknowledge => self.pipeline.acknowledge(staff, reference),
            Action::Snooze { until } => self.pipeline.snooze(staff, reference, until),
        };
        Ok(true)
    }

    /// Queues and hands over the digests due by `now`.
    pub fn tick(&mut self, names: &Names, staff: &FxHashMap<Sym, StaffEntry>, now: LocalTime) -> Result<()> {
        for digest in self.pipeline.advance(now) {
            let address = names.staff.get(&digest.recipient).and_then(|id| staff.get(&id)).map(|entry| &entry.email);
            let mut channels: Vec<(&'static str, String)> = Vec::new();
            match (self.email, address) {
                (true, Some(address)) => channels.push(("email", address.clone())),
                (true, None) => eprintln!("alerts: no e-mail address for a recipient in the staff records"),
                (false, _) => {}
            }
            if self.webhook {
                channels.push(("webhook", digest.recipient.clone()));
            }
            for (channel, address) in channels {
                let notification = Notification::of(&digest, &address, &self.dashboard_url);
                if self.store.enqueue(channel, &notification)? {
                    if let Some(deliveries) = &self.deliveries {
                        let _ = deliveries.send((channel, notification));
                    }
                }
            }
        }
        Ok(())
    }

    /// Stops taking notifications and gives the delivery thread a few seconds to finish;
    /// what it has not delivered stays pending in the outbox for the next run.
    pub fn close(mut self) {
        if let Some(topic) = self.topic.take() {
            match topic.finish() {
                Ok(0) => {}
                Ok(refused) => eprintln!("alerts: the broker refused {refused} alert message(s)"),
                Err(error) => eprintln!("alerts: {error}"),
            }
        }
        self.deliveries = None;
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// One alert change as the store logs it, under the key that names it.
fn logged_change(
    rule: &AlertRule,
    entity: &str,
    kind: AlertChangeKind,
    day: model::Day,
    recipient: &Option<String>,
    evidence: &serde_json::Value,
) -> LoggedChange {
    let fired = evidence["fired"].as_str().unwrap_or_default();
    LoggedChange {
        key: LoggedChange::key_of(&rule.id, entity, fired, kind.as_str(), &day.to_string()),
        day: day.to_string(),
        rule: rule.id.clone(),
        entity: entity.to_string(),
        change: kind.as_str().to_string(),
        recipient: recipient.clone(),
        evidence: evidence.to_string(),
    }
}

/// Who hears of one alert change: now, before (a reroute), and next (escalation).
struct Routing {
    recipient: Option<String>,
    previous: Option<String>,
    escalation: Vec<String>,
}

/// The staff ids of `roles` for `school`, in order (those nobody holds are left out).
fn escalation_chain(
    roles: &[RecipientRole],
    school: Option<Sym>,
    directory: &FxHashMap<Sym, model::SchoolInfo>,
    upsert: &ingest::Upsert,
) -> Vec<String> {
    let Some(school) = school else { return Vec::new() };
    roles
        .iter()
        .filter_map(|&role| crate::entity_alerts::recipient_of(role, school, directory, upsert))
        .map(|staff| upsert.names.staff.resolve(staff).to_string())
        .collect()
}

fn silence_of(logged: &LoggedSilence) -> Silence {
    Silence {
        rule: logged.rule.clone(),
        recipient: logged.recipient.clone(),
        from: LocalTime(logged.from),
        until: LocalTime(logged.until),
    }
}

/// A silence as the API shows it (times as district local time).
fn silence_json(silence: &LoggedSilence, now: LocalTime) -> serde_json::Value {
    let local = |seconds: i64| {
        chrono::DateTime::from_timestamp(seconds, 0).map(|time| time.naive_utc().format("%Y-%m-%dT%H:%M").to_string())
    };
    serde_json::json!({
        "id": silence.id,
        "rule": silence.rule,
        "recipient": silence.recipient,
        "from": local(silence.from),
        "until": local(silence.until),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "active": silence.from <= now.0 && now.0 < silence.until,
    })
}

fn read_api_token(api: &config::AlertApiConfig) -> Result<String> {
    let token = match (&api.token_file, &api.token_env) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("reading alerts.api.token_file {}", file.display()))?,
        (None, Some(name)) => std::env::var(name).with_context(|| format!("the environment has no {name}"))?,
        (None, None) => unreachable!("the configuration requires a token"),
    };
    let token = token.trim().to_string();
    if token.len() < 16 {
        anyhow::bail!("the alerts API token is shorter than 16 characters");
    }
    Ok(token)
}

fn pipeline_config(config: &AlertsConfig, calendar: &config::Calendar) -> PipelineConfig {
    PipelineConfig {
        escalate_after_school_days: config.escalate_after_days,
        school_days: calendar.instructional_days().iter().map(|day| i64::from(day.0)).collect(),
        group_wait_seconds: i64::from(config.group_wait_seconds),
        group_interval_seconds: i64::from(config.group_interval_seconds),
        repeat_interval_seconds: i64::from(config.repeat_interval_seconds),
        delivery_hours: DeliveryHours {
            start_minute: i64::from(config.delivery_start_minute),
            end_minute: i64::from(config.delivery_end_minute),
            weekdays_only: config.delivery_weekdays_only,
        },
        daily_budget: config.daily_budget,
    }
}

fn smtp_settings(email: &config::EmailConfig) -> alerts::SmtpSettings {
    let credentials = match (&email.credentials_file, &email.credentials_env) {
        (Some(file), _) => alerts::SmtpCredentials::File(file.clone()),
        (None, Some((user, password))) => {
            alerts::SmtpCredentials::Environment { user: user.clone(), password: password.clone() }
        }
        (None, None) => alerts::SmtpCredentials::None,
    };
    alerts::SmtpSettings {
        host: email.host.clone(),
        port: email.port,
        security: match email.security {
            SmtpSecurityConfig::None => alerts::SmtpSecurity::None,
            SmtpSecurityConfig::StartTls => alerts::SmtpSecurity::StartTls,
            SmtpSecurityConfig::Tls => alerts::SmtpSecurity::Tls,
        },
        credentials,
        from: email.from.clone(),
        timeout: Duration::from_secs(30),
    }
}
