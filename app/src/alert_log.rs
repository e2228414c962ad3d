//! The backtest's alert files: `alerts.ndjson`, one object per alert change with its
//! evidence, and `alert_load.ndjson`, the changes per recipient per week, so a district
//! can tune a rule on last year's data before switching it on.

use crate::entity_alerts::EntityAlertChange;
use anyhow::{Context, Result};
use config::{AlertRule, Threshold};
use ingest::Names;
use model::{AlertChangeKind, Day, StudentAlertChange, StudentEvidence, Sym};
use rules::alerting::{variable, StudentView, Variable};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The version of the definitions alerts are computed under (metrics.md's heading).
pub const DEFINITIONS: &str = "wholechild metrics v1 (shared/spec/metrics.md)";

/// Changes per recipient and week.
#[derive(Default, Clone, Copy)]
struct Load {
    fired: u64,
    resolved: u64,
    withdrawn: u64,
    rerouted_in: u64,
}

/// Writes `alerts.ndjson` as changes arrive and `alert_load.ndjson` at the end.
pub struct AlertLog {
    alerts: BufWriter<File>,
    load: BTreeMap<(Option<String>, Day), Load>,
    rules: Vec<AlertRule>,
    written: u64,
}

impl AlertLog {
    pub fn create(out: &Path, rules: &[AlertRule]) -> Result<AlertLog> {
        let path = out.join("alerts.ndjson");
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(AlertLog { alerts: BufWriter::new(file), load: BTreeMap::new(), rules: rules.to_vec(), written: 0 })
    }

    /// Writes changes (in the engine's fixed order) and counts them per recipient and week.
    pub fn write(&mut self, names: &Names, changes: Vec<StudentAlertChange>) -> Result<()> {
        for change in changes {
            let rule = &self.rules[usize::from(change.rule)];
            let recipient = change.recipient.map(|staff| names.staff.resolve(staff).to_string());
            let line = json!({
                "day": change.day.to_string(),
                "rule": rule.id,
                "entity": names.students.resolve(change.student),
                "recipient": recipient,
                "change": change.kind.as_str(),
                "severity": rule.severity.as_str(),
                "evidence": evidence_json(rule, &change, names),
            });
            writeln!(self.alerts, "{line}")?;
            self.written += 1;
            self.count(recipient, change.day, change.kind);
        }
        Ok(())
    }

    /// Writes school and section alert changes (after the day's student changes).
    pub fn write_entity(&mut self, names: &Names, changes: Vec<EntityAlertChange>) -> Result<()> {
        for change in changes {
            let rule = &self.rules[change.rule];
            let recipient = change.recipient.map(|staff| names.staff.resolve(staff).to_string());
            let line = json!({
                "day": change.day.to_string(),
                "rule": rule.id,
                "entity": change.entity,
                "recipient": recipient,
                "change": change.kind.as_str(),
                "severity": rule.severity.as_str(),
                "evidence": entity_evidence_json(rule, &change, names),
            });
            writeln!(self.alerts, "{line}")?;
            self.written += 1;
            self.count(recipient, change.day, change.kind);
        }
        Ok(())
    }

    fn count(&mut self, recipient: Option<String>, day: Day, kind: AlertChangeKind) {
        let load = self.load.entry((recipient, week_of(day))).or_default();
        match kind {
            AlertChangeKind::Fired => load.fired += 1,
            AlertChangeKind::Resolved => load.resolved += 1,
            AlertChangeKind::Withdrawn => load.withdrawn += 1,
            AlertChangeKind::Rerouted => load.rerouted_in += 1,
        }
    }

    /// Flushes `alerts.ndjson` and writes `alert_load.ndjson`; returns the changes written.
    pub fn finish(mut self, out: &Path) -> Result<u64> {
        self.alerts.flush()?;
        let lines = self.load.iter().map(|((recipient, week), load)| {
            json!({
                "recipient": recipient,
                "week": week.to_string(),
                "fired": load.fired,
                "resolved": load.resolved,
                "withdrawn": load.withdrawn,
                "rerouted_in": load.rerouted_in,
            })
            .to_string()
        });
        crate::output::write_lines(&out.join("alert_load.ndjson"), lines)?;
        Ok(self.written)
    }
}

/// The Monday of `day`'s week.
fn week_of(day: Day) -> Day {
    use chrono::Datelike;
    Day(day.0 - day.to_date().weekday().num_days_from_monday() as i32)
}

/// What every alert's evidence starts with: the definitions' version, the rule, the day
/// it fired, and for a reroute who had it before.
fn evidence_head(rule: &AlertRule, fired: Day, previous: Option<Sym>, names: &Names) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("definitions".into(), json!(DEFINITIONS));
    out.insert(
        "rule".into(),
        json!({
            "condition": rule.condition.source,
            "exit": rule.exit.as_ref().map(|exit| exit.source.clone()),
            "for_days": rule.for_days,
        }),
    );
    out.insert("fired".into(), json!(fired.to_string()));
    if let Some(previous) = previous {
        out.insert("previous_recipient".into(), json!(names.staff.resolve(previous)));
    }
    out
}

