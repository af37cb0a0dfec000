//! `la-convergence`: how long a change takes to reach every view, against the paper's bounds
//! (section "Views and link-state announcements"). Members form a chain of links, so the diameter
//! is `members - 1` hops. A node joins at the far end: every view should hold it within about
//! `(diameter + 2) x (latency + announce delay)`. Then it crashes: its neighbour's liveness monitor
//! withdraws, and every view should drop it within the probe misses plus one validity period
//! (`T_a`) plus a sweep.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stockade_core::{NodeId, Time};
use stockade_sim::{
    Adjacency, LinkSpec, RunOptions, Scenario, ScenarioError, ScenarioOutcome, Topology, World,
};

use super::{chain_joins, create_group, finish, group_world, join_all, view_of};
use crate::attestation::GroupId;
use crate::group::{GroupConfig, GroupRequest, LaGroups};
use crate::monitor::LivenessMonitor;

/// The scenario.
pub struct ConvergenceScenario;

/// Consecutive missed probes before the neighbour withdraws.
const MISSES_MAX: u32 = 2;

/// Run until every one of `members` sees `node` in its view (`present`) or not, for at most `limit`;
/// returns when that first held.
fn run_until_views(
    world: &mut World<LaGroups>,
    group: GroupId,
    members: &[NodeId],
    node: NodeId,
    present: bool,
    limit: Duration,
) -> Result<Option<Time>, String> {
    let step = Duration::from_millis(5);
    let deadline = world.now() + limit;
    while world.now() < deadline {
        let now = world.now();
        if members
            .iter()
            .all(|&m| view_of(world, m, group, now).contains(&node) == present)
        {
            return Ok(Some(now));
        }
        world.run_for(step).map_err(|e| e.to_string())?;
    }
    Ok(None)
}

impl Scenario for ConvergenceScenario {
    fn name(&self) -> &'static str {
        "la-convergence"
    }

    fn description(&self) -> &'static str {
        "LA-groups: view convergence after a join and after a crash, against diameter x link latency \
         and the attestation validity [--members 8 --latency-ms 20 --validity-s 10]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["members", "latency-ms", "validity-s"])?;
        let members = options.u64_arg("members", 8)?;
        let latency_ms = options.u64_arg("latency-ms", 20)?;
        let validity_s = options.u64_arg("validity-s", 10)?;
        if !(2..=64).contains(&members) || validity_s < 3 {
            return Err(ScenarioError::OutOfRange {
                name: "members / validity-s".into(),
                reason: "--members between 2 and 64, --validity-s at least 3".into(),
            });
        }
        let count = members as u32;
        let joiner = NodeId(count);
        let edges =
            (0..count).flat_map(|i| [(NodeId(i), NodeId(i + 1)), (NodeId(i + 1), NodeId(i))]);
        let adjacency = Adjacency::from_edges(count + 1, edges)
            .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let latency = Duration::from_millis(latency_ms);
        let topology = Topology::sparse(Arc::new(adjacency), LinkSpec::wan(latency, 10_000_000));
        let validity = Duration::from_secs(validity_s);
        let config = GroupConfig {
            attestation_validity: validity,
            refresh_interval: validity / 3,
            ..GroupConfig::default()
        };
        let repro_args =
            format!(" --members {members} --latency-ms {latency_ms} --validity-s {validity_s}");
        let mut world = group_world(
            self.name(),
            options.seed,
            &repro_args,
            topology,
            config.clone(),
        )?;
        let ids: Vec<NodeId> = (0..count).map(NodeId).collect();
        let diameter = count - 1;
        let hop = latency + config.announce_delay;
        let join_bound = hop * (diameter + 2);
        let failure_bound = config.probe_interval * (MISSES_MAX + 1)
            + validity
            + config.sweep_interval
            + hop * (diameter + 1);
        let run = (|| {
            let group = create_group(&mut world, NodeId(0))?;
            let chain = chain_joins(count);
            join_all(&mut world, group, &chain)?;
            let joined_at = world.now();
            world.request(
                joiner,
                GroupRequest::Join {
                    group,
                    contacts: vec![NodeId(count - 1)],
                },
            );
            let seen = run_until_views(&mut world, group, &ids, joiner, true, join_bound * 4)?
                .ok_or("the joiner never reached every view")?;
            let monitor = Box::new(LivenessMonitor::new(MISSES_MAX));
            world.request(
                NodeId(count - 1),
                GroupRequest::Monitor {
                    group,
                    node: joiner,
                    monitor,
                },
            );
            world
                .run_for(Duration::from_secs(2))
                .map_err(|e| e.to_string())?;
            world.crash(joiner).map_err(|e| e.to_string())?;
            let crashed_at = world.now();
            let gone = run_until_views(&mut world, group, &ids, joiner, false, failure_bound * 2)?
                .ok_or("the crashed node never left every view")?;
            Ok::<_, String>((seen - joined_at, gone - crashed_at))
        })();
        let (join_took, failure_took) = match run {
            Ok(times) => times,
            Err(e) => return finish(&world, options, json!({}), Some(e)),
        };
        let failure = if join_took > join_bound {
            Some(format!(
                "join took {join_took:?}, over the bound {join_bound:?}"
            ))
        } else if failure_took > failure_bound {
            Some(format!(
                "removal took {failure_took:?}, over the bound {failure_bound:?}"
            ))
        } else {
            None
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let headline = json!({
            "members": members,
            "diameter_hops": diameter,
            "link_latency_ms": latency_ms,
            "diameter_x_latency_ms": ms(latency * diameter),
            "join_convergence_ms": ms(join_took),
            "join_bound_ms": ms(join_bound),
            "failure_convergence_ms": ms(failure_took),
            "failure_bound_ms": ms(failure_bound),
            "attestation_validity_s": validity_s,
        });
        finish(&world, options, headline, failure)
    }
}
