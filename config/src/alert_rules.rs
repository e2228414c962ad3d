//! `[[rules]]`: early-warning alert rules, each a condition in CEL (the Common Expression
//! Language, as Kubernetes and Envoy use it) over one student's indicators.
//!
//! A rule is checked when the configuration loads: its expression must parse, name only
//! indicators of [`STUDENT_VARIABLES`], and evaluate to a boolean on a row of the right
//! types (a type error, such as comparing a count with a string, is refused with its
//! line). Rules then run unchanged against every student row (`rules::alerting`).

use cel::common::ast::{operators, Expr, LiteralValue};
use cel::{Context, Program, Value};
use std::sync::Arc;

/// The type of an indicator as a rule sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VariableType {
    Int,
    /// A rate: a double, or null when undefined (a rule on a null rate does not hold).
    Rate,
    Double,
    Bool,
    /// A sorted list of program names.
    StringList,
}

/// Every indicator a student rule may name, in the order of metrics.md, plus
/// `consecutive_absences` (the run of instructional days absent ending on D, which the
/// `vulnerable_absences` rule needs and metrics.md does not define).
pub const STUDENT_VARIABLES: &[(&str, VariableType)] = &[
    ("days_enrolled", VariableType::Int),
    ("days_absent", VariableType::Int),
    ("attendance_rate", VariableType::Rate),
    ("chronically_absent", VariableType::Bool),
    ("days_enrolled_30", VariableType::Int),
    ("days_absent_30", VariableType::Int),
    ("attendance_rate_30", VariableType::Rate),
    ("suspensions", VariableType::Int),
    ("suspension_days", VariableType::Double),
    ("incidents_30", VariableType::Int),
    ("failing_marks", VariableType::Int),
    ("failing_core", VariableType::Int),
    ("health_visits_30", VariableType::Int),
    ("programs", VariableType::StringList),
    ("attendance_flag", VariableType::Bool),
    ("behavior_flag", VariableType::Bool),
    ("course_flag", VariableType::Bool),
    ("tier", VariableType::Int),
    ("consecutive_absences", VariableType::Int),
];

/// The index of a student variable by name.
pub fn student_variable(name: &str) -> Option<usize> {
    STUDENT_VARIABLES.iter().position(|(known, _)| *known == name)
}

impl AlertRule {
    /// The name of the rule's variable `index`.
    pub fn variable_name(&self, index: usize) -> &'static str {
        self.entity.variables()[index].0
    }
}

/// Every indicator a school rule may name: the school indicators of metrics.md (without
/// the ticket counts, which come with the help-desk work), plus
/// `chronic_absence_rate_20_days_ago`, the rate as of 20 instructional days before D (null
/// before then), which the `school_chronic_rise` rule compares with.
pub const SCHOOL_VARIABLES: &[(&str, VariableType)] = &[
    ("enrolled", VariableType::Int),
    ("cumulative_enrollment", VariableType::Int),
    ("chronic_absence_rate", VariableType::Rate),
    ("suspension_rate", VariableType::Rate),
    ("tier_1", VariableType::Int),
    ("tier_2", VariableType::Int),
    ("tier_3", VariableType::Int),
    ("oversized_sections", VariableType::Int),
    ("chronic_absence_rate_20_days_ago", VariableType::Rate),
];

/// Every value a section rule may name: its head count, the cap of `[sections]`, and
/// whether the cap applies to it (its subject and its school's level).
pub const SECTION_VARIABLES: &[(&str, VariableType)] =
    &[("enrolled", VariableType::Int), ("cap", VariableType::Int), ("capped", VariableType::Bool)];

/// What a rule is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RuleEntity {
    Student,
    School,
    Section,
}

impl RuleEntity {
    pub fn parse(text: &str) -> Option<RuleEntity> {
        Some(match text {
            "student" => RuleEntity::Student,
            "school" => RuleEntity::School,
            "section" => RuleEntity::Section,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuleEntity::Student => "student",
            RuleEntity::School => "school",
            RuleEntity::Section => "section",
        }
    }

    /// The indicators its rules may name.
    pub fn variables(self) -> &'static [(&'static str, VariableType)] {
        match self {
            RuleEntity::Student => STUDENT_VARIABLES,
            RuleEntity::School => SCHOOL_VARIABLES,
            RuleEntity::Section => SECTION_VARIABLES,
        }
    }

    /// Who its alerts may go to, the first being the default.
    pub fn recipients(self) -> &'static [RecipientRole] {
        match self {
            RuleEntity::Student => &[RecipientRole::Counselor],
            RuleEntity::School => &[RecipientRole::Principal, RecipientRole::LocalDistrict],
            RuleEntity::Section => &[RecipientRole::Principal],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const NAMES: &'static [&'static str] = &["info", "warning", "critical"];

    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Severity::NAMES[self as usize]
    }
}

