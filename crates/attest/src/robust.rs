//! Robust group membership and path-independent trust on top of the attestation graph.
//!
//! Paper 000, section "Robust group membership protocol": "attestations represent a node's
//! belief in another's continued correctness; the group corresponds to the nodes holding at least
//! a threshold of attestations from group members." A static threshold lets the group withstand a
//! fixed number of faults over its lifetime, as quorum systems do; a dynamic threshold is a
//! function of the group's size as it grows and shrinks. Section 3.3 ("trust networks"): a node
//! may accept data only when it reaches the data's origin along several vertex-disjoint
//! attestation paths, so that no small set of faulty members can vouch for it alone.
//!
//! These are pure functions of one node's attestation graph. The paper notes that a dynamic
//! threshold needs consensus on view changes to mean the same at every member; this module
//! computes the rule on one view, and agreement on the view is the caller's (for example, a
//! replicated log's) concern.

use std::collections::BTreeSet;

use stockade_core::NodeId;

use crate::graph::{AttestationGraph, GraphError};

/// How many attestations from members a node needs to be a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// Always this many (at least 1): a group with `t` tolerates `t - 1` members attesting falsely.
    Static(usize),
    /// More than `numerator / denominator` of the other members: with `1 / 3`, a member needs
    /// attestations from more than a third of the others, so `f` faulty members of `3f + 1` cannot
    /// admit anyone by themselves.
    Dynamic {
        /// Numerator of the fraction.
        numerator: usize,
        /// Denominator of the fraction (at least 1).
        denominator: usize,
    },
}

impl Threshold {
    /// The attestations needed in a group of `members` nodes.
    pub fn required(self, members: usize) -> usize {
        match self {
            Threshold::Static(t) => t.max(1),
            Threshold::Dynamic {
                numerator,
                denominator,
            } => {
                let others = members.saturating_sub(1);
                // The smallest count strictly above others * numerator / denominator.
                (others * numerator) / denominator.max(1) + 1
            }
        }
    }
}

/// The largest set `S` of nodes in which every member is attested by at least `t` other members
/// of `S` (the `t`-core of the attestation graph, by in-degree). Found by peeling: repeatedly
/// drop a node with fewer than `t` attesters left, which never drops a node of a valid set.
pub fn core_members(graph: &AttestationGraph, t: usize) -> BTreeSet<NodeId> {
    let mut members: BTreeSet<NodeId> = graph.nodes().collect();
    loop {
        let weak: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|&v| graph.predecessors(v).intersection(&members).count() < t)
            .collect();
        if weak.is_empty() {
            return members;
        }
        for v in weak {
            members.remove(&v);
        }
    }
}

/// The robust membership of the group under `threshold`: the largest set in which every member
/// holds [`Threshold::required`]`(|set|)` attestations from other members.
///
/// For a dynamic threshold the required count depends on the answer's size, so each candidate
/// size is tried from the largest down: the core for the count that size needs is the answer as
/// soon as it satisfies the count its own size needs.
pub fn robust_members(graph: &AttestationGraph, threshold: Threshold) -> BTreeSet<NodeId> {
    if let Threshold::Static(_) = threshold {
        return core_members(graph, threshold.required(0));
    }
    for size in (1..=graph.node_count()).rev() {
        let core = core_members(graph, threshold.required(size));
        let needed = threshold.required(core.len());
        let holds = core
            .iter()
            .all(|&v| graph.predecessors(v).intersection(&core).count() >= needed);
        if !core.is_empty() && holds {
            return core;
        }
    }
    BTreeSet::new()
}

/// Whether `verifier` may trust what `origin` says: it reaches `origin` along at least `paths_min`
/// internally vertex-disjoint attestation paths (paper 000, section "Partitioned trust networks",
/// "check that attestation paths to a single member are vertex-disjoint"). With `paths_min > f`,
/// `f` members attesting falsely cannot make a node trusted unless correct members' attestations
/// also lead to it.
pub fn trusted_by_disjoint_paths(
    graph: &AttestationGraph,
    verifier: NodeId,
    origin: NodeId,
    paths_min: usize,
) -> Result<bool, GraphError> {
    if verifier == origin {
        return Ok(true);
    }
    Ok(graph.vertex_disjoint_path_count(verifier, origin)? >= paths_min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_graphs::{n, set, unit};

    /// Nodes 0..4 all attest each other; 4 is attested by 0 and 1; 5 only by 4.
    fn clique_with_tail() -> AttestationGraph {
        let mut edges = Vec::new();
        for a in 0..4 {
            for b in 0..4 {
                if a != b {
                    edges.push((a, b));
                }
            }
        }
        edges.extend([(0, 4), (1, 4), (4, 5)]);
        unit(&edges)
    }

    #[test]
    fn static_threshold_by_hand() {
        let g = clique_with_tail();
        // t = 2: 5 has one attester and drops; 4 keeps 0 and 1.
        assert_eq!(
            robust_members(&g, Threshold::Static(2)),
            set(&[0, 1, 2, 3, 4])
        );
        // t = 3: 4 drops too; each clique member has 3 attesters.
        assert_eq!(robust_members(&g, Threshold::Static(3)), set(&[0, 1, 2, 3]));
        // t = 4: nobody has four.
        assert_eq!(robust_members(&g, Threshold::Static(4)), set(&[]));
    }

    #[test]
    fn dynamic_threshold_by_hand() {
        let third = Threshold::Dynamic {
            numerator: 1,
            denominator: 3,
        };
        assert_eq!(third.required(4), 2, "more than 1 of 3 others");
        assert_eq!(third.required(7), 3, "more than 2 of 6 others");
        let g = clique_with_tail();
        // Size 6 needs 2 (more than 5/3): the 2-core is {0..4}, size 5, which needs more than
        // 4/3, so 2: 4 has exactly 2. Holds.
        assert_eq!(robust_members(&g, third), set(&[0, 1, 2, 3, 4]));
        let half = Threshold::Dynamic {
            numerator: 1,
            denominator: 2,
        };
        // Size 6 needs 3 (more than 5/2): 4 has 2 and drops; {0..3} needs 2 and holds.
        assert_eq!(robust_members(&g, half), set(&[0, 1, 2, 3]));
    }

    #[test]
    fn peeling_cascades() {
        // 3 is attested by 2 and 4; 4 only by 3: with t = 2, 4 drops, then 3 has one attester.
        let g = unit(&[
            (0, 1),
            (1, 0),
            (0, 2),
            (2, 0),
            (1, 2),
            (2, 1),
            (2, 3),
            (4, 3),
            (3, 4),
        ]);
        assert_eq!(core_members(&g, 2), set(&[0, 1, 2]));
    }

    #[test]
    fn trust_needs_disjoint_paths() {
        // 0 reaches 9 through 1 and through 2 (disjoint), and a third time through 1 again.
        let g = unit(&[(0, 1), (0, 2), (1, 9), (2, 9), (1, 3), (3, 9)]);
        assert_eq!(trusted_by_disjoint_paths(&g, n(0), n(9), 2), Ok(true));
        assert_eq!(
            trusted_by_disjoint_paths(&g, n(0), n(9), 3),
            Ok(false),
            "paths via 1 share it"
        );
        assert_eq!(trusted_by_disjoint_paths(&g, n(0), n(0), 5), Ok(true));
        assert_eq!(
            trusted_by_disjoint_paths(&g, n(0), n(7), 1),
            Err(GraphError::UnknownNode(n(7)))
        );
    }
}
