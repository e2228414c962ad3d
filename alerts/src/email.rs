//! E-mail through an SMTP server (lettre), plain, STARTTLS or TLS, with credentials from a
//! file or the environment (never inline in the configuration).

use crate::delivery::{DeliveryError, Notification, Notifier};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS: only for a relay on the same host or a test server on loopback.
    None,
    /// Upgrade with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// Where the user name and password come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtpCredentials {
    None,
    /// A file holding `user` on its first line and the password on its second.
    File(std::path::PathBuf),
    /// Two environment variables: the user's and the password's.
    Environment {
        user: String,
        password: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: SmtpCredentials,
    /// The `From:` address.
    pub from: String,
    pub timeout: Duration,
}

/// Sends notifications as e-mail.
pub struct EmailNotifier {
    transport: SmtpTransport,
    from: Mailbox,
}

impl EmailNotifier {
    /// Builds the transport; fails on an invalid `from` or unreadable credentials.
    pub fn new(settings: &SmtpSettings) -> Result<EmailNotifier, String> {
        let from: Mailbox = settings.from.parse().map_err(|error| format!("email.from: {error}"))?;
        let tls =
            || TlsParameters::new(settings.host.clone()).map_err(|error| format!("TLS for {}: {error}", settings.host));
        let mut builder =
            SmtpTransport::builder_dangerous(&settings.host).port(settings.port).timeout(Some(settings.timeout));
        builder = match settings.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        if let Some(credentials) = read_credentials(&settings.credentials)? {
            builder = builder.credentials(credentials);
        }
        Ok(EmailNotifier { transport: builder.build(), from })
    }
}

fn read_credentials(source: &SmtpCredentials) -> Result<Option<Credentials>, String> {
    match source {
        SmtpCredentials::None => Ok(None),
        SmtpCredentials::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
            let mut lines = text.lines();
            match (lines.next(), lines.next()) {
                (Some(user), Some(password)) => Ok(Some(Credentials::new(user.to_string(), password.to_string()))),
                _ => Err(format!(
                    "{}: expected the user on the first line and the password on the second",
                    path.display()
                )),
            }
        }
        SmtpCredentials::Environment { user, password } => {
            let read = |name: &str| std::env::var(name).map_err(|_| format!("the environment has no {name}"));
            Ok(Some(Credentials::new(read(user)?, read(password)?)))
        }
    }
}

impl Notifier for EmailNotifier {
    fn notify(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let to: Mailbox = notification
            .address
            .parse()
            .map_err(|error| DeliveryError::permanent(format!("not an e-mail address: {error}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            // The same on every attempt, so a repeat is recognisable as one.
            .message_id(Some(format!("<{}@wholechild>", notification.idempotency_key)))
            .subject(notification.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(notification.body.clone())
            .map_err(|error| DeliveryError::permanent(format!("building the message: {error}")))?;
        self.transport.send(&message).map(|_| ()).map_err(|error| {
            // 5xx: the server refused for good. 4xx and connection failures: try again.
            let message = error.to_string();
            match error.is_permanent() {
                true => DeliveryError::permanent(message),
                false => DeliveryError::retryable(message),
            }
        })
    }
}
