//! The stages between an alert change and a digest in a person's inbox.
//!
//! Design: one [`Group`] per recipient, as Alertmanager groups by receiver. A change is
//! dispatched to its recipient's group, dropped if a silence covers it, and deduplicated
//! against what the recipient was already told. A new group waits `group_wait` before its
//! first digest, so the changes of one evaluation arrive together; later changes wait
//! for `group_interval` after the last digest. An open alert nobody acknowledged is
//! repeated after `repeat_interval`. Digests due outside the delivery hours wait for the
//! next opening, and a recipient's daily budget caps the alerts per day: the overflow
//! stays pending for the next digest (the next day's, when the budget is spent).
//! A fired alert that resolves or is withdrawn before any digest told of it is dropped
//! whole: nobody needs to hear of it.

use crate::time::{DeliveryHours, LocalTime};
use std::collections::BTreeMap;

/// The pipeline's settings, with Alertmanager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Seconds a new group waits before its first digest (30).
    pub group_wait_seconds: i64,
    /// Seconds between two digests of one group (300).
    pub group_interval_seconds: i64,
    /// Seconds before an open, unacknowledged alert is repeated (4 hours).
    pub repeat_interval_seconds: i64,
    pub delivery_hours: DeliveryHours,
    /// Alerts per recipient per local day; `None`: no limit.
    pub daily_budget: Option<u32>,
    /// An alert not acknowledged within this many school days of its first notice goes
    /// to the next recipient of its escalation chain; `None`: no escalation.
    pub escalate_after_school_days: Option<u32>,
    /// The school days (local day numbers, sorted) escalation counts; empty: weekdays.
    pub school_days: Vec<i64>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            group_wait_seconds: 30,
            group_interval_seconds: 300,
            repeat_interval_seconds: 4 * 3600,
            delivery_hours: DeliveryHours::default(),
            daily_budget: Some(20),
            escalate_after_school_days: None,
            school_days: Vec::new(),
        }
    }
}

/// What happened to an alert, as the pipeline is told.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Change {
    Fired,
    Resolved,
    /// Raised on data since corrected: the recipient is told it no longer stands.
    Withdrawn,
    /// Moved from another recipient (a caseload reassignment).
    Rerouted {
        from: Option<String>,
    },
}

/// One alert change for the pipeline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AlertEvent {
    pub at: LocalTime,
    /// The alert's opaque reference (no student name, id or reason: those are behind the
    /// dashboard's access check).
    pub reference: String,
    pub rule: String,
    /// Staff id of whoever should hear of it now.
    pub recipient: String,
    pub change: Change,
    /// Who hears of a fired alert next if `recipient` does not acknowledge it in time
    /// (e.g. the principal, then the local district).
    pub escalation: Vec<String>,
}

impl AlertEvent {
    pub fn new(at: LocalTime, reference: &str, rule: &str, recipient: &str, change: Change) -> AlertEvent {
        AlertEvent {
            at,
            reference: reference.into(),
            rule: rule.into(),
            recipient: recipient.into(),
            change,
            escalation: Vec::new(),
        }
    }
}

/// A silence: changes of matching alerts are not notified while it lasts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Silence {
    /// `None` matches every rule (or recipient).
    pub rule: Option<String>,
    pub recipient: Option<String>,
    pub from: LocalTime,
    pub until: LocalTime,
}

impl Silence {
    fn covers(&self, event: &AlertEvent) -> bool {
        self.from <= event.at
            && event.at < self.until
            && self.rule.as_ref().is_none_or(|rule| *rule == event.rule)
            && self.recipient.as_ref().is_none_or(|recipient| *recipient == event.recipient)
    }
}

/// What a digest line says about an alert.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ItemKind {
    New,
    /// Still open and not acknowledged, `repeat_interval` after it was last told.
    Reminder,
    Resolved,
    Withdrawn,
    /// Now this recipient's, from another (a reassignment).
    Reassigned,
    /// No longer this recipient's (moved to another).
    MovedAway,
    /// Now this recipient's because the one before did not acknowledge it in time.
    Escalated,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DigestItem {
    pub reference: String,
    pub rule: String,
    pub kind: ItemKind,
    /// The recipients after this one, should it not be acknowledged in time.
    pub escalation: Vec<String>,
}

/// One notification to one recipient.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Digest {
    pub recipient: String,
    pub at: LocalTime,
    pub items: Vec<DigestItem>,
    /// Items held back by the daily budget, to come in the next digest.
    pub held_back: usize,
}

