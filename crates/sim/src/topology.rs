//! Who is linked to whom: a full mesh for small clusters, or a sparse adjacency (compressed rows)
//! for overlays of 100,000 nodes, plus per-link overrides and site assignments.
//!
//! A [`Topology`] is the description the world is built from; the live link state is in
//! [`crate::network::Network`].

use std::sync::Arc;
use std::time::Duration;

use stockade_core::NodeId;
use thiserror::Error;

use crate::link::{LinkSpec, SiteCap};
use crate::rng::SimRng;

/// A topology request that names something that does not exist.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum TopologyError {
    /// A node id at or beyond the node count.
    #[error("node {node} does not exist: the topology has {nodes} nodes (ids 0..{nodes})")]
    UnknownNode {
        /// The id given.
        node: NodeId,
        /// The node count.
        nodes: u32,
    },
    /// A sparse topology has no link between these nodes.
    #[error("there is no link {from} -> {to} in this sparse topology; add it to the adjacency")]
    NoSuchLink {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
    },
    /// More distinct link specs than the per-link index can name.
    #[error("more than {max} distinct link specs; reuse specs instead of making one per link")]
    TooManyLinkSpecs {
        /// The bound.
        max: usize,
    },
    /// A full mesh too big to hold one state per ordered pair.
    #[error("a full mesh of {nodes} nodes needs {} links; use at most {max} nodes or a sparse topology", *nodes as u64 * *nodes as u64)]
    MeshTooLarge {
        /// Nodes asked for.
        nodes: u32,
        /// The bound.
        max: u32,
    },
    /// A random graph asked for more neighbours than there are other nodes.
    #[error("out-degree {degree} needs at least {} nodes, have {nodes}", degree + 1)]
    DegreeTooHigh {
        /// Requested out-degree.
        degree: u32,
        /// The node count.
        nodes: u32,
    },
}

/// Directed adjacency in compressed-row form: 4 bytes per link plus 4 per node. Rows are sorted,
/// without duplicates or self-loops. Share it (it is behind an `Arc`) with protocols that need to
/// know their neighbours, instead of copying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjacency {
    offsets: Vec<u32>,
    targets: Vec<NodeId>,
}

