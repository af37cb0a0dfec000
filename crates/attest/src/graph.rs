//! Queries on an attestation graph: the directed graph whose edge `a -> b` says "a attests b".
//!
//! Paper 000, section "LA-groups abstraction": "LA-groups provide API support for popular
//! properties of attestation graphs (info represented as unit cost): shortest path, number of
//! vertex-disjoint paths, max flow / min cut, strongly connected subgraphs, clustering
//! coefficient." Every edge carries a cost (1 for a plain attestation, or a weight taken from the
//! attestation's info); the cost is the length in shortest-path queries and the capacity in flow
//! queries. Groups are tens of nodes, so the group-wide vertex connectivity runs one max-flow per
//! ordered pair.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::algo::{dijkstra, dinics, tarjan_scc};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use stockade_core::NodeId;
use thiserror::Error;

/// The cost of an edge built from an attestation without application info.
pub const UNIT_COST: u64 = 1;

/// Why a graph query could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GraphError {
    /// The query named a node the graph does not hold.
    #[error("node {0} is not in the attestation graph; add it or ask about a member of the view")]
    UnknownNode(NodeId),
    /// A path or cut query was asked between a node and itself.
    #[error("source and target are both {0}; a path or cut query needs two distinct nodes")]
    SameEndpoints(NodeId),
    /// A minimum vertex cut was asked between two nodes joined by a direct edge: no set of other
    /// vertices separates them.
    #[error("{from} attests {to} directly, so no vertex cut separates them")]
    Adjacent {
        /// Source of the direct edge.
        from: NodeId,
        /// Target of the direct edge.
        to: NodeId,
    },
}

/// A path and its total cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedPath {
    /// Sum of the edge costs along `nodes`.
    pub cost: u64,
    /// The nodes from source to target, both included.
    pub nodes: Vec<NodeId>,
}

/// The result of a max-flow query with edge costs as capacities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxFlow {
    /// The value of a maximum flow (equal to the capacity of `cut_edges`).
    pub value: u64,
    /// A minimum cut: the edges from `source_side` to the rest of the graph.
    pub cut_edges: Vec<(NodeId, NodeId)>,
    /// The nodes reachable from the source in the residual graph of the maximum flow.
    pub source_side: BTreeSet<NodeId>,
}

/// A directed attestation graph over [`NodeId`]s; at most one edge per ordered pair.
#[derive(Clone, Debug, Default)]
pub struct AttestationGraph {
    graph: DiGraph<NodeId, u64>,
    index: BTreeMap<NodeId, NodeIndex>,
    edges: BTreeMap<(NodeId, NodeId), EdgeIndex>,
}

impl AttestationGraph {
    /// An empty graph.
    pub fn new() -> Self {
        AttestationGraph::default()
    }

    /// A graph with every edge `(from, to, cost)` of `edges` (a later duplicate replaces the cost).
    pub fn from_edges(edges: impl IntoIterator<Item = (NodeId, NodeId, u64)>) -> Self {
        let mut g = AttestationGraph::new();
        for (from, to, cost) in edges {
            g.add_edge(from, to, cost);
        }
        g
    }

    /// Add `node` if absent.
    pub fn add_node(&mut self, node: NodeId) {
        if !self.index.contains_key(&node) {
            let ix = self.graph.add_node(node);
            self.index.insert(node, ix);
        }
    }

    /// Add the edge `from -> to` ("from attests to") with `cost`, or replace its cost. A self-loop
    /// says nothing about the graph's structure and is ignored (the node is still added).
    pub fn add_edge(&mut self, from: NodeId, to: NodeId, cost: u64) {
        self.add_node(from);
        self.add_node(to);
        if from == to {
            return;
        }
        let (a, b) = (self.index[&from], self.index[&to]);
        match self.edges.get(&(from, to)) {
            Some(&e) => self.graph[e] = cost,
            None => {
                let e = self.graph.add_edge(a, b, cost);
                self.edges.insert((from, to), e);
            }
        }
    }

    /// Whether `node` is in the graph.
    pub fn contains(&self, node: NodeId) -> bool {
        self.index.contains_key(&node)
    }

    /// Whether `from` attests `to`.
    pub fn has_edge(&self, from: NodeId, to: NodeId) -> bool {
        self.edges.contains_key(&(from, to))
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.index.keys().copied()
    }

