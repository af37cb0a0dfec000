//! The conformance suite: ONE set of broadcast test cases, written once against
//! [`ConformanceDriver`], that both drivers pass: the simulator ([`SimDriver`]) and real processes
//! on loopback over the runtime's Noise/UDP links ([`ProcessDriver`]). Nothing in a case knows
//! which driver runs it (DESIGN.md section 2).

mod cases;
mod process_driver;
mod sim_driver;

use std::collections::BTreeMap;
use std::time::Duration;

use stockade_broadcast::InstanceId;
use stockade_core::NodeId;

pub use cases::{fault_free, lossy_links, one_byzantine_node, ALL_CASES};
pub use process_driver::ProcessDriver;
pub use sim_driver::SimDriver;

/// What each node delivered: `deliveries[node][instance] = payload`.
pub type Deliveries = BTreeMap<NodeId, BTreeMap<InstanceId, Vec<u8>>>;

/// The committee a case asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitteeSpec {
    /// Fault bound; `3f + 1` nodes.
    pub f: usize,
    /// Chance that a message is lost on its way to a node.
    pub loss: f64,
    /// The node that runs the attack of [`crate::attack`], if any.
    pub byzantine: Option<NodeId>,
}

/// A running committee.
pub trait Committee {
    /// Ask `origin` to broadcast `payload`.
    fn broadcast(&mut self, origin: NodeId, payload: Vec<u8>) -> anyhow::Result<()>;

    /// Let the committee run until `done` holds for what was delivered so far, or until
    /// `timeout` (simulated time for the simulator, real time for processes). Returns whether
    /// `done` held.
    fn run_until(
        &mut self,
        timeout: Duration,
        done: &dyn Fn(&Deliveries) -> bool,
    ) -> anyhow::Result<bool>;

    /// Everything delivered so far.
    fn deliveries(&self) -> &Deliveries;

    /// Stop the committee and return each node's protocol counters (the JSON of
    /// [`crate::cluster::node::broadcast_stats_json`]), for nodes that were still running.
    fn finish(&mut self) -> anyhow::Result<BTreeMap<NodeId, serde_json::Value>>;
}

/// Starts committees.
pub trait ConformanceDriver {
    /// Start a committee as `spec` says.
    fn start(&self, spec: &CommitteeSpec) -> anyhow::Result<Box<dyn Committee>>;
}
