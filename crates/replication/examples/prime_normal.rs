//! Runs the `prime-normal` simulation scenario until the `stockade sim` CLI registers it:
//! `cargo run --release -p stockade-replication --features sim --example prime_normal -- --seed 1 --seconds 5`.
//! Prints the headline JSON on the last line and exits non-zero when a checker failed.

use stockade_replication::scenarios::PrimeNormalScenario;
use stockade_sim::{RunOptions, Scenario};

fn main() {
    let mut options = RunOptions::with_seed(1);
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
            _ => options = options.arg(name, value),
        }
    }
    match PrimeNormalScenario.run(&options) {
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
