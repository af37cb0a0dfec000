//! Scenario arguments after the scenario name: `--name value` pairs passed through to the scenario,
//! with `--seed`, `--seeds` and `--out` recognised wherever they appear.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why the arguments after a scenario name could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScenarioArgsError {
    /// A word that is not `--name`.
    #[error("expected `--name value` after the scenario name, found {0:?}")]
    NotAName(String),
    /// `--name` at the end with no value.
    #[error("argument --{0} needs a value")]
    MissingValue(String),
    /// The same name twice.
    #[error("argument --{0} given twice")]
    Repeated(String),
    /// `--seed` or `--seeds` that is not a number.
    #[error("--{name} {value:?} is not a whole number")]
    NotANumber {
        /// Which option.
        name: &'static str,
        /// What was given.
        value: String,
    },
}

/// The arguments after the scenario name, sorted out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScenarioArgs {
    /// `--seed`, if given among them.
    pub seed: Option<u64>,
    /// `--seeds`, if given among them.
    pub seeds: Option<u64>,
    /// `--out`, if given among them.
    pub out: Option<PathBuf>,
    /// Everything else, names without dashes.
    pub pass_through: BTreeMap<String, String>,
}

/// Sort `words` (as typed after the scenario name) into options and pass-through pairs.
/// `--name=value` and `--name value` both work.
pub fn parse(words: &[String]) -> Result<ScenarioArgs, ScenarioArgsError> {
    let mut out = ScenarioArgs::default();
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        let Some(name) = word.strip_prefix("--").filter(|n| !n.is_empty()) else {
            return Err(ScenarioArgsError::NotAName(word.clone()));
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let value = rest
                    .next()
                    .ok_or_else(|| ScenarioArgsError::MissingValue(name.to_string()))?;
                (name.to_string(), value.clone())
            }
        };
        match name.as_str() {
            "seed" => out.seed = Some(number("seed", &value)?),
            "seeds" => out.seeds = Some(number("seeds", &value)?),
            "out" => out.out = Some(PathBuf::from(value)),
            _ => {
                if out.pass_through.insert(name.clone(), value).is_some() {
                    return Err(ScenarioArgsError::Repeated(name));
                }
            }
        }
    }
    Ok(out)
}

fn number(name: &'static str, value: &str) -> Result<u64, ScenarioArgsError> {
    value.parse().map_err(|_| ScenarioArgsError::NotANumber {
        name,
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn sorts_options_from_pass_through_pairs() {
        let a = parse(&words(
            "--nodes 100000 --links=16 --seconds 60 --seed 1 --out /tmp/x",
        ))
        .expect("parses");
        assert_eq!(a.seed, Some(1));
        assert_eq!(a.out, Some(PathBuf::from("/tmp/x")));
        assert_eq!(a.pass_through.len(), 3);
        assert_eq!(a.pass_through["links"], "16");
    }

    #[test]
    fn rejects_what_is_not_a_pair() {
        assert_eq!(
            parse(&words("nodes 3")),
            Err(ScenarioArgsError::NotAName("nodes".into()))
        );
        assert_eq!(
            parse(&words("--nodes")),
            Err(ScenarioArgsError::MissingValue("nodes".into()))
        );
        assert_eq!(
            parse(&words("--a 1 --a 2")),
            Err(ScenarioArgsError::Repeated("a".into()))
        );
        assert!(matches!(
            parse(&words("--seeds many")),
            Err(ScenarioArgsError::NotANumber { name: "seeds", .. })
        ));
    }
}