    /// The edges `(from, to, cost)`, in `(from, to)` order.
    pub fn edges(&self) -> impl Iterator<Item = (NodeId, NodeId, u64)> + '_ {
        self.edges.iter().map(|(&(a, b), &e)| (a, b, self.graph[e]))
    }

    /// How many nodes.
    pub fn node_count(&self) -> usize {
        self.index.len()
    }

    /// The nodes `node` attests, in id order.
    pub fn successors(&self, node: NodeId) -> BTreeSet<NodeId> {
        self.neighbors(node, Direction::Outgoing)
    }

    /// The nodes that attest `node`, in id order.
    pub fn predecessors(&self, node: NodeId) -> BTreeSet<NodeId> {
        self.neighbors(node, Direction::Incoming)
    }

    fn neighbors(&self, node: NodeId, dir: Direction) -> BTreeSet<NodeId> {
        match self.index.get(&node) {
            Some(&ix) => self
                .graph
                .neighbors_directed(ix, dir)
                .map(|n| self.graph[n])
                .collect(),
            None => BTreeSet::new(),
        }
    }

    fn ix(&self, node: NodeId) -> Result<NodeIndex, GraphError> {
        self.index
            .get(&node)
            .copied()
            .ok_or(GraphError::UnknownNode(node))
    }

    fn distinct(&self, s: NodeId, t: NodeId) -> Result<(NodeIndex, NodeIndex), GraphError> {
        let pair = (self.ix(s)?, self.ix(t)?);
        if s == t {
            return Err(GraphError::SameEndpoints(s));
        }
        Ok(pair)
    }

    /// The nodes reachable from `root` along attestation edges, `root` included (paper 000, section
    /// "Views and link-state announcements": "the set of nodes reached from a node by attestation
    /// links is called its view").
    pub fn reachable_from(&self, root: NodeId) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::new();
        let Some(&start) = self.index.get(&root) else {
            return seen;
        };
        let mut queue = VecDeque::from([start]);
        seen.insert(root);
        while let Some(ix) = queue.pop_front() {
            for n in self.graph.neighbors(ix) {
                if seen.insert(self.graph[n]) {
                    queue.push_back(n);
                }
            }
        }
        seen
    }

    /// A cheapest path from `from` to `to` by edge cost (Dijkstra), or `None` if `to` is not
    /// reachable. Ties are broken towards the smaller predecessor id, so the answer is
    /// deterministic.
    pub fn shortest_path(
        &self,
        from: NodeId,
        to: NodeId,
    ) -> Result<Option<WeightedPath>, GraphError> {
        let (s, t) = (self.ix(from)?, self.ix(to)?);
        let dist = dijkstra(&self.graph, s, Some(t), |e| *e.weight());
        let Some(&cost) = dist.get(&t) else {
            return Ok(None);
        };
        // Walk back from the target along edges that are tight in the distance labels.
        let mut nodes = vec![to];
        let mut at = t;
        while at != s {
            let prev = self
                .graph
                .edges_directed(at, Direction::Incoming)
                .filter(|e| {
                    dist.get(&e.source())
                        .is_some_and(|d| d.saturating_add(*e.weight()) == dist[&at])
                })
                .map(|e| e.source())
                .filter(|p| !nodes.contains(&self.graph[*p]))
                .min_by_key(|p| self.graph[*p]);
            // Dijkstra's labels always have a tight predecessor on a simple path; stop rather
            // than loop if that ever fails (for example zero-cost cycles already on the path).
            let Some(prev) = prev else { return Ok(None) };
            nodes.push(self.graph[prev]);
            at = prev;
        }
        nodes.reverse();
        Ok(Some(WeightedPath { cost, nodes }))
    }

    /// A maximum flow from `source` to `sink` with edge costs as capacities, and a minimum cut.
    pub fn max_flow(&self, source: NodeId, sink: NodeId) -> Result<MaxFlow, GraphError> {
        let (s, t) = self.distinct(source, sink)?;
        let (value, flows) = dinics(&self.graph, s, t);
        let capacities: Vec<u64> = self.graph.edge_indices().map(|e| self.graph[e]).collect();
        let residual_side = residual_reachable(&self.graph, s, &capacities, &flows);
        let source_side: BTreeSet<NodeId> =
            residual_side.iter().map(|&ix| self.graph[ix]).collect();
        let cut_edges = self
            .edges()
            .filter(|(a, b, _)| source_side.contains(a) && !source_side.contains(b))
            .map(|(a, b, _)| (a, b))
            .collect();
        Ok(MaxFlow {
            value,
            cut_edges,
            source_side,
        })
    }

    /// The number of internally vertex-disjoint paths from `source` to `target` (a direct edge
    /// counts as one path).
    pub fn vertex_disjoint_path_count(
        &self,
        source: NodeId,
        target: NodeId,
    ) -> Result<usize, GraphError> {
        Ok(SplitNetwork::solve(self, source, target)?.value)
    }

    /// A largest set of internally vertex-disjoint paths from `source` to `target`, each listed
    /// from `source` to `target`: node splitting (each vertex becomes `in -> out` of capacity 1), a
    /// unit max-flow, then one walk per unit of flow.
    pub fn vertex_disjoint_paths(
        &self,
        source: NodeId,
        target: NodeId,
    ) -> Result<Vec<Vec<NodeId>>, GraphError> {
        let solved = SplitNetwork::solve(self, source, target)?;
        Ok(solved.paths(self))
    }

    /// A smallest set of vertices (other than `source` and `target`) whose removal leaves no path
    /// from `source` to `target`. By Menger's theorem its size equals
    /// [`vertex_disjoint_path_count`](Self::vertex_disjoint_path_count). Fails when `source`
    /// attests `target` directly, since then no vertex cut exists.
    pub fn min_vertex_cut_between(
        &self,
        source: NodeId,
        target: NodeId,
    ) -> Result<BTreeSet<NodeId>, GraphError> {
        self.distinct(source, target)?;
        if self.has_edge(source, target) {
            return Err(GraphError::Adjacent {
                from: source,
                to: target,
            });
        }
        Ok(SplitNetwork::solve(self, source, target)?.vertex_cut(self))
    }

    /// The group's minimum vertex cut: a smallest set of vertices whose removal leaves some node
    /// unable to reach another (paper 000, section "LA-groups abstraction": "quorum systems ensure
    /// fault tolerance by requiring the graph's minimum vertex cut to exceed the quorum
    /// threshold"). Its size is the graph's vertex connectivity. A graph in which every node
    /// attests every other has no vertex cut; by convention its connectivity is `n - 1` and this
    /// returns `None`.
    pub fn minimum_vertex_cut(&self) -> Option<BTreeSet<NodeId>> {
        let mut best: Option<BTreeSet<NodeId>> = None;
        for s in self.nodes() {
            for t in self.nodes() {
                if s == t || self.has_edge(s, t) {
                    continue;
                }
                // Both nodes are in the graph and distinct and not adjacent: the query cannot fail.
                let Ok(cut) = self.min_vertex_cut_between(s, t) else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| cut.len() < b.len()) {
                    let empty = cut.is_empty();
                    best = Some(cut);
                    if empty {
                        return best;
                    }
                }
            }
        }
        best
    }

    /// The vertex connectivity: how many nodes must fail before some member can no longer reach
    /// another. `n - 1` for a graph in which every node attests every other, `0` for fewer than
    /// two nodes.
    pub fn vertex_connectivity(&self) -> usize {
        match self.minimum_vertex_cut() {
            Some(cut) => cut.len(),
            None => self.node_count().saturating_sub(1),
        }
    }

    /// The strongly connected components, each in id order, sorted by their smallest member.
    pub fn strongly_connected_components(&self) -> Vec<BTreeSet<NodeId>> {
        let mut sccs: Vec<BTreeSet<NodeId>> = tarjan_scc(&self.graph)
            .into_iter()
            .map(|c| c.into_iter().map(|ix| self.graph[ix]).collect())
            .collect();
        sccs.sort_by_key(|c| c.first().copied());
        sccs
    }

    /// The local clustering coefficient of `node`: among its `k` neighbours (nodes it attests or
    /// that attest it), the fraction of the `k (k - 1)` possible directed edges present. `0` when
    /// `k < 2`.
    pub fn clustering_coefficient(&self, node: NodeId) -> Result<f64, GraphError> {
        self.ix(node)?;
        let mut around = self.successors(node);
        around.extend(self.predecessors(node));
        let k = around.len();
        if k < 2 {
            return Ok(0.0);
        }
        let linked = around
            .iter()
            .flat_map(|&a| around.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| self.has_edge(a, b))
            .count();
        Ok(linked as f64 / (k * (k - 1)) as f64)
    }

    /// The mean of the local clustering coefficients over all nodes (`0` for an empty graph).
    pub fn average_clustering_coefficient(&self) -> f64 {
        if self.node_count() == 0 {
            return 0.0;
        }
        let sum: f64 = self
            .nodes()
            .filter_map(|n| self.clustering_coefficient(n).ok())
            .sum();
        sum / self.node_count() as f64
    }
}