impl Adjacency {
    /// The adjacency of `nodes` nodes with these directed edges (duplicates and self-loops dropped).
    pub fn from_edges(
        nodes: u32,
        edges: impl IntoIterator<Item = (NodeId, NodeId)>,
    ) -> Result<Adjacency, TopologyError> {
        let mut edges: Vec<(NodeId, NodeId)> = edges.into_iter().collect();
        for &(a, b) in &edges {
            for n in [a, b] {
                if n.0 >= nodes {
                    return Err(TopologyError::UnknownNode { node: n, nodes });
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        edges.retain(|(a, b)| a != b);
        let mut offsets = Vec::with_capacity(nodes as usize + 1);
        let mut targets = Vec::with_capacity(edges.len());
        let mut next = 0usize;
        for node in 0..nodes {
            offsets.push(targets.len() as u32);
            while next < edges.len() && edges[next].0 .0 == node {
                targets.push(edges[next].1);
                next += 1;
            }
        }
        offsets.push(targets.len() as u32);
        Ok(Adjacency { offsets, targets })
    }

    /// A random directed graph: each node links to `out_degree` distinct other nodes drawn
    /// uniformly with `seed`.
    pub fn random_out(nodes: u32, out_degree: u32, seed: u64) -> Result<Adjacency, TopologyError> {
        if out_degree >= nodes.max(1) {
            return Err(TopologyError::DegreeTooHigh {
                degree: out_degree,
                nodes,
            });
        }
        let mut rng = SimRng::new(seed);
        let mut offsets = Vec::with_capacity(nodes as usize + 1);
        let mut targets = Vec::with_capacity(nodes as usize * out_degree as usize);
        for node in 0..nodes {
            let row_start = targets.len();
            offsets.push(row_start as u32);
            while targets.len() - row_start < out_degree as usize {
                let candidate = NodeId(rng.below(nodes as u64) as u32);
                if candidate.0 != node && !targets[row_start..].contains(&candidate) {
                    targets.push(candidate);
                }
            }
            targets[row_start..].sort_unstable();
        }
        offsets.push(targets.len() as u32);
        Ok(Adjacency { offsets, targets })
    }

    /// Number of nodes.
    pub fn node_count(&self) -> u32 {
        (self.offsets.len() - 1) as u32
    }

    /// Number of directed links.
    pub fn link_count(&self) -> usize {
        self.targets.len()
    }

    /// The nodes `node` links to, sorted. Empty for an unknown node.
    #[inline]
    pub fn neighbours(&self, node: NodeId) -> &[NodeId] {
        match self.row_bounds(node) {
            Some((start, end)) => &self.targets[start..end],
            None => &[],
        }
    }

    fn row_bounds(&self, node: NodeId) -> Option<(usize, usize)> {
        let i = node.index();
        if i + 1 >= self.offsets.len() {
            return None;
        }
        Some((self.offsets[i] as usize, self.offsets[i + 1] as usize))
    }

    /// The dense index of link `from -> to`, if it exists.
    #[inline]
    pub(crate) fn link_index(&self, from: NodeId, to: NodeId) -> Option<usize> {
        let (start, end) = self.row_bounds(from)?;
        self.targets[start..end]
            .binary_search(&to)
            .ok()
            .map(|pos| start + pos)
    }

    /// Every link as `(from, to)` in link-index order.
    pub(crate) fn links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        (0..self.node_count()).flat_map(move |n| {
            self.neighbours(NodeId(n))
                .iter()
                .map(move |&to| (NodeId(n), to))
        })
    }
}

/// The one-way latency between two nodes of a computed topology (a coordinate model, a
/// transit-stub model...). It must be a pure function of its arguments.
pub type LatencyFn = Arc<dyn Fn(NodeId, NodeId) -> Duration + Send + Sync>;

/// A [`LatencyFn`] with a `Debug` impl.
#[derive(Clone)]
pub(crate) struct PathLatency(pub LatencyFn);

impl std::fmt::Debug for PathLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PathLatency(fn)")
    }
}

/// The shape of the link graph.
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// Every ordered pair is linked; link `a -> b` has index `a * nodes + b`. Memory is quadratic:
    /// use it up to a few thousand nodes.
    FullMesh { nodes: u32 },
    /// Only the adjacency's links exist.
    Sparse(Arc<Adjacency>),
    /// Every pair can talk (the Internet as an overlay sees it), latency computed per packet, no
    /// per-link state: no per-link queues or overrides. Cap each node's access bandwidth by putting
    /// it in its own site.
    Computed { nodes: u32, latency: PathLatency },
}

impl Shape {
    pub(crate) fn node_count(&self) -> u32 {
        match self {
            Shape::FullMesh { nodes } | Shape::Computed { nodes, .. } => *nodes,
            Shape::Sparse(adj) => adj.node_count(),
        }
    }

    pub(crate) fn link_slots(&self) -> usize {
        match self {
            Shape::FullMesh { nodes } => *nodes as usize * *nodes as usize,
            Shape::Sparse(adj) => adj.link_count(),
            Shape::Computed { .. } => 0,
        }
    }

    #[inline]
    pub(crate) fn link_index(&self, from: NodeId, to: NodeId) -> Option<usize> {
        match self {
            Shape::FullMesh { nodes } => (from.0 < *nodes && to.0 < *nodes && from != to)
                .then(|| from.index() * *nodes as usize + to.index()),
            Shape::Sparse(adj) => adj.link_index(from, to),
            Shape::Computed { .. } => None,
        }
    }