/// Who hears of an alert: a role, resolved per entity when the alert fires.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecipientRole {
    /// The student's counselor of the caseload stream on the day.
    Counselor,
    /// The principal of the school (a `staff` record with role `principal` naming it).
    Principal,
    /// The staff of the school's local district (role `district_admin`, that `local_district`).
    LocalDistrict,
}

impl RecipientRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientRole::Counselor => "counselor",
            RecipientRole::Principal => "principal",
            RecipientRole::LocalDistrict => "local_district",
        }
    }
}

/// A comparison of one indicator with a number, found in a condition: the threshold an
/// alert's evidence reports, with the indicator's margin over it.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Threshold {
    /// Index into the rule's entity's variables.
    pub variable: usize,
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`, with the indicator on the left.
    pub operator: &'static str,
    pub value: f64,
}

/// A compiled CEL expression with what it refers to.
#[derive(Clone, Debug)]
pub struct RuleExpression {
    pub source: String,
    pub program: Arc<Program>,
    /// What the expression is about: its variables are that entity's.
    pub entity: RuleEntity,
    /// Indices into the entity's variables, sorted.
    pub variables: Vec<usize>,
    pub thresholds: Vec<Threshold>,
}

/// One alert rule, valid by construction.
#[derive(Clone, Debug)]
pub struct AlertRule {
    pub id: String,
    pub entity: RuleEntity,
    pub description: String,
    pub condition: RuleExpression,
    /// The condition must hold on this many consecutive instructional days before the
    /// alert fires (0 and 1 both fire on the first day).
    pub for_days: u32,
    /// Hysteresis: once fired, the alert resolves when this holds (default: when the
    /// condition no longer holds).
    pub exit: Option<RuleExpression>,
    pub severity: Severity,
    pub recipient: RecipientRole,
}

impl AlertRule {
    /// Every variable the rule reads (condition and exit), sorted.
    pub fn variables(&self) -> Vec<usize> {
        let mut out = self.condition.variables.clone();
        if let Some(exit) = &self.exit {
            out.extend(&exit.variables);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Compiles and checks one expression; the error says what is wrong, never at which line
/// (the caller knows that).
pub fn compile_expression(source: &str, entity: RuleEntity) -> Result<RuleExpression, String> {
    let table = entity.variables();
    let program = Program::compile(source).map_err(|errors| format!("not a CEL expression: {errors}"))?;
    let references = program.references();
    let mut variables = Vec::new();
    let mut unknown = Vec::new();
    for name in references.variables() {
        match table.iter().position(|(known, _)| *known == name) {
            Some(index) => variables.push(index),
            None => unknown.push(name.to_string()),
        }
    }
    if !unknown.is_empty() {
        unknown.sort();
        let known: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
        return Err(format!("unknown indicator(s) {} (known: {})", unknown.join(", "), known.join(", ")));
    }
    variables.sort_unstable();
    variables.dedup();
    // The type check: evaluated on a row of the right types, it must give a boolean.
    let mut context = Context::default();
    for &index in &variables {
        context.add_variable_from_value(table[index].0, sample_value(table[index].1));
    }
    match program.execute(&context) {
        Ok(Value::Bool(_)) => {}
        Ok(other) => return Err(format!("type error: the expression gives a {:?}, not a boolean", other.type_of())),
        Err(error) => return Err(format!("type error: {error}")),
    }
    let mut thresholds = Vec::new();
    collect_thresholds(&program.expression().expr, table, &mut thresholds);
    Ok(RuleExpression { source: source.to_string(), program: Arc::new(program), entity, variables, thresholds })
}

fn sample_value(kind: VariableType) -> Value {
    match kind {
        VariableType::Int => Value::Int(1),
        VariableType::Rate | VariableType::Double => Value::Float(0.5),
        VariableType::Bool => Value::Bool(true),
        VariableType::StringList => Value::List(Arc::new(vec![Value::String(Arc::new(String::from("homeless")))])),
    }
}

/// Finds `indicator OP number` (or `number OP indicator`, mirrored) anywhere in `expr`.
fn collect_thresholds(expr: &Expr, table: &[(&str, VariableType)], out: &mut Vec<Threshold>) {
    let Expr::Call(call) = expr else {
        return;
    };
    let comparison = [
        (operators::LESS, "<", ">"),
        (operators::LESS_EQUALS, "<=", ">="),
        (operators::GREATER, ">", "<"),
        (operators::GREATER_EQUALS, ">=", "<="),
        (operators::EQUALS, "==", "=="),
        (operators::NOT_EQUALS, "!=", "!="),
    ]
    .into_iter()
    .find(|(name, ..)| *name == call.func_name);
    if let (Some((_, operator, mirrored)), [left, right]) = (comparison, call.args.as_slice()) {
        let threshold = match (&left.expr, &right.expr) {
            (Expr::Ident(name), Expr::Literal(literal)) => number(literal).map(|value| (name, operator, value)),
            (Expr::Literal(literal), Expr::Ident(name)) => number(literal).map(|value| (name, mirrored, value)),
            _ => None,
        };
        if let Some((name, operator, value)) = threshold {
            if let Some(variable) = table.iter().position(|(known, _)| known == name) {
                out.push(Threshold { variable, operator, value });
            }
        }
    }
    for arg in call.args.iter().chain(call.target.as_deref()) {
        collect_thresholds(&arg.expr, table, out);
    }
}

fn number(literal: &LiteralValue) -> Option<f64> {
    match literal {
        LiteralValue::Int(value) => Some(**value as f64),
        LiteralValue::UInt(value) => Some(**value as f64),
        LiteralValue::Double(value) => Some(**value),
        _ => None,
    }
}

/// The rules a configuration without a `rules` key runs: the early-warning rules on
/// student indicators (the same text as `config/example.toml`, checked by a test).
pub const DEFAULT_RULES_TOML: &str = r#"
[[rules]]
id = "tier_3"
on = "student"
description = "The student rose to tier 3 (two or more early-warning flags)."
condition = "tier == 3"
severity = "critical"
recipient = "counselor"

[[rules]]
id = "chronically_absent"
on = "student"
description = "The student became chronically absent (at least 10% of at least 31 days enrolled)."
condition = "chronically_absent"
severity = "warning"
recipient = "counselor"

[[rules]]
id = "suspension"
on = "student"
description = "The student has an out-of-school suspension this year."
condition = "suspensions >= 1"
severity = "warning"
recipient = "counselor"

[[rules]]
id = "vulnerable_absences"
on = "student"
description = "A homeless or foster-youth student was absent three instructional days in a row."
condition = "consecutive_absences >= 3 && ('homeless' in programs || 'foster_youth' in programs)"
exit = "consecutive_absences == 0"
severity = "critical"
recipient = "counselor"

[[rules]]
id = "health_visits"
on = "student"
description = "Three or more health-office visits in the last 30 instructional days."
condition = "health_visits_30 >= 3"
exit = "health_visits_30 <= 1"
severity = "warning"
recipient = "counselor"

[[rules]]
id = "oversized_section"
on = "section"
description = "A class section is over its cap."
condition = "capped && enrolled > cap"
severity = "warning"
recipient = "principal"

[[rules]]
id = "school_chronic_rise"
on = "school"
description = "The school's chronic-absence rate rose by 5 points or more in 20 instructional days."
condition = "chronic_absence_rate - chronic_absence_rate_20_days_ago >= 0.05"
exit = "chronic_absence_rate - chronic_absence_rate_20_days_ago < 0.03"
severity = "warning"
recipient = "local_district"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_names_its_variables_and_thresholds() {
        let expression =
            compile_expression("attendance_rate < 0.9 && 10 <= days_enrolled", RuleEntity::Student).unwrap();
        let names: Vec<&str> = expression.variables.iter().map(|&i| STUDENT_VARIABLES[i].0).collect();
        assert_eq!(names, ["days_enrolled", "attendance_rate"]);
        let thresholds: Vec<(&str, &str, f64)> =
            expression.thresholds.iter().map(|t| (STUDENT_VARIABLES[t.variable].0, t.operator, t.value)).collect();
        assert_eq!(thresholds, [("attendance_rate", "<", 0.9), ("days_enrolled", ">=", 10.0)]);
    }

    #[test]
    fn unknown_indicators_type_errors_and_syntax_errors_are_refused() {
        let student = RuleEntity::Student;
        let unknown = compile_expression("tier == 3 && grade_point_average < 2.0", student).unwrap_err();
        assert!(unknown.starts_with("unknown indicator(s) grade_point_average"), "{unknown}");
        let type_error = compile_expression("tier > 'three'", student).unwrap_err();
        assert!(type_error.starts_with("type error"), "{type_error}");
        let not_boolean = compile_expression("days_absent + 1", student).unwrap_err();
        assert!(not_boolean.contains("not a boolean"), "{not_boolean}");
        // A school rule may not name a student indicator.
        let school = compile_expression("tier_3 > 10 && tier == 3", RuleEntity::School).unwrap_err();
        assert!(school.starts_with("unknown indicator(s) tier "), "{school}");
        let syntax = compile_expression("tier ==", student).unwrap_err();
        assert!(syntax.starts_with("not a CEL expression"), "{syntax}");
    }
}