/// Nodes reachable from `from` in the residual graph of `flows` (forward edges with spare
/// capacity, backward edges carrying flow).
fn residual_reachable<N>(
    graph: &DiGraph<N, u64>,
    from: NodeIndex,
    capacities: &[u64],
    flows: &[u64],
) -> BTreeSet<NodeIndex> {
    let mut seen = BTreeSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(ix) = queue.pop_front() {
        let forward = graph
            .edges_directed(ix, Direction::Outgoing)
            .filter(|e| flows[e.id().index()] < capacities[e.id().index()])
            .map(|e| e.target());
        let backward = graph
            .edges_directed(ix, Direction::Incoming)
            .filter(|e| flows[e.id().index()] > 0)
            .map(|e| e.source());
        let next: Vec<NodeIndex> = forward.chain(backward).collect();
        for n in next {
            if seen.insert(n) {
                queue.push_back(n);
            }
        }
    }
    seen
}

/// The node-split unit network for vertex-disjoint path queries, with its maximum flow.
///
/// Node `i` of the attestation graph becomes `in(i) = 2i` and `out(i) = 2i + 1`, joined by an edge
/// of capacity 1; the flow runs from `out(source)` to `in(target)`. Each attestation edge `a -> b`
/// becomes `out(a) -> in(b)` of capacity `n`, more than any cut through vertices, so a minimum cut
/// between non-adjacent endpoints crosses only `in -> out` edges: it is a vertex cut. The one
/// exception is a direct edge from source to target, of capacity 1: it is one path, not `n`.
/// Edges into the source or out of the target carry no useful flow and are left out, which also
/// keeps every flow walk simple. Every flow is 0 or 1 on every edge, since each unit passes
/// through a capacity-1 vertex edge or the capacity-1 direct edge.
struct SplitNetwork {
    network: DiGraph<(), u64>,
    flows: Vec<u64>,
    value: usize,
    source: NodeIndex,
    target: NodeIndex,
}

