//! The alert pipeline: alert changes in, digests for people out. One stage per concern,
//! as Prometheus Alertmanager has them: dispatch by recipient, silences, deduplication,
//! grouping into one digest per recipient (`group_wait`, `group_interval`,
//! `repeat_interval`), acknowledgement and snooze, delivery hours and daily budgets.
//!
//! Time is an argument ([`LocalTime`], seconds in the district's local time): nothing here
//! reads a clock, so every behaviour is tested in logical time. Delivery is a stage of its
//! own ([`delivery`]: a one-method [`Notifier`], retries with backoff and jitter, and
//! [`email`], SMTP through lettre); webhooks, the `alerts` topic and the durable log are
//! the next stages.
//!
//! ```
//! use alerts::{AlertEvent, Change, Pipeline, PipelineConfig, LocalTime};
//! let mut pipeline = Pipeline::new(PipelineConfig::default());
//! let nine = LocalTime::from_day_and_minute(20_000, 9 * 60); // a weekday, 09:00
//! pipeline.push(AlertEvent::new(nine, "a1", "tier_3", "counselor-7", Change::Fired));
//! assert!(pipeline.advance(nine.plus_seconds(10)).is_empty()); // group_wait: 30 s
//! let digests = pipeline.advance(nine.plus_seconds(30));
//! assert_eq!(digests.len(), 1);
//! assert_eq!(digests[0].items[0].reference, "a1");
//! ```

pub mod delivery;
pub mod email;
mod pipeline;
pub mod store;
mod time;
pub mod webhook;

pub use delivery::{deliver, DeliveryError, Notification, Notifier, Outcome, RetryPolicy};
pub use email::{EmailNotifier, SmtpCredentials, SmtpSecurity, SmtpSettings};
pub use pipeline::{AlertEvent, Change, Digest, DigestItem, ItemKind, Pipeline, PipelineConfig, Silence};
pub use store::{
    AlertStore, LoggedAction, LoggedChange, LoggedSilence, OutboxEntry, PostgresStore, SqliteStore, StoreError,
};
pub use time::{DeliveryHours, LocalTime};
pub use webhook::WebhookNotifier;
