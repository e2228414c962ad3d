//! Stage two of parsing: walk the TOML tree, check every key, collect every problem.

use crate::alert_rules::*;
use crate::calendar::Calendar;
use crate::notifications::*;
use crate::params::*;
use crate::streams::*;
use crate::{Config, ConfigError, Problem};
use model::{Day, SchoolLevel, Subject, TicketPriority};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use toml_edit::{ImDocument, Item, TableLike, Value};

/// Collects problems while reading values, each located by line.
struct Walker<'a> {
    source: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Walker<'a> {
    fn line_of(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|span| self.source[..span.start.min(self.source.len())].matches('\n').count() + 1)
    }

    fn problem(&mut self, span: Option<std::ops::Range<usize>>, key: &str, message: impl Into<String>) {
        let line = self.line_of(span);
        self.problems.push(Problem { line, key: key.to_string(), message: message.into() });
    }

    /// Refuses keys of `table` outside `allowed`.
    fn refuse_unknown(&mut self, table: &dyn TableLike, path: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key) {
                let span = table.key(key).and_then(|k| k.span());
                let full = join(path, key);
                self.problem(span, &full, format!("unknown key (known keys: {})", allowed.join(", ")));
            }
        }
    }

    /// A sub-table of `table`, if present and a table.
    fn table<'t>(&mut self, table: &'t dyn TableLike, path: &str, key: &str) -> Option<&'t dyn TableLike> {
        let item = table.get(key)?;
        match item.as_table_like() {
            Some(sub) => Some(sub),
            None => {
                self.problem(item.span(), &join(path, key), "expected a table");
                None
            }
        }
    }

    fn integer(&mut self, table: &dyn TableLike, path: &str, key: &str, default: u32, min: u32) -> u32 {
        let Some(item) = table.get(key) else {
            return default;
        };
        match item.as_integer() {
            Some(value) if value >= i64::from(min) && value <= i64::from(u32::MAX) => value as u32,
            Some(value) => {
                self.problem(item.span(), &join(path, key), format!("{value} is out of range (at least {min})"));
                default
            }
            None => {
                self.problem(item.span(), &join(path, key), "expected an integer");
                default
            }
        }
    }

    /// A percentage (integer or float, 0..=100, at most two decimals) as basis points.
    fn percent(&mut self, table: &dyn TableLike, path: &str, key: &str, default: BasisPoints) -> BasisPoints {
        let Some(item) = table.get(key) else {
            return default;
        };
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            Some(value) if (0.0..=100.0).contains(&value) && ((value * 100.0).round() - value * 100.0).abs() < 1e-6 => {
                (value * 100.0).round() as u32
            }
            Some(value) => {
                self.problem(
                    item.span(),
                    &join(path, key),
                    format!("{value} is not a percentage from 0 to 100 with at most two decimals"),
                );
                default
            }
            None => {
                self.problem(item.span(), &join(path, key), "expected a number (a percentage)");
                default
            }
        }
    }

    fn date_value(&mut self, value: &Value, key: &str) -> Option<Day> {
        let parsed = match value {
            Value::String(text) => Day::parse(text.value()),
            Value::Datetime(datetime) => {
                let datetime = datetime.value();
                match (datetime.date, datetime.time, datetime.offset) {
                    (Some(date), None, None) => Day::parse(&date.to_string()),
                    _ => None,
                }
            }
            _ => None,
        };
        if parsed.is_none() {
            self.problem(value.span(), key, "expected a date YYYY-MM-DD");
        }
        parsed
    }

    fn required_date(
        &mut self,
        table: &dyn TableLike,
        table_span: Option<std::ops::Range<usize>>,
        path: &str,
        key: &str,
    ) -> Option<Day> {
        match table.get(key) {
            Some(Item::Value(value)) => self.date_value(value, &join(path, key)),
            Some(item) => {
                self.problem(item.span(), &join(path, key), "expected a date YYYY-MM-DD");
                None
            }
            None => {
                self.problem(table_span, &join(path, key), "missing (required)");
                None
            }
        }
    }

    /// A list of wire names of an enumeration.
    fn name_list<T: Copy>(
        &mut self,
        table: &dyn TableLike,
        path: &str,
        key: &str,
        default: Vec<T>,
        parse: fn(&str) -> Option<T>,
        domain: &str,
    ) -> Vec<T> {
        let Some(item) = table.get(key) else {
            return default;
        };
        let Some(array) = item.as_array() else {
            self.problem(item.span(), &join(path, key), "expected a list of strings");
            return default;
        };
        let mut out = Vec::new();
        for value in array.iter() {
            match value.as_str().and_then(parse) {
                Some(parsed) => out.push(parsed),
                None => self.problem(value.span(), &join(path, key), format!("expected one of: {domain}")),
            }
        }
        out
    }

    /// `HH:MM` as minutes after midnight.
    fn clock_time(&mut self, table: &dyn TableLike, path: &str, key: &str, default: u32) -> u32 {
        let Some(item) = table.get(key) else {
            return default;
        };
        let parsed = item.as_str().and_then(|text| {
            let (hours, minutes) = text.split_once(':')?;
            let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
            (text.len() == 5 && hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
        });
        parsed.unwrap_or_else(|| {
            self.problem(item.span(), &join(path, key), "expected a local time \"HH:MM\"");
            default
        })
    }
}

