//! A real SMTP server process on loopback (`scripts/smtp_test_server.py`, aiosmtpd) that
//! stores each message it accepts as a file.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(maildir: &Path) -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        SmtpServer::start_on(maildir, port)
    }

    /// Starts on `port` (again after a stop: the messages already in `maildir` stay).
    pub fn start_on(maildir: &Path, port: u16) -> SmtpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp_test_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(maildir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(
            line.starts_with("listening"),
            "the SMTP test server did not start (pip install -r scripts/requirements-test.txt): {line:?}"
        );
        SmtpServer { child, port, maildir: maildir.to_path_buf() }
    }

    /// The messages accepted so far, in order.
    pub fn messages(&self) -> Vec<String> {
        self.files("eml")
    }

    /// For each message accepted so far, the client address and port it came from (one
    /// port: one connection).
    pub fn peers(&self) -> Vec<String> {
        self.files("peer")
    }

    fn files(&self, extension: &str) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.maildir)
            .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
            .unwrap_or_default();
        paths.retain(|path| path.extension().is_some_and(|found| found == extension));
        paths.sort();
        paths.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
