//! Runs the `scale` scenario and prints its headline JSON as the last line (the figure-printing
//! benchmark command until the `stockade sim` CLI exists):
//!
//! `cargo run --release -p stockade-sim --example scale -- --nodes 100000 --links 16 --seconds 60 --seed 1`

use std::process::ExitCode;
use std::sync::Arc;

use stockade_sim::{peak_rss_bytes, Registry, RunOptions};

fn main() -> ExitCode {
    let mut options = RunOptions::with_seed(1);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(name) = flag.strip_prefix("--") else {
            eprintln!("expected --name value, got {flag:?}");
            return ExitCode::from(2);
        };
        let Some(value) = args.next() else {
            eprintln!("--{name} needs a value");
            return ExitCode::from(2);
        };
        match name {
            "seed" => match value.parse() {
                Ok(seed) => options.seed = seed,
                Err(_) => {
                    eprintln!("--seed {value:?} is not a number");
                    return ExitCode::from(2);
                }
            },
            "out" => options.out_dir = Some(value.into()),
            _ => {
                options.args.insert(name.to_string(), value);
            }
        }
    }
    options.progress = Some(Arc::new(|p| {
        eprintln!(
            "sim {:>6.1} s  events {:>11}  wall {:>6.2} s",
            p.now.as_secs_f64(),
            p.events,
            p.wall.as_secs_f64()
        )
    }));
    let registry = Registry::with_builtin();
    let Some(scenario) = registry.get("scale") else {
        eprintln!("scale scenario missing from the registry");
        return ExitCode::from(2);
    };
    match scenario.run(&options) {
        Ok(mut outcome) => {
            if let Some(rss) = peak_rss_bytes() {
                outcome.headline["peak_rss_bytes"] = rss.into();
            }
            if let Some(failure) = &outcome.failure {
                eprintln!("FAILED: {failure}\nreproduce with: {}", outcome.repro);
            }
            println!("{}", outcome.headline);
            if outcome.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
