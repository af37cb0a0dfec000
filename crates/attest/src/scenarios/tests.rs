//! Every scenario passes on a few seeds, and the interesting event of each happened.

use stockade_sim::{RunOptions, Scenario};

use super::*;

fn run(scenario: &dyn Scenario, options: RunOptions) -> serde_json::Value {
    let outcome = match scenario.run(&options) {
        Ok(o) => o,
        Err(e) => panic!("{} did not run: {e}", scenario.name()),
    };
    assert!(
        outcome.passed,
        "{} failed: {:?}; repro: {}",
        scenario.name(),
        outcome.failure,
        outcome.repro
    );
    outcome.headline
}

#[test]
fn nontransitive_routes_through_the_middle() {
    for seed in [1, 2] {
        let h = run(&NonTransitiveScenario, RunOptions::with_seed(seed));
        assert_eq!(h["one_view"], true);
        assert_eq!(h["route_a_to_c"], "n0 n1 n2");
        assert_eq!(h["direct_attestation_a_c"], false);
    }
}

#[test]
fn trust_accepts_only_the_good_origin() {
    for (seed, members, byzantine) in [(3, 10, 2), (4, 7, 1), (5, 13, 3)] {
        let options = RunOptions::with_seed(seed)
            .arg("members", members)
            .arg("byzantine", byzantine);
        let h = run(&TrustScenario, options);
        assert_eq!(h["accepted_bad_origin"], 0);
        assert_eq!(h["accepted_good_origin"], h["verifiers"]);
        assert!(h["verifiers"].as_u64().is_some_and(|v| v > 0));
    }
}

#[test]
fn convergence_stays_within_its_bounds() {
    let h = run(
        &ConvergenceScenario,
        RunOptions::with_seed(4).arg("members", 6),
    );
    let join = h["join_convergence_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        join >= h["diameter_x_latency_ms"].as_f64().unwrap_or(0.0),
        "a change crosses the diameter"
    );
    assert!(h["failure_convergence_ms"]
        .as_f64()
        .is_some_and(|f| f > 0.0));
}

#[test]
fn ring_groups_are_strongly_connected_and_overlap() {
    let h = run(
        &RingScenario,
        RunOptions::with_seed(5).arg("nodes", 8).arg("span", 3),
    );
    assert_eq!(h["strongly_connected_groups"], 8);
    assert_eq!(h["neighbour_overlap_min"], 3);
}

#[test]
fn mincut_finds_the_bridges() {
    let h = run(&MinCutScenario, RunOptions::with_seed(6));
    assert_eq!(h["vertex_connectivity"], 2);
}

#[test]
fn bad_arguments_are_usage_errors() {
    assert!(TrustScenario
        .run(&RunOptions::with_seed(1).arg("byzantine", 5))
        .is_err());
    assert!(RingScenario
        .run(&RunOptions::with_seed(1).arg("span", 20))
        .is_err());
    assert!(NonTransitiveScenario
        .run(&RunOptions::with_seed(1).arg("typo", 1))
        .is_err());
}
