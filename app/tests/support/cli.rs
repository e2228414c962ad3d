//! Running the `wholechild` binary as a user does, in scratch directories of its own.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wholechild")
}

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wholechild-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `wholechild ARGS` to completion; returns its standard error.
pub fn wholechild(args: &[&str]) -> String {
    let output = Command::new(binary()).args(args).output().unwrap();
    assert!(output.status.success(), "wholechild {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stderr).unwrap()
}