impl Walker<'_> {
    fn boolean(&mut self, table: &dyn TableLike, path: &str, key: &str, default: bool) -> bool {
        let Some(item) = table.get(key) else {
            return default;
        };
        item.as_bool().unwrap_or_else(|| {
            self.problem(item.span(), &join(path, key), "expected true or false");
            default
        })
    }

    /// A non-empty string; `None` (with a problem) when present but not one.
    fn string(&mut self, table: &dyn TableLike, path: &str, key: &str) -> Option<String> {
        let item = table.get(key)?;
        match item.as_str() {
            Some(text) if !text.trim().is_empty() => Some(text.to_string()),
            _ => {
                self.problem(item.span(), &join(path, key), "expected a non-empty string");
                None
            }
        }
    }

    fn required_string(&mut self, table: &dyn TableLike, table_span: Span, path: &str, key: &str) -> Option<String> {
        if table.get(key).is_none() {
            self.problem(table_span, &join(path, key), "missing (required)");
            return None;
        }
        self.string(table, path, key)
    }

    /// A list of non-empty strings (one string is taken as a list of one when `one_ok`).
    fn string_list(&mut self, item: &Item, key: &str, one_ok: bool) -> Option<Vec<String>> {
        if one_ok {
            if let Some(text) = item.as_str() {
                return Some(vec![text.to_string()]);
            }
        }
        let expected = if one_ok { "expected a string or a list of strings" } else { "expected a list of strings" };
        let Some(array) = item.as_array() else {
            self.problem(item.span(), key, expected);
            return None;
        };
        let mut out = Vec::new();
        for value in array.iter() {
            match value.as_str() {
                Some(text) if !text.trim().is_empty() => out.push(text.to_string()),
                _ => self.problem(value.span(), key, "expected a non-empty string"),
            }
        }
        if out.is_empty() {
            self.problem(item.span(), key, "expected at least one entry");
            return None;
        }
        Some(out)
    }
}

type Span = Option<std::ops::Range<usize>>;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn parse_config(source: &str) -> Result<Config, ConfigError> {
    let document = ImDocument::parse(source).map_err(|error| ConfigError {
        problems: vec![Problem {
            line: error.span().map(|span| source[..span.start].matches('\n').count() + 1),
            key: String::from("(syntax)"),
            message: error.message().to_string(),
        }],
    })?;
    let root = document.as_table();
    let mut walker = Walker { source, problems: Vec::new() };
    walker.refuse_unknown(
        root,
        "",
        &["calendar", "attendance", "flags", "sections", "sla", "kafka", "metrics", "sources", "rules", "alerts"],
    );
    let calendar = read_calendar(&mut walker, root);
    let attendance = read_attendance(&mut walker, root);
    let flags = read_flags(&mut walker, root);
    let sections = read_sections(&mut walker, root);
    let sla = read_sla(&mut walker, root);
    let kafka = read_kafka(&mut walker, root);
    let metrics = read_metrics(&mut walker, root);
    let sources = read_sources(&mut walker, root, kafka.as_ref());
    let rules = match root.get("rules") {
        Some(item) => read_rules(&mut walker, item),
        None => default_rules(),
    };
    let alerts = read_alerts(&mut walker, root);
    match calendar {
        Some(calendar) if walker.problems.is_empty() => {
            Ok(Config { calendar, attendance, flags, sections, sla, kafka, metrics, sources, rules, alerts })
        }
        _ => Err(ConfigError { problems: walker.problems }),
    }
}

fn read_calendar(walker: &mut Walker, root: &dyn TableLike) -> Option<Calendar> {
    let Some(table) = walker.table(root, "", "calendar") else {
        if root.get("calendar").is_none() {
            walker.problem(None, "calendar", "missing (required: first_day, last_day)");
        }
        return None;
    };
    walker.refuse_unknown(table, "calendar", &["first_day", "last_day", "holidays"]);
    let span = root.get("calendar").and_then(|item| item.span());
    let first_day = walker.required_date(table, span.clone(), "calendar", "first_day");
    let last_day = walker.required_date(table, span, "calendar", "last_day");
    let mut holidays = BTreeSet::new();
    if let Some(item) = table.get("holidays") {
        match item.as_array() {
            Some(array) => {
                for value in array.iter() {
                    if let Some(day) = walker.date_value(value, "calendar.holidays") {
                        holidays.insert(day);
                    }
                }
            }
            None => walker.problem(item.span(), "calendar.holidays", "expected a list of dates"),
        }
    }
    let (first_day, last_day) = (first_day?, last_day?);
    if first_day > last_day {
        let span = table.get("last_day").and_then(|item| item.span());
        walker.problem(span, "calendar.last_day", format!("{last_day} is before first_day {first_day}"));
        return None;
    }
    if last_day.0 - first_day.0 > 731 {
        let span = table.get("last_day").and_then(|item| item.span());
        walker.problem(
            span,
            "calendar.last_day",
            "a calendar covers one school year (at most two years from first_day)",
        );
        return None;
    }
    Some(Calendar::new(first_day, last_day, holidays))
}

fn read_attendance(walker: &mut Walker, root: &dyn TableLike) -> AttendanceParams {
    let defaults = AttendanceParams::default();
    let Some(table) = walker.table(root, "", "attendance") else {
        return defaults;
    };
    let path = "attendance";
    walker.refuse_unknown(
        table,
        path,
        &["chronic_min_days_enrolled", "chronic_absence_min_percent", "window_instructional_days"],
    );
    AttendanceParams {
        chronic_min_days_enrolled: walker.integer(
            table,
            path,
            "chronic_min_days_enrolled",
            defaults.chronic_min_days_enrolled,
            0,
        ),
        chronic_absence_min: walker.percent(table, path, "chronic_absence_min_percent", defaults.chronic_absence_min),
        window_instructional_days: walker.integer(
            table,
            path,
            "window_instructional_days",
            defaults.window_instructional_days,
            1,
        ),
    }
}

