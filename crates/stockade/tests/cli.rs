//! The `stockade` binary as scripts use it: `sim --list`, a scenario's last line is one JSON
//! object, exit statuses, `--seeds` aggregation, `keygen`'s files, and both demos end to end.

mod common;

use common::{last_line_json, stockade};

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Run `stockade ARGS`, failing the test if it takes longer than `bound`.
fn run_within(args: &[&str], bound: Duration) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let started = Instant::now();
    while child.try_wait().expect("waitable").is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            panic!("{args:?} did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("finished")
}

#[test]
fn demo_attacks_a_real_kv_cluster_detects_both_attacks_and_loses_no_write() {
    let out = run_within(
        &["demo", "--phase-seconds", "2", "--clients", "2"],
        Duration::from_secs(90),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Delaying leader") && text.contains("Equivocating leader"),
        "{text}"
    );
    let headline = last_line_json(&out);
    assert_eq!(headline["demo"], "prime-attacks");
    assert_eq!(headline["passed"], true, "{text}");
    let delaying = &headline["delaying_leader"];
    assert_eq!(
        delaying["replaced"], true,
        "suspect-leader replaced the slow leader"
    );
    assert!(delaying["suspicions"].as_u64() > Some(0), "{delaying}");
    let equivocating = &headline["equivocating_leader"];
    assert_eq!(
        equivocating["detected"], true,
        "the equivocation was caught"
    );
    assert!(equivocating["misbehaviour_reports"].as_u64() > Some(0));
    assert_eq!(equivocating["replaced"], true);
    assert_eq!(headline["lost_writes"], 0);
    assert_eq!(headline["failed_commands"], 0);
    let written = headline["acknowledged_writes"].as_u64().unwrap_or(0);
    assert!(written > 0, "the workload wrote through the proxy");
    assert_eq!(headline["writes_read_back_intact"].as_u64(), Some(written));
    assert!(headline["fault_free"]["updates"].as_u64() > Some(0));
}

#[test]
fn demo_broadcast_runs_a_real_cluster_survives_a_kill_and_reports_within_a_minute() {
    let out = run_within(
        &[
            "demo",
            "--broadcast",
            "--messages",
            "60",
            "--rate",
            "200",
            "--base-port",
            "0",
        ],
        Duration::from_secs(60),
    );
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
fn demo_refuses_a_delay_the_timeout_would_catch_and_options_of_the_other_demo() {
    let out = stockade(&["demo", "--delay-ms", "600", "--timeout-ms", "500"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("below --timeout-ms"));
    let out = stockade(&["demo", "--messages", "10"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--messages belongs to --broadcast"
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

#[test]
fn sim_out_writes_csv_files_and_svg_plots() {
    for (scenario, extra) in [
        ("broadcast", &["--messages", "3"][..]),
        ("la-mincut", &[][..]),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out_dir = dir.path().to_str().expect("utf-8 path");
        let mut args = vec!["sim", scenario, "--out", out_dir];
        args.extend_from_slice(extra);
        let out = stockade(&args);
        assert!(
            out.status.success(),
            "{scenario}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(last_line_json(&out)["scenario"], scenario);
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .expect("out dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            files.iter().any(|f| f == "counters.csv"),
            "{scenario}: {files:?}"
        );
        assert!(
            files.iter().any(|f| f == "headline.json"),
            "{scenario}: {files:?}"
        );
        assert!(
            files.iter().any(|f| f.ends_with(".svg")),
            "{scenario} drew plots: {files:?}"
        );
    }
}