pub(crate) fn evidence_json(rule: &AlertRule, change: &StudentAlertChange, names: &Names) -> Value {
    let previous = change.previous_recipient.filter(|_| change.kind == AlertChangeKind::Rerouted);
    let mut out = evidence_head(rule, change.fired, previous, names);
    match change.kind {
        AlertChangeKind::Withdrawn => {
            let note = format!(
                "raised on data since corrected: as the records stand now, the condition did not hold on {}",
                change.fired
            );
            out.insert("note".into(), json!(note));
        }
        AlertChangeKind::Fired | AlertChangeKind::Resolved | AlertChangeKind::Rerouted => {}
    }
    if let Some(evidence) = &change.evidence {
        add_indicators(&mut out, rule, evidence);
    }
    Value::Object(out)
}

/// A school or section alert's evidence: the rule, the values it read, its thresholds.
pub(crate) fn entity_evidence_json(rule: &AlertRule, change: &EntityAlertChange, names: &Names) -> Value {
    let previous = change.previous_recipient.filter(|_| change.kind == AlertChangeKind::Rerouted);
    let mut out = evidence_head(rule, change.fired, previous, names);
    let mut indicators = Map::new();
    for index in rule.variables() {
        indicators.insert(rule.variable_name(index).to_string(), variable_json(change.values[index]));
    }
    out.insert("indicators".into(), Value::Object(indicators));
    let thresholds: Vec<Value> = rule
        .condition
        .thresholds
        .iter()
        .map(|threshold| threshold_json(rule, threshold, change.values[threshold.variable]))
        .collect();
    out.insert("thresholds".into(), Value::Array(thresholds));
    Value::Object(out)
}

fn add_indicators(out: &mut Map<String, Value>, rule: &AlertRule, evidence: &StudentEvidence) {
    let view = StudentView { row: &evidence.row, consecutive_absences: evidence.consecutive_absences };
    let mut indicators = Map::new();
    for index in rule.variables() {
        indicators.insert(rule.variable_name(index).to_string(), variable_json(variable(&view, index)));
    }
    out.insert("indicators".into(), Value::Object(indicators));
    let thresholds: Vec<Value> = rule
        .condition
        .thresholds
        .iter()
        .map(|threshold| threshold_json(rule, threshold, variable(&view, threshold.variable)))
        .collect();
    out.insert("thresholds".into(), Value::Array(thresholds));
    if !evidence.absences.is_empty() {
        out.insert("absence_dates".into(), json!(evidence.absences.iter().map(Day::to_string).collect::<Vec<_>>()));
    }
    if !evidence.health_visits.is_empty() {
        let dates: Vec<String> = evidence.health_visits.iter().map(Day::to_string).collect();
        out.insert("health_visit_dates".into(), json!(dates));
    }
    if !evidence.incidents.is_empty() {
        let incidents: Vec<Value> = evidence
            .incidents
            .iter()
            .map(|(date, action)| json!({"date": date.to_string(), "action": action.as_str()}))
            .collect();
        out.insert("incidents".into(), Value::Array(incidents));
    }
}

fn threshold_json(rule: &AlertRule, threshold: &Threshold, value: Variable) -> Value {
    let value = value.as_number();
    json!({
        "indicator": rule.variable_name(threshold.variable),
        "operator": threshold.operator,
        "threshold": threshold.value,
        "value": value,
        "margin": value.map(|value| round6(value - threshold.value)),
    })
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

fn variable_json(value: Variable) -> Value {
    match value {
        Variable::Int(value) => json!(value),
        Variable::Rate(_, 0) => Value::Null,
        Variable::Rate(numerator, denominator) => {
            // Nine decimals, exactly as the indicator files render rates.
            let text = model::Rate::new(numerator, denominator).to_string();
            serde_json::from_str(&text).expect("a rendered rate is a JSON number")
        }
        Variable::Hundredths(value) => json!(value as f64 / 100.0),
        Variable::Bool(value) => json!(value),
        Variable::Programs(bits) => {
            let active = model::ProgramKind::ALL.iter().filter(|&&kind| bits & (1 << kind as u16) != 0);
            json!(active.map(|kind| kind.as_str()).collect::<Vec<_>>())
        }
    }
}
