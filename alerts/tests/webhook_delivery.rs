//! Webhook delivery against a real HTTP receiver process on loopback
//! (`scripts/webhook_test_receiver.py`), which checks the Standard Webhooks signature
//! with its own implementation: a digest arrives signed, with its references and links
//! only; a retry carries the same idempotency key; a 4xx is permanent, a 429 or 5xx is
//! retried; a wrong secret is refused.

use alerts::{deliver, Digest, DigestItem, ItemKind, LocalTime, Notification, Outcome, RetryPolicy, WebhookNotifier};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Receiver {
    child: Child,
    port: u16,
    outdir: PathBuf,
}

impl Receiver {
    fn start(name: &str) -> Receiver {
        let outdir = std::env::temp_dir().join(format!("wholechild-webhook-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&outdir);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/webhook_test_receiver.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args([&port.to_string(), SECRET])
            .arg(&outdir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("listening"), "the webhook receiver did not start: {line:?}");
        Receiver { child, port, outdir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.outdir)
            .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
            .unwrap_or_default();
        paths.sort();
        paths.iter().map(|path| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn notification() -> Notification {
    let digest = Digest {
        recipient: String::from("c1"),
        at: LocalTime(86_400 * 20_791 + 9 * 3600),
        items: vec![DigestItem {
            reference: String::from("r-9d2e"),
            rule: String::from("tier_3"),
            kind: ItemKind::New,
            escalation: Vec::new(),
        }],
        held_back: 0,
    };
    Notification::of(&digest, "hook", "https://dashboard.district.example")
}

fn notifier(url: &str, secret: &str) -> WebhookNotifier {
    WebhookNotifier::new(url, secret, Duration::from_secs(5), alerts::webhook::unix_now).unwrap()
}

const QUICK: RetryPolicy =
    RetryPolicy { max_attempts: 4, first_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(20) };

#[test]
fn a_signed_webhook_is_accepted_by_a_receiver_that_checks_the_signature() {
    let receiver = Receiver::start("ok");
    let sent = notification();
    let outcome = deliver(&notifier(&receiver.url("/hook"), SECRET), &sent, QUICK, std::thread::sleep, || 0.5);
    assert_eq!(outcome, Outcome::Delivered { attempts: 1 });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["signature_ok"], true);
    assert_eq!(requests[0]["headers"]["webhook-id"], sent.idempotency_key.as_str());
    let body: Value = serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["items"][0]["link"], "https://dashboard.district.example/alerts/r-9d2e");
    assert!(!requests[0]["body"].as_str().unwrap().contains("tier_3"));
}

#[test]
fn a_retry_carries_the_same_idempotency_key() {
    let receiver = Receiver::start("flaky");
    let outcome =
        deliver(&notifier(&receiver.url("/flaky/2"), SECRET), &notification(), QUICK, std::thread::sleep, || 0.5);
    assert_eq!(outcome, Outcome::Delivered { attempts: 3 });
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|request| request["headers"]["webhook-id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[test]
fn a_4xx_is_permanent_and_a_429_or_5xx_is_retried() {
    let receiver = Receiver::start("status");
    let attempts =
        |path: &str| match deliver(&notifier(&receiver.url(path), SECRET), &notification(), QUICK, |_| {}, || 0.5) {
            Outcome::Failed { attempts, permanent, .. } => (attempts, permanent),
            other => panic!("{path}: expected a failure, got {other:?}"),
        };
    assert_eq!(attempts("/status/400"), (1, true));
    assert_eq!(attempts("/status/404"), (1, true));
    assert_eq!(attempts("/status/429"), (4, false));
    assert_eq!(attempts("/status/500"), (4, false));
}

#[test]
fn a_webhook_signed_with_another_secret_is_refused() {
    let receiver = Receiver::start("wrong-secret");
    let wrong = "whsec_c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ==";
    let outcome = deliver(&notifier(&receiver.url("/hook"), wrong), &notification(), QUICK, |_| {}, || 0.5);
    assert!(matches!(outcome, Outcome::Failed { attempts: 1, permanent: true, .. }), "{outcome:?}");
    assert_eq!(receiver.requests()[0]["signature_ok"], false);
}
