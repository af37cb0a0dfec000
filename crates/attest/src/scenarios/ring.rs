//! `la-ring` and `la-mincut`: the application shapes of paper 000, section "Flat: structured
//! routing overlays" (staggered groups along a ring, in place of successor lists) and section
//! "LA-groups for robust storage" (tune replication to the group's minimum vertex cut).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{Adjacency, RunOptions, Scenario, ScenarioError, ScenarioOutcome, Topology};

use super::{chain_joins, create_group, finish, group_world, join_all, scenario_link};
use crate::group::{GroupConfig, GroupRequest};
use crate::monitor::LivenessMonitor;

/// Staggered groups on a ring: node `i` creates a group that the next `span` nodes join, so each
/// node belongs to `span + 1` overlapping groups. Links between nodes two apart are cut (a
/// non-transitive network); every group must still be strongly connected and overlap its
/// neighbour.
pub struct RingScenario;

impl Scenario for RingScenario {
    fn name(&self) -> &'static str {
        "la-ring"
    }

    fn description(&self) -> &'static str {
        "LA-groups: staggered groups along a ring with non-transitive links; every group strongly \
         connected, neighbours overlapping [--nodes 16 --span 4]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["nodes", "span"])?;
        let nodes = options.u64_arg("nodes", 16)?;
        let span = options.u64_arg("span", 4)?;
        // Each node is in span + 1 groups, within the default groups_max of 16.
        if !(2..=14).contains(&span) || nodes <= span + 1 || nodes > 256 {
            return Err(ScenarioError::OutOfRange {
                name: "nodes / span".into(),
                reason: "--span between 2 and 14, --nodes above span + 1 and at most 256".into(),
            });
        }
        let (count, span) = (nodes as u32, span as u32);
        let at = |i: u32| NodeId(i % count);
        let edges = (0..count).flat_map(|i| {
            (1..count)
                .filter(|&d| d != 2 && d != count - 2)
                .map(move |d| (NodeId(i), NodeId((i + d) % count)))
        });
        let adjacency =
            Adjacency::from_edges(count, edges).map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let topology = Topology::sparse(Arc::new(adjacency), scenario_link());
        let repro_args = format!(" --nodes {nodes} --span {span}");
        let mut world = group_world(
            self.name(),
            options.seed,
            &repro_args,
            topology,
            GroupConfig::default(),
        )?;
        let mut groups = Vec::with_capacity(count as usize);
        for i in 0..count {
            let made = create_group(&mut world, at(i)).and_then(|group| {
                let chain: Vec<(NodeId, NodeId)> =
                    (1..=span).map(|d| (at(i + d), at(i + d - 1))).collect();
                join_all(&mut world, group, &chain).map(|()| group)
            });
            match made {
                Ok(group) => groups.push(group),
                Err(e) => return finish(&world, options, json!({}), Some(e)),
            }
        }
        let now = world.now();
        let mut strongly_connected = 0;
        let mut overlap_min = usize::MAX;
        let mut previous: Option<BTreeSet<NodeId>> = None;
        for (i, &group) in groups.iter().enumerate() {
            let graph = world
                .protocol(at(i as u32))
                .and_then(|p| p.graph(group, now));
            let view: BTreeSet<NodeId> = graph
                .as_ref()
                .map(|g| g.nodes().collect())
                .unwrap_or_default();
            if graph.is_some_and(|g| {
                g.strongly_connected_components().len() == 1 && view.len() == span as usize + 1
            }) {
                strongly_connected += 1;
            }
            if let Some(prev) = &previous {
                overlap_min = overlap_min.min(prev.intersection(&view).count());
            }
            previous = Some(view);
        }
        let failure = if strongly_connected != groups.len() {
            Some(format!(
                "only {strongly_connected} of {} groups are strongly connected",
                groups.len()
            ))
        } else if overlap_min == 0 {
            Some("two neighbouring groups share no node".to_string())
        } else {
            None
        };
        let headline = json!({
            "nodes": nodes,
            "span": span,
            "groups": groups.len(),
            "strongly_connected_groups": strongly_connected,
            "neighbour_overlap_min": overlap_min,
        });
        finish(&world, options, headline, failure)
    }
}

/// Two clusters of four fully linked nodes joined by two bridges (3-4 and 0-7). Every member
/// monitors every other, so attestations appear exactly where links work; the group's minimum
/// vertex cut, read from the attestation graph, must have the two bridges' size: a storage layer
/// that needs its replicas reachable from every member knows it survives one failure, not two, and
/// replicates on both sides of the cut.
pub struct MinCutScenario;

impl Scenario for MinCutScenario {
    fn name(&self) -> &'static str {
        "la-mincut"
    }

    fn description(&self) -> &'static str {
        "LA-groups: two clusters joined by two bridges; the minimum vertex cut read from the \
         attestation graph matches the network's"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&[])?;
        let clusters = [[0u32, 1, 2, 3], [4, 5, 6, 7]];
        let mut edges: Vec<(NodeId, NodeId)> = Vec::new();
        for cluster in clusters {
            for a in cluster {
                edges.extend(
                    cluster
                        .iter()
                        .filter(|&&b| b != a)
                        .map(|&b| (NodeId(a), NodeId(b))),
                );
            }
        }
        for (a, b) in [(3, 4), (0, 7)] {
            edges.extend([(NodeId(a), NodeId(b)), (NodeId(b), NodeId(a))]);
        }
        let adjacency =
            Adjacency::from_edges(8, edges).map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let topology = Topology::sparse(Arc::new(adjacency), scenario_link());
        let mut world = group_world(
            self.name(),
            options.seed,
            "",
            topology,
            GroupConfig::default(),
        )?;
        let ids: Vec<NodeId> = (0..8).map(NodeId).collect();
        let run = (|| {
            let group = create_group(&mut world, NodeId(0))?;
            let chain = chain_joins(8);
            join_all(&mut world, group, &chain)?;
            for &a in &ids {
                for &b in ids.iter().filter(|&&b| b != a) {
                    let monitor = Box::new(LivenessMonitor::new(2));
                    world.request(
                        a,
                        GroupRequest::Monitor {
                            group,
                            node: b,
                            monitor,
                        },
                    );
                }
            }
            world
                .run_for(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(group)
        })();
        let group = match run {
            Ok(group) => group,
            Err(e) => return finish(&world, options, json!({}), Some(e)),
        };
        let graph = world
            .protocol(NodeId(0))
            .and_then(|p| p.graph(group, world.now()));
        let (connectivity, cut) = graph
            .map(|g| {
                (
                    g.vertex_connectivity(),
                    g.minimum_vertex_cut().unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        let cut_names: Vec<String> = cut.iter().map(|n| n.to_string()).collect();
        let failure = (connectivity != 2 || cut.len() != 2).then(|| {
            format!("expected a minimum vertex cut of 2 bridge ends, found {cut_names:?}")
        });
        let headline = json!({
            "members": ids.len(),
            "vertex_connectivity": connectivity,
            "minimum_vertex_cut": cut_names.join(" "),
            "failures_tolerated": connectivity.saturating_sub(1),
        });
        finish(&world, options, headline, failure)
    }
}
