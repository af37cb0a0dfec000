//! Prime (paper 004) in the simulator through `stockade sim prime-*`: listed, every update
//! executed at every server, and `--out` leaves the figures on disk.

mod common;

use common::{assert_success, last_line_json, stockade};

/// Every Prime scenario `stockade_replication::register` adds.
const PRIME_SCENARIOS: [&str; 5] = [
    "prime-normal",
    "prime-leader-delay",
    "prime-equivocation",
    "prime-crash-recover",
    "prime-fuzz",
];

#[test]
fn every_prime_scenario_is_listed() {
    let out = stockade(&["sim", "--list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in PRIME_SCENARIOS {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{name} in {text}"
        );
    }
}

#[test]
fn the_prime_attack_scenarios_pass_their_checkers() {
    for name in &PRIME_SCENARIOS[1..] {
        let out = stockade(&["sim", name]);
        assert_success(&out);
        assert_eq!(last_line_json(&out)["scenario"], *name);
    }
}

#[test]
fn prime_normal_executes_every_submitted_update_at_every_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let out = stockade(&["sim", "prime-normal", "--seconds", "2", "--out", out_dir]);
    assert_success(&out);
    let h = last_line_json(&out);
    assert_eq!(h["scenario"], "prime-normal");
    let submitted = h["updates_submitted"].as_u64().expect("updates_submitted");
    assert!(submitted > 0);
    assert_eq!(h["replies"], submitted, "every update answered");
    assert!(h["slots_executed_per_server"].as_u64() > Some(0));
    assert!(h["throughput_updates_per_s"].as_f64() > Some(0.0));
    assert!(dir.path().join("headline.json").exists());
}

#[test]
fn prime_normal_over_seeds_aggregates_into_one_line() {
    let out = stockade(&["sim", "prime-normal", "--seconds", "1", "--seeds", "2"]);
    assert_success(&out);
    let a = last_line_json(&out);
    assert_eq!(
        (a["seeds"].as_u64(), a["passed"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(a["figures"]["latency_p50_ms"]["mean"].as_f64() > Some(0.0));
}
