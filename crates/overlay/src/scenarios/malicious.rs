//! `pastry-malicious`: malicious nodes lie about proximity (to fill proximity-chosen tables) and
//! drop or forge what they should forward. For each fraction of malicious nodes: plain routing
//! over proximity-chosen and constrained tables, redundant routing alone, and the whole secure
//! routing primitive (plain routing, the routing failure test, redundant routing over
//! constrained tables; [`crate::static_secure`]), all over the static model.

use std::time::Instant;

use serde_json::{json, Map, Value};
use stockade_sim::{Metrics, RunOptions, Scenario, ScenarioError, ScenarioOutcome};

use super::static_runs::{build, static_config};
use super::{count_arg, finish_static, fraction_arg, out_of_range};
use crate::static_overlay::{StaticConfig, TableRule};
use crate::static_secure::FAILURE_TEST_GAMMA_DEFAULT;

/// The fractions swept by default: paper 002 ("Securing the overlay") claims tolerance up to 25%.
const FRACTIONS_DEFAULT: [f64; 3] = [0.1, 0.2, 0.25];
/// The most fractions one run sweeps.
const FRACTIONS_MAX: usize = 16;
/// Lowest acceptable secure-lookup success at a fraction up to 25% (paper 002: "Can tolerate up
/// to 25% faulty nodes").
const SECURE_SUCCESS_MIN: f64 = 0.99;

/// `pastry-malicious`.
pub struct MaliciousScenario;

/// `--fraction F` (one) or `--fractions A,B,C` (a sweep), each in `[0, 1)`.
fn fractions_arg(options: &RunOptions) -> Result<Vec<f64>, ScenarioError> {
    match (
        options.args.get("fractions"),
        options.args.contains_key("fraction"),
    ) {
        (Some(_), true) => Err(out_of_range(
            "fractions",
            "give --fraction or --fractions, not both",
        )),
        (None, true) => Ok(vec![fraction_arg(options, "fraction", 0.2, 1.0)?]),
        (None, false) => Ok(FRACTIONS_DEFAULT.to_vec()),
        (Some(list), false) => {
            let parsed: Option<Vec<f64>> = list
                .split(',')
                .map(|f| {
                    f.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..1.0).contains(f))
                })
                .collect();
            match parsed {
                Some(v) if !v.is_empty() && v.len() <= FRACTIONS_MAX => Ok(v),
                _ => Err(out_of_range(
                    "fractions",
                    &format!("1 to {FRACTIONS_MAX} comma-separated fractions in [0, 1)"),
                )),
            }
        }
    }
}

impl Scenario for MaliciousScenario {
    fn name(&self) -> &'static str {
        "pastry-malicious"
    }
    fn description(&self) -> &'static str {
        "malicious Pastry nodes drop traffic, forge replica sets and lie about proximity; the \
         probability a secure lookup (failure test + redundant routing over constrained tables) \
         reaches an honest replica, per fraction [--fractions 0.1,0.2,0.25 --nodes 10000 \
         --lookups 20000 --leaf-set 32 --redundancy 32 --gamma 1.7]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&[
            "fraction",
            "fractions",
            "nodes",
            "lookups",
            "redundancy",
            "gamma",
            "b",
            "leaf-set",
            "topology",
        ])?;
        let started = Instant::now();
        // Castro et al. evaluate secure routing with a leaf set of 32; redundancy defaults to it.
        let base = static_config(options, 10_000, 32)?;
        let fractions = fractions_arg(options)?;
        let lookups = count_arg(options, "lookups", 20_000, 1, 100_000_000)?;
        let redundancy = count_arg(options, "redundancy", base.leaf_set_size as u64, 1, 256)?;
        let gamma = options.f64_arg("gamma", FAILURE_TEST_GAMMA_DEFAULT)?;
        if !(gamma > 1.0 && gamma < 100.0) {
            return Err(out_of_range("gamma", "a spacing ratio between 1 and 100"));
        }
        let mut rows = Vec::new();
        let mut by_fraction = Map::new();
        let mut metrics = Metrics::default();
        let mut failure = None;
        for fraction in &fractions {
            let overlay = |rule| {
                build(&StaticConfig {
                    table_rule: rule,
                    malicious_fraction: *fraction,
                    ..base.clone()
                })
            };
            let (pns, constrained) = (
                overlay(TableRule::Proximity)?,
                overlay(TableRule::Constrained)?,
            );
            let plain = pns.measure_malicious(lookups, redundancy, options.seed);
            let redundant = constrained.measure_malicious(lookups, redundancy, options.seed);
            let secure = pns
                .measure_secure_routing(
                    &constrained,
                    lookups,
                    base.leaf_set_size,
                    redundancy,
                    gamma,
                    options.seed,
                )
                .map_err(|e| ScenarioError::Setup(e.to_string()))?;
            let pct = format!("{}", (fraction * 100.0).round() as u64);
            metrics.add(&format!("secure_success_f{pct}"), secure.secure_success);
            metrics.add(&format!("lookups_f{pct}"), secure.lookups);
            metrics.add(&format!("redundant_runs_f{pct}"), secure.redundant_runs);
            by_fraction.insert(fraction.to_string(), json!(secure.success_rate()));
            rows.push(json!({
                "fraction": fraction,
                "malicious_nodes": plain.malicious_nodes,
                "pns_malicious_entries": plain.malicious_entry_fraction,
                "constrained_malicious_entries": redundant.malicious_entry_fraction,
                "pns_plain_success": plain.plain_rate(),
                "constrained_plain_success": redundant.plain_rate(),
                "redundant_success": redundant.redundant_rate(),
                "secure_lookup_success": secure.success_rate(),
                "failure_test_detection": secure.detection_rate(),
                "failure_test_false_positives": secure.false_positive_rate(),
                "redundant_routes_per_lookup": secure.redundant_runs as f64 / secure.lookups.max(1) as f64,
                "analytic_plain_success": analytic_plain_success(*fraction, base.nodes, base.digits.bits()),
            }));
            if *fraction <= 0.25 && secure.success_rate() < SECURE_SUCCESS_MIN && failure.is_none()
            {
                failure = Some(format!(
                    "secure routing reached an honest replica in only {:.4} of lookups at f = {fraction}",
                    secure.success_rate()
                ));
            }
        }
        let last = rows.last().cloned().unwrap_or(Value::Null);
        let headline = json!({
            "scenario": self.name(),
            "seed": options.seed,
            "nodes": base.nodes,
            "lookups": lookups,
            "leaf_set": base.leaf_set_size,
            "redundancy": redundancy,
            "failure_test_gamma": gamma,
            "secure_success_by_fraction": by_fraction,
            "by_fraction": rows,
            // The largest fraction's figures, at the top for quick reading.
            "fraction": last["fraction"],
            "malicious_nodes": last["malicious_nodes"],
            "pns_plain_success": last["pns_plain_success"],
            "secure_routing_success": last["secure_lookup_success"],
            "paper": {
                "claim": "secure routing tolerates up to 25% faulty nodes (paper 002, Securing the overlay)",
            },
        });
        finish_static(self.name(), options, headline, metrics, started, failure)
    }
}

/// Plain routing's success if each of the about `log_{2^b} N` nodes after the source (the root
/// included) is honest independently with probability `1 - f` (the estimate Castro et al. compare
/// their plain-routing measurements with).
fn analytic_plain_success(fraction: f64, nodes: usize, bits: u32) -> f64 {
    let hops = (nodes as f64).ln() / f64::from(2u32.pow(bits)).ln();
    (1.0 - fraction).powf(hops.max(1.0))
}
