//! `pastry-hops` over the static scale model, and the static model arguments every static
//! scenario shares.

use std::time::Instant;

use serde_json::{json, Value};
use stockade_sim::{Metrics, RunOptions, Scenario, ScenarioError, ScenarioOutcome};

use super::{count_arg, finish_static, out_of_range, record_repeated};
use crate::id::DigitBits;
use crate::latency::{LatencyMatrix, LatencyModel};
use crate::static_overlay::{LookupStats, StaticConfig, StaticOverlay, PNS_SAMPLES_MAX_DEFAULT};

/// The largest static overlay a scenario builds.
const STATIC_SCENARIO_NODES_MAX: u64 = 2_000_000;
/// `--topology matrix:FILE`: nodes on the rows of a measured latency matrix
/// ([`LatencyMatrix::parse`] gives the format).
const MATRIX_TOPOLOGY_PREFIX: &str = "matrix:";
/// The most lookups a scenario routes.
const LOOKUPS_MAX: u64 = 100_000_000;

pub(super) fn static_config(
    options: &RunOptions,
    default_nodes: u64,
    default_leaf_set: u64,
) -> Result<StaticConfig, ScenarioError> {
    let nodes = count_arg(
        options,
        "nodes",
        default_nodes,
        1,
        STATIC_SCENARIO_NODES_MAX,
    )?;
    let b = options.u64_arg("b", 4)?;
    let digits = DigitBits::new(b as u32).map_err(|e| out_of_range("b", &e.to_string()))?;
    let leaf_set_size = count_arg(options, "leaf-set", default_leaf_set, 2, 256)?;
    let latency = match options.args.get("topology").map(String::as_str) {
        None | Some("plane") => LatencyModel::Plane,
        Some("sphere") => LatencyModel::Sphere,
        Some(t) if t.starts_with(MATRIX_TOPOLOGY_PREFIX) => {
            let path = std::path::Path::new(&t[MATRIX_TOPOLOGY_PREFIX.len()..]);
            let matrix =
                LatencyMatrix::load(path).map_err(|e| out_of_range("topology", &e.to_string()))?;
            LatencyModel::Matrix(matrix)
        }
        Some(_) => {
            return Err(out_of_range(
                "topology",
                "plane, sphere, or matrix:FILE (one row of one-way milliseconds per node slot)",
            ))
        }
    };
    Ok(StaticConfig {
        nodes,
        digits,
        leaf_set_size,
        pns_samples_max: PNS_SAMPLES_MAX_DEFAULT,
        latency,
        seed: options.seed,
        ..StaticConfig::paper(nodes, options.seed)
    })
}

/// The `pastry-hops` headline (shared with the `pastry-hops` binary).
pub fn hops_headline(overlay: &StaticOverlay, config: &StaticConfig, stats: &LookupStats) -> Value {
    json!({
        "scenario": "pastry-hops",
        "seed": config.seed,
        "nodes": overlay.len(),
        "lookups": stats.lookups,
        "b": config.digits.bits(),
        "leaf_set": config.leaf_set_size,
        "latency_model": config.latency.name(),
        "pns_samples": config.pns_samples_max,
        "mean_hops": stats.mean_hops(),
        "max_hops": stats.max_hops(),
        "hop_histogram": stats.hop_histogram,
        "stretch": stats.aggregate_stretch(),
        "mean_stretch": stats.mean_stretch(),
        "routing_entries_per_node": overlay.mean_table_entries(),
        "memory_bytes": overlay.memory_bytes(),
        "misdelivered": stats.misdelivered,
        "looped": stats.looped,
    })
}

pub(super) fn build(config: &StaticConfig) -> Result<StaticOverlay, ScenarioError> {
    StaticOverlay::build(config).map_err(|e| ScenarioError::Setup(e.to_string()))
}

/// `pastry-hops`: hop counts and delay stretch (the Pastry paper's Figs. 4-5 setting).
pub struct HopsScenario;

impl Scenario for HopsScenario {
    fn name(&self) -> &'static str {
        "pastry-hops"
    }
    fn description(&self) -> &'static str {
        "Pastry hop counts and delay stretch over a statically built overlay \
         [--nodes 100000 --lookups 1000000 --b 4 --leaf-set 16 --topology plane|sphere|matrix:FILE]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["nodes", "lookups", "b", "leaf-set", "topology"])?;
        let started = Instant::now();
        let config = static_config(options, 100_000, 16)?;
        let lookups = count_arg(options, "lookups", 1_000_000, 1, LOOKUPS_MAX)?;
        let overlay = build(&config)?;
        let stats = overlay.measure_lookups(lookups, options.seed);
        let headline = hops_headline(&overlay, &config, &stats);
        let failure = (stats.misdelivered > 0 || stats.looped > 0).then(|| {
            format!(
                "{} lookups misdelivered, {} looped",
                stats.misdelivered, stats.looped
            )
        });
        let mut metrics = Metrics::default();
        for (hops, count) in stats.hop_histogram.iter().enumerate() {
            record_repeated(&mut metrics, "hops", hops as u64, *count);
        }
        metrics.add("lookups", stats.lookups);
        metrics.add("misdelivered", stats.misdelivered);
        finish_static(self.name(), options, headline, metrics, started, failure)
    }
}
