//! The overlay's `stockade sim` scenarios (the simulator's [`Scenario`] trait):
//!
//! - `pastry-hops`, `pastry-failures`, `pastry-malicious`: the static scale model
//!   ([`crate::static_overlay`], [`crate::static_faults`]), routes computed over the tables;
//! - `pastry-churn`, `dht`, `scribe`: the event-driven protocols on the simulator's [`World`]
//!   ([`world`] builds an overlay by staggered joins on a latency plane).
//!
//! Each prints its headline as JSON through the CLI; a failed check makes `passed` false. Under
//! `--out` each writes the simulator's report: CSV files and SVG plots (event-driven runs: the
//! world's traffic and metrics; static runs: their histograms and counters).

mod churn;
mod dht_run;
mod failures;
mod malicious;
mod scribe_run;
mod scribe_static;
mod static_runs;
pub mod world;

use std::time::Instant;

use serde_json::Value;
use stockade_core::{Protocol, Time};
use stockade_sim::{
    peak_rss_bytes, LinkTraffic, Metrics, Registry, Report, RunOptions, Scenario, ScenarioError,
    ScenarioOutcome, World,
};

pub use churn::ChurnScenario;
pub use dht_run::DhtScenario;
pub use failures::FailuresScenario;
pub use malicious::MaliciousScenario;
pub use scribe_run::ScribeScenario;
pub use static_runs::{hops_headline, HopsScenario};

/// Add every overlay scenario to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(HopsScenario);
    registry.register(FailuresScenario);
    registry.register(MaliciousScenario);
    registry.register(ChurnScenario);
    registry.register(DhtScenario);
    registry.register(ScribeScenario);
}

