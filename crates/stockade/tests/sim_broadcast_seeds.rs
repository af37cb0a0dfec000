//! A few hundred seeds of the broadcast scenarios (kept small so CI takes seconds): every seed
//! must pass its checkers, and across seeds the interesting events must have happened, so a run
//! that passes only because nothing was attacked fails here.

use stockade::scenarios::broadcast::BroadcastScenario;
use stockade_sim::{RunOptions, Scenario, ScenarioOutcome};

fn run_seeds(
    scenario: BroadcastScenario,
    seeds: std::ops::Range<u64>,
    args: &[(&str, &str)],
) -> Vec<ScenarioOutcome> {
    seeds
        .map(|seed| {
            let options = args
                .iter()
                .fold(RunOptions::with_seed(seed), |o, (k, v)| o.arg(k, v));
            let outcome = scenario.run(&options).expect("the scenario runs");
            assert!(
                outcome.passed,
                "seed {seed}: {:?}\nreproduce with: {}",
                outcome.failure, outcome.repro
            );
            outcome
        })
        .collect()
}

fn figure(outcome: &ScenarioOutcome, name: &str) -> u64 {
    outcome.headline[name].as_u64().unwrap_or(0)
}

#[test]
fn fault_free_seeds_deliver_everything_without_suspicion() {
    let outcomes = run_seeds(
        BroadcastScenario { byzantine: false },
        0..100,
        &[("messages", "3")],
    );
    for o in &outcomes {
        assert_eq!(
            figure(o, "deliveries_at_correct_nodes"),
            4 * 4 * 3,
            "4 nodes deliver 4 origins x 3"
        );
        assert_eq!(figure(o, "detected_conflicting_votes"), 0);
        assert_eq!(figure(o, "detected_invalid_signatures"), 0);
    }
}

#[test]
fn byzantine_seeds_with_f_1_keep_agreement_and_the_attack_happens() {
    let outcomes = run_seeds(
        BroadcastScenario { byzantine: true },
        0..150,
        &[("messages", "3"), ("f", "1"), ("crypto", "sim-fast")],
    );
    let delivered: Vec<u64> = outcomes
        .iter()
        .map(|o| figure(o, "byzantine_broadcasts_delivered"))
        .collect();
    assert!(
        outcomes
            .iter()
            .all(|o| figure(o, "detected_conflicting_votes") > 0),
        "the equivocation was seen"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| figure(o, "detected_invalid_signatures") > 0),
        "corrupted packets arrived"
    );
    assert!(
        outcomes.iter().any(|o| figure(o, "decode_failures") > 0),
        "some corruption broke the encoding"
    );
    assert!(
        delivered.iter().any(|d| *d > 0),
        "some equivocated broadcasts still reached a quorum"
    );
    assert!(
        outcomes.iter().all(|o| figure(o, "dropped") > 0),
        "links lost packets"
    );
}

#[test]
fn byzantine_seeds_with_f_2_survive_a_liar_and_a_crash() {
    let outcomes = run_seeds(
        BroadcastScenario { byzantine: true },
        0..40,
        &[("messages", "3")],
    );
    for o in &outcomes {
        assert_eq!(o.headline["crashed_node"], 5);
        // 5 correct nodes deliver the 5 correct origins' 3 broadcasts, plus whatever of the liar's.
        assert!(figure(o, "deliveries_at_correct_nodes") >= 5 * 5 * 3);
    }
    assert!(
        outcomes.iter().any(|o| figure(o, "catch_up_replies") > 0),
        "stuck nodes were helped"
    );
}

#[test]
fn a_seed_reproduces_bit_for_bit() {
    let scenario = BroadcastScenario { byzantine: true };
    let options = RunOptions::with_seed(77).arg("messages", "4");
    let a = scenario.run(&options).expect("runs");
    let b = scenario.run(&options).expect("runs");
    assert_eq!(a.headline["digest"], b.headline["digest"]);
    assert_eq!(a.repro, "stockade sim broadcast-byzantine --seed 77 --f 2 --messages 4 --payload-bytes 100 --loss 0.05 --crypto real");
}
