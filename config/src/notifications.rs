//! `[alerts]`: where the live engine's alerts go. The alert log and outbox (an SQLite file
//! or PostgreSQL), the grouping and delivery settings of the notification pipeline, and
//! the channels: `[alerts.email]` (SMTP) and `[alerts.webhook]`. Secrets (SMTP
//! credentials, the webhook secret) come from a file or the environment, never inline.

use std::path::PathBuf;

/// Where the durable alert log and outbox live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertStoreConfig {
    /// `sqlite:PATH`
    Sqlite(PathBuf),
    /// `postgres:CONNINFO` (libpq's key=value form); the tables go in `schema`.
    Postgres { url: String, schema: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurityConfig {
    None,
    StartTls,
    Tls,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurityConfig,
    pub from: String,
    /// A file with the user on its first line and the password on its second.
    pub credentials_file: Option<PathBuf>,
    /// The names of two environment variables: the user's and the password's.
    pub credentials_env: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    /// A file holding the Standard Webhooks secret (`whsec_...`).
    pub secret_file: Option<PathBuf>,
    /// Or the environment variable holding it.
    pub secret_env: Option<String>,
}

/// `[alerts.api]`: acknowledgement and snooze over HTTP, for the dashboard and other
/// district systems acting for a staff member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertApiConfig {
    pub listen: std::net::SocketAddr,
    /// A file holding the bearer token callers present.
    pub token_file: Option<PathBuf>,
    /// Or the environment variable holding it.
    pub token_env: Option<String>,
}

/// `[alerts]` of `wholechild run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsConfig {
    pub store: AlertStoreConfig,
    /// Notifications link to `DASHBOARD_URL/alerts/REFERENCE`.
    pub dashboard_url: String,
    pub group_wait_seconds: u32,
    pub group_interval_seconds: u32,
    pub repeat_interval_seconds: u32,
    /// Delivery hours, minutes after local midnight: `start..end`.
    pub delivery_start_minute: u32,
    pub delivery_end_minute: u32,
    pub delivery_weekdays_only: bool,
    /// Alerts per recipient per day; `None` (`daily_budget = 0`) for no limit.
    pub daily_budget: Option<u32>,
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
    pub api: Option<AlertApiConfig>,
    /// A Kafka topic that gets every alert change logged (keyed by the alert's reference),
    /// for the district's other systems; on the brokers of `[kafka]`.
    pub topic: Option<String>,
    /// Staff id that receives the alerts nobody is assigned to (no counselor, no principal).
    pub fallback_recipient: Option<String>,
    /// An alert not acknowledged within this many instructional days goes to the next
    /// recipient of its chain (counselor -> principal -> local district); `None`: never.
    pub escalate_after_days: Option<u32>,
}