/// An argument outside its range.
fn out_of_range(name: &str, reason: &str) -> ScenarioError {
    ScenarioError::OutOfRange {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// `--name` as a count in `min..=max`.
fn count_arg(
    options: &RunOptions,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<usize, ScenarioError> {
    let v = options.u64_arg(name, default)?;
    if !(min..=max).contains(&v) {
        return Err(out_of_range(name, &format!("between {min} and {max}")));
    }
    Ok(v as usize)
}

/// `--nodes` for an event-driven scenario.
fn world_nodes_arg(options: &RunOptions, default: u64) -> Result<usize, ScenarioError> {
    count_arg(options, "nodes", default, 2, world::WORLD_NODES_MAX as u64)
}

/// `--name` as a fraction in `[0, max)`.
fn fraction_arg(
    options: &RunOptions,
    name: &str,
    default: f64,
    max: f64,
) -> Result<f64, ScenarioError> {
    let v = options.f64_arg(name, default)?;
    if !(0.0..max).contains(&v) {
        return Err(out_of_range(name, &format!("a fraction in [0, {max})")));
    }
    Ok(v)
}

/// The reproducing command for a scenario run.
fn repro(name: &str, options: &RunOptions) -> String {
    let args: String = options
        .args
        .iter()
        .map(|(k, v)| format!(" --{k} {v}"))
        .collect();
    format!("stockade sim {name} --seed {}{args}", options.seed)
}

/// Finish an event-driven scenario: its world's report (CSV files and plots under `--out`) with
/// the scenario's figures in the headline, and the checks' verdict.
fn finish_world<P: Protocol>(
    world: &World<P>,
    name: &str,
    options: &RunOptions,
    figures: Value,
    failure: Option<String>,
) -> Result<ScenarioOutcome, ScenarioError> {
    ScenarioOutcome::from_report(
        world.report(figures),
        options,
        repro(name, options),
        failure,
    )
}

/// Finish a static-model scenario. There is no simulated network, so the report holds no link
/// traffic: `metrics` carries the scenario's own counters and histograms (one CSV row and one
/// CDF plot each under `--out`), and the headline gains the wall time and peak RSS.
fn finish_static(
    name: &str,
    options: &RunOptions,
    mut headline: Value,
    metrics: Metrics,
    started: Instant,
    failure: Option<String>,
) -> Result<ScenarioOutcome, ScenarioError> {
    let wall = started.elapsed();
    headline["model"] = Value::from("static");
    headline["wall_seconds"] = Value::from(wall.as_secs_f64());
    if let Some(rss) = peak_rss_bytes() {
        headline["peak_rss_bytes"] = Value::from(rss);
    }
    let report = Report {
        scenario: name.to_string(),
        seed: options.seed,
        crypto_mode: "none (static model)".to_string(),
        cost_source: "not modelled (static model)".to_string(),
        sim_time: Time::ZERO,
        wall,
        digest: 0,
        metrics,
        links: LinkTraffic::PerSender(Vec::new()),
        sites: Vec::new(),
        headline,
    };
    ScenarioOutcome::from_report(report, options, repro(name, options), failure)
}

/// Record `count` copies of `value` in histogram `name`.
fn record_repeated(metrics: &mut Metrics, name: &str, value: u64, count: u64) {
    for _ in 0..count {
        metrics.record(name, value);
    }
}

/// Every overlay scenario, for `--list` and tests.
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(HopsScenario),
        Box::new(FailuresScenario),
        Box::new(MaliciousScenario),
        Box::new(ChurnScenario),
        Box::new(DhtScenario),
        Box::new(ScribeScenario),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &dyn Scenario, options: RunOptions) -> ScenarioOutcome {
        let outcome = scenario.run(&options).expect("the scenario runs");
        assert!(
            outcome.passed,
            "{}: {:?} (repro: {})",
            scenario.name(),
            outcome.failure,
            outcome.repro
        );
        outcome
    }

    #[test]
    fn every_scenario_is_registered_once_by_name() {
        let mut registry = Registry::new();
        register(&mut registry);
        for s in all() {
            assert!(registry.get(s.name()).is_some(), "{} registered", s.name());
        }
    }

    #[test]
    fn static_scenarios_pass_and_report_their_figures() {
        let hops = run(
            &HopsScenario,
            RunOptions::with_seed(1)
                .arg("nodes", 2000)
                .arg("lookups", 5000),
        );
        assert!(hops.headline["mean_hops"]
            .as_f64()
            .is_some_and(|h| h > 1.5 && h < 3.5));
        let failures = run(
            &FailuresScenario,
            RunOptions::with_seed(1)
                .arg("nodes", 2000)
                .arg("lookups", 2000),
        );
        assert!(
            failures.headline["mean_timeouts"]
                .as_f64()
                .is_some_and(|t| t > 0.0),
            "failures were met"
        );
        let malicious = run(
            &MaliciousScenario,
            RunOptions::with_seed(1)
                .arg("nodes", 2000)
                .arg("lookups", 2000),
        );
        assert!(malicious.headline["secure_routing_success"]
            .as_f64()
            .is_some_and(|s| s >= 0.99));
        let sweep = malicious.headline["by_fraction"]
            .as_array()
            .expect("one row per fraction");
        assert_eq!(sweep.len(), 3, "10%, 20% and 25% by default");
        for row in sweep {
            let secure = row["secure_lookup_success"].as_f64().expect("secure");
            assert!(secure > row["pns_plain_success"].as_f64().expect("plain"));
            assert!(secure > row["constrained_plain_success"].as_f64().expect("plain"));
            assert!(row["failure_test_detection"].as_f64() > Some(0.9), "{row}");
        }
        assert!(malicious.headline["secure_success_by_fraction"]["0.25"]
            .as_f64()
            .is_some_and(|s| s >= 0.99));
        assert!(matches!(
            HopsScenario.run(&RunOptions::with_seed(1).arg("nodez", 5)),
            Err(ScenarioError::UnknownArgument { .. })
        ));
        assert!(matches!(
            FailuresScenario.run(&RunOptions::with_seed(1).arg("fraction", 1.5)),
            Err(ScenarioError::OutOfRange { .. })
        ));
    }

    #[test]
    fn pastry_hops_runs_over_a_latency_matrix_file_and_refuses_a_bad_one() {
        // Two clusters of 4 rows, 5 ms inside a cluster and 80 ms across.
        let dir = tempfile::tempdir().expect("temp dir");
        let rows: Vec<String> = (0..8)
            .map(|i| {
                (0..8)
                    .map(|j| match (i == j, i / 4 == j / 4) {
                        (true, _) => "0",
                        (false, true) => "5",
                        (false, false) => "80",
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let good = dir.path().join("latency.txt");
        std::fs::write(&good, format!("# ms\n{}\n", rows.join("\n"))).expect("written");
        let hops = run(
            &HopsScenario,
            RunOptions::with_seed(1)
                .arg("nodes", 500)
                .arg("lookups", 2000)
                .arg("topology", format!("matrix:{}", good.display())),
        );
        assert_eq!(hops.headline["latency_model"], "matrix");
        assert!(hops.headline["mean_hops"].as_f64() > Some(1.0));
        let bad = dir.path().join("ragged.txt");
        std::fs::write(&bad, "0 1\n1\n").expect("written");
        let refused = HopsScenario
            .run(&RunOptions::with_seed(1).arg("topology", format!("matrix:{}", bad.display())))
            .err()
            .map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("must be square")),
            "{refused:?}"
        );
    }

    #[test]
    fn scribe_at_scale_reports_delay_penalty_and_link_stress() {
        let s = run(
            &ScribeScenario,
            RunOptions::with_seed(2)
                .arg("model", "static")
                .arg("nodes", 3000)
                .arg("groups", 40)
                .arg("grid-side", 20),
        );
        let f = |k: &str| s.headline[k].as_f64().unwrap_or_else(|| panic!("{k}"));
        assert!(
            f("rdp_mean") >= 1.0 && f("rdp_mean") < 4.0,
            "{}",
            s.headline
        );
        assert!(f("rdp_max") >= f("rdp_p90") && f("rdp_p90") >= f("rdp_median"));
        assert!(f("rad_mean") >= 1.0);
        assert!(f("link_stress_mean") >= 1.0 && f("link_stress_max") >= f("link_stress_mean"));
        assert!(
            f("link_stress_scribe_over_ip") > 1.0,
            "overlay edges share links"
        );
        assert_eq!(s.headline["group_sizes"]["max"], 3000);
        assert_eq!(s.headline["model"], "static");
        assert!(matches!(
            ScribeScenario.run(
                &RunOptions::with_seed(1)
                    .arg("model", "static")
                    .arg("fail", 0.1)
            ),
            Err(ScenarioError::UnknownArgument { .. })
        ));
    }

    #[test]
    fn failures_in_the_event_model_are_repaired_and_their_repair_is_counted() {
        let f = run(
            &FailuresScenario,
            RunOptions::with_seed(5)
                .arg("model", "events")
                .arg("nodes", 80)
                .arg("lookups", 200)
                .arg("fraction", 0.1),
        );
        assert!(
            f.headline["failed_nodes"].as_u64() > Some(0),
            "nodes failed"
        );
        assert!(f.headline["repair_leaf_set_requests"].as_u64() > Some(0));
        assert!(f.headline["repair_messages_per_failed_node"].as_f64() > Some(1.0));
        assert_eq!(f.headline["success_before_failure"].as_f64(), Some(1.0));
        assert_eq!(f.headline["success_after_repair"].as_f64(), Some(1.0));
    }

    #[test]
    fn churn_repairs_and_is_deterministic() {
        let options = || {
            RunOptions::with_seed(3)
                .arg("nodes", 60)
                .arg("seconds", 20)
                .arg("churn", 0.5)
                .arg("lookups-per-sec", 5)
        };
        let a = run(&ChurnScenario, options());
        let b = run(&ChurnScenario, options());
        assert_eq!(a.headline["digest"], b.headline["digest"]);
        assert!(
            a.headline["crashes"].as_u64().is_some_and(|c| c > 0),
            "churn happened"
        );
        assert_eq!(a.headline["correct_after_repair"].as_f64(), Some(1.0));
    }

    #[test]
    fn dht_and_scribe_scenarios_survive_failures() {
        let dht = run(
            &DhtScenario,
            RunOptions::with_seed(4)
                .arg("nodes", 50)
                .arg("objects", 20)
                .arg("fail", 0.1),
        );
        assert!(
            dht.headline["crashed"].as_u64().is_some_and(|c| c > 0),
            "nodes crashed"
        );
        let scribe = run(
            &ScribeScenario,
            RunOptions::with_seed(4)
                .arg("nodes", 60)
                .arg("groups", 4)
                .arg("members", 0.2)
                .arg("fail", 0.1),
        );
        assert!(
            scribe.headline["crashed"].as_u64().is_some_and(|c| c > 0),
            "nodes crashed"
        );
        assert!(scribe.headline["delivered_after_repair"]
            .as_u64()
            .is_some_and(|d| d > 0));
        let rdp = scribe.headline["rdp_mean"].as_f64().expect("rdp_mean");
        assert!((1.0..10.0).contains(&rdp), "rdp {rdp}");
    }
}
