//! Delivery: a digest to one recipient, through a [`Notifier`], with retries.
//!
//! Design (Alertmanager's notifier): a notifier has one method, and its error says
//! whether trying again can help. [`deliver`] retries what can be retried, with
//! exponential backoff and jitter, and records a permanent failure (an SMTP 5xx, an HTTP
//! 4xx other than 429) instead of retrying it forever. Every attempt of one digest
//! carries the same idempotency key, so a receiver that saw an attempt succeed can tell
//! a repeat from a new notification.

use crate::pipeline::{Digest, ItemKind};
use std::time::Duration;

/// Why a delivery attempt failed, and whether another attempt may succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub message: String,
}

impl DeliveryError {
    pub fn retryable(message: impl Into<String>) -> DeliveryError {
        DeliveryError { retryable: true, message: message.into() }
    }

    pub fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError { retryable: false, message: message.into() }
    }
}

/// Sends one digest to one address.
pub trait Notifier {
    fn notify(&self, notification: &Notification) -> Result<(), DeliveryError>;
}

/// A digest ready to send: where to, its idempotency key, and its text, which names no
/// student, program or reason (only opaque alert references and the dashboard's links,
/// where access is checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub address: String,
    /// The same on every attempt: the e-mail's Message-ID, the webhook's `webhook-id`.
    pub idempotency_key: String,
    pub subject: String,
    pub body: String,
    /// The digest's lines: (opaque reference, what changed, link), for machine receivers.
    pub items: Vec<(String, &'static str, String)>,
}

impl Notification {
    /// Renders `digest` for `address`; links point under `dashboard_url`.
    pub fn of(digest: &Digest, address: &str, dashboard_url: &str) -> Notification {
        let mut body = format!(
            "{} change(s) to early-warning alerts for you.\nOpen each link to see the student and the evidence:\n\n",
            digest.items.len()
        );
        let mut items = Vec::new();
        for item in &digest.items {
            let (what, change) = match item.kind {
                ItemKind::New => ("new", "new"),
                ItemKind::Reminder => ("still open", "reminder"),
                ItemKind::Resolved => ("resolved", "resolved"),
                ItemKind::Withdrawn => ("withdrawn (raised on data since corrected)", "withdrawn"),
                ItemKind::Reassigned => ("now yours (reassigned)", "reassigned"),
                ItemKind::MovedAway => ("moved to another staff member", "moved_away"),
                ItemKind::Escalated => ("escalated to you (not acknowledged in time)", "escalated"),
            };
            let link = format!("{}/alerts/{}", dashboard_url.trim_end_matches('/'), item.reference);
            body.push_str(&format!("- {what}: {link}\n"));
            items.push((item.reference.clone(), change, link));
        }
        if digest.held_back > 0 {
            body.push_str(&format!("\n{} more will follow in the next digest.\n", digest.held_back));
        }
        Notification {
            address: address.to_string(),
            idempotency_key: idempotency_key(digest),
            subject: format!("wholechild: {} early-warning alert update(s)", digest.items.len()),
            body,
            items,
        }
    }
}

/// A key that identifies one digest: its recipient, time and items.
fn idempotency_key(digest: &Digest) -> String {
    let mut text = format!("{}|{}", digest.recipient, digest.at.0);
    for item in &digest.items {
        text.push_str(&format!("|{}:{:?}", item.reference, item.kind));
    }
    // xxh3 is stable across processes and releases (std's hasher is not).
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// How often and how patiently to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 6, first_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (2, 3, ...): doubling from `first_backoff`, at
    /// most `max_backoff`, less up to half of it at random (jitter, so that receivers
    /// recovering from an outage are not hit by every sender at once). `random` is in
    /// 0..1; the caller supplies it, so tests are deterministic.
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let doubled = self.first_backoff.saturating_mul(1 << (attempt.saturating_sub(2)).min(20));
        let capped = doubled.min(self.max_backoff);
        capped.mul_f64(1.0 - 0.5 * random.clamp(0.0, 1.0))
    }
}