/// An alert the recipient was told of and that is still open.
#[derive(Clone, Debug)]
struct Told {
    rule: String,
    first_told: LocalTime,
    last_told: LocalTime,
    acknowledged: bool,
    snoozed_until: Option<LocalTime>,
    escalation: Vec<String>,
}

#[derive(Default, Debug)]
struct Group {
    pending: Vec<DigestItem>,
    /// Open alerts told of, by reference.
    told: BTreeMap<String, Told>,
    /// When the next digest is due (`None`: nothing pending).
    due: Option<LocalTime>,
    last_digest: Option<LocalTime>,
    /// (local day, alerts sent that day) for the budget.
    sent: (i64, u32),
}

/// The pipeline's state: every recipient's group, the silences.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    groups: BTreeMap<String, Group>,
    silences: Vec<Silence>,
    /// Changes dropped by a silence (for operators' metrics).
    pub silenced: u64,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline { config, groups: BTreeMap::new(), silences: Vec::new(), silenced: 0 }
    }

    /// Replaces every silence (as the alerts API's store holds them).
    pub fn set_silences(&mut self, silences: Vec<Silence>) {
        self.silences = silences;
    }

    /// Dispatches one change to its recipient's group (and, for a reroute, tells the
    /// previous recipient it moved away).
    pub fn push(&mut self, event: AlertEvent) {
        if self.silences.iter().any(|silence| silence.covers(&event)) {
            self.silenced += 1;
            return;
        }
        let config = &self.config;
        let item = |kind| DigestItem {
            reference: event.reference.clone(),
            rule: event.rule.clone(),
            kind,
            escalation: event.escalation.clone(),
        };
        match &event.change {
            Change::Fired => {
                let group = self.groups.entry(event.recipient.clone()).or_default();
                let pending_new =
                    group.pending.iter().any(|p| p.reference == event.reference && p.kind == ItemKind::New);
                if group.told.contains_key(&event.reference) || pending_new {
                    return; // told already, or about to be: deduplicated
                }
                group.pending.push(item(ItemKind::New));
                group.schedule(config, event.at);
            }
            Change::Resolved | Change::Withdrawn => {
                let kind = if event.change == Change::Resolved { ItemKind::Resolved } else { ItemKind::Withdrawn };
                let group = self.groups.entry(event.recipient.clone()).or_default();
                let was_pending = group.pending.len();
                group.pending.retain(|p| !(p.reference == event.reference && p.kind == ItemKind::New));
                if group.pending.len() < was_pending {
                    return; // never told: dropped whole
                }
                // Told even when this process never told of the fire: after a restart
                // the recipient heard of it from the run before.
                group.told.remove(&event.reference);
                group.pending.push(item(kind));
                group.schedule(config, event.at);
            }
            Change::Rerouted { from } => {
                if let Some(from) = from {
                    if let Some(old) = self.groups.get_mut(from) {
                        let was_pending = old.pending.len();
                        old.pending.retain(|p| p.reference != event.reference);
                        if old.told.remove(&event.reference).is_some() || old.pending.len() < was_pending {
                            old.pending.push(item(ItemKind::MovedAway));
                            old.schedule(config, event.at);
                        }
                    }
                }
                let group = self.groups.entry(event.recipient.clone()).or_default();
                group.pending.push(item(ItemKind::Reassigned));
                group.schedule(config, event.at);
            }
        }
    }

    /// Takes back, after a restart, a change that an earlier run already told its
    /// recipient of (its digest line is in the outbox): nothing is sent, but an open
    /// alert is known again as told, so it is repeated, acknowledged and escalated as
    /// before. Its clocks (repeat, escalation) start again at `event.at`.
    pub fn restore(&mut self, event: AlertEvent) {
        let told = |event: &AlertEvent| Told {
            rule: event.rule.clone(),
            first_told: event.at,
            last_told: event.at,
            acknowledged: false,
            snoozed_until: None,
            escalation: event.escalation.clone(),
        };
        match &event.change {
            Change::Fired => {
                let group = self.groups.entry(event.recipient.clone()).or_default();
                group.told.insert(event.reference.clone(), told(&event));
            }
            Change::Resolved | Change::Withdrawn => {
                if let Some(group) = self.groups.get_mut(&event.recipient) {
                    group.told.remove(&event.reference);
                }
            }
            Change::Rerouted { from } => {
                if let Some(old) = from.as_ref().and_then(|from| self.groups.get_mut(from)) {
                    old.told.remove(&event.reference);
                }
                let group = self.groups.entry(event.recipient.clone()).or_default();
                group.told.insert(event.reference.clone(), told(&event));
            }
        }
    }

    /// Whether `recipient` was told of the open alert `reference` (and so may act on it).
    pub fn is_open_for(&self, recipient: &str, reference: &str) -> bool {
        self.groups.get(recipient).is_some_and(|group| group.told.contains_key(reference))
    }

    /// The recipient has seen the alert: it is not repeated.
    pub fn acknowledge(&mut self, recipient: &str, reference: &str) -> bool {
        let told = self.groups.get_mut(recipient).and_then(|group| group.told.get_mut(reference));
        told.map(|told| told.acknowledged = true).is_some()
    }

    /// Not repeated before `until`.
    pub fn snooze(&mut self, recipient: &str, reference: &str, until: LocalTime) -> bool {
        let told = self.groups.get_mut(recipient).and_then(|group| group.told.get_mut(reference));
        told.map(|told| told.snoozed_until = Some(until)).is_some()
    }

    /// The digests due by `now`, in recipient order.
    pub fn advance(&mut self, now: LocalTime) -> Vec<Digest> {
        self.escalate(now);
        let config = &self.config;
        let mut digests = Vec::new();
        for (recipient, group) in &mut self.groups {
            group.queue_reminders(config, now);
            let Some(due) = group.due else { continue };
            if due > now {
                continue;
            }
            if !config.delivery_hours.is_open(now) {
                group.due = Some(config.delivery_hours.next_open(now));
                continue;
            }
            if let Some(digest) = group.send(config, recipient, now) {
                digests.push(digest);
            }
        }
        digests
    }
}

