//! Graph queries checked against small graphs worked by hand, and Menger's theorem as a property.

use super::*;
use crate::test_graphs::{n, path, set, unit};
use proptest::prelude::*;

/// 1 -> 2 -> 4, 1 -> 3 -> 4, and a chord 2 -> 3.
fn diamond() -> AttestationGraph {
    unit(&[(1, 2), (1, 3), (2, 4), (3, 4), (2, 3)])
}

/// The max-flow network of CLRS figure 26.6 (nodes 0..=5, capacities as costs).
fn clrs() -> AttestationGraph {
    AttestationGraph::from_edges(
        [
            (0, 1, 16),
            (0, 2, 13),
            (1, 2, 10),
            (1, 3, 12),
            (2, 1, 4),
            (2, 4, 14),
            (3, 2, 9),
            (3, 5, 20),
            (4, 3, 7),
            (4, 5, 4),
        ]
        .into_iter()
        .map(|(a, b, c)| (n(a), n(b), c)),
    )
}

/// Every node attests both ring neighbours.
fn bidirectional_ring(size: u32) -> AttestationGraph {
    let edges: Vec<(u32, u32)> = (0..size)
        .flat_map(|i| [(i, (i + 1) % size), ((i + 1) % size, i)])
        .collect();
    unit(&edges)
}

#[test]
fn shortest_path_unit_costs_breaks_ties_towards_smaller_ids() {
    let got = diamond().shortest_path(n(1), n(4)).expect("known nodes");
    // 1-2-4 and 1-3-4 both cost 2; the predecessor of 4 with the smaller id wins.
    assert_eq!(
        got,
        Some(WeightedPath {
            cost: 2,
            nodes: path(&[1, 2, 4])
        })
    );
    assert_eq!(
        diamond().shortest_path(n(4), n(1)),
        Ok(None),
        "no edge leaves 4"
    );
    assert_eq!(
        diamond().shortest_path(n(1), n(1)),
        Ok(Some(WeightedPath {
            cost: 0,
            nodes: path(&[1])
        }))
    );
}

#[test]
fn shortest_path_weighted() {
    // 0-2-4-5 costs 13 + 14 + 4 = 31; 0-1-3-5 costs 48; 0-1-2-4-5 costs 44.
    let got = clrs().shortest_path(n(0), n(5)).expect("known nodes");
    assert_eq!(
        got,
        Some(WeightedPath {
            cost: 31,
            nodes: path(&[0, 2, 4, 5])
        })
    );
}

#[test]
fn max_flow_and_min_cut_clrs() {
    let flow = clrs().max_flow(n(0), n(5)).expect("distinct known nodes");
    assert_eq!(flow.value, 23);
    // Cut {0,1,2,4} | {3,5}: 12 + 7 + 4 = 23; every smaller source side costs more
    // ({0,1,2}: 26, {0}: 29).
    assert_eq!(flow.source_side, set(&[0, 1, 2, 4]));
    assert_eq!(
        flow.cut_edges,
        vec![(n(1), n(3)), (n(4), n(3)), (n(4), n(5))]
    );
}

#[test]
fn disjoint_paths_diamond() {
    let g = diamond();
    assert_eq!(g.vertex_disjoint_path_count(n(1), n(4)), Ok(2));
    let mut paths = g.vertex_disjoint_paths(n(1), n(4)).expect("known nodes");
    paths.sort();
    assert_eq!(paths, vec![path(&[1, 2, 4]), path(&[1, 3, 4])]);
    assert_eq!(g.min_vertex_cut_between(n(1), n(4)), Ok(set(&[2, 3])));
}

#[test]
fn disjoint_paths_escape_the_greedy_trap() {
    // The shortest path 0-1-2-5 would block 0-3-2; the two disjoint paths are 0-1-4-5, 0-3-2-5.
    let g = unit(&[(0, 1), (1, 2), (2, 5), (0, 3), (3, 2), (1, 4), (4, 5)]);
    let mut paths = g.vertex_disjoint_paths(n(0), n(5)).expect("known nodes");
    paths.sort();
    assert_eq!(paths, vec![path(&[0, 1, 4, 5]), path(&[0, 3, 2, 5])]);
    // Cuts {1,3}, {1,2} and {2,4} all have size 2; the one nearest the source is {1,3}.
    assert_eq!(g.min_vertex_cut_between(n(0), n(5)), Ok(set(&[1, 3])));
}

