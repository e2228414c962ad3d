//! E-mail through an SMTP server (lettre), plain, STARTTLS or TLS, with credentials from a
//! file or the environment (never inline in the configuration).

use crate::delivery::{DeliveryError, Notification, Notifier};
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;

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

/// Sends notifications as e-mail over one SMTP connection, kept open between digests and
/// opened again when the server has closed it.
///
/// Why not lettre's `SmtpTransport`: lettre 0.11.23 writes a message's body and its
/// terminating `.` in two writes on a socket without `TCP_NODELAY`, so Nagle's algorithm
/// holds the terminator until the server's delayed ACK (40 ms on Linux) on every message
/// (BENCHMARKS.md, "Alert latency"; fixed upstream in lettre pull request #1159, not yet
/// released). lettre's async connection accepts a socket of ours, so this opens the socket
/// with `TCP_NODELAY` and leaves the SMTP conversation (EHLO, STARTTLS, AUTH, MAIL, RCPT,
/// DATA) to lettre. Implicit TLS (`SmtpSecurity::Tls`) uses lettre's own socket, and so
/// still waits on the delayed ACK, until that release.
pub struct EmailNotifier {
    settings: SmtpSettings,
    credentials: Option<Credentials>,
    from: Mailbox,
    hello: ClientId,
    /// Runs the async connection on the calling (delivery) thread.
    runtime: tokio::runtime::Runtime,
    connection: Mutex<Option<AsyncSmtpConnection>>,
}

impl EmailNotifier {
    /// Checks the settings; fails on an invalid `from`, unreadable credentials or a TLS
    /// setup that cannot be built. Connects only when the first notification is sent.
    pub fn new(settings: &SmtpSettings) -> Result<EmailNotifier, String> {
        let from: Mailbox = settings.from.parse().map_err(|error| format!("email.from: {error}"))?;
        if settings.security != SmtpSecurity::None {
            tls_parameters(&settings.host)?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("starting the SMTP client's runtime: {error}"))?;
        Ok(EmailNotifier {
            settings: settings.clone(),
            credentials: read_credentials(&settings.credentials)?,
            from,
            hello: ClientId::default(),
            runtime,
            connection: Mutex::new(None),
        })
    }

    /// Opens a connection: TCP (with `TCP_NODELAY`), TLS as configured, EHLO, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let SmtpSettings { host, port, timeout, .. } = &self.settings;
        // Checked in `new`; a failure here would be one to try again.
        let tls = || tls_parameters(host).map_err(DeliveryError::retryable);
        let mut connection = match self.settings.security {
            SmtpSecurity::Tls => AsyncSmtpConnection::connect_tokio1(
                (host.as_str(), *port),
                Some(*timeout),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(classify)?,
            SmtpSecurity::None | SmtpSecurity::StartTls => {
                let socket = tokio::time::timeout(*timeout, TcpStream::connect((host.as_str(), *port)))
                    .await
                    .map_err(|_| DeliveryError::retryable(format!("connecting to {host}:{port} timed out")))?
                    .map_err(|error| DeliveryError::retryable(format!("connecting to {host}:{port}: {error}")))?;
                socket.set_nodelay(true).map_err(|error| DeliveryError::retryable(error.to_string()))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(socket), &self.hello).await.map_err(classify)?
            }
        };
        if self.settings.security == SmtpSecurity::StartTls {
            connection.starttls(tls()?, &self.hello).await.map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await.map_err(classify)?;
        }
        Ok(connection)
    }

    /// Sends one message on the open connection, opening one first if there is none or
    /// the server closed it. Any failure closes the connection, so the next attempt
    /// starts a clean SMTP session.
    fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), DeliveryError> {
        let mut slot = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.runtime.block_on(async {
            let timeout = self.settings.timeout;
            if let Some(open) = slot.as_mut() {
                let alive =
                    !open.has_broken() && tokio::time::timeout(timeout, open.test_connected()).await == Ok(true);
                if !alive {
                    *slot = None;
                }
            }
            let connection = match slot.as_mut() {
                Some(open) => open,
                None => slot.insert(self.connect().await?),
            };
            let sent = match tokio::time::timeout(timeout, connection.send(envelope, message)).await {
                Ok(sent) => sent.map_err(classify),
                Err(_) => Err(DeliveryError::retryable(String::from("sending timed out"))),
            };
            if sent.is_err() {
                if let Some(mut broken) = slot.take() {
                    broken.abort().await;
                }
            }
            sent.map(|_| ())
        })
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_string()).map_err(|error| format!("TLS for {host}: {error}"))
}

/// 5xx: the server refused for good. 4xx and connection failures: try again.
fn classify(error: lettre::transport::smtp::Error) -> DeliveryError {
    match error.is_permanent() {
        true => DeliveryError::permanent(error.to_string()),
        false => DeliveryError::retryable(error.to_string()),
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
        let envelope = message.envelope().clone();
        self.send(&envelope, &message.formatted())
    }
}
