//! School and section alert rules, evaluated when a day closes on the school figures and
//! the section directory (student rules run inside the dataflow, per student).
//!
//! Design: the school figures exist only as the rollup counts of the closed epoch, so these
//! rules are checked there, once a day, with the same state machine as the student rules
//! (`rules::alerting::step`: `for_days`, exit conditions, reroutes). A school's
//! chronic-absence rate is remembered for the last 21 instructional days, which is what
//! `chronic_absence_rate_20_days_ago` reads. An alert of these rules that ends is
//! *resolved*: the school figures of a past day are not kept, so an alert cannot be judged
//! against the figures as since corrected (student alerts can, and are).

use crate::output::SchoolTables;
use config::{AlertRule, Calendar, RecipientRole, RuleEntity, SectionParams};
use ingest::Upsert;
use model::{AlertChangeKind, Day, Rate, SchoolInfo, StaffRole, Sym};
use rules::alerting::{step, Evaluator, RuleState, Step, Variable};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};

/// Instructional days of chronic-absence history kept per school (today and 20 before).
const HISTORY_DAYS: usize = 21;

/// Each school's directory entry, from the engine's directory of (school, info) counts.
pub fn school_info(directory: &FxHashMap<(Sym, SchoolInfo), i64>) -> FxHashMap<Sym, SchoolInfo> {
    directory.keys().map(|&(school, info)| (school, info)).collect()
}

/// One change of a school or section alert.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityAlertChange {
    pub day: Day,
    /// Index of the rule in the configuration's `rules`.
    pub rule: usize,
    /// The school or section id.
    pub entity: String,
    pub kind: AlertChangeKind,
    pub recipient: Option<Sym>,
    pub previous_recipient: Option<Sym>,
    pub fired: Day,
    /// The values of the rule's variables at the change.
    pub values: Vec<Variable>,
    /// The school (the section's school, for a section).
    pub school: Option<Sym>,
}

pub struct EntityAlerts {
    rules: Vec<(usize, AlertRule)>,
    sections: SectionParams,
    evaluator: Evaluator,
    states: BTreeMap<(usize, String), RuleState>,
    /// Per school, (day, chronic-absence rate) of the last instructional days evaluated.
    chronic_history: BTreeMap<String, VecDeque<(Day, Rate)>>,
}

impl EntityAlerts {
    /// The school and section rules of `rules`; `None` when there are none.
    pub fn new(rules: &[AlertRule], sections: &SectionParams) -> Option<EntityAlerts> {
        let rules: Vec<(usize, AlertRule)> =
            rules.iter().cloned().enumerate().filter(|(_, rule)| rule.entity != RuleEntity::Student).collect();
        (!rules.is_empty()).then(|| EntityAlerts {
            rules,
            sections: sections.clone(),
            evaluator: Evaluator::default(),
            states: BTreeMap::new(),
            chronic_history: BTreeMap::new(),
        })
    }

