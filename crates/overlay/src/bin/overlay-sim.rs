//! `overlay-sim`: run one of the overlay's simulator scenarios by name until the `stockade sim`
//! CLI lands: `overlay-sim SCENARIO [--seed N] [--ARG VALUE]...`, or `overlay-sim --list`.
//! The last line of standard output is the scenario's JSON headline; the exit code is non-zero
//! when a check failed.

use std::process::ExitCode;

use stockade_overlay::scenarios::all;
use stockade_sim::RunOptions;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenarios = all();
    let Some(name) = args.first() else {
        eprintln!("usage: overlay-sim SCENARIO [--seed N] [--ARG VALUE]... | overlay-sim --list");
        return ExitCode::from(2);
    };
    if name == "--list" {
        for s in &scenarios {
            println!("{:18} {}", s.name(), s.description());
        }
        return ExitCode::SUCCESS;
    }
    let Some(scenario) = scenarios.iter().find(|s| s.name() == name) else {
        eprintln!("overlay-sim: no scenario {name:?}; try --list");
        return ExitCode::from(2);
    };
    let mut options = RunOptions::with_seed(1);
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let (Some(key), Some(value)) = (flag.strip_prefix("--"), rest.next()) else {
            eprintln!("overlay-sim: expected --NAME VALUE pairs, got {flag:?}");
            return ExitCode::from(2);
        };
        if key == "seed" {
            match value.parse() {
                Ok(seed) => options.seed = seed,
                Err(_) => {
                    eprintln!("overlay-sim: --seed {value:?} is not a number");
                    return ExitCode::from(2);
                }
            }
        } else {
            options.args.insert(key.to_string(), value.clone());
        }
    }
    match scenario.run(&options) {
        Ok(outcome) => {
            if let Some(failure) = &outcome.failure {
                println!("FAILED: {failure}\nreproduce with: {}", outcome.repro);
            }
            println!("{}", outcome.headline);
            if outcome.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("overlay-sim: {e}");
            ExitCode::from(2)
        }
    }
}