fn read_flags(walker: &mut Walker, root: &dyn TableLike) -> FlagParams {
    let d = FlagParams::default();
    let Some(table) = walker.table(root, "", "flags") else {
        return d;
    };
    let path = "flags";
    walker.refuse_unknown(
        table,
        path,
        &[
            "attendance_min_days_enrolled",
            "attendance_rate_below_percent",
            "behavior_min_suspensions",
            "behavior_min_incidents_30",
            "course_min_failing_core",
            "course_min_failing_marks",
        ],
    );
    FlagParams {
        attendance_min_days_enrolled: walker.integer(
            table,
            path,
            "attendance_min_days_enrolled",
            d.attendance_min_days_enrolled,
            0,
        ),
        attendance_rate_below: walker.percent(table, path, "attendance_rate_below_percent", d.attendance_rate_below),
        behavior_min_suspensions: walker.integer(
            table,
            path,
            "behavior_min_suspensions",
            d.behavior_min_suspensions,
            1,
        ),
        behavior_min_incidents_30: walker.integer(
            table,
            path,
            "behavior_min_incidents_30",
            d.behavior_min_incidents_30,
            1,
        ),
        course_min_failing_core: walker.integer(table, path, "course_min_failing_core", d.course_min_failing_core, 1),
        course_min_failing_marks: walker.integer(
            table,
            path,
            "course_min_failing_marks",
            d.course_min_failing_marks,
            1,
        ),
    }
}

fn read_sections(walker: &mut Walker, root: &dyn TableLike) -> SectionParams {
    let d = SectionParams::default();
    let Some(table) = walker.table(root, "", "sections") else {
        return d;
    };
    let path = "sections";
    walker.refuse_unknown(table, path, &["cap", "capped_subjects", "capped_levels"]);
    SectionParams {
        cap: walker.integer(table, path, "cap", d.cap, 0),
        capped_subjects: walker.name_list(
            table,
            path,
            "capped_subjects",
            d.capped_subjects,
            Subject::parse,
            Subject::domain(),
        ),
        capped_levels: walker.name_list(
            table,
            path,
            "capped_levels",
            d.capped_levels,
            SchoolLevel::parse,
            SchoolLevel::domain(),
        ),
    }
}

fn read_sla(walker: &mut Walker, root: &dyn TableLike) -> SlaParams {
    let d = SlaParams::default();
    let Some(table) = walker.table(root, "", "sla") else {
        return d;
    };
    walker.refuse_unknown(table, "sla", &["at_risk_percent", "breached_percent", "facilities", "family"]);
    SlaParams {
        at_risk: walker.percent(table, "sla", "at_risk_percent", d.at_risk),
        breached: walker.percent(table, "sla", "breached_percent", d.breached),
        facilities: read_queue(walker, table, "facilities", &["emergency", "urgent", "routine"], d.facilities),
        family: read_queue(walker, table, "family", &["any"], d.family),
    }
}

fn read_queue(
    walker: &mut Walker,
    sla: &dyn TableLike,
    queue: &str,
    priorities: &[&str],
    defaults: QueueSla,
) -> QueueSla {
    let Some(table) = walker.table(sla, "sla", queue) else {
        return defaults;
    };
    let path = format!("sla.{queue}");
    let mut allowed = vec!["business_day_start", "business_day_end"];
    allowed.extend_from_slice(priorities);
    walker.refuse_unknown(table, &path, &allowed);
    let start = walker.clock_time(table, &path, "business_day_start", defaults.business_day_start_minute);
    let end = walker.clock_time(table, &path, "business_day_end", defaults.business_day_end_minute);
    if start >= end {
        let span = table.get("business_day_end").and_then(|item| item.span());
        walker.problem(span, &join(&path, "business_day_end"), "must be after business_day_start");
    }
    let mut targets = defaults.targets.clone();
    for (priority_name, (priority, target)) in priorities.iter().zip(targets.iter_mut()) {
        debug_assert_eq!(priority.map(TicketPriority::as_str).unwrap_or("any"), *priority_name);
        let Some(sub) = walker.table(table, &path, priority_name) else {
            continue;
        };
        let sub_path = join(&path, priority_name);
        walker.refuse_unknown(sub, &sub_path, &["response_business_hours", "resolution_business_days"]);
        target.response_business_hours =
            walker.integer(sub, &sub_path, "response_business_hours", target.response_business_hours, 1);
        target.resolution_business_days =
            walker.integer(sub, &sub_path, "resolution_business_days", target.resolution_business_days, 1);
    }
    QueueSla { business_day_start_minute: start, business_day_end_minute: end, targets }
}

fn read_kafka(walker: &mut Walker, root: &dyn TableLike) -> Option<KafkaConfig> {
    let table = walker.table(root, "", "kafka")?;
    let path = "kafka";
    let span = root.get("kafka").and_then(|item| item.span());
    walker.refuse_unknown(table, path, &["brokers", "group_id", "topics", "dead_letter_topic", "options"]);
    let brokers = walker.required_string(table, span.clone(), path, "brokers");
    let group_id = walker.string(table, path, "group_id").unwrap_or_else(|| String::from("wholechild"));
    let topics = match table.get("topics") {
        Some(item) => walker.string_list(item, "kafka.topics", false),
        None => {
            walker.problem(span, "kafka.topics", "missing (required: a list of topics)");
            None
        }
    };
    let dead_letter_topic =
        walker.string(table, path, "dead_letter_topic").unwrap_or_else(|| String::from("wholechild.dead-letter"));
    let mut options = BTreeMap::new();
    if let Some(options_table) = walker.table(table, path, "options") {
        for (key, item) in options_table.iter() {
            let value = item
                .as_str()
                .map(str::to_string)
                .or_else(|| item.as_integer().map(|i| i.to_string()))
                .or_else(|| item.as_bool().map(|b| b.to_string()));
            match value {
                Some(value) => {
                    options.insert(key.to_string(), value);
                }
                None => walker.problem(
                    item.span(),
                    &format!("kafka.options.{key}"),
                    "expected a string, integer or boolean (a librdkafka option value)",
                ),
            }
        }
    }
    if let Some(topics) = &topics {
        if topics.contains(&dead_letter_topic) {
            let span = table.get("dead_letter_topic").and_then(|item| item.span());
            walker.problem(span, "kafka.dead_letter_topic", "must not be one of the consumed topics");
        }
    }
    Some(KafkaConfig { brokers: brokers?, group_id, topics: topics?, dead_letter_topic, options })
}

