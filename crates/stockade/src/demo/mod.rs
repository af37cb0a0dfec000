//! `stockade demo`: a real local cluster on loopback, attacked while it serves, and a plain-words
//! report of what the attacks cost and what was detected, with the figures as JSON on the last
//! line. By default the replicated KV service under two attacks on Prime's leader
//! ([`prime_attacks`]); with `--broadcast`, the earlier Bracha broadcast demo ([`broadcast`]).

pub mod attack_report;
pub mod broadcast;
pub mod metrics_watch;
pub mod phases;
pub mod prime_attacks;
pub mod resp_client;
pub mod workload;

use crate::cli::DemoArgs;
use crate::headline::Verdict;

/// Run the demo `args` choose.
pub fn run(args: &DemoArgs) -> anyhow::Result<Verdict> {
    if args.broadcast {
        broadcast::run(args)
    } else {
        prime_attacks::run(args)
    }
}
