//! How `sim` and `bench` commands end: human text first, then the headline figures as ONE JSON
//! object on the last line of standard output (scripts read that line), and the exit status.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// How a command finished, for the exit status.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Every checker passed (or there were none).
    Passed,
    /// A checker failed: exit status 1.
    CheckFailed,
}

impl Verdict {
    /// `Passed` when `passed`.
    pub fn from_passed(passed: bool) -> Verdict {
        if passed {
            Verdict::Passed
        } else {
            Verdict::CheckFailed
        }
    }
}

/// Print `headline` as one compact JSON line: it must be the last thing on standard output.
pub fn print_headline(headline: &Value) {
    // `Value`'s Display is compact JSON with no newline inside.
    println!("{headline}");
}

/// A progress bar of `len` steps on standard error, only when standard error is a terminal (so
/// scripts and CI logs stay clean).
pub fn progress_bar(len: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    Some(bar)
}
