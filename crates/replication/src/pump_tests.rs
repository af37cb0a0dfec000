//! Whole-protocol tests: N in-memory Prime nodes wired by the in-test pump of
//! [`crate::test_support`], checking agreement, total order and execution of every update.

use std::time::Duration;

use stockade_core::Time;

use crate::config::PrimeConfig;
use crate::replica::PrimeOutput;
use crate::test_support::{update, Pump};

fn replies(pump: &Pump, i: usize) -> usize {
    pump.outputs[i]
        .iter()
        .filter(|o| matches!(o, PrimeOutput::Reply(_)))
        .count()
}

/// PRIME.md steps 1-11 end to end: updates submitted at every server are pre-ordered, globally
/// ordered and executed in the same order everywhere; each originator replies to its own clients.
#[test]
fn normal_case_executes_every_update_in_one_order() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    for seq in 1..=5 {
        for server in 0..4 {
            pump.submit(server, update(server as u64 * 10, seq));
        }
        pump.run_for(Duration::from_millis(3));
    }
    pump.run_until(Time::from_millis(400));
    pump.check_agreement();
    let reference = &pump.nodes[0].app().log;
    assert_eq!(reference.len(), 20, "all 20 updates executed");
    for node in &pump.nodes {
        assert_eq!(
            &node.app().log,
            reference,
            "same execution order everywhere"
        );
        assert!(node.executed_seq() >= 1);
        assert_eq!(node.last_executed(), &[5, 5, 5, 5]);
        assert!(node.misbehaving().is_empty());
    }
    for i in 0..4 {
        assert_eq!(
            replies(&pump, i),
            5,
            "server {i} replies to each of its client's updates"
        );
    }
    // Each client's updates run in its own order.
    let c10: Vec<u64> = reference
        .iter()
        .filter(|e| e.1 .0 == 10)
        .map(|e| e.2)
        .collect();
    assert_eq!(c10, vec![1, 2, 3, 4, 5]);
}
