//! E-mail delivery against a real SMTP server process on loopback
//! (`scripts/smtp_test_server.py`, aiosmtpd; `scripts/test` installs it): a digest
//! arrives with its Message-ID and no student detail; a 5xx is recorded as a permanent
//! failure after one attempt; a 4xx and a server that is down are retried, then given up.

use alerts::{deliver, DigestItem, EmailNotifier, ItemKind, LocalTime, Notification, Outcome, RetryPolicy};
use alerts::{Digest, SmtpCredentials, SmtpSecurity, SmtpSettings};
use std::time::Duration;

/// The SMTP test server helper the app's tests use too.
#[path = "../../app/tests/support/smtp.rs"]
mod smtp;
use smtp::SmtpServer;

fn start(name: &str) -> SmtpServer {
    let maildir = std::env::temp_dir().join(format!("wholechild-smtp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&maildir);
    SmtpServer::start(&maildir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn notifier(port: u16) -> EmailNotifier {
    EmailNotifier::new(&SmtpSettings {
        host: String::from("127.0.0.1"),
        port,
        security: SmtpSecurity::None,
        credentials: SmtpCredentials::None,
        from: String::from("wholechild <alerts@district.example>"),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn notification(address: &str) -> Notification {
    let digest = Digest {
        recipient: String::from("c1"),
        at: LocalTime(86_400 * 20_791 + 9 * 3600),
        items: vec![DigestItem {
            reference: String::from("r-51c0"),
            rule: String::from("vulnerable_absences"),
            kind: ItemKind::New,
            escalation: Vec::new(),
        }],
        held_back: 0,
    };
    Notification::of(&digest, address, "https://dashboard.district.example")
}

const QUICK: RetryPolicy =
    RetryPolicy { max_attempts: 3, first_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(20) };

#[test]
fn a_digest_reaches_the_smtp_server_with_its_message_id_and_no_student_detail() {
    let server = start("ok");
    let sent = notification("counselor@district.example");
    let outcome = deliver(&notifier(server.port), &sent, QUICK, std::thread::sleep, || 0.5);
    assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(message.contains(&format!("Message-ID: <{}@wholechild>", sent.idempotency_key)), "{message}");
    assert!(message.contains("To: counselor@district.example"), "{message}");
    assert!(message.contains("https://dashboard.district.example/alerts/r-51c0"), "{message}");
    assert!(!message.contains("vulnerable_absences"), "{message}");
}

#[test]
fn a_permanent_refusal_is_recorded_after_one_attempt() {
    let server = start("refused");
    let outcome =
        deliver(&notifier(server.port), &notification("refuse-me@district.example"), QUICK, std::thread::sleep, || 0.5);
    match outcome {
        Outcome::Failed { attempts: 1, permanent: true, error } => assert!(error.contains("550"), "{error}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[test]
fn a_temporary_refusal_and_a_server_that_is_down_are_retried_then_given_up() {
    let server = start("busy");
    let mut waits = 0;
    let outcome =
        deliver(&notifier(server.port), &notification("busy@district.example"), QUICK, |_| waits += 1, || 0.5);
    match outcome {
        Outcome::Failed { attempts: 3, permanent: false, error } => assert!(error.contains("451"), "{error}"),
        other => panic!("expected retries then a temporary failure, got {other:?}"),
    }
    assert_eq!(waits, 2);
    drop(server);

    let down = free_port(); // nothing listens there
    let outcome = deliver(&notifier(down), &notification("counselor@district.example"), QUICK, |_| {}, || 0.5);
    assert!(matches!(outcome, Outcome::Failed { attempts: 3, permanent: false, .. }), "{outcome:?}");
}

#[test]
fn consecutive_digests_share_one_smtp_connection_and_a_closed_one_is_reopened() {
    let maildir = std::env::temp_dir().join(format!("wholechild-smtp-{}-reuse", std::process::id()));
    let _ = std::fs::remove_dir_all(&maildir);
    let server = SmtpServer::start(&maildir);
    let port = server.port;
    let notifier = notifier(port);
    for _ in 0..3 {
        let outcome = deliver(&notifier, &notification("counselor@district.example"), QUICK, |_| {}, || 0.5);
        assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    }
    let peers = server.peers();
    assert_eq!(peers.len(), 3);
    assert!(peers.iter().all(|peer| peer == &peers[0]), "one connection for all three: {peers:?}");

    // The server goes away and comes back: the notifier notices the closed connection
    // before sending and opens a new one, so the digest is delivered on the first attempt.
    drop(server);
    let server = SmtpServer::start_on(&maildir, port);
    let outcome = deliver(&notifier, &notification("counselor@district.example"), QUICK, |_| {}, || 0.5);
    assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    let peers = server.peers();
    assert_eq!(peers.len(), 4);
    assert_ne!(peers[3], peers[0], "a new connection after the restart");
    assert_eq!(server.messages().len(), 4);
}