    /// Evaluates every school and section rule as of the closed `day`.
    pub fn day_closed(
        &mut self,
        day: Day,
        calendar: &Calendar,
        tables: &SchoolTables,
        info: &FxHashMap<Sym, SchoolInfo>,
        upsert: &Upsert,
    ) -> Vec<EntityAlertChange> {
        if calendar.is_instructional(day) {
            for (id, (_, row)) in &tables.schools {
                // Evaluated more than once a day (the live engine does, at every publish), a
                // day's rate replaces the one of the same day.
                let history = self.chronic_history.entry(id.clone()).or_default();
                if history.back().is_some_and(|&(last, _)| last == day) {
                    history.pop_back();
                }
                history.push_back((day, row.chronic_absence_rate()));
                if history.len() > HISTORY_DAYS {
                    history.pop_front();
                }
            }
        }
        let mut entities: Vec<(RuleEntity, String, Vec<Variable>, Option<Sym>)> = Vec::new();
        for (id, (school, row)) in &tables.schools {
            let before = match self.chronic_history.get(id) {
                Some(history) if history.len() == HISTORY_DAYS => history[0].1,
                _ => Rate::new(0, 0),
            };
            let rate = |rate: Rate| Variable::Rate(rate.numerator, rate.denominator);
            let count = |count: u64| Variable::Int(count as i64);
            let values = vec![
                count(row.enrolled),
                count(row.cumulative_enrollment),
                rate(row.chronic_absence_rate()),
                rate(row.suspension_rate()),
                count(row.tier_1),
                count(row.tier_2),
                count(row.tier_3),
                count(row.oversized_sections),
                rate(before),
            ];
            entities.push((RuleEntity::School, id.clone(), values, Some(*school)));
        }
        for (id, section) in &upsert.sections {
            let level = info.get(&section.school).map(|info| info.level);
            let capped = self.sections.capped_subjects.contains(&section.subject)
                && level.is_some_and(|level| self.sections.capped_levels.contains(&level));
            let values = vec![
                Variable::Int(i64::from(section.enrolled)),
                Variable::Int(i64::from(self.sections.cap)),
                Variable::Bool(capped),
            ];
            entities.push((RuleEntity::Section, id.clone(), values, Some(section.school)));
        }
        let mut changes = Vec::new();
        for (index, rule) in &self.rules {
            for (entity, id, values, school) in &entities {
                if *entity != rule.entity {
                    continue;
                }
                let recipient = school.and_then(|school| recipient_of(rule.recipient, school, info, upsert));
                let key = (*index, id.clone());
                let mut state = self.states.get(&key).copied().unwrap_or_default();
                let condition = self.evaluator.holds_with(&rule.condition, |i| values[i]);
                if state.is_default() && !condition {
                    continue;
                }
                let evaluator = &mut self.evaluator;
                let exit = || rule.exit.as_ref().is_none_or(|exit| evaluator.holds_with(exit, |i| values[i]));
                let change = |kind, recipient, previous_recipient, fired| EntityAlertChange {
                    day,
                    rule: *index,
                    entity: id.clone(),
                    kind,
                    recipient,
                    previous_recipient,
                    fired,
                    values: values.clone(),
                    school: *school,
                };
                match step(&mut state, rule, calendar, day, condition, exit, recipient) {
                    Step::Unchanged => {}
                    Step::Fired => changes.push(change(AlertChangeKind::Fired, recipient, None, day)),
                    Step::Rerouted { from } => {
                        let fired = state.open.map_or(day, |open| open.fired);
                        changes.push(change(AlertChangeKind::Rerouted, recipient, from, fired));
                    }
                    Step::Ended(open) => {
                        changes.push(change(AlertChangeKind::Resolved, open.recipient, None, open.fired))
                    }
                }
                if state.is_default() {
                    self.states.remove(&key);
                } else {
                    self.states.insert(key, state);
                }
            }
        }
        changes
    }
}

/// Who receives a school's alerts in `role`: the staff member of that role for the school
/// with the smallest id (a fixed choice when a school has several).
pub(crate) fn recipient_of(
    role: RecipientRole,
    school: Sym,
    info: &FxHashMap<Sym, SchoolInfo>,
    upsert: &Upsert,
) -> Option<Sym> {
    let matches = |entry: &ingest::StaffEntry| match role {
        RecipientRole::Principal => entry.role == StaffRole::Principal && entry.schools.contains(&school),
        RecipientRole::LocalDistrict => {
            let district = info.get(&school).map(|info| info.local_district);
            entry.role == StaffRole::DistrictAdmin && district.is_some() && entry.local_district == district
        }
        RecipientRole::Counselor => false,
    };
    let names = &upsert.names.staff;
    upsert
        .staff
        .iter()
        .filter(|(_, entry)| matches(entry))
        .map(|(&staff, _)| staff)
        .min_by(|a, b| names.resolve(*a).cmp(names.resolve(*b)))
}