fn read_metrics(walker: &mut Walker, root: &dyn TableLike) -> MetricsConfig {
    let Some(table) = walker.table(root, "", "metrics") else {
        return MetricsConfig::default();
    };
    walker.refuse_unknown(table, "metrics", &["listen"]);
    let Some(item) = table.get("listen") else {
        return MetricsConfig::default();
    };
    match item.as_str().map(|text| (text, text.parse::<std::net::SocketAddr>())) {
        Some(("", _)) => MetricsConfig { listen: None },
        Some((_, Ok(address))) => MetricsConfig { listen: Some(address) },
        _ => {
            walker.problem(item.span(), "metrics.listen", "expected \"host:port\" (an IP address and port) or \"\"");
            MetricsConfig::default()
        }
    }
}

fn read_sources(walker: &mut Walker, root: &dyn TableLike, kafka: Option<&KafkaConfig>) -> Vec<SourceMapping> {
    let Some(table) = walker.table(root, "", "sources") else {
        return Vec::new();
    };
    let mut mappings = Vec::new();
    for (topic, item) in table.iter() {
        let path = format!("sources.{topic}");
        let Some(source) = item.as_table_like() else {
            walker.problem(item.span(), &path, "expected a table (one topic's mapping)");
            continue;
        };
        if let Some(kafka) = kafka {
            if !kafka.topics.iter().any(|consumed| consumed == topic) {
                let span = table.key(topic).and_then(|key| key.span());
                walker.problem(span, &path, "this topic is not in kafka.topics, so it would never be read");
            }
        }
        if let Some(mapping) = read_source(walker, source, item.span(), topic, &path) {
            mappings.push(mapping);
        }
    }
    mappings
}

fn read_source(
    walker: &mut Walker,
    table: &dyn TableLike,
    span: Span,
    topic: &str,
    path: &str,
) -> Option<SourceMapping> {
    walker.refuse_unknown(table, path, &["type", "source", "fields"]);
    let record_type = walker.required_string(table, span.clone(), path, "type").and_then(|name| {
        let parsed = model::RecordType::parse(&name);
        if parsed.is_none() {
            let span = table.get("type").and_then(|item| item.span());
            walker.problem(span, &join(path, "type"), format!("expected one of: {}", model::RecordType::domain()));
        }
        parsed
    });
    let source = walker.required_string(table, span.clone(), path, "source");
    let fields_path = join(path, "fields");
    let Some(fields_table) = walker.table(table, path, "fields") else {
        if table.get("fields").is_none() {
            walker.problem(span, &fields_path, "missing (required: where each canonical field comes from)");
        }
        return None;
    };
    let record_type = record_type?;
    let known: Vec<(&'static str, FieldKind)> =
        ENVELOPE_FIELDS.iter().chain(canonical_fields(record_type)).copied().collect();
    let mut fields = BTreeMap::new();
    for (name, item) in fields_table.iter() {
        let key = join(&fields_path, name);
        let Some(&(field, kind)) = known.iter().find(|(known, _)| *known == name) else {
            let names: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
            let span = fields_table.key(name).and_then(|key| key.span());
            walker.problem(
                span,
                &key,
                format!("`{name}` is not a field of `{}` (fields: {})", record_type.as_str(), names.join(", ")),
            );
            continue;
        };
        if let Some(mapping) = read_field(walker, item, &key, kind) {
            fields.insert(field, mapping);
        }
    }
    if !fields.contains_key("id") {
        walker.problem(
            fields_table_span(table),
            &join(&fields_path, "id"),
            "missing (required: every record has an id)",
        );
    }
    Some(SourceMapping { topic: topic.to_string(), record_type, source: source?, fields })
}

/// `[alerts]`, with `[alerts.email]` and `[alerts.webhook]`.
fn read_alerts(walker: &mut Walker, root: &dyn TableLike) -> Option<AlertsConfig> {
    let table = walker.table(root, "", "alerts")?;
    let path = "alerts";
    let span = root.get("alerts").and_then(|item| item.span());
    walker.refuse_unknown(
        table,
        path,
        &[
            "store",
            "dashboard_url",
            "group_wait_seconds",
            "group_interval_seconds",
            "repeat_interval_seconds",
            "delivery_hours",
            "delivery_weekdays_only",
            "daily_budget",
            "email",
            "webhook",
            "api",
            "topic",
            "fallback_recipient",
            "escalate_after_days",
        ],
    );
    let store = match walker.string(table, path, "store") {
        None => Some(AlertStoreConfig::Sqlite(PathBuf::from("wholechild-alerts.sqlite"))),
        Some(text) => match text.split_once(':') {
            Some(("sqlite", file)) if !file.is_empty() => Some(AlertStoreConfig::Sqlite(PathBuf::from(file))),
            Some(("postgres", url)) if !url.is_empty() => {
                Some(AlertStoreConfig::Postgres { url: url.to_string(), schema: String::from("wholechild") })
            }
            _ => {
                let span = table.get("store").and_then(|item| item.span());
                walker.problem(span, "alerts.store", "expected \"sqlite:PATH\" or \"postgres:CONNINFO\"");
                None
            }
        },
    };
    let dashboard_url = walker.required_string(table, span, path, "dashboard_url");
    let group_wait_seconds = walker.integer(table, path, "group_wait_seconds", 30, 0);
    let group_interval_seconds = walker.integer(table, path, "group_interval_seconds", 300, 0);
    let repeat_interval_seconds = walker.integer(table, path, "repeat_interval_seconds", 4 * 3600, 1);
    let (delivery_start_minute, delivery_end_minute) = match table.get("delivery_hours") {
        None => (7 * 60, 19 * 60),
        Some(item) => {
            let parsed = item.as_str().and_then(|text| {
                let (start, end) = text.split_once('-')?;
                Some((minute_of(start)?, minute_of(end)?)).filter(|(start, end)| start < end)
            });
            parsed.unwrap_or_else(|| {
                let message = "expected \"HH:MM-HH:MM\" (local time; 24:00 for midnight), start before end";
                walker.problem(item.span(), "alerts.delivery_hours", message);
                (7 * 60, 19 * 60)
            })
        }
    };
    let delivery_weekdays_only = walker.boolean(table, path, "delivery_weekdays_only", true);
    let daily_budget = Some(walker.integer(table, path, "daily_budget", 20, 0)).filter(|&budget| budget > 0);
    let email = walker.table(table, path, "email").and_then(|email| read_email(walker, email, table));
    let webhook = walker.table(table, path, "webhook").and_then(|webhook| read_webhook(walker, webhook, table));
    let api = walker.table(table, path, "api").and_then(|api| read_alert_api(walker, api, table));
    let topic = walker.string(table, path, "topic");
    if topic.is_some() && root.get("kafka").is_none() {
        let span = table.get("topic").and_then(|item| item.span());
        walker.problem(span, "alerts.topic", "needs a [kafka] section (the brokers it is published to)");
    }
    let fallback_recipient = walker.string(table, path, "fallback_recipient");
    let escalate_after_days = Some(walker.integer(table, path, "escalate_after_days", 0, 0)).filter(|&days| days > 0);
    Some(AlertsConfig {
        store: store?,
        dashboard_url: dashboard_url?,
        group_wait_seconds,
        group_interval_seconds,
        repeat_interval_seconds,
        delivery_start_minute,
        delivery_end_minute,
        delivery_weekdays_only,
        daily_budget,
        email,
        webhook,
        api,
        topic,
        fallback_recipient,
        escalate_after_days,
    })
}

/// `HH:MM` (up to `24:00`) as minutes after midnight.
fn minute_of(text: &str) -> Option<u32> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (minutes < 60 && hours * 60 + minutes <= 24 * 60).then_some(hours * 60 + minutes)
}

