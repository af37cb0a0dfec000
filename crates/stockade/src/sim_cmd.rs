//! `stockade sim`: list the scenarios, or run one for one seed or a range of seeds and print the
//! headline (one seed) or the aggregate (several seeds, failures with their reproducing commands)
//! as the last line of standard output.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use stockade_sim::{Registry, RunOptions, ScenarioOutcome};

use crate::cli::SimArgs;
use crate::headline::{print_headline, progress_bar, Verdict};
use crate::scenario_args;

/// Most seeds one command runs (a typo like `--seeds 1000000000` should not run for days).
pub const SEEDS_MAX: u64 = 1_000_000;

/// Run `stockade sim` as asked.
pub fn run(args: &SimArgs, registry: &Registry) -> anyhow::Result<Verdict> {
    if args.list {
        println!("Scenarios (run with `stockade sim NAME [--seed N] [--seeds K] [--out DIR] [--ARG VALUE ...]`):");
        for (name, description) in registry.list() {
            println!("  {name:<22} {description}");
        }
        return Ok(Verdict::Passed);
    }
    let Some(name) = args.scenario.as_deref() else {
        bail!("name a scenario, or pass --list to see them")
    };
    let Some(scenario) = registry.get(name) else {
        let known: Vec<&str> = registry.list().map(|(n, _)| n).collect();
        bail!("unknown scenario {name:?}; known: {}", known.join(", "));
    };
    let extra = scenario_args::parse(&args.scenario_args)?;
    let first_seed = extra.seed.unwrap_or(args.seed);
    let seeds = extra.seeds.unwrap_or(args.seeds);
    let out = extra.out.or_else(|| args.out.clone());
    if !(1..=SEEDS_MAX).contains(&seeds) {
        bail!("--seeds must be between 1 and {SEEDS_MAX}, got {seeds}");
    }

    let bar = if seeds > 1 {
        progress_bar(seeds, name)
    } else {
        None
    };
    let mut outcomes: Vec<(u64, ScenarioOutcome)> = Vec::new();
    for seed in first_seed..first_seed.saturating_add(seeds) {
        let mut options = RunOptions {
            seed,
            args: extra.pass_through.clone(),
            ..RunOptions::default()
        };
        options.out_dir = out.as_ref().map(|dir| {
            if seeds > 1 {
                dir.join(format!("seed-{seed}"))
            } else {
                dir.clone()
            }
        });
        if let Some(dir) = &options.out_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating output directory {}", dir.display()))?;
        }
        if seeds == 1 {
            options.progress = sim_time_spinner(name);
        }
        let outcome = scenario
            .run(&options)
            .with_context(|| format!("scenario {name} could not run"))?;
        let mark = if outcome.passed { "ok  " } else { "FAIL" };
        match &bar {
            Some(bar) => bar.inc(1),
            None if seeds > 1 => println!("{mark} seed {seed}"),
            None => {}
        }
        if let Some(failure) = &outcome.failure {
            println!(
                "seed {seed} failed: {failure}\n  reproduce with: {}",
                outcome.repro
            );
        }
        outcomes.push((seed, outcome));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let passed = outcomes.iter().all(|(_, o)| o.passed);
    let headline = if let [(_, single)] = outcomes.as_slice() {
        describe_single(name, single);
        single.headline.clone()
    } else {
        let aggregate = aggregate(name, first_seed, &outcomes);
        println!(
            "{name}: {} of {} seeds passed",
            outcomes.iter().filter(|(_, o)| o.passed).count(),
            outcomes.len()
        );
        aggregate
    };
    print_headline(&headline);
    Ok(Verdict::from_passed(passed))
}

fn describe_single(name: &str, outcome: &ScenarioOutcome) {
    let verdict = if outcome.passed { "passed" } else { "FAILED" };
    println!("{name}: {verdict} (reproduce with: {})", outcome.repro);
    let figure = |key: &str| outcome.headline.get(key).and_then(Value::as_f64);
    if let (Some(events), Some(per_sec)) = (figure("events"), figure("events_per_sec_wall")) {
        println!("  {events:.0} events, {per_sec:.0} events/s of wall time");
    }
    if let Some(rss) = figure("peak_rss_bytes") {
        println!("  peak RSS (VmHWM) {:.1} MB", rss / 1e6);
    }
}

/// A spinner showing simulated time, only on a terminal.
fn sim_time_spinner(name: &str) -> Option<stockade_sim::ProgressFn> {
    let bar = progress_bar(0, name)?;
    let bar = Arc::new(bar);
    Some(Arc::new(move |p: &stockade_sim::Progress| {
        bar.set_message(format!(
            "simulated {:.1} s, {} events",
            p.now.as_secs_f64(),
            p.events
        ));
        bar.tick();
    }))
}

/// One JSON object for many seeds: counts, failures with their commands, and the mean, min and
/// max of every numeric headline field.
pub fn aggregate(name: &str, first_seed: u64, outcomes: &[(u64, ScenarioOutcome)]) -> Value {
    let failures: Vec<Value> = outcomes
        .iter()
        .filter(|(_, o)| !o.passed)
        .map(|(seed, o)| json!({"seed": seed, "failure": o.failure, "repro": o.repro}))
        .collect();
    let mut numbers: Map<String, Value> = Map::new();
    if let Some((_, first)) = outcomes.first() {
        if let Some(fields) = first.headline.as_object() {
            for key in fields.keys() {
                let values: Vec<f64> = outcomes
                    .iter()
                    .filter_map(|(_, o)| o.headline.get(key)?.as_f64())
                    .collect();
                if values.len() != outcomes.len() || values.is_empty() {
                    continue;
                }
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                numbers.insert(key.clone(), json!({"mean": mean, "min": min, "max": max}));
            }
        }
    }
    let passed = outcomes.iter().filter(|(_, o)| o.passed).count();
    json!({
        "scenario": name,
        "first_seed": first_seed,
        "seeds": outcomes.len(),
        "passed": passed,
        "failed": outcomes.len() - passed,
        "failures": failures,
        "figures": numbers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(passed: bool, events: u64) -> ScenarioOutcome {
        ScenarioOutcome {
            headline: json!({"events": events, "scenario": "x"}),
            passed,
            repro: format!("stockade sim x --seed {events}"),
            failure: (!passed).then(|| "agreement broken".to_string()),
        }
    }

    #[test]
    fn aggregate_counts_failures_with_their_repro_commands_and_summarises_figures() {
        let outcomes = vec![
            (5, outcome(true, 10)),
            (6, outcome(false, 20)),
            (7, outcome(true, 30)),
        ];
        let a = aggregate("x", 5, &outcomes);
        assert_eq!(
            (
                a["seeds"].as_u64(),
                a["passed"].as_u64(),
                a["failed"].as_u64()
            ),
            (Some(3), Some(2), Some(1))
        );
        assert_eq!(a["failures"][0]["seed"], 6);
        assert_eq!(a["failures"][0]["repro"], "stockade sim x --seed 20");
        assert_eq!(a["figures"]["events"]["mean"], 20.0);
        assert_eq!(a["figures"]["events"]["max"], 30.0);
        assert!(
            a["figures"].get("scenario").is_none(),
            "only numbers are summarised"
        );
    }
}
