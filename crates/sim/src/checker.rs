//! Global checkers (agreement, total order, linearizability...) and the errors a run fails with.
//!
//! Local invariants are each protocol's `check_invariants()`, run on a node after every handler.
//! A [`Checker`] sees the whole world after every event and every application output; a failure
//! of either stops the run with a [`SimError`] that carries the command reproducing it
//! (openraft's fuzzer habit: one seed, one command).

use stockade_core::{InvariantViolation, NodeId, Protocol, Time};
use thiserror::Error;

use crate::node::{Node, NodeView};
use crate::topology::TopologyError;

/// A read-only view of every node, handed to checkers and predicates.
pub struct WorldView<'a, P: Protocol> {
    pub(crate) now: Time,
    pub(crate) nodes: &'a [Node<P>],
}

impl<'a, P: Protocol> WorldView<'a, P> {
    /// True simulation time.
    pub fn now(&self) -> Time {
        self.now
    }
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    /// One node (`None` for an unknown id).
    pub fn node(&self, id: NodeId) -> Option<NodeView<'a, P>> {
        self.nodes.get(id.index()).map(|node| NodeView { id, node })
    }
    /// The protocol state of a live (up or paused) node.
    pub fn protocol(&self, id: NodeId) -> Option<&'a P> {
        self.nodes.get(id.index()).and_then(|n| n.protocol.as_ref())
    }
    /// Every node.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'a, P>> + 'a {
        self.nodes.iter().enumerate().map(|(i, node)| NodeView {
            id: NodeId(i as u32),
            node,
        })
    }
}

/// A global property of a run, checked as it goes.
pub trait Checker<P: Protocol> {
    /// Short name, printed on failure (`"agreement"`).
    fn name(&self) -> &str;

    /// Called for each application output, in the order the world delivers them.
    fn on_output(&mut self, at: Time, node: NodeId, output: &P::Output) -> Result<(), String> {
        let _ = (at, node, output);
        Ok(())
    }

    /// Called after every event. Keep it cheap, or check only every so often.
    fn after_event(&mut self, world: &WorldView<'_, P>) -> Result<(), String> {
        let _ = world;
        Ok(())
    }
}

/// Why a run failed. Every failure found by checking names the command that reproduces it.
#[derive(Debug, Error)]
pub enum SimError {
    /// A node's own `check_invariants` failed.
    #[error("invariant broken on {node} at {at}: {violation}\nreproduce with: {repro}")]
    Invariant {
        /// The node.
        node: NodeId,
        /// True time of the event after which it failed.
        at: Time,
        /// What the protocol reported.
        violation: InvariantViolation,
        /// The command that reproduces the run.
        repro: String,
    },
    /// A global checker failed.
    #[error("checker `{checker}` failed at {at}: {message}\nreproduce with: {repro}")]
    Checker {
        /// The checker's name.
        checker: String,
        /// True time of the failure.
        at: Time,
        /// What it reported.
        message: String,
        /// The command that reproduces the run.
        repro: String,
    },
    /// The liveness phase's predicate did not hold by its deadline.
    #[error("liveness: `{what}` did not hold by {deadline} after healing at {healed_at}\nreproduce with: {repro}")]
    Liveness {
        /// The predicate's description.
        what: String,
        /// When healing started.
        healed_at: Time,
        /// The deadline that passed.
        deadline: Time,
        /// The command that reproduces the run.
        repro: String,
    },
    /// More events were pending than `pending_events_max`: something sends without bound.
    #[error("{pending} events pending at {at}, more than pending_events_max {max}: a protocol or workload sends without bound\nreproduce with: {repro}")]
    EventQueueFull {
        /// Events pending.
        pending: usize,
        /// The bound.
        max: usize,
        /// When.
        at: Time,
        /// The command that reproduces the run.
        repro: String,
    },
    /// A fault or topology change named a node or link that does not exist.
    #[error("bad topology request: {0}")]
    Topology(#[from] TopologyError),
}

impl SimError {
    /// The reproducing command, for failures found by checking.
    pub fn repro(&self) -> Option<&str> {
        match self {
            SimError::Invariant { repro, .. }
            | SimError::Checker { repro, .. }
            | SimError::Liveness { repro, .. }
            | SimError::EventQueueFull { repro, .. } => Some(repro),
            SimError::Topology(_) => None,
        }
    }
}