impl SplitNetwork {
    fn solve(
        g: &AttestationGraph,
        source: NodeId,
        target: NodeId,
    ) -> Result<SplitNetwork, GraphError> {
        let (s, t) = g.distinct(source, target)?;
        let n = g.graph.node_count();
        let mut network: DiGraph<(), u64> = DiGraph::with_capacity(2 * n, n + g.graph.edge_count());
        for _ in 0..2 * n {
            network.add_node(());
        }
        let split_in = |ix: NodeIndex| NodeIndex::new(2 * ix.index());
        let split_out = |ix: NodeIndex| NodeIndex::new(2 * ix.index() + 1);
        for ix in g.graph.node_indices() {
            network.add_edge(split_in(ix), split_out(ix), 1);
        }
        for e in g.graph.edge_references() {
            if e.target() == s || e.source() == t {
                continue;
            }
            let direct = e.source() == s && e.target() == t;
            let capacity = if direct { 1 } else { n as u64 };
            network.add_edge(split_out(e.source()), split_in(e.target()), capacity);
        }
        let (source_ix, target_ix) = (split_out(s), split_in(t));
        let (value, flows) = dinics(&network, source_ix, target_ix);
        Ok(SplitNetwork {
            network,
            flows,
            value: value as usize,
            source: source_ix,
            target: target_ix,
        })
    }

    fn original(ix: NodeIndex) -> NodeIndex {
        NodeIndex::new(ix.index() / 2)
    }

    /// One walk from the source per unit of flow, consuming the flow as it goes.
    fn paths(mut self, g: &AttestationGraph) -> Vec<Vec<NodeId>> {
        let steps_max = self.network.node_count();
        let mut paths = Vec::with_capacity(self.value);
        for _ in 0..self.value {
            let mut path = vec![g.graph[Self::original(self.source)]];
            let mut at = self.source;
            for _ in 0..steps_max {
                if at == self.target {
                    break;
                }
                let next = self
                    .network
                    .edges_directed(at, Direction::Outgoing)
                    .find(|e| self.flows[e.id().index()] > 0)
                    .map(|e| (e.id(), e.target()));
                let Some((edge, to)) = next else { break };
                self.flows[edge.index()] -= 1;
                // Crossing into an `in` half is a step in the original graph; the `in -> out`
                // edge inside one vertex is not.
                if to.index() % 2 == 0 {
                    path.push(g.graph[Self::original(to)]);
                }
                at = to;
            }
            debug_assert_eq!(at, self.target, "a unit of flow always reaches the target");
            paths.push(path);
        }
        paths
    }

    /// The vertices whose `in -> out` edge crosses the minimum cut.
    fn vertex_cut(&self, g: &AttestationGraph) -> BTreeSet<NodeId> {
        let capacities: Vec<u64> = self
            .network
            .edge_indices()
            .map(|e| self.network[e])
            .collect();
        let side = residual_reachable(&self.network, self.source, &capacities, &self.flows);
        g.graph
            .node_indices()
            .filter(|ix| side.contains(&NodeIndex::new(2 * ix.index())))
            .filter(|ix| !side.contains(&NodeIndex::new(2 * ix.index() + 1)))
            .map(|ix| g.graph[ix])
            .collect()
    }
}

#[cfg(test)]
mod tests;
