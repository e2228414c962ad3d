//! A real Kafka-protocol broker (tansu) in its own process on loopback, one per test,
//! and the `wholechild` processes the tests run against it.
//!
//! `scripts/install-broker.sh` installs tansu (CI runs it); `WHOLECHILD_TANSU` may name
//! another binary. A test that needs the broker fails, loudly, when there is none.

#![allow(dead_code)]

use super::cli::binary;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEFAULT_TANSU: &str = "/var/cache/wholechild/tools/bin/tansu";

pub struct Broker {
    child: Child,
    pub address: String,
}

impl Broker {
    /// Starts a broker with in-memory storage on a free loopback port.
    pub fn start(log: &Path) -> Broker {
        let tansu = std::env::var("WHOLECHILD_TANSU").unwrap_or_else(|_| DEFAULT_TANSU.to_string());
        assert!(
            Path::new(&tansu).exists(),
            "no Kafka broker at {tansu}: run scripts/install-broker.sh (the test command does) or set WHOLECHILD_TANSU"
        );
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(&tansu)
            .args(["broker", "--kafka-listener-url", &url, "--kafka-advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .arg("--silent")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("starting tansu");
        let broker = Broker { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&broker.address).is_err() {
            assert!(Instant::now() < deadline, "the broker did not listen within 30 s (log: {})", log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.address).create().unwrap();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let results = runtime
            .block_on(
                admin.create_topics(&[topic], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))),
            )
            .unwrap();
        for result in results {
            result.unwrap_or_else(|(topic, error)| panic!("creating {topic}: {error:?}"));
        }
    }

    /// Every message of `topic` (all partitions), read from the beginning until `expected`
    /// have arrived or `timeout` passes.
    pub fn read_all(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", format!("test-reader-{}", std::process::id()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let mut messages = Vec::new();
        let deadline = Instant::now() + timeout;
        while messages.len() < expected && Instant::now() < deadline {
            if let Some(result) = consumer.poll(Duration::from_millis(200)) {
                messages.push(result.unwrap().detach());
            }
        }
        // A little longer, to see any message beyond those expected.
        let grace = Instant::now() + Duration::from_secs(1);
        while Instant::now() < grace {
            if let Some(result) = consumer.poll(Duration::from_millis(100)) {
                messages.push(result.unwrap().detach());
            }
        }
        messages.sort_by_key(|message| (message.partition(), message.offset()));
        messages
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The example calendar with a `[kafka]` section for `broker`, plus `extra` TOML.
pub fn kafka_config(dir: &Path, broker: &Broker, group: &str, topics: &[&str], extra: &str) -> PathBuf {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml")).unwrap();
    let calendar_start = example.find("\n[calendar]\n").unwrap() + 1;
    let calendar_end = calendar_start + example[calendar_start + 1..].find("\n[").unwrap() + 1;
    let topics: Vec<String> = topics.iter().map(|topic| format!("\"{topic}\"")).collect();
    let text = format!(
        "{}\n[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\ntopics = [{}]\ndead_letter_topic = \"dead-letters\"\n[kafka.options]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{extra}",
        &example[calendar_start..calendar_end],
        broker.address,
        topics.join(", ")
    );
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A `wholechild run` in the background, its standard error collected line by line.
pub struct Running {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = Command::new(binary()).args(args).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Running { child, stderr }
    }

    /// Waits until a line of standard error satisfies `test`; returns it.
    pub fn wait_for_line(&self, timeout: Duration, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stderr.lock().unwrap().iter().find(|line| test(line)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such line within {timeout:?}; stderr: {:#?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `count` lines of standard error satisfy `test`.
    pub fn wait_for_lines(&self, count: usize, timeout: Duration, test: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while self.stderr.lock().unwrap().iter().filter(|line| test(line)).count() < count {
            assert!(
                Instant::now() < deadline,
                "not {count} such lines within {timeout:?}; stderr: {:#?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address of its `/metrics` endpoint (from its first line).
    pub fn metrics_url(&self) -> String {
        let line = self.wait_for_line(Duration::from_secs(30), |line| line.starts_with("metrics: "));
        line["metrics: ".len()..].to_string()
    }

    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> String {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let log = self.stderr.lock().unwrap().join("\n");
        assert!(status.success(), "wholechild run exited with {status} after SIGTERM: {log}");
        log
    }
}

/// A Prometheus scrape over plain HTTP (the test needs no HTTP client crate for one GET).
pub fn scrape(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The sum of a metric's samples whose labels contain `label_filter`.
pub fn metric_sum(scrape: &str, name: &str, label_filter: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| {
            line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']) && line.contains(label_filter)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
