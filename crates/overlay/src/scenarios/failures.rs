//! `pastry-failures`: a fraction of the nodes fails at once.
//!
//! - `--model static` (the default above the event-driven size limit): routes over the static
//!   tables before any repair, as the Pastry paper's failure experiment did;
//! - `--model events`: the event-driven protocol. Lookups before the failure, right after it
//!   (while keep-alives time out and hop-by-hop acknowledgements reroute), and after repair; and
//!   the messages spent on repair per failed node (paper 002, "Node departure (failure)": eager
//!   leaf-set repair, lazy routing-table repair), counted by each node's [`RepairTally`].

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{Metrics, RunOptions, Scenario, ScenarioError, ScenarioOutcome, SimConfig};

use super::churn::{collect, issue, Issued, Tally};
use super::static_runs::{build, static_config};
use super::world::{OverlayWorld, WORLD_NODES_MAX};
use super::{count_arg, finish_static, finish_world, fraction_arg, out_of_range, record_repeated};
use crate::protocol::{Pastry, PastryConfig, RepairTally};

/// Simulated time the overlay gets to repair before the lookups "after repair".
const REPAIR_WINDOW: Duration = Duration::from_secs(30);
/// Simulated time a batch of lookups gets to arrive.
const LOOKUP_WINDOW: Duration = Duration::from_secs(5);
/// The most lookups one batch of the event-driven run issues.
const EVENT_LOOKUPS_MAX: u64 = 100_000;

/// `pastry-failures`.
pub struct FailuresScenario;

/// Which model a scenario runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Model {
    /// The static scale model.
    Static,
    /// The event-driven protocol on the simulator's world.
    Events,
}

/// `--model static|events`; by default the event-driven protocol up to [`WORLD_NODES_MAX`] nodes
/// when `events_by_default`, the static model otherwise.
pub(super) fn model_arg(
    options: &RunOptions,
    nodes: u64,
    events_by_default: bool,
) -> Result<Model, ScenarioError> {
    match options.args.get("model").map(String::as_str) {
        Some("static") => Ok(Model::Static),
        Some("events") => Ok(Model::Events),
        Some(_) => Err(out_of_range("model", "static or events")),
        None if events_by_default && nodes <= WORLD_NODES_MAX as u64 => Ok(Model::Events),
        None => Ok(Model::Static),
    }
}

impl Scenario for FailuresScenario {
    fn name(&self) -> &'static str {
        "pastry-failures"
    }
    fn description(&self) -> &'static str {
        "a fraction of Pastry nodes fails at once; static model: routes before repair; \
         --model events: lookups before, during and after repair, repair messages per failed node \
         [--fraction 0.1 --nodes 10000 --lookups 100000 --model static|events]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&[
            "fraction", "nodes", "lookups", "b", "leaf-set", "topology", "model",
        ])?;
        let nodes = options.u64_arg("nodes", 10_000)?;
        match model_arg(options, nodes, false)? {
            Model::Static => self.run_static(options),
            Model::Events => self.run_events(options),
        }
    }
}

impl FailuresScenario {
    fn run_static(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        let started = Instant::now();
        let config = static_config(options, 10_000, 16)?;
        let fraction = fraction_arg(options, "fraction", 0.1, 1.0)?;
        let lookups = count_arg(options, "lookups", 100_000, 1, 100_000_000)?;
        let overlay = build(&config)?;
        let stats = overlay.measure_failures(fraction, lookups, options.seed);
        let headline = json!({
            "scenario": self.name(),
            "seed": options.seed,
            "nodes": overlay.len(),
            "fraction": fraction,
            "failed_nodes": stats.failed_nodes,
            "lookups": stats.lookups,
            "success_rate": stats.success_rate(),
            "mean_hops": stats.mean_hops(),
            "mean_timeouts": stats.mean_timeouts(),
            "repair": "none (static model: routes before any repair; --model events measures repair)",
        });
        // Pastry routes around failed nodes through leaf sets; with L = 16 nearly every lookup
        // must still arrive while under half the nodes are down.
        let failure = (fraction < 0.5 && stats.success_rate() < 0.95).then(|| {
            format!(
                "only {:.3} of lookups reached the live root",
                stats.success_rate()
            )
        });
        let mut metrics = Metrics::default();
        for (hops, count) in stats.hop_histogram.iter().enumerate() {
            record_repeated(&mut metrics, "hops", hops as u64, *count);
        }
        metrics.add("lookups", stats.lookups);
        metrics.add("delivered_correctly", stats.delivered_correctly);
        metrics.add("timeouts", stats.timeouts);
        finish_static(self.name(), options, headline, metrics, started, failure)
    }