#[test]
fn direct_edge_is_one_path_and_has_no_vertex_cut() {
    let g = unit(&[(0, 1), (0, 2), (2, 1)]);
    let mut paths = g.vertex_disjoint_paths(n(0), n(1)).expect("known nodes");
    paths.sort();
    assert_eq!(paths, vec![path(&[0, 1]), path(&[0, 2, 1])]);
    assert_eq!(
        g.min_vertex_cut_between(n(0), n(1)),
        Err(GraphError::Adjacent {
            from: n(0),
            to: n(1)
        })
    );
}

#[test]
fn queries_name_unknown_and_equal_endpoints() {
    let g = diamond();
    assert_eq!(
        g.shortest_path(n(1), n(9)),
        Err(GraphError::UnknownNode(n(9)))
    );
    assert_eq!(
        g.vertex_disjoint_path_count(n(2), n(2)),
        Err(GraphError::SameEndpoints(n(2)))
    );
    assert_eq!(
        g.max_flow(n(7), n(1)).map(|f| f.value),
        Err(GraphError::UnknownNode(n(7)))
    );
    assert_eq!(
        g.clustering_coefficient(n(9)),
        Err(GraphError::UnknownNode(n(9)))
    );
}

#[test]
fn vertex_connectivity_by_hand() {
    // A bidirectional ring of 5: removing any two non-neighbouring nodes splits it.
    let ring = bidirectional_ring(5);
    assert_eq!(ring.vertex_connectivity(), 2);
    let cut = ring.minimum_vertex_cut().expect("a ring has a vertex cut");
    // The first non-adjacent pair in id order is (0, 2); its cut nearest 0 is 0's two neighbours.
    assert_eq!(cut, set(&[1, 4]));
    // The complete directed graph on 4 nodes has no vertex cut; connectivity is n - 1.
    let complete = unit(&[
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 0),
        (1, 2),
        (1, 3),
        (2, 0),
        (2, 1),
        (2, 3),
        (3, 0),
        (3, 1),
        (3, 2),
    ]);
    assert_eq!(complete.minimum_vertex_cut(), None);
    assert_eq!(complete.vertex_connectivity(), 3);
    // Not strongly connected: 4 reaches nobody, so nothing needs to fail.
    assert_eq!(diamond().minimum_vertex_cut(), Some(BTreeSet::new()));
    assert_eq!(diamond().vertex_connectivity(), 0);
}

#[test]
fn strongly_connected_components_by_hand() {
    let mut g = unit(&[(1, 2), (2, 1), (2, 3), (3, 4), (4, 3)]);
    g.add_node(n(5));
    assert_eq!(
        g.strongly_connected_components(),
        vec![set(&[1, 2]), set(&[3, 4]), set(&[5])]
    );
    assert_eq!(g.reachable_from(n(1)), set(&[1, 2, 3, 4]));
    assert_eq!(g.reachable_from(n(3)), set(&[3, 4]));
}

#[test]
fn clustering_coefficient_by_hand() {
    let g = diamond();
    // Node 2: neighbours {1, 3, 4}; among them 1->3 and 3->4: 2 of 6.
    assert_eq!(g.clustering_coefficient(n(2)), Ok(2.0 / 6.0));
    // Node 1: neighbours {2, 3}; 2->3: 1 of 2.
    assert_eq!(g.clustering_coefficient(n(1)), Ok(0.5));
    assert_eq!(g.clustering_coefficient(n(3)), Ok(2.0 / 6.0));
    assert_eq!(g.clustering_coefficient(n(4)), Ok(0.5));
    let mean = g.average_clustering_coefficient();
    assert!((mean - 5.0 / 12.0).abs() < 1e-12, "mean {mean}");
    // A node with one neighbour has coefficient 0.
    assert_eq!(unit(&[(0, 1)]).clustering_coefficient(n(0)), Ok(0.0));
}

