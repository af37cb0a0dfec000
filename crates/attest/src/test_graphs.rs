//! Shorthands for building small attestation graphs in unit tests.

use std::collections::BTreeSet;

use stockade_core::NodeId;

use crate::graph::{AttestationGraph, UNIT_COST};

/// Node `i`.
pub fn n(i: u32) -> NodeId {
    NodeId(i)
}

/// A graph of unit-cost edges.
pub fn unit(edges: &[(u32, u32)]) -> AttestationGraph {
    AttestationGraph::from_edges(edges.iter().map(|&(a, b)| (n(a), n(b), UNIT_COST)))
}

/// A set of nodes.
pub fn set(ids: &[u32]) -> BTreeSet<NodeId> {
    ids.iter().map(|&i| n(i)).collect()
}

/// A path of nodes.
pub fn path(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().map(|&i| n(i)).collect()
}
