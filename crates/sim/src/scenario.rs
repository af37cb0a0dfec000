//! The scenario registry the `stockade sim` CLI lists and runs. Each protocol crate implements
//! [`Scenario`] for its runs; the CLI collects them in a [`Registry`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

use crate::world::Progress;

/// A progress callback for long runs (the CLI draws a progress bar with it).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How the CLI asks a scenario to run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The seed (`--seed`).
    pub seed: u64,
    /// Scenario arguments, `--nodes 100000` as `"nodes" -> "100000"` (no leading dashes).
    pub args: BTreeMap<String, String>,
    /// Where to write CSV files and plots (`--out`), if anywhere.
    pub out_dir: Option<PathBuf>,
    /// Called as simulated time passes.
    pub progress: Option<ProgressFn>,
}

impl RunOptions {
    /// Options with `seed` and nothing else.
    pub fn with_seed(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            ..RunOptions::default()
        }
    }

    /// Set argument `name` (builder style, for tests).
    pub fn arg(mut self, name: &str, value: impl ToString) -> RunOptions {
        self.args.insert(name.to_string(), value.to_string());
        self
    }

    /// Argument `name` as a `u64`, or `default` when absent.
    pub fn u64_arg(&self, name: &str, default: u64) -> Result<u64, ScenarioError> {
        self.parsed_arg(name, default)
    }

    /// Argument `name` as an `f64`, or `default` when absent.
    pub fn f64_arg(&self, name: &str, default: f64) -> Result<f64, ScenarioError> {
        self.parsed_arg(name, default)
    }

    fn parsed_arg<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ScenarioError> {
        match self.args.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| ScenarioError::BadArgument {
                name: name.to_string(),
                value: raw.clone(),
                expected: std::any::type_name::<T>(),
            }),
        }
    }

    /// Fail on arguments the scenario does not know (a typo should not silently run defaults).
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), ScenarioError> {
        match self.args.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ScenarioError::UnknownArgument {
                name: k.clone(),
                known: known.join(", --"),
            }),
            None => Ok(()),
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioOutcome {
    /// The headline figures: the CLI prints this as the last line of standard output.
    pub headline: Value,
    /// False when a checker failed; the CLI exits non-zero.
    pub passed: bool,
    /// The command that reproduces this run.
    pub repro: String,
    /// What failed, when something did.
    pub failure: Option<String>,
}

impl ScenarioOutcome {
    /// The outcome of a run whose checks ended in `failure` (none: passed). Writes `report` (CSV
    /// files and SVG plots) under `options.out_dir` first, when one was given.
    pub fn from_report(
        report: crate::report::Report,
        options: &RunOptions,
        repro: String,
        failure: Option<String>,
    ) -> Result<ScenarioOutcome, ScenarioError> {
        if let Some(dir) = &options.out_dir {
            report
                .write_all(dir)
                .map_err(|source| ScenarioError::Output {
                    dir: dir.clone(),
                    source,
                })?;
        }
        Ok(ScenarioOutcome {
            headline: report.headline,
            passed: failure.is_none(),
            repro,
            failure,
        })
    }
}

/// A scenario could not run as asked (bad arguments, unwritable output): a usage error, not a
/// checker failure.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// An argument did not parse.
    #[error("argument --{name} {value:?} is not a valid {expected}")]
    BadArgument {
        /// Name.
        name: String,
        /// Value given.
        value: String,
        /// The type it should be.
        expected: &'static str,
    },
    /// An argument the scenario does not take.
    #[error("unknown argument --{name}; this scenario takes --{known}")]
    UnknownArgument {
        /// Name given.
        name: String,
        /// The ones it takes.
        known: String,
    },
    /// An argument out of its allowed range.
    #[error("argument --{name}: {reason}")]
    OutOfRange {
        /// Name.
        name: String,
        /// What is allowed.
        reason: String,
    },
    /// Writing results failed.
    #[error("could not write results to {dir}: {source}")]
    Output {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The world could not be built (a topology error in the scenario's setup).
    #[error("could not build the world: {0}")]
    Setup(String),
}

/// A named simulation the CLI can run.
pub trait Scenario: Send + Sync {
    /// The name `stockade sim NAME` uses.
    fn name(&self) -> &'static str;
    /// One line for `stockade sim --list`, arguments included.
    fn description(&self) -> &'static str;
    /// Run once with `options`. A checker failure is `Ok` with `passed: false`; `Err` is a usage
    /// or setup error.
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError>;
}

/// Every scenario the CLI knows, in registration order.
#[derive(Default)]
pub struct Registry {
    scenarios: Vec<Box<dyn Scenario>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The registry with the simulator's own scenarios (`scale`).
    pub fn with_builtin() -> Registry {
        let mut r = Registry::new();
        r.register(crate::scale::ScaleScenario);
        r
    }

    /// Add a scenario; a later one with the same name replaces the earlier.
    pub fn register(&mut self, scenario: impl Scenario + 'static) {
        let name = scenario.name();
        self.scenarios.retain(|s| s.name() != name);
        self.scenarios.push(Box::new(scenario));
    }

    /// The scenario called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Scenario> {
        self.scenarios
            .iter()
            .find(|s| s.name() == name)
            .map(|s| s.as_ref())
    }

    /// `(name, description)` of every scenario.
    pub fn list(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.scenarios.iter().map(|s| (s.name(), s.description()))
    }
}
