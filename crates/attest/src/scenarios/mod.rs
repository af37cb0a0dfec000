//! Simulator scenarios for LA-groups (`stockade sim la-...`), built on `stockade-sim`.
//!
//! Each scenario builds a [`World`] of [`LaGroups`] nodes with the simulation's stand-in crypto
//! (real sizes and costs, unforgeable inside the run), drives joins and faults through requests,
//! and checks the paper's claim it demonstrates; a failed check makes the run fail with the command
//! that reproduces it. [`register`] adds them all to the CLI's registry.

mod convergence;
mod nontransitive;
mod ring;
mod trust;

use std::collections::BTreeSet;
use std::time::Duration;

use stockade_core::{CostTable, NodeId, Time};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_sim::{
    LinkSpec, Registry, RunOptions, ScenarioError, ScenarioOutcome, SimConfig, Topology, World,
};

use crate::attestation::GroupId;
use crate::group::{GroupConfig, GroupOutput, GroupRequest, LaGroups};
use crate::keys::SchemeKeys;

pub use convergence::ConvergenceScenario;
pub use nontransitive::NonTransitiveScenario;
pub use ring::{MinCutScenario, RingScenario};
pub use trust::TrustScenario;

/// Add every LA-group scenario to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(NonTransitiveScenario);
    registry.register(TrustScenario);
    registry.register(RingScenario);
    registry.register(MinCutScenario);
    registry.register(ConvergenceScenario);
}

/// How long a join is given to settle in a scenario (many round trips at WAN latency).
const JOIN_SETTLE: Duration = Duration::from_millis(500);

/// A world of `topology.node_count()` LA-group nodes, each with its own stand-in keys.
fn group_world(
    scenario: &str,
    seed: u64,
    repro_args: &str,
    topology: Topology,
    config: GroupConfig,
) -> Result<World<LaGroups>, ScenarioError> {
    config
        .validate()
        .map_err(|e| ScenarioError::Setup(e.to_string()))?;
    let keys = SimulationKeys::new(CryptoMode::SimFast, seed);
    let count = topology.node_count();
    let mut sim_config = SimConfig::new(scenario, seed);
    sim_config.crypto_mode = CryptoMode::SimFast.describe().to_string();
    sim_config.cost_table = CostTable::design_defaults();
    sim_config.repro_command = format!("stockade sim {scenario} --seed {{seed}}{repro_args}");
    World::new(sim_config, topology, move |id, _store| {
        let node_keys = SchemeKeys::for_simulation(&keys, id, (0..count).map(NodeId));
        LaGroups::new(id, config.clone(), Box::new(node_keys))
            .with_view_signing(keys.multi_signer(id.0))
    })
    .map_err(|e| ScenarioError::Setup(e.to_string()))
}

/// Write the report (CSV files and SVG plots under `--out`) and turn a check's result into the outcome.
fn finish(
    world: &World<LaGroups>,
    options: &RunOptions,
    headline: serde_json::Value,
    failure: Option<String>,
) -> Result<ScenarioOutcome, ScenarioError> {
    ScenarioOutcome::from_report(
        world.report(headline),
        options,
        world.config().repro(),
        failure,
    )
}

/// A simulator error as a scenario failure message.
fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The links of most scenarios: 20 ms, 10 Mbit/s.
fn scenario_link() -> LinkSpec {
    LinkSpec::wan(Duration::from_millis(20), 10_000_000)
}

/// Joins that make nodes `1..count` a chain: node `i` joins through node `i - 1`.
fn chain_joins(count: u32) -> Vec<(NodeId, NodeId)> {
    (1..count).map(|i| (NodeId(i), NodeId(i - 1))).collect()
}

/// `creator` creates a group; returns its id once the creation output arrived.
fn create_group(world: &mut World<LaGroups>, creator: NodeId) -> Result<GroupId, String> {
    world.request(creator, GroupRequest::Create);
    world.run_for(Duration::from_millis(1)).map_err(failed)?;
    world
        .take_outputs()
        .into_iter()
        .find_map(|d| match d.output {
            GroupOutput::Created { group } if d.node == creator => Some(group),
            _ => None,
        })
        .ok_or_else(|| format!("{creator} did not report a created group"))
}

/// Each `(joiner, contact)` joins in turn, [`JOIN_SETTLE`] apart.
fn join_all(
    world: &mut World<LaGroups>,
    group: GroupId,
    joins: &[(NodeId, NodeId)],
) -> Result<(), String> {
    for &(joiner, contact) in joins {
        world.request(
            joiner,
            GroupRequest::Join {
                group,
                contacts: vec![contact],
            },
        );
        world.run_for(JOIN_SETTLE).map_err(failed)?;
    }
    Ok(())
}

/// `node`'s current view of `group` (empty when it has none).
fn view_of(world: &World<LaGroups>, node: NodeId, group: GroupId, now: Time) -> BTreeSet<NodeId> {
    world
        .protocol(node)
        .and_then(|p| p.view(group, now))
        .unwrap_or_default()
}

/// Whether every node of `nodes` has exactly `expected` as its view.
fn views_are(
    world: &World<LaGroups>,
    nodes: &[NodeId],
    group: GroupId,
    expected: &BTreeSet<NodeId>,
) -> bool {
    let now = world.now();
    nodes
        .iter()
        .all(|&n| view_of(world, n, group, now) == *expected)
}

#[cfg(test)]
mod tests;
