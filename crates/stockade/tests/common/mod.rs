//! Helpers the integration tests share: run the binary, read its last line as JSON.

#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};

/// Run `stockade ARGS` to completion.
pub fn stockade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The last line of standard output, parsed as JSON (what scripts read).
pub fn last_line_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// Fail with both output streams unless the command succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub mod kv_cluster;
pub mod overlay_daemons;
pub mod resp_client;
