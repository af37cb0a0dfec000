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

/// Every case with its name, for suites that run them all.
pub const ALL_CASES: [(&str, fn(&dyn ConformanceDriver) -> anyhow::Result<()>); 3] = [
    ("fault_free", fault_free),
    ("lossy_links", lossy_links),
    ("one_byzantine_node", one_byzantine_node),
];

/// Four nodes, no faults: everything is delivered everywhere, identically.
pub fn fault_free(driver: &dyn ConformanceDriver) -> anyhow::Result<()> {
    run_case(
        driver,
        CommitteeSpec {
            f: 1,
            loss: 0.0,
            byzantine: None,
        },
    )
}

/// Four nodes, 10% of messages lost: retransmission still delivers everything.
pub fn lossy_links(driver: &dyn ConformanceDriver) -> anyhow::Result<()> {
    run_case(
        driver,
        CommitteeSpec {
            f: 1,
            loss: 0.1,
            byzantine: None,
        },
    )
}

/// Four nodes, one of them equivocating and lying: the three correct nodes still deliver every
/// correct broadcast, and never different payloads for one broadcast.
pub fn one_byzantine_node(driver: &dyn ConformanceDriver) -> anyhow::Result<()> {
    run_case(
        driver,
        CommitteeSpec {
            f: 1,
            loss: 0.0,
            byzantine: Some(NodeId(3)),
        },
    )
}

fn payload(origin: NodeId, seq: u64) -> Vec<u8> {
    format!("conformance {origin} #{seq}").into_bytes()
}

fn run_case(driver: &dyn ConformanceDriver, spec: CommitteeSpec) -> anyhow::Result<()> {
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
    let delivered = committee.deliveries();
    agreement(delivered, &correct)?;
    if !reached {
        validity(delivered, &correct)?;
        totality(delivered, &correct)?;
        bail!("the goal was not reached, yet validity and totality hold: a driver bug");
    }
    Ok(())
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