    /// The endpoints of link index `i`.
    pub(crate) fn endpoints(&self) -> Box<dyn Iterator<Item = (usize, NodeId, NodeId)> + '_> {
        match self {
            Shape::FullMesh { nodes } => {
                let n = *nodes;
                Box::new((0..n).flat_map(move |a| {
                    (0..n).filter(move |&b| b != a).map(move |b| {
                        ((a as usize) * n as usize + b as usize, NodeId(a), NodeId(b))
                    })
                }))
            }
            Shape::Sparse(adj) => Box::new(adj.links().enumerate().map(|(i, (a, b))| (i, a, b))),
            Shape::Computed { .. } => Box::new(std::iter::empty()),
        }
    }
}

/// The largest full mesh: 4,096 nodes are 16.8 million link slots, 400 MB of link state.
pub const FULL_MESH_NODES_MAX: u32 = 4_096;

/// The network a world is built on: shape, the default link spec, per-link overrides, and sites.
#[derive(Clone, Debug)]
pub struct Topology {
    pub(crate) shape: Shape,
    pub(crate) default_spec: LinkSpec,
    pub(crate) overrides: Vec<(NodeId, NodeId, LinkSpec)>,
    pub(crate) site_of: Vec<u32>,
    pub(crate) site_caps: Vec<Option<SiteCap>>,
}

impl Topology {
    /// `nodes` nodes, each pair linked both ways with `default_spec`.
    pub fn full_mesh(nodes: u32, default_spec: LinkSpec) -> Topology {
        Topology::with_shape(Shape::FullMesh { nodes }, default_spec)
    }

    /// A full mesh of sites: `site_sizes[s]` nodes in site `s` (ids assigned in site order),
    /// `lan` between nodes of one site and `wan` between sites. Cap a site's aggregate outgoing
    /// bandwidth with [`Topology::set_site_cap`] (paper 004's 10 Mbps per site).
    pub fn full_mesh_sites(site_sizes: &[u32], lan: LinkSpec, wan: LinkSpec) -> Topology {
        let nodes: u32 = site_sizes.iter().sum();
        let mut topology = Topology::full_mesh(nodes, wan);
        let mut site_of = Vec::with_capacity(nodes as usize);
        for (site, &size) in site_sizes.iter().enumerate() {
            site_of.extend(std::iter::repeat_n(site as u32, size as usize));
        }
        for a in 0..nodes {
            for b in 0..nodes {
                if a != b && site_of[a as usize] == site_of[b as usize] {
                    topology.overrides.push((NodeId(a), NodeId(b), lan));
                }
            }
        }
        topology.site_of = site_of;
        topology
    }

    /// `nodes` nodes that can all reach each other, one-way latency `latency(from, to)` per
    /// packet; loss, duplication and jitter from `spec` (its bandwidth and buffer are not used:
    /// there is no per-link state). For 100,000-node overlays on a coordinate model; give each
    /// node its own site with a [`SiteCap`] to model access-link bandwidth.
    pub fn computed(nodes: u32, spec: LinkSpec, latency: LatencyFn) -> Topology {
        Topology::with_shape(
            Shape::Computed {
                nodes,
                latency: PathLatency(latency),
            },
            spec,
        )
    }

    /// The site of `node` (0 when sites are not used).
    pub fn site_of(&self, node: NodeId) -> u32 {
        self.site_of.get(node.index()).copied().unwrap_or(0)
    }

    /// Only the links of `adjacency`, each with `default_spec`.
    pub fn sparse(adjacency: Arc<Adjacency>, default_spec: LinkSpec) -> Topology {
        Topology::with_shape(Shape::Sparse(adjacency), default_spec)
    }