fn read_email(walker: &mut Walker, table: &dyn TableLike, parent: &dyn TableLike) -> Option<EmailConfig> {
    let path = "alerts.email";
    let span = parent.get("email").and_then(|item| item.span());
    walker.refuse_unknown(table, path, &["host", "port", "security", "from", "credentials_file", "credentials_env"]);
    let host = walker.required_string(table, span.clone(), path, "host");
    let security = match walker.string(table, path, "security").as_deref() {
        None | Some("starttls") => Some(SmtpSecurityConfig::StartTls),
        Some("tls") => Some(SmtpSecurityConfig::Tls),
        Some("none") => Some(SmtpSecurityConfig::None),
        Some(_) => {
            let span = table.get("security").and_then(|item| item.span());
            walker.problem(span, "alerts.email.security", "expected one of: starttls, tls, none");
            None
        }
    };
    let default_port = match security {
        Some(SmtpSecurityConfig::Tls) => 465,
        _ => 587,
    };
    let port = walker.integer(table, path, "port", default_port, 1);
    if port > u32::from(u16::MAX) {
        let span = table.get("port").and_then(|item| item.span());
        walker.problem(span, "alerts.email.port", "expected a port number (1-65535)");
    }
    let from = walker.required_string(table, span, path, "from");
    let credentials_file = walker.string(table, path, "credentials_file").map(PathBuf::from);
    let credentials_env = match table.get("credentials_env") {
        None => None,
        Some(item) => match walker.string_list(item, "alerts.email.credentials_env", false) {
            Some(names) if names.len() == 2 => Some((names[0].clone(), names[1].clone())),
            Some(_) => {
                let message = "expected two names: the user's variable and the password's";
                walker.problem(item.span(), "alerts.email.credentials_env", message);
                None
            }
            None => None,
        },
    };
    Some(EmailConfig {
        host: host?,
        port: port.min(u32::from(u16::MAX)) as u16,
        security: security?,
        from: from?,
        credentials_file,
        credentials_env,
    })
}

fn read_webhook(walker: &mut Walker, table: &dyn TableLike, parent: &dyn TableLike) -> Option<WebhookConfig> {
    let path = "alerts.webhook";
    let span = parent.get("webhook").and_then(|item| item.span());
    walker.refuse_unknown(table, path, &["url", "secret_file", "secret_env"]);
    let url = walker.required_string(table, span.clone(), path, "url");
    let secret_file = walker.string(table, path, "secret_file").map(PathBuf::from);
    let secret_env = walker.string(table, path, "secret_env");
    if secret_file.is_none() && secret_env.is_none() {
        walker.problem(
            span,
            "alerts.webhook.secret_file",
            "missing: a webhook is signed with a secret from a file (secret_file) or the environment (secret_env)",
        );
    }
    Some(WebhookConfig { url: url?, secret_file, secret_env })
}

fn read_alert_api(walker: &mut Walker, table: &dyn TableLike, parent: &dyn TableLike) -> Option<AlertApiConfig> {
    let path = "alerts.api";
    let span = parent.get("api").and_then(|item| item.span());
    walker.refuse_unknown(table, path, &["listen", "token_file", "token_env"]);
    let listen = match table.get("listen") {
        None => {
            walker.problem(
                span.clone(),
                "alerts.api.listen",
                "missing: the address to serve the API on (\"host:port\")",
            );
            None
        }
        Some(item) => {
            let address = item.as_str().and_then(|text| text.parse::<std::net::SocketAddr>().ok());
            if address.is_none() {
                walker.problem(item.span(), "alerts.api.listen", "expected \"host:port\" (an IP address and port)");
            }
            address
        }
    };
    let token_file = walker.string(table, path, "token_file").map(PathBuf::from);
    let token_env = walker.string(table, path, "token_env");
    if token_file.is_none() && token_env.is_none() {
        walker.problem(
            span,
            "alerts.api.token_file",
            "missing: callers present a bearer token read from a file (token_file) or the environment (token_env)",
        );
    }
    Some(AlertApiConfig { listen: listen?, token_file, token_env })
}