    fn run_events(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        if options.args.contains_key("topology") || options.args.contains_key("b") {
            return Err(out_of_range(
                "model",
                "--model events runs b = 4 on the plane; --b and --topology are for --model static",
            ));
        }
        let nodes = super::world_nodes_arg(options, 1_000)?;
        let fraction = fraction_arg(options, "fraction", 0.1, 0.5)?;
        let lookups = count_arg(options, "lookups", 2_000, 1, EVENT_LOOKUPS_MAX)?;
        let leaf_set_size = count_arg(options, "leaf-set", 16, 2, 64)?;
        let config = SimConfig::new(self.name(), options.seed);
        let pastry = PastryConfig {
            leaf_set_size,
            ..PastryConfig::default()
        };
        let mut overlay = OverlayWorld::grow(config, nodes, move |me, bootstrap| {
            Pastry::new(pastry.clone(), me, bootstrap)
        })?;
        let grown = overlay.joined_nodes();
        overlay.world.take_outputs();
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0xfa11);
        let mut next_id = 0u64;
        let mut batch = |overlay: &mut OverlayWorld<Pastry>,
                         rng: &mut ChaCha8Rng,
                         settle: Duration|
         -> Result<Tally, ScenarioError> {
            let (mut issued, mut tally) = (Issued::new(), Tally::default());
            issue(overlay, rng, lookups, &mut next_id, &mut issued, &mut tally);
            overlay.sim(|w| w.run_for(settle))?;
            collect(overlay, &mut issued, &mut tally);
            Ok(tally)
        };
        let before = batch(&mut overlay, &mut rng, LOOKUP_WINDOW)?;
        let tallies_before = tallies(&overlay, &grown);
        let messages_before_failure = overlay.world.metrics().sim.messages_sent;

        let victims = overlay.crash_some(&grown, fraction, &mut rng)?;
        // Lookups issued at once expect the live root (the victims no longer count as joined).
        overlay.refresh_joined();
        let during = batch(&mut overlay, &mut rng, LOOKUP_WINDOW)?;
        overlay.sim(|w| w.run_for(REPAIR_WINDOW - LOOKUP_WINDOW))?;
        overlay.refresh_joined();
        let repair = repair_since(&tallies(&overlay, &grown), &tallies_before);
        let messages_in_repair_window =
            overlay.world.metrics().sim.messages_sent - messages_before_failure;
        let after = batch(&mut overlay, &mut rng, LOOKUP_WINDOW)?;

        let failed = victims.len().max(1) as f64;
        let figures = json!({
            "model": "events",
            "fraction": fraction,
            "nodes_joined": grown.len(),
            "failed_nodes": victims.len(),
            "leaf_set": leaf_set_size,
            "lookups_per_batch": lookups,
            "success_before_failure": before.correct_rate(),
            "success_during_repair": during.correct_rate(),
            "success_after_repair": after.correct_rate(),
            "mean_hops_after_repair": after.hops as f64 / after.delivered.max(1) as f64,
            "repair_window_seconds": REPAIR_WINDOW.as_secs(),
            "repair_messages": repair.messages(),
            "repair_messages_per_failed_node": repair.messages() as f64 / failed,
            // Without the probes that measure the nodes the answers named (the protocol probes
            // every new candidate to keep the proximity invariant).
            "repair_requests_and_replies_per_failed_node":
                (repair.leaf_set_requests + repair.row_requests + repair.replies) as f64 / failed,
            "repair_leaf_set_requests": repair.leaf_set_requests,
            "repair_row_requests": repair.row_requests,
            "repair_replies": repair.replies,
            "repair_probes": repair.probes,
            "all_messages_in_repair_window": messages_in_repair_window,
        });
        let failure = if grown.len() < nodes {
            Some(format!("only {} of {nodes} nodes joined", grown.len()))
        } else if after.correct < after.issued {
            Some(format!(
                "{} of {} lookups after repair missed their live root",
                after.issued - after.correct,
                after.issued
            ))
        } else if !victims.is_empty() && repair.messages() == 0 {
            Some("nodes failed but no repair message was sent".to_string())
        } else {
            None
        };
        finish_world(&overlay.world, self.name(), options, figures, failure)
    }
}

/// The repair tally of each of `nodes` that is up.
fn tallies(overlay: &OverlayWorld<Pastry>, nodes: &[usize]) -> Vec<Option<RepairTally>> {
    nodes
        .iter()
        .map(|n| {
            overlay
                .world
                .protocol(NodeId(*n as u32))
                .map(|p| p.repair_tally())
        })
        .collect()
}

/// What the nodes up at both times spent on repair between `earlier` and `now`.
fn repair_since(now: &[Option<RepairTally>], earlier: &[Option<RepairTally>]) -> RepairTally {
    let mut total = RepairTally::default();
    for (now, earlier) in now.iter().zip(earlier) {
        if let (Some(now), Some(earlier)) = (now, earlier) {
            total.add(&now.since(earlier));
        }
    }
    total
}