impl Pipeline {
    /// Moves each open alert not acknowledged within `escalate_after_school_days` of its
    /// first notice to the next recipient of its chain.
    fn escalate(&mut self, now: LocalTime) {
        let Some(after) = self.config.escalate_after_school_days else { return };
        let mut moves: Vec<(String, DigestItem)> = Vec::new();
        for group in self.groups.values_mut() {
            let due: Vec<String> = group
                .told
                .iter()
                .filter(|(_, told)| {
                    !told.acknowledged
                        && !told.escalation.is_empty()
                        && school_days_between(&self.config.school_days, told.first_told, now) >= after
                })
                .map(|(reference, _)| reference.clone())
                .collect();
            for reference in due {
                let told = group.told.remove(&reference).expect("just found");
                let mut chain = told.escalation.into_iter();
                let next = chain.next().expect("not empty");
                let item =
                    DigestItem { reference, rule: told.rule, kind: ItemKind::Escalated, escalation: chain.collect() };
                moves.push((next, item));
            }
        }
        for (recipient, item) in moves {
            let group = self.groups.entry(recipient).or_default();
            group.pending.push(item);
            group.schedule(&self.config, now);
        }
    }
}

/// School days after the day of `from` up to and including the day of `to`.
fn school_days_between(school_days: &[i64], from: LocalTime, to: LocalTime) -> u32 {
    let (first, last) = (from.day() + 1, to.day());
    if last < first {
        return 0;
    }
    if school_days.is_empty() {
        return (first..=last).filter(|&day| LocalTime::from_day_and_minute(day, 0).weekday() < 5).count() as u32;
    }
    let start = school_days.partition_point(|&day| day < first);
    let end = school_days.partition_point(|&day| day <= last);
    (end - start) as u32
}

impl Group {
    /// Sets when the next digest is due, given a change at `at`.
    fn schedule(&mut self, config: &PipelineConfig, at: LocalTime) {
        if self.due.is_some() {
            return;
        }
        let due = match self.last_digest {
            None => at.plus_seconds(config.group_wait_seconds),
            Some(last) => at.max(last.plus_seconds(config.group_interval_seconds)),
        };
        self.due = Some(due);
    }

    /// Open alerts due to be repeated join the pending items.
    fn queue_reminders(&mut self, config: &PipelineConfig, now: LocalTime) {
        let mut queued = false;
        for (reference, told) in &mut self.told {
            let repeat_at = told.last_told.plus_seconds(config.repeat_interval_seconds);
            let snoozed = told.snoozed_until.is_some_and(|until| now < until);
            let already = self.pending.iter().any(|p| p.reference == *reference);
            if !told.acknowledged && !snoozed && repeat_at <= now && !already {
                self.pending.push(DigestItem {
                    reference: reference.clone(),
                    rule: told.rule.clone(),
                    kind: ItemKind::Reminder,
                    escalation: told.escalation.clone(),
                });
                queued = true;
            }
        }
        if queued && self.due.is_none() {
            self.due = Some(now);
        }
    }

