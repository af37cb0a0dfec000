//! The `stockade` binary as scripts use it: `sim --list`, a scenario's last line is one JSON
//! object, exit statuses, `--seeds` aggregation, `keygen`'s files, and `demo` end to end.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stockade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn last_line_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

#[test]
fn sim_list_names_every_scenario() {
    let out = stockade(&["sim", "--list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["scale", "broadcast", "broadcast-byzantine"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{name} listed in:\n{text}"
        );
    }
}

#[test]
fn a_scenario_ends_with_one_json_line_and_exit_status_zero() {
    let out = stockade(&["sim", "broadcast", "--seed", "4", "--messages", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headline = last_line_json(&out);
    assert_eq!(headline["scenario"], "broadcast");
    assert_eq!(headline["seed"], 4);
    assert_eq!(headline["deliveries_at_correct_nodes"], 48);
}

#[test]
fn seeds_aggregate_into_one_json_line() {
    let out = stockade(&[
        "sim",
        "broadcast-byzantine",
        "--seeds",
        "3",
        "--seed",
        "10",
        "--messages",
        "2",
        "--f",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let aggregate = last_line_json(&out);
    assert_eq!(aggregate["seeds"], 3);
    assert_eq!(aggregate["passed"], 3);
    assert_eq!(aggregate["first_seed"], 10);
    assert!(aggregate["figures"]["deliveries_at_correct_nodes"]["mean"]
        .as_f64()
        .is_some());
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = stockade(&["sim", "broadcast", "--nodez", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument --nodez"));
    let out = stockade(&["sim", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn keygen_writes_owner_only_secret_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("node");
    let out = stockade(&["keygen", "--dir", keys.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["noise.key", "ed25519.key", "bls.key"] {
        let mode = std::fs::metadata(keys.join(file))
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert!(std::fs::read_to_string(keys.join("public.toml"))
        .expect("written")
        .contains("ed25519 = "));
    let again = stockade(&["keygen", "--dir", keys.to_str().expect("utf-8 path")]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "existing keys are not replaced without --force"
    );
}

#[test]
fn demo_runs_a_real_cluster_survives_a_kill_and_reports_within_a_minute() {
    let bound = Duration::from_secs(60);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args([
            "demo",
            "--messages",
            "60",
            "--rate",
            "200",
            "--base-port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let started = Instant::now();
    while child.try_wait().expect("waitable").is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            panic!("the demo did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("finished");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("node 3 killed"), "{text}");
    let headline = last_line_json(&out);
    assert_eq!(headline["complete"], true);
    assert_eq!(
        headline["after_fault"]["broadcasts"],
        3 * 30,
        "the survivors kept broadcasting"
    );
    assert_eq!(
        headline["after_fault"]["deliveries_at_survivors"],
        3 * 3 * 30
    );
    assert!(
        headline["survivor_retransmissions"].as_u64().unwrap_or(0) > 0,
        "the survivors noticed the dead node"
    );
}

#[test]
fn bench_commands_end_with_their_figures_as_json() {
    let out = stockade(&["bench", "noise", "--messages", "2000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let noise = last_line_json(&out);
    assert_eq!(
        noise["messages_received"], 2000,
        "the receiver process got every message"
    );
    assert!(noise["handshake_ms"].as_f64().is_some_and(|ms| ms > 0.0));

    let out = stockade(&["bench", "crypto"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crypto = last_line_json(&out);
    assert!(crypto["figures"].as_object().is_some_and(|f| f.len() > 5));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("14 us"),
        "the DESIGN.md reference is printed"
    );
}
