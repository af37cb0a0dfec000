//! Runs a Prime simulation scenario (`prime-normal` unless `--scenario` names another registered by
//! `stockade_replication::register`) until the `stockade sim` CLI registers them:
//! `cargo run --release -p stockade-replication --features sim --example prime_normal -- --seed 1 --seconds 5`
//! or `... -- --scenario prime-leader-delay --seed 1`.
//! Prints the headline JSON on the last line and exits non-zero when a checker failed.

use stockade_sim::{Registry, RunOptions};

fn main() {
    let mut options = RunOptions::with_seed(1);
    let mut scenario = "prime-normal".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let Some(name) = name.strip_prefix("--") else {
            eprintln!("expected --name value pairs, got {name:?}");
            std::process::exit(2);
        };
        let Some(value) = args.next() else {
            eprintln!("--{name} needs a value");
            std::process::exit(2);
        };
        match name {
            "seed" => match value.parse() {
                Ok(seed) => options.seed = seed,
                Err(_) => {
                    eprintln!("--seed {value:?} is not a number");
                    std::process::exit(2);
                }
            },
            "scenario" => scenario = value,
            _ => options = options.arg(name, value),
        }
    }
    let mut registry = Registry::new();
    stockade_replication::register(&mut registry);
    let Some(scenario) = registry.get(&scenario) else {
        eprintln!("no Prime scenario called {scenario:?}");
        std::process::exit(2);
    };
    match scenario.run(&options) {
        Ok(outcome) => {
            if let Some(failure) = &outcome.failure {
                eprintln!("FAILED: {failure}\nreproduce with: {}", outcome.repro);
            }
            println!("{}", outcome.headline);
            std::process::exit(if outcome.passed { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}