    /// Sends what the budget allows; keeps the rest pending for the next digest.
    fn send(&mut self, config: &PipelineConfig, recipient: &str, now: LocalTime) -> Option<Digest> {
        if self.sent.0 != now.day() {
            self.sent = (now.day(), 0);
        }
        let allowed = match config.daily_budget {
            Some(budget) => budget.saturating_sub(self.sent.1) as usize,
            None => usize::MAX,
        };
        self.due = None;
        if allowed == 0 {
            // Spent for today: the next digest is tomorrow's first.
            self.due = Some(config.delivery_hours.next_open(LocalTime::from_day_and_minute(now.day() + 1, 0)));
            return None;
        }
        let count = allowed.min(self.pending.len());
        let items: Vec<DigestItem> = self.pending.drain(..count).collect();
        self.sent.1 += count as u32;
        self.last_digest = Some(now);
        for item in &items {
            match item.kind {
                ItemKind::New | ItemKind::Reminder | ItemKind::Reassigned | ItemKind::Escalated => {
                    let told = self.told.entry(item.reference.clone()).or_insert_with(|| Told {
                        rule: item.rule.clone(),
                        first_told: now,
                        last_told: now,
                        acknowledged: false,
                        snoozed_until: None,
                        escalation: item.escalation.clone(),
                    });
                    told.last_told = now;
                }
                ItemKind::Resolved | ItemKind::Withdrawn | ItemKind::MovedAway => {}
            }
        }
        if !self.pending.is_empty() {
            let next = now.plus_seconds(config.group_interval_seconds);
            let budget_spent = config.daily_budget.is_some_and(|budget| self.sent.1 >= budget);
            self.due = Some(match budget_spent {
                true => config.delivery_hours.next_open(LocalTime::from_day_and_minute(now.day() + 1, 0)),
                false => next,
            });
        }
        let held_back = self.pending.len();
        (!items.is_empty()).then(|| Digest { recipient: recipient.to_string(), at: now, items, held_back })
    }
}

#[cfg(test)]
mod tests {
    //! One behaviour per test, in logical time. Day 20_791 is Friday 2026-12-04.
    use super::*;

    const FRIDAY: i64 = 20_791;

    fn at(day: i64, hour: i64, minute: i64) -> LocalTime {
        LocalTime::from_day_and_minute(day, hour * 60 + minute)
    }

    fn fired(time: LocalTime, reference: &str, recipient: &str) -> AlertEvent {
        AlertEvent::new(time, reference, "tier_3", recipient, Change::Fired)
    }

    fn references(digest: &Digest) -> Vec<(&str, ItemKind)> {
        digest.items.iter().map(|item| (item.reference.as_str(), item.kind)).collect()
    }