#[test]
fn adding_an_edge_twice_replaces_its_cost() {
    let mut g = unit(&[(0, 1)]);
    g.add_edge(n(0), n(1), 7);
    g.add_edge(n(2), n(2), 1);
    assert_eq!(g.edges().collect::<Vec<_>>(), vec![(n(0), n(1), 7)]);
    assert!(g.contains(n(2)), "a self-loop still adds its node");
}

fn arbitrary_graph() -> impl Strategy<Value = (AttestationGraph, NodeId, NodeId)> {
    (3u32..9)
        .prop_flat_map(|size| {
            let edges = proptest::collection::vec((0..size, 0..size), 0..(size * size) as usize);
            (Just(size), edges, 0..size, 0..size)
        })
        .prop_filter("distinct endpoints", |(_, _, s, t)| s != t)
        .prop_map(|(size, edges, s, t)| {
            let mut g = unit(&edges);
            for i in 0..size {
                g.add_node(n(i));
            }
            (g, n(s), n(t))
        })
}

fn without(g: &AttestationGraph, removed: &BTreeSet<NodeId>) -> AttestationGraph {
    let mut out = AttestationGraph::from_edges(
        g.edges()
            .filter(|(a, b, _)| !removed.contains(a) && !removed.contains(b)),
    );
    for v in g.nodes().filter(|v| !removed.contains(v)) {
        out.add_node(v);
    }
    out
}

proptest! {
    #[test]
    fn disjoint_paths_are_paths_and_disjoint((g, s, t) in arbitrary_graph()) {
        let paths = g.vertex_disjoint_paths(s, t).expect("known distinct nodes");
        prop_assert_eq!(paths.len(), g.vertex_disjoint_path_count(s, t).expect("same query"));
        let mut used = BTreeSet::new();
        for p in &paths {
            prop_assert_eq!(p.first(), Some(&s));
            prop_assert_eq!(p.last(), Some(&t));
            for pair in p.windows(2) {
                prop_assert!(g.has_edge(pair[0], pair[1]), "{:?} is not an edge", pair);
            }
            let inner: BTreeSet<NodeId> = p[1..p.len() - 1].iter().copied().collect();
            prop_assert_eq!(inner.len(), p.len() - 2, "path {:?} repeats a node", p);
            prop_assert!(!inner.contains(&s) && !inner.contains(&t));
            prop_assert!(used.is_disjoint(&inner), "path {:?} shares a vertex", p);
            used.extend(inner);
        }
        prop_assert!(paths.iter().filter(|p| p.len() == 2).count() <= 1);
    }

    #[test]
    fn menger_min_vertex_cut_equals_disjoint_paths((g, s, t) in arbitrary_graph()) {
        prop_assume!(!g.has_edge(s, t));
        let cut = g.min_vertex_cut_between(s, t).expect("non-adjacent");
        prop_assert_eq!(cut.len(), g.vertex_disjoint_path_count(s, t).expect("known"));
        prop_assert!(!cut.contains(&s) && !cut.contains(&t));
        prop_assert!(!without(&g, &cut).reachable_from(s).contains(&t), "cut {:?} does not separate", cut);
    }

    #[test]
    fn max_flow_equals_its_cut((g, s, t) in arbitrary_graph()) {
        let flow = g.max_flow(s, t).expect("known distinct nodes");
        let cut_capacity: u64 = g.edges()
            .filter(|(a, b, _)| flow.cut_edges.contains(&(*a, *b)))
            .map(|(_, _, c)| c)
            .sum();
        prop_assert_eq!(flow.value, cut_capacity);
        prop_assert_eq!(flow.value > 0, g.reachable_from(s).contains(&t));
    }

    #[test]
    fn group_cut_disconnects_and_is_no_larger_than_any_pair((g, _s, _t) in arbitrary_graph()) {
        if let Some(cut) = g.minimum_vertex_cut() {
            let rest = without(&g, &cut);
            let strongly_connected = rest.strongly_connected_components().len() <= 1;
            prop_assert!(!strongly_connected, "removing {:?} leaves a strongly connected graph", cut);
            prop_assert_eq!(cut.len(), g.vertex_connectivity());
        }
    }
}
