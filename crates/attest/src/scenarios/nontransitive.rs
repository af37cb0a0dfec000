//! `la-nontransitive`: A reaches B and B reaches C, but A cannot reach C (paper 000, section
//! "Flat: structured routing overlays": non-transitive connectivity). LA-groups still give all
//! three one view, and the attestation graph routes A to C through B.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{
    Adjacency, LinkSpec, RunOptions, Scenario, ScenarioError, ScenarioOutcome, Topology,
};

use super::{create_group, finish, group_world, join_all, views_are};
use crate::group::{GroupConfig, GroupRequest};
use crate::monitor::LivenessMonitor;

/// The scenario.
pub struct NonTransitiveScenario;

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const C: NodeId = NodeId(2);

impl Scenario for NonTransitiveScenario {
    fn name(&self) -> &'static str {
        "la-nontransitive"
    }

    fn description(&self) -> &'static str {
        "LA-groups: A-B and B-C connected, A-C not; one view, and A routes to C through B [--latency-ms 50]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["latency-ms"])?;
        let latency_ms = options.u64_arg("latency-ms", 50)?;
        let adjacency = Adjacency::from_edges(3, [(A, B), (B, A), (B, C), (C, B)])
            .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let spec = LinkSpec::wan(Duration::from_millis(latency_ms), 10_000_000);
        let topology = Topology::sparse(Arc::new(adjacency), spec);
        let mut world = group_world(
            self.name(),
            options.seed,
            &format!(" --latency-ms {latency_ms}"),
            topology,
            GroupConfig::default(),
        )?;
        let outcome = (|| {
            let group = create_group(&mut world, A)?;
            join_all(&mut world, group, &[(B, A), (C, B)])?;
            // A also tries to monitor C directly: its probes cannot arrive, so it never attests C.
            let monitor = Box::new(LivenessMonitor::new(2));
            world.request(
                A,
                GroupRequest::Monitor {
                    group,
                    node: C,
                    monitor,
                },
            );
            world
                .run_for(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(group)
        })();
        let now = world.now();
        let (headline, failure) = match outcome {
            Err(e) => (json!({}), Some(e)),
            Ok(group) => {
                let everyone = [A, B, C].into_iter().collect();
                let one_view = views_are(&world, &[A, B, C], group, &everyone);
                let graph = world.protocol(A).and_then(|p| p.graph(group, now));
                let direct = graph
                    .as_ref()
                    .is_some_and(|g| g.has_edge(A, C) || g.has_edge(C, A));
                let route = graph
                    .and_then(|g| g.shortest_path(A, C).ok().flatten())
                    .map(|p| p.nodes);
                let routed_through_b = route.as_deref() == Some(&[A, B, C][..]);
                let failure = match (one_view, direct, routed_through_b) {
                    (false, _, _) => Some("the three nodes do not share one view".to_string()),
                    (_, true, _) => Some("A and C attest each other without a link".to_string()),
                    (_, _, false) => Some(format!("A's route to C is {route:?}, not through B")),
                    _ => None,
                };
                let route_text: Vec<String> = route
                    .unwrap_or_default()
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                let headline = json!({
                    "one_view": one_view,
                    "view_size": 3,
                    "direct_attestation_a_c": direct,
                    "route_a_to_c": route_text.join(" "),
                });
                (headline, failure)
            }
        };
        finish(&world, options, headline, failure)
    }
}
