//! Scenarios over the static scale model: hop counts, failures, malicious nodes.

use serde_json::{json, Value};
use stockade_sim::{RunOptions, Scenario, ScenarioError, ScenarioOutcome};

use super::{count_arg, fraction_arg, out_of_range, outcome};
use crate::id::DigitBits;
use crate::latency::LatencyModel;
use crate::static_overlay::{
    LookupStats, StaticConfig, StaticOverlay, TableRule, PNS_SAMPLES_MAX_DEFAULT,
};

/// The largest static overlay a scenario builds.
const STATIC_SCENARIO_NODES_MAX: u64 = 2_000_000;
/// The most lookups a scenario routes.
const LOOKUPS_MAX: u64 = 100_000_000;

fn static_config(
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
        Some(_) => return Err(out_of_range("topology", "plane or sphere")),
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

fn build(config: &StaticConfig) -> Result<StaticOverlay, ScenarioError> {
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
         [--nodes 100000 --lookups 1000000 --b 4 --leaf-set 16 --topology plane|sphere]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["nodes", "lookups", "b", "leaf-set", "topology"])?;
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
        Ok(outcome(self.name(), options, headline, failure))
    }
}

/// `pastry-failures`: a fraction of nodes fails at once; routes before any repair.
pub struct FailuresScenario;

impl Scenario for FailuresScenario {
    fn name(&self) -> &'static str {
        "pastry-failures"
    }
    fn description(&self) -> &'static str {
        "a fraction of Pastry nodes fails at once; lookups route around them before repair \
         [--fraction 0.1 --nodes 10000 --lookups 100000]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["fraction", "nodes", "lookups", "b", "leaf-set", "topology"])?;
        let config = static_config(options, 10_000, 16)?;
        let fraction = fraction_arg(options, "fraction", 0.1, 1.0)?;
        let lookups = count_arg(options, "lookups", 100_000, 1, LOOKUPS_MAX)?;
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
        });
        // Pastry routes around failed nodes through leaf sets; with L = 16 nearly every lookup
        // must still arrive while under half the nodes are down.
        let failure = (fraction < 0.5 && stats.success_rate() < 0.95).then(|| {
            format!(
                "only {:.3} of lookups reached the live root",
                stats.success_rate()
            )
        });
        Ok(outcome(self.name(), options, headline, failure))
    }
}

/// `pastry-malicious`: malicious nodes lie about proximity and drop traffic; plain versus
/// redundant routing over proximity-chosen versus constrained tables.
pub struct MaliciousScenario;

impl Scenario for MaliciousScenario {
    fn name(&self) -> &'static str {
        "pastry-malicious"
    }
    fn description(&self) -> &'static str {
        "malicious Pastry nodes drop traffic and lie about proximity; secure routing (constrained \
         tables + redundant routing) versus plain [--fraction 0.2 --nodes 10000 --lookups 100000 --leaf-set 32 --redundancy 32]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&[
            "fraction",
            "nodes",
            "lookups",
            "redundancy",
            "b",
            "leaf-set",
            "topology",
        ])?;
        // Castro et al. evaluate secure routing with a leaf set of 32; redundancy defaults to it.
        let base = static_config(options, 10_000, 32)?;
        let fraction = fraction_arg(options, "fraction", 0.2, 1.0)?;
        let lookups = count_arg(options, "lookups", 100_000, 1, LOOKUPS_MAX)?;
        let redundancy = count_arg(options, "redundancy", base.leaf_set_size as u64, 1, 256)?;
        let mut results = Vec::new();
        for rule in [TableRule::Proximity, TableRule::Constrained] {
            let config = StaticConfig {
                table_rule: rule,
                malicious_fraction: fraction,
                ..base.clone()
            };
            let overlay = build(&config)?;
            results.push(overlay.measure_malicious(lookups, redundancy, options.seed));
        }
        let (pns, constrained) = (&results[0], &results[1]);
        let headline = json!({
            "scenario": self.name(),
            "seed": options.seed,
            "nodes": base.nodes,
            "fraction": fraction,
            "malicious_nodes": constrained.malicious_nodes,
            "lookups": constrained.lookups,
            "redundancy": redundancy,
            "pns_malicious_entries": pns.malicious_entry_fraction,
            "pns_plain_success": pns.plain_rate(),
            "pns_redundant_success": pns.redundant_rate(),
            "constrained_malicious_entries": constrained.malicious_entry_fraction,
            "constrained_plain_success": constrained.plain_rate(),
            "secure_routing_success": constrained.redundant_rate(),
        });
        // Paper 002: secure routing tolerates up to 25% faulty nodes.
        let failure = (fraction <= 0.25 && constrained.redundant_rate() < 0.99).then(|| {
            format!(
                "secure routing reached only {:.3} of replica sets at f = {fraction}",
                constrained.redundant_rate()
            )
        });
        Ok(outcome(self.name(), options, headline, failure))
    }
}