    #[test]
    fn changes_of_one_evaluation_are_grouped_into_one_digest_per_recipient() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let nine = at(FRIDAY, 9, 0);
        pipeline.push(fired(nine, "a1", "c1"));
        pipeline.push(fired(nine.plus_seconds(5), "a2", "c1"));
        pipeline.push(fired(nine.plus_seconds(9), "a3", "c2"));
        assert!(pipeline.advance(nine.plus_seconds(29)).is_empty(), "group_wait is 30 s");
        let digests = pipeline.advance(nine.plus_seconds(40));
        assert_eq!(digests.len(), 2);
        assert_eq!(references(&digests[0]), [("a1", ItemKind::New), ("a2", ItemKind::New)]);
        assert_eq!((digests[1].recipient.as_str(), digests[1].items.len()), ("c2", 1));
        // A later change waits for group_interval after the last digest.
        pipeline.push(fired(nine.plus_seconds(60), "a4", "c1"));
        assert!(pipeline.advance(nine.plus_seconds(300)).is_empty());
        assert_eq!(references(&pipeline.advance(nine.plus_seconds(340))[0]), [("a4", ItemKind::New)]);
    }

    #[test]
    fn the_same_alert_is_not_told_twice_nor_repeated_before_repeat_interval() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let nine = at(FRIDAY, 9, 0);
        pipeline.push(fired(nine, "a1", "c1"));
        pipeline.push(fired(nine.plus_seconds(1), "a1", "c1"));
        assert_eq!(pipeline.advance(nine.plus_seconds(30))[0].items.len(), 1);
        pipeline.push(fired(nine.plus_seconds(600), "a1", "c1"));
        assert!(pipeline.advance(at(FRIDAY, 12, 59)).is_empty(), "repeat_interval is 4 hours");
        let reminder = pipeline.advance(at(FRIDAY, 13, 1));
        assert_eq!(references(&reminder[0]), [("a1", ItemKind::Reminder)]);
    }

    #[test]
    fn an_acknowledged_or_snoozed_alert_is_not_repeated() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let eight = at(FRIDAY, 8, 0);
        pipeline.push(fired(eight, "a1", "c1"));
        pipeline.push(fired(eight, "a2", "c1"));
        pipeline.advance(eight.plus_seconds(30));
        assert!(pipeline.acknowledge("c1", "a1"));
        assert!(pipeline.snooze("c1", "a2", at(FRIDAY, 14, 0)));
        assert!(pipeline.advance(at(FRIDAY, 12, 30)).is_empty());
        // The snooze ends at 14:00: only a2 is repeated.
        assert_eq!(references(&pipeline.advance(at(FRIDAY, 14, 0))[0]), [("a2", ItemKind::Reminder)]);
    }

    #[test]
    fn an_alert_told_before_a_restart_is_not_told_again_but_repeated_and_acknowledgeable() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let nine = at(FRIDAY, 9, 0);
        pipeline.restore(fired(nine, "a1", "c1"));
        pipeline.restore(fired(nine, "a2", "c1"));
        pipeline.restore(fired(nine, "a3", "c2"));
        pipeline.restore(AlertEvent::new(nine, "a3", "tier_3", "c2", Change::Resolved));
        assert!(pipeline.advance(at(FRIDAY, 12, 59)).is_empty(), "nothing is sent again");
        assert!(pipeline.acknowledge("c1", "a2"));
        assert!(!pipeline.acknowledge("c2", "a3"), "resolved before the restart: no longer open");
        let reminder = pipeline.advance(at(FRIDAY, 13, 1));
        assert_eq!(reminder.len(), 1);
        assert_eq!(references(&reminder[0]), [("a1", ItemKind::Reminder)]);
    }

    #[test]
    fn a_withdrawn_alert_is_told_as_withdrawn_and_one_never_told_is_dropped() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let nine = at(FRIDAY, 9, 0);
        pipeline.push(fired(nine, "a1", "c1"));
        pipeline.advance(nine.plus_seconds(30));
        pipeline.push(AlertEvent::new(nine.plus_seconds(100), "a1", "tier_3", "c1", Change::Withdrawn));
        // Fired and withdrawn within one group_wait: nobody hears of a2.
        pipeline.push(fired(nine.plus_seconds(110), "a2", "c1"));
        pipeline.push(AlertEvent::new(nine.plus_seconds(120), "a2", "tier_3", "c1", Change::Withdrawn));
        let digests = pipeline.advance(nine.plus_seconds(330));
        assert_eq!(references(&digests[0]), [("a1", ItemKind::Withdrawn)]);
        assert!(pipeline.advance(at(FRIDAY, 18, 0)).is_empty(), "a withdrawn alert is not repeated");
    }

    #[test]
    fn a_reassignment_moves_the_alert_to_the_new_counselor() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let nine = at(FRIDAY, 9, 0);
        pipeline.push(fired(nine, "a1", "c1"));
        pipeline.advance(nine.plus_seconds(30));
        let moved = Change::Rerouted { from: Some(String::from("c1")) };
        pipeline.push(AlertEvent::new(nine.plus_seconds(600), "a1", "tier_3", "c2", moved));
        let digests = pipeline.advance(nine.plus_seconds(900));
        let told: Vec<(&str, Vec<(&str, ItemKind)>)> =
            digests.iter().map(|digest| (digest.recipient.as_str(), references(digest))).collect();
        assert_eq!(told, [("c1", vec![("a1", ItemKind::MovedAway)]), ("c2", vec![("a1", ItemKind::Reassigned)])]);
    }

    #[test]
    fn a_digest_due_outside_delivery_hours_waits_for_the_next_opening() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        pipeline.push(fired(at(FRIDAY, 2, 0), "a1", "c1"));
        assert!(pipeline.advance(at(FRIDAY, 2, 1)).is_empty(), "no email at 2 a.m.");
        assert!(pipeline.advance(at(FRIDAY, 6, 59)).is_empty());
        assert_eq!(pipeline.advance(at(FRIDAY, 7, 0)).len(), 1);
        // Friday evening: Monday morning.
        pipeline.push(fired(at(FRIDAY, 20, 0), "a2", "c1"));
        assert!(pipeline.advance(at(FRIDAY + 1, 10, 0)).is_empty(), "Saturday");
        assert_eq!(pipeline.advance(at(FRIDAY + 3, 7, 0))[0].items[0].reference, "a2");
    }

    #[test]
    fn the_daily_budget_holds_the_overflow_for_the_next_digest() {
        let config = PipelineConfig { daily_budget: Some(2), ..PipelineConfig::default() };
        let mut pipeline = Pipeline::new(config);
        let nine = at(FRIDAY, 9, 0);
        for reference in ["a1", "a2", "a3", "a4", "a5"] {
            pipeline.push(fired(nine, reference, "c1"));
        }
        let first = pipeline.advance(nine.plus_seconds(30));
        assert_eq!((first[0].items.len(), first[0].held_back), (2, 3));
        assert!(pipeline.advance(at(FRIDAY, 18, 0)).is_empty(), "the budget is spent for Friday");
        let monday = pipeline.advance(at(FRIDAY + 3, 7, 0));
        assert_eq!(references(&monday[0]), [("a3", ItemKind::New), ("a4", ItemKind::New)]);
        // Held back: a5, and the reminders of a1 and a2 (told Friday, not acknowledged).
        assert_eq!(monday[0].held_back, 3);
    }

    #[test]
    fn an_alert_not_acknowledged_in_time_escalates_along_its_chain() {
        let config = PipelineConfig { escalate_after_school_days: Some(2), ..PipelineConfig::default() };
        let mut pipeline = Pipeline::new(config);
        let mut event = fired(at(FRIDAY, 9, 0), "a1", "c1");
        event.escalation = vec![String::from("principal"), String::from("district")];
        pipeline.push(event);
        pipeline.push(fired(at(FRIDAY, 9, 0), "a2", "c1"));
        pipeline.advance(at(FRIDAY, 9, 1));
        assert!(pipeline.acknowledge("c1", "a2"));
        // Monday is one school day after Friday, Tuesday two.
        let monday = pipeline.advance(at(FRIDAY + 3, 9, 0));
        assert!(monday.iter().all(|digest| digest.recipient == "c1"), "{monday:?}");
        pipeline.advance(at(FRIDAY + 4, 9, 0)); // escalated: the principal's group_wait begins
        let tuesday = pipeline.advance(at(FRIDAY + 4, 9, 1));
        let escalated: Vec<(&str, Vec<(&str, ItemKind)>)> =
            tuesday.iter().map(|digest| (digest.recipient.as_str(), references(digest))).collect();
        assert_eq!(escalated, [("principal", vec![("a1", ItemKind::Escalated)])]);
        // Two more school days unacknowledged by the principal: the district.
        pipeline.advance(at(FRIDAY + 6, 9, 0));
        let thursday = pipeline.advance(at(FRIDAY + 6, 9, 1));
        assert_eq!(thursday[0].recipient, "district");
        assert!(pipeline.acknowledge("district", "a1"));
        assert!(pipeline.advance(at(FRIDAY + 20, 9, 0)).iter().all(|digest| digest.recipient != "district"));
    }

    #[test]
    fn a_silence_drops_the_changes_it_covers() {
        let mut pipeline = Pipeline::new(PipelineConfig::default());
        let nine = at(FRIDAY, 9, 0);
        pipeline.set_silences(vec![Silence {
            rule: Some("tier_3".into()),
            recipient: None,
            from: nine,
            until: at(FRIDAY, 10, 0),
        }]);
        pipeline.push(fired(nine.plus_seconds(1), "a1", "c1"));
        pipeline.push(AlertEvent::new(nine.plus_seconds(2), "a2", "health_visits", "c1", Change::Fired));
        let digests = pipeline.advance(nine.plus_seconds(60));
        assert_eq!(references(&digests[0]), [("a2", ItemKind::New)]);
        assert_eq!(pipeline.silenced, 1);
        pipeline.push(fired(at(FRIDAY, 10, 0), "a3", "c1"));
        assert_eq!(pipeline.advance(at(FRIDAY, 10, 10))[0].items[0].reference, "a3", "the silence has ended");
    }
}