    fn with_shape(shape: Shape, default_spec: LinkSpec) -> Topology {
        Topology {
            shape,
            default_spec,
            overrides: Vec::new(),
            site_of: Vec::new(),
            site_caps: Vec::new(),
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> u32 {
        self.shape.node_count()
    }

    /// Give link `from -> to` its own spec.
    pub fn set_link(
        &mut self,
        from: NodeId,
        to: NodeId,
        spec: LinkSpec,
    ) -> Result<&mut Self, TopologyError> {
        self.check_link(from, to)?;
        self.overrides.push((from, to, spec));
        Ok(self)
    }

    /// Give both directions between `a` and `b` this spec.
    pub fn set_link_pair(
        &mut self,
        a: NodeId,
        b: NodeId,
        spec: LinkSpec,
    ) -> Result<&mut Self, TopologyError> {
        self.set_link(a, b, spec)?;
        self.set_link(b, a, spec)
    }

    /// Put `node` in site `site` (sites are small integers; unassigned nodes are in site 0).
    pub fn assign_site(&mut self, node: NodeId, site: u32) -> Result<&mut Self, TopologyError> {
        self.check_node(node)?;
        if self.site_of.is_empty() {
            self.site_of = vec![0; self.node_count() as usize];
        }
        self.site_of[node.index()] = site;
        Ok(self)
    }

    /// Cap the aggregate outgoing bandwidth of `site`: every packet from a node of the site to a
    /// node of another site passes through this shared serializer before its own link's.
    pub fn set_site_cap(&mut self, site: u32, cap: SiteCap) -> &mut Self {
        if self.site_caps.len() <= site as usize {
            self.site_caps.resize(site as usize + 1, None);
        }
        self.site_caps[site as usize] = Some(cap);
        self
    }

    pub(crate) fn check_node(&self, node: NodeId) -> Result<(), TopologyError> {
        let nodes = self.node_count();
        if node.0 >= nodes {
            return Err(TopologyError::UnknownNode { node, nodes });
        }
        Ok(())
    }

    fn check_link(&self, from: NodeId, to: NodeId) -> Result<(), TopologyError> {
        self.check_node(from)?;
        self.check_node(to)?;
        self.shape
            .link_index(from, to)
            .map(|_| ())
            .ok_or(TopologyError::NoSuchLink { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacency_rows_are_sorted_and_deduplicated() {
        let adj = Adjacency::from_edges(
            4,
            [
                (NodeId(0), NodeId(2)),
                (NodeId(0), NodeId(1)),
                (NodeId(0), NodeId(2)),
                (NodeId(3), NodeId(3)),
            ],
        )
        .expect("valid");
        assert_eq!(adj.neighbours(NodeId(0)), &[NodeId(1), NodeId(2)]);
        assert!(adj.neighbours(NodeId(3)).is_empty(), "self-loop dropped");
        assert_eq!(adj.link_index(NodeId(0), NodeId(2)), Some(1));
        assert_eq!(adj.link_index(NodeId(1), NodeId(0)), None);
        assert!(Adjacency::from_edges(2, [(NodeId(0), NodeId(5))]).is_err());
    }

    #[test]
    fn random_out_has_exact_degree_and_no_self_links() {
        let adj = Adjacency::random_out(100, 16, 3).expect("valid");
        for n in 0..100 {
            let row = adj.neighbours(NodeId(n));
            assert_eq!(row.len(), 16);
            assert!(!row.contains(&NodeId(n)));
            assert!(row.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(
            adj,
            Adjacency::random_out(100, 16, 3).expect("valid"),
            "seeded"
        );
        assert!(Adjacency::random_out(4, 4, 1).is_err());
    }

    #[test]
    fn overrides_must_name_existing_links() {
        let adj = Arc::new(Adjacency::from_edges(3, [(NodeId(0), NodeId(1))]).expect("valid"));
        let mut t = Topology::sparse(adj, LinkSpec::ideal(Duration::from_millis(1)));
        assert!(t
            .set_link(NodeId(0), NodeId(1), LinkSpec::ideal(Duration::ZERO))
            .is_ok());
        assert_eq!(
            t.set_link(NodeId(1), NodeId(0), LinkSpec::ideal(Duration::ZERO))
                .err(),
            Some(TopologyError::NoSuchLink {
                from: NodeId(1),
                to: NodeId(0)
            })
        );
        assert!(t.assign_site(NodeId(9), 1).is_err());
    }
}
