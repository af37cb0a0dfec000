//! What every broadcast run must satisfy, one property per item (Bracha 1987's definition of
//! reliable broadcast): agreement and integrity checked on every delivery as the run goes;
//! validity and totality checked when the liveness phase ends.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use stockade_broadcast::{BrachaBroadcast, BroadcastOutput, InstanceId};
use stockade_core::{NodeId, Time};
use stockade_sim::Checker;

/// Every delivery of a run, by node: shared between the checker (which fills it) and the
/// scenario (which reads it for validity, totality and latency).
#[derive(Default, Debug)]
pub struct DeliveryLog {
    /// `delivered[node][instance] = (time, payload)`.
    pub delivered: BTreeMap<NodeId, NodeDeliveries>,
    /// The first payload any non-Byzantine node delivered per broadcast.
    pub first: BTreeMap<InstanceId, (NodeId, Vec<u8>)>,
}

/// The shared handle.
pub type SharedLog = Rc<RefCell<DeliveryLog>>;

/// One node's deliveries: `(time, payload)` by broadcast.
pub type NodeDeliveries = BTreeMap<InstanceId, (Time, Vec<u8>)>;

/// Agreement (no two honest nodes deliver different payloads for one `(origin, seq)`) and
/// integrity (an honest node delivers each broadcast at most once). Byzantine nodes' outputs are
/// ignored: they promise nothing.
pub struct AgreementChecker {
    log: SharedLog,
    byzantine: BTreeSet<NodeId>,
}

impl AgreementChecker {
    /// A checker that fills `log` and ignores the outputs of `byzantine`.
    pub fn new(log: SharedLog, byzantine: BTreeSet<NodeId>) -> AgreementChecker {
        AgreementChecker { log, byzantine }
    }
}

impl Checker<BrachaBroadcast> for AgreementChecker {
    fn name(&self) -> &str {
        "agreement"
    }

    fn on_output(
        &mut self,
        at: Time,
        node: NodeId,
        output: &BroadcastOutput,
    ) -> Result<(), String> {
        let BroadcastOutput::Delivered { instance, payload } = output else {
            return Ok(());
        };
        if self.byzantine.contains(&node) {
            return Ok(());
        }
        let mut log = self.log.borrow_mut();
        if log
            .delivered
            .entry(node)
            .or_default()
            .insert(*instance, (at, payload.clone()))
            .is_some()
        {
            return Err(format!("integrity: {node} delivered {instance:?} twice"));
        }
        let (first_node, first_payload) = log
            .first
            .entry(*instance)
            .or_insert((node, payload.clone()));
        if first_payload != payload {
            return Err(format!(
                "agreement: {node} delivered {} bytes for {instance:?} but {first_node} delivered {} other bytes",
                payload.len(),
                first_payload.len()
            ));
        }
        Ok(())
    }
}

impl DeliveryLog {
    /// Validity: each node in `correct` delivered broadcasts `0..count` of every origin in
    /// `origins`, with the payload `expected(origin, seq)`.
    pub fn check_validity(
        &self,
        correct: &[NodeId],
        origins: &[NodeId],
        count: u64,
        expected: impl Fn(NodeId, u64) -> Vec<u8>,
    ) -> Result<(), String> {
        for node in correct {
            let got = self.delivered.get(node);
            for origin in origins {
                for seq in 0..count {
                    let id = InstanceId {
                        origin: *origin,
                        seq,
                    };
                    match got.and_then(|g| g.get(&id)) {
                        Some((_, payload)) if *payload == expected(*origin, seq) => {}
                        Some(_) => {
                            return Err(format!(
                                "validity: {node} delivered a wrong payload for {id:?}"
                            ))
                        }
                        None => return Err(format!("validity: {node} never delivered {id:?}")),
                    }
                }
            }
        }
        Ok(())
    }

    /// Totality: every node in `correct` delivered the same set of broadcasts.
    pub fn check_totality(&self, correct: &[NodeId]) -> Result<(), String> {
        let empty = BTreeMap::new();
        let sets: Vec<(NodeId, &NodeDeliveries)> = correct
            .iter()
            .map(|n| (*n, self.delivered.get(n).unwrap_or(&empty)))
            .collect();
        for (a, set_a) in &sets {
            for (b, set_b) in &sets {
                if let Some(missing) = set_a.keys().find(|id| !set_b.contains_key(id)) {
                    return Err(format!(
                        "totality: {a} delivered {missing:?} but {b} did not"
                    ));
                }
            }
        }
        Ok(())
    }

    /// True when validity and totality both hold (the liveness phase's goal).
    pub fn complete(
        &self,
        correct: &[NodeId],
        origins: &[NodeId],
        count: u64,
        expected: impl Fn(NodeId, u64) -> Vec<u8>,
    ) -> bool {
        self.check_validity(correct, origins, count, expected)
            .is_ok()
            && self.check_totality(correct).is_ok()
    }
}
