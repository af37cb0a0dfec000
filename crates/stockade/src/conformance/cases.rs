//! The cases: fault-free, lossy links, one Byzantine node. Each starts a committee, has the
//! correct nodes broadcast, waits for validity and totality, and checks agreement.

use std::time::Duration;

use anyhow::{bail, ensure};
use stockade_broadcast::InstanceId;
use stockade_core::NodeId;

use super::{CommitteeSpec, ConformanceDriver, Deliveries};

/// Broadcasts each origin sends in a case.
const BROADCASTS_PER_ORIGIN: u64 = 5;
/// How long a case waits for every delivery.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a lossy case runs on after every delivery: three of Bracha's retransmission rounds
/// (`retransmit_interval`, 200 ms). Deliveries can complete before the first round, Bracha's
/// quorums tolerating the losses; the READYs lost on the way are re-sent in the rounds after.
const LOSSY_SETTLE: Duration = Duration::from_millis(600);

/// One conformance case.
pub type Case = fn(&dyn ConformanceDriver) -> anyhow::Result<()>;

/// Every case with its name, for suites that run them all.
pub const ALL_CASES: [(&str, Case); 3] = [
    ("fault_free", fault_free),
    ("lossy_links", lossy_links),
    ("one_byzantine_node", one_byzantine_node),
];

/// A committee of four, with `loss` and an optional Byzantine node.
fn four(loss: f64, byzantine: Option<NodeId>) -> CommitteeSpec {
    CommitteeSpec {
        f: 1,
        loss,
        byzantine,
    }
}

/// Four nodes, no faults: everything is delivered everywhere, identically, and nobody saw a lie.
pub fn fault_free(driver: &dyn ConformanceDriver) -> anyhow::Result<()> {
    let seen = run_case(driver, four(0.0, None), Duration::ZERO)?;
    ensure!(
        seen("conflicting_votes") == 0 && seen("invalid_signatures") == 0,
        "suspicion without a fault"
    );
    Ok(())
}

/// Four nodes, 10% of messages lost: retransmission still delivers everything.
pub fn lossy_links(driver: &dyn ConformanceDriver) -> anyhow::Result<()> {
    let seen = run_case(driver, four(0.1, None), LOSSY_SETTLE)?;
    ensure!(
        seen("retransmissions") > 0,
        "messages were lost, so some must have been re-sent"
    );
    Ok(())
}

/// Four nodes, one of them equivocating and lying: the three correct nodes still deliver every
/// correct broadcast, never different payloads for one broadcast, and they saw the lies.
pub fn one_byzantine_node(driver: &dyn ConformanceDriver) -> anyhow::Result<()> {
    let seen = run_case(driver, four(0.0, Some(NodeId(3))), Duration::ZERO)?;
    ensure!(
        seen("conflicting_votes") > 0,
        "the correct nodes saw votes against the INITIALs they got"
    );
    Ok(())
}

fn payload(origin: NodeId, seq: u64) -> Vec<u8> {
    format!("conformance {origin} #{seq}").into_bytes()
}

/// Run one case, running on for `settle` once every delivery is in; returns a lookup of a protocol
/// counter summed over the correct nodes.
fn run_case(
    driver: &dyn ConformanceDriver,
    spec: CommitteeSpec,
    settle: Duration,
) -> anyhow::Result<impl Fn(&str) -> u64> {
    let n = 3 * spec.f + 1;
    let nodes: Vec<NodeId> = (0..n as u32).map(NodeId).collect();
    let correct: Vec<NodeId> = nodes
        .iter()
        .copied()
        .filter(|id| Some(*id) != spec.byzantine)
        .collect();
    let mut committee = driver.start(&spec)?;
    // Every node broadcasts, the attacker too (its broadcasts are the equivocated ones).
    for seq in 0..BROADCASTS_PER_ORIGIN {
        for origin in &nodes {
            committee.broadcast(*origin, payload(*origin, seq))?;
        }
    }
    let goal = |d: &Deliveries| validity(d, &correct).is_ok() && totality(d, &correct).is_ok();
    let reached = committee.run_until(CASE_TIMEOUT, &goal)?;
    if reached && !settle.is_zero() {
        committee.run_until(settle, &|_| false)?;
    }
    let delivered = committee.deliveries();
    agreement(delivered, &correct)?;
    if !reached {
        validity(delivered, &correct)?;
        totality(delivered, &correct)?;
        bail!("the goal was not reached, yet validity and totality hold: a driver bug");
    }
    let stats = committee.finish()?;
    ensure!(
        correct.iter().all(|n| stats.contains_key(n)),
        "a correct node's counters are missing: {stats:?}"
    );
    let correct_stats: Vec<serde_json::Value> = correct
        .iter()
        .filter_map(|n| stats.get(n).cloned())
        .collect();
    Ok(move |field: &str| {
        correct_stats
            .iter()
            .map(|s| s[field].as_u64().unwrap_or(0))
            .sum()
    })
}

/// Every correct node delivered every correct origin's broadcasts with the right payload.
fn validity(d: &Deliveries, correct: &[NodeId]) -> anyhow::Result<()> {
    for node in correct {
        for origin in correct {
            for seq in 0..BROADCASTS_PER_ORIGIN {
                let id = InstanceId {
                    origin: *origin,
                    seq,
                };
                let got = d.get(node).and_then(|m| m.get(&id));
                ensure!(
                    got == Some(&payload(*origin, seq)),
                    "validity: {node} delivered {:?} for {id:?}",
                    got.map(|p| String::from_utf8_lossy(p).into_owned())
                );
            }
        }
    }
    Ok(())
}

/// Every correct node delivered the same set of broadcasts.
fn totality(d: &Deliveries, correct: &[NodeId]) -> anyhow::Result<()> {
    let empty = Default::default();
    let first = d.get(&correct[0]).unwrap_or(&empty);
    for node in correct {
        let mine = d.get(node).unwrap_or(&empty);
        ensure!(
            mine.keys().eq(first.keys()),
            "totality: {node} and {} delivered different sets",
            correct[0]
        );
    }
    Ok(())
}

/// No two correct nodes delivered different payloads for one broadcast.
fn agreement(d: &Deliveries, correct: &[NodeId]) -> anyhow::Result<()> {
    let mut first: std::collections::BTreeMap<InstanceId, (NodeId, &Vec<u8>)> = Default::default();
    for node in correct {
        for (id, payload) in d.get(node).into_iter().flatten() {
            let (other, theirs) = *first.entry(*id).or_insert((*node, payload));
            ensure!(
                theirs == payload,
                "agreement: {node} and {other} delivered different payloads for {id:?}"
            );
        }
    }
    Ok(())
}