/// What became of a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        attempts: u32,
    },
    /// Given up: a permanent error, or the last retryable one after `max_attempts`.
    Failed {
        attempts: u32,
        permanent: bool,
        error: String,
    },
}

/// Tries `notification` until it is delivered, fails permanently or runs out of
/// attempts; `wait` sleeps between attempts (a real sleep, or a test's record of it).
pub fn deliver(
    notifier: &dyn Notifier,
    notification: &Notification,
    policy: RetryPolicy,
    mut wait: impl FnMut(Duration),
    mut random: impl FnMut() -> f64,
) -> Outcome {
    let mut attempt = 1;
    loop {
        match notifier.notify(notification) {
            Ok(()) => return Outcome::Delivered { attempts: attempt },
            Err(error) if !error.retryable || attempt >= policy.max_attempts => {
                return Outcome::Failed { attempts: attempt, permanent: !error.retryable, error: error.message };
            }
            Err(_) => {
                attempt += 1;
                wait(policy.backoff(attempt, random()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DigestItem;
    use crate::time::LocalTime;
    use std::cell::RefCell;

    fn item(reference: &str, rule: &str, kind: ItemKind) -> DigestItem {
        DigestItem { reference: reference.into(), rule: rule.into(), kind, escalation: Vec::new() }
    }

    fn digest() -> Digest {
        Digest {
            recipient: String::from("c1"),
            at: LocalTime(1000),
            items: vec![
                item("r-7f3a", "vulnerable_absences", ItemKind::New),
                item("r-0b12", "tier_3", ItemKind::Withdrawn),
            ],
            held_back: 1,
        }
    }

    #[test]
    fn a_notification_names_no_student_program_or_reason_only_references_and_links() {
        let notification = Notification::of(&digest(), "c1@example.org", "https://dash.example.org/");
        let text = format!("{}\n{}", notification.subject, notification.body);
        assert!(text.contains("- new: https://dash.example.org/alerts/r-7f3a"), "{text}");
        assert!(text.contains("withdrawn (raised on data since corrected): https://dash.example.org/alerts/r-0b12"));
        assert!(text.contains("1 more will follow"));
        for secret in ["vulnerable_absences", "tier_3", "homeless", "absent"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(notification.idempotency_key, Notification::of(&digest(), "x", "y").idempotency_key);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_of_at_most_half() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(2, 0.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(4, 0.0), Duration::from_secs(4));
        assert_eq!(policy.backoff(12, 0.0), Duration::from_secs(60));
        assert_eq!(policy.backoff(4, 1.0), Duration::from_secs(2));
    }

    struct Scripted(RefCell<Vec<Result<(), DeliveryError>>>);

    impl Notifier for Scripted {
        fn notify(&self, _: &Notification) -> Result<(), DeliveryError> {
            self.0.borrow_mut().remove(0)
        }
    }

    #[test]
    fn retryable_errors_are_retried_and_a_permanent_one_is_recorded_at_once() {
        let notification = Notification::of(&digest(), "c1@example.org", "https://dash");
        let busy = || Err(DeliveryError::retryable("451 busy"));
        let notifier = Scripted(RefCell::new(vec![busy(), busy(), Ok(())]));
        let mut waits = Vec::new();
        let outcome = deliver(&notifier, &notification, RetryPolicy::default(), |wait| waits.push(wait), || 0.0);
        assert_eq!(outcome, Outcome::Delivered { attempts: 3 });
        assert_eq!(waits, [Duration::from_secs(1), Duration::from_secs(2)]);

        let notifier = Scripted(RefCell::new(vec![busy(), Err(DeliveryError::permanent("550 no such user"))]));
        let outcome = deliver(&notifier, &notification, RetryPolicy::default(), |_| {}, || 0.5);
        assert_eq!(outcome, Outcome::Failed { attempts: 2, permanent: true, error: String::from("550 no such user") });

        let always_busy = Scripted(RefCell::new((0..6).map(|_| busy()).collect()));
        let outcome = deliver(&always_busy, &notification, RetryPolicy::default(), |_| {}, || 0.5);
        assert_eq!(outcome, Outcome::Failed { attempts: 6, permanent: false, error: String::from("451 busy") });
    }
}