/// The rules of [`DEFAULT_RULES_TOML`], for a configuration without a `rules` key.
pub(crate) fn default_rules() -> Vec<AlertRule> {
    let document = ImDocument::parse(DEFAULT_RULES_TOML).expect("the default rules are TOML");
    let mut walker = Walker { source: DEFAULT_RULES_TOML, problems: Vec::new() };
    let rules = read_rules(&mut walker, document.as_table().get("rules").expect("rules"));
    assert!(walker.problems.is_empty(), "the default rules are valid: {:?}", walker.problems);
    rules
}

/// `[[rules]]` (or `rules = []`, no rules at all).
fn read_rules(walker: &mut Walker, item: &Item) -> Vec<AlertRule> {
    let tables: Vec<&dyn TableLike> = match (item.as_array_of_tables(), item.as_array()) {
        (Some(tables), _) => tables.iter().map(|table| table as &dyn TableLike).collect(),
        (None, Some(array)) if array.is_empty() => Vec::new(),
        _ => {
            walker.problem(item.span(), "rules", "expected [[rules]] tables (or `rules = []` for none)");
            return Vec::new();
        }
    };
    let mut rules: Vec<AlertRule> = Vec::new();
    let mut ids = BTreeSet::new();
    for (index, table) in tables.into_iter().enumerate() {
        let path = format!("rules[{index}]");
        let span = table.iter().next().and_then(|(key, _)| table.key(key)).and_then(|key| key.span());
        let rule = read_rule(walker, table, span.clone(), &path);
        if let Some(item) = table.get("id") {
            if let Some(id) = item.as_str() {
                if !ids.insert(id.to_string()) {
                    walker.problem(item.span(), &format!("{path}.id"), format!("`{id}` is the id of an earlier rule"));
                    continue;
                }
            }
        }
        rules.extend(rule);
    }
    rules
}

fn read_rule(walker: &mut Walker, table: &dyn TableLike, span: Span, path: &str) -> Option<AlertRule> {
    walker.refuse_unknown(
        table,
        path,
        &["id", "on", "description", "condition", "for_days", "exit", "severity", "recipient"],
    );
    let id = walker.required_string(table, span.clone(), path, "id").filter(|id| {
        let valid = id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            let span = table.get("id").and_then(|item| item.span());
            walker.problem(span, &join(path, "id"), "use lowercase letters, digits and `_` only");
        }
        valid
    });
    let entity = match walker.string(table, path, "on") {
        None => Some(RuleEntity::Student),
        Some(name) => RuleEntity::parse(&name).or_else(|| {
            let span = table.get("on").and_then(|item| item.span());
            walker.problem(span, &join(path, "on"), "expected one of: student, school, section");
            None
        }),
    };
    let description = walker.string(table, path, "description").unwrap_or_default();
    let condition = walker.required_string(table, span.clone(), path, "condition");
    let on = entity.unwrap_or(RuleEntity::Student);
    let condition = condition.and_then(|source| rule_expression(walker, table, path, "condition", &source, on));
    // Outer `None`: the exit condition was refused; inner `None`: there is none.
    let exit = match walker.string(table, path, "exit") {
        Some(source) => rule_expression(walker, table, path, "exit", &source, on).map(Some),
        None => Some(None),
    };
    let for_days = walker.integer(table, path, "for_days", 0, 0);
    let severity = match walker.string(table, path, "severity") {
        None => Some(Severity::Warning),
        Some(name) => Severity::parse(&name).or_else(|| {
            let span = table.get("severity").and_then(|item| item.span());
            walker.problem(span, &join(path, "severity"), format!("expected one of: {}", Severity::NAMES.join(", ")));
            None
        }),
    };
    let allowed = on.recipients();
    let recipient = match walker.string(table, path, "recipient") {
        None => Some(allowed[0]),
        Some(name) => allowed.iter().copied().find(|role| role.as_str() == name).or_else(|| {
            let span = table.get("recipient").and_then(|item| item.span());
            let names: Vec<&str> = allowed.iter().map(|role| role.as_str()).collect();
            let message = format!("a rule on a {} goes to one of: {}", on.as_str(), names.join(", "));
            walker.problem(span, &join(path, "recipient"), message);
            None
        }),
    };
    Some(AlertRule {
        id: id?,
        entity: entity?,
        description,
        condition: condition?,
        for_days,
        exit: exit?,
        severity: severity?,
        recipient: recipient?,
    })
}

/// Compiles one CEL expression of a rule, reporting its problem at the value's line.
fn rule_expression(
    walker: &mut Walker,
    table: &dyn TableLike,
    path: &str,
    key: &str,
    source: &str,
    entity: RuleEntity,
) -> Option<RuleExpression> {
    match compile_expression(source, entity) {
        Ok(expression) => Some(expression),
        Err(message) => {
            let span = table.get(key).and_then(|item| item.span());
            walker.problem(span, &join(path, key), message);
            None
        }
    }
}

fn fields_table_span(table: &dyn TableLike) -> Span {
    table.get("fields").and_then(|item| item.span())
}

/// A field's mapping: a JSON pointer, or a table with `path`, `values`, `date_format`, `default`.
fn read_field(walker: &mut Walker, item: &Item, key: &str, kind: FieldKind) -> Option<FieldMapping> {
    let mut mapping = FieldMapping { paths: Vec::new(), values: None, date_format: None, default: None };
    if let Some(table) = item.as_table_like() {
        walker.refuse_unknown(table, key, &["path", "values", "date_format", "default"]);
        if let Some(path_item) = table.get("path") {
            mapping.paths = walker.string_list(path_item, &join(key, "path"), true)?;
        }
        mapping.default = walker.string(table, key, "default");
        if mapping.paths.is_empty() && mapping.default.is_none() {
            walker.problem(item.span(), key, "give a `path`, a `default`, or both");
            return None;
        }
        if let Some(values_table) = walker.table(table, key, "values") {
            let mut values = BTreeMap::new();
            for (from, to) in values_table.iter() {
                match to.as_str() {
                    Some(to) => {
                        values.insert(from.to_string(), to.to_string());
                    }
                    None => walker.problem(to.span(), &join(&join(key, "values"), from), "expected a string"),
                }
            }
            mapping.values = Some(values);
        }
        if let Some(format) = walker.string(table, key, "date_format") {
            if !matches!(kind, FieldKind::Date | FieldKind::Instant) {
                let span = table.get("date_format").and_then(|item| item.span());
                walker.problem(span, &join(key, "date_format"), "only a date or instant field takes a date_format");
            } else if chrono::format::StrftimeItems::new(&format).any(|item| item == chrono::format::Item::Error) {
                let span = table.get("date_format").and_then(|item| item.span());
                walker.problem(span, &join(key, "date_format"), "not a valid strftime format");
            }
            mapping.date_format = Some(format);
        }
    } else {
        mapping.paths = walker.string_list(item, key, true)?;
    }
    for path in &mapping.paths {
        if !path.is_empty() && !path.starts_with('/') {
            walker.problem(item.span(), key, format!("`{path}` is not a JSON pointer (it must start with `/`)"));
            return None;
        }
    }
    Some(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_only_a_calendar_takes_every_default() {
        let config = parse_config("[calendar]\nfirst_day = \"2026-08-31\"\nlast_day = 2027-05-10\n").unwrap();
        assert_eq!(config.attendance, AttendanceParams::default());
        assert_eq!(config.flags, FlagParams::default());
        assert_eq!(config.sections, SectionParams::default());
        assert_eq!(config.sla, SlaParams::default());
        assert!(config.calendar.holidays.is_empty());
    }

    #[test]
    fn the_example_file_loads_with_a_180_day_year() {
        let config = Config::example();
        assert_eq!(config.calendar.instructional_days().len(), 180);
        assert_eq!(config.attendance.chronic_absence_min, 1_000);
        assert_eq!(config.sla.facilities.targets[1].1.resolution_business_days, 3);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let text = "[calendar]\nfirst_day = \"2026-13-01\"\nlast_day = 2027-05-10\nholiday = []\n\n[attendance]\nchronic_absence_min_percent = 140\nwindow_days = 30\n[sections]\ncapped_levels = [\"middle\", \"college\"]\n[colour]\n";
        let error = parse_config(text).unwrap_err();
        let rendered: Vec<String> = error.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(error.problems.len(), 6, "{rendered:#?}");
        let expect = [
            (11, "colour", "unknown key"),
            (4, "calendar.holiday", "unknown key"),
            (2, "calendar.first_day", "expected a date"),
            (8, "attendance.window_days", "unknown key"),
            (7, "attendance.chronic_absence_min_percent", "not a percentage"),
            (10, "sections.capped_levels", "expected one of"),
        ];
        for (line, key, message) in expect {
            assert!(
                error.problems.iter().any(|p| p.line == Some(line) && p.key == key && p.message.contains(message)),
                "missing {line} {key} {message} in {rendered:#?}"
            );
        }
    }

    #[test]
    fn a_missing_calendar_is_refused() {
        let error = parse_config("[flags]\ncourse_min_failing_marks = 3\n").unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert_eq!(error.problems[0].key, "calendar");
    }

    #[test]
    fn a_syntax_error_is_reported_with_its_line() {
        let error = parse_config("[calendar]\nfirst_day = = 3\n").unwrap_err();
        assert_eq!(error.problems[0].line, Some(2));
    }

    #[test]
    fn reversed_calendar_and_bad_business_hours_are_refused() {
        let text = "[calendar]\nfirst_day = 2027-01-01\nlast_day = 2026-01-01\n[sla.family]\nbusiness_day_start = \"18:00\"\nany = { response_business_hours = 0 }\n";
        let error = parse_config(text).unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["calendar.last_day", "sla.family.business_day_end", "sla.family.any.response_business_hours"]
        );
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    const CALENDAR: &str = "[calendar]\nfirst_day = 2026-08-31\nlast_day = 2026-09-11\n";

    #[test]
    fn the_district_sources_file_loads_with_two_mappings() {
        let config = parse_config(include_str!("../district-sources.toml")).unwrap();
        let topics: Vec<&str> = config.sources.iter().map(|mapping| mapping.topic.as_str()).collect();
        assert_eq!(topics, ["sis.attendance", "nurse.visits"]);
        assert_eq!(config.kafka.unwrap().topics.len(), 3);
    }

    #[test]
    fn the_example_file_documents_kafka_and_metrics() {
        let config = Config::example();
        let kafka = config.kafka.unwrap();
        assert_eq!(kafka.brokers, "127.0.0.1:9092");
        assert_eq!(kafka.topics, ["wholechild.canonical"]);
        assert_eq!(config.metrics, MetricsConfig::default());
    }

    #[test]
    fn kafka_problems_are_all_reported() {
        let text = format!(
            "{CALENDAR}[kafka]\ngroup_id = \"\"\ntopics = []\ncolour = 1\n[kafka.options]\n\"fetch.min.bytes\" = [1]\n[metrics]\nlisten = \"everywhere\"\n"
        );
        let error = parse_config(&text).unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "kafka.colour",
                "kafka.brokers",
                "kafka.group_id",
                "kafka.topics",
                "kafka.options.fetch.min.bytes",
                "metrics.listen"
            ],
            "{error}"
        );
    }

    #[test]
    fn a_mapping_with_unknown_fields_bad_pointers_and_formats_is_refused_with_lines() {
        let text = format!(
            "{CALENDAR}[kafka]\nbrokers = \"b:9092\"\ntopics = [\"a\"]\n[sources.a]\ntype = \"attendance\"\nsource = \"sis\"\n[sources.a.fields]\nid = \"/ID\"\nstudent = \"/S\"\nschool_id = \"S\"\ndate = {{ path = \"/D\", date_format = \"%Q\" }}\nstatus = {{ path = \"/C\", date_format = \"%d\" }}\n[sources.b]\ntype = \"lunch\"\nsource = \"x\"\nfields = {{ id = \"/i\" }}\n"
        );
        let error = parse_config(&text).unwrap_err();
        let found: Vec<(Option<usize>, &str)> = error.problems.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            found,
            [
                (Some(12), "sources.a.fields.student"),
                (Some(13), "sources.a.fields.school_id"),
                (Some(14), "sources.a.fields.date.date_format"),
                (Some(15), "sources.a.fields.status.date_format"),
                (Some(16), "sources.b"),
                (Some(17), "sources.b.type"),
            ],
            "{error}"
        );
    }

    #[test]
    fn the_example_file_ships_the_default_rules() {
        let example = parse_config(include_str!("../example.toml")).unwrap();
        let ids: Vec<&str> = example.rules.iter().map(|rule| rule.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tier_3",
                "chronically_absent",
                "suspension",
                "vulnerable_absences",
                "health_visits",
                "oversized_section",
                "school_chronic_rise"
            ]
        );
        let defaults = parse_config(CALENDAR).unwrap().rules;
        let sources = |rules: &[AlertRule]| -> Vec<(String, Option<String>, u32)> {
            rules
                .iter()
                .map(|r| (r.condition.source.clone(), r.exit.as_ref().map(|e| e.source.clone()), r.for_days))
                .collect()
        };
        assert_eq!(sources(&example.rules), sources(&defaults));
        assert!(parse_config(&format!("rules = []\n{CALENDAR}")).unwrap().rules.is_empty());
    }

    #[test]
    fn rule_problems_are_all_reported_with_their_lines() {
        let text = format!(
            "{CALENDAR}[[rules]]\nid = \"a\"\ncondition = \"gpa < 2.0\"\n[[rules]]\nid = \"b\"\ncondition = \"tier > 'x'\"\nseverity = \"loud\"\n[[rules]]\nid = \"a\"\ncondition = \"tier == 3\"\n[[rules]]\nid = \"c\"\non = \"bus\"\ncondition = \"tier == 3\"\nexit = \"tier +\"\ncolour = 1\n"
        );
        let error = parse_config(&text).unwrap_err();
        let found: Vec<(Option<usize>, &str)> =
            error.problems.iter().map(|problem| (problem.line, problem.key.as_str())).collect();
        let base = CALENDAR.lines().count();
        assert_eq!(
            found,
            [
                (Some(base + 3), "rules[0].condition"),
                (Some(base + 6), "rules[1].condition"),
                (Some(base + 7), "rules[1].severity"),
                (Some(base + 9), "rules[2].id"),
                (Some(base + 16), "rules[3].colour"),
                (Some(base + 13), "rules[3].on"),
                (Some(base + 15), "rules[3].exit"),
            ],
            "{error}"
        );
        assert!(error.problems[0].message.contains("unknown indicator(s) gpa"), "{error}");
        assert!(error.problems[1].message.starts_with("type error"), "{error}");
    }

    #[test]
    fn the_alerts_section_documented_in_the_example_loads_and_secrets_are_never_inline() {
        let example = include_str!("../example.toml");
        let documented: String = example[example.find("# [alerts]\n").unwrap()..]
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let kafka = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n";
        let config = parse_config(&format!("{CALENDAR}{kafka}{documented}")).unwrap();
        let alerts = config.alerts.unwrap();
        assert_eq!(alerts.topic.as_deref(), Some("wholechild.alerts"));
        assert_eq!(alerts.store, AlertStoreConfig::Sqlite(PathBuf::from("wholechild-alerts.sqlite")));
        assert_eq!(
            (alerts.delivery_start_minute, alerts.delivery_end_minute, alerts.daily_budget),
            (420, 1140, Some(20))
        );
        let email = alerts.email.unwrap();
        assert_eq!((email.port, email.security), (587, SmtpSecurityConfig::StartTls));
        assert!(alerts.webhook.unwrap().secret_file.is_some());
        let api = alerts.api.unwrap();
        assert_eq!(api.listen, "127.0.0.1:9465".parse().unwrap());
        assert!(api.token_file.is_some());
        let inline = format!(
            "{CALENDAR}[alerts]\ndashboard_url = \"https://d\"\nstore = \"mysql:x\"\ndelivery_hours = \"19:00-07:00\"\n[alerts.email]\nhost = \"h\"\nfrom = \"a@b\"\npassword = \"hunter2\"\n[alerts.webhook]\nurl = \"https://h\"\n[alerts.api]\nlisten = \"anywhere\"\ntoken = \"t\"\n"
        );
        let error = parse_config(&inline).unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|problem| problem.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "alerts.store",
                "alerts.delivery_hours",
                "alerts.email.password",
                "alerts.webhook.secret_file",
                "alerts.api.token",
                "alerts.api.listen",
                "alerts.api.token_file"
            ],
            "{error}"
        );
    }

    #[test]
    fn a_mapping_needs_an_id() {
        let text = format!(
            "{CALENDAR}[sources.a]\ntype = \"attendance\"\nsource = \"sis\"\n[sources.a.fields]\nstudent_id = \"/S\"\n"
        );
        let error = parse_config(&text).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert_eq!(error.problems[0].key, "sources.a.fields.id");
    }
}
