//! Simulator scenarios for Prime (`stockade sim prime-normal`), built with the `sim` feature.
//!
//! `prime-normal`: N = 3f+1 correct servers on a LAN, each with its own clients submitting
//! updates at a steady rate. Safety checkers run after every output (agreement and total order:
//! every server executes the same slots in the same order with the same content and state), then a
//! liveness phase requires every submitted update to have executed everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use stockade_core::{CostTable, NodeId, Time};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_sim::{
    Checker, Fault, LinkSpec, OutputSink, RunOptions, Scenario, ScenarioError, ScenarioOutcome,
    SimConfig, Topology, World,
};

use crate::app::{Application, ExecutedUpdate, RestoreError};
use crate::auth::{hash_parts, Digest};
use crate::config::{Membership, ParticipantId, PrimeConfig};
use crate::messages::{ClientId, Update};
use crate::replica::{Prime, PrimeOutput};
use crate::threshold_auth::SimulationAuths;

/// A deterministic ledger: counts updates and chains a digest over them. The scenario's
/// application (the KV store is another crate's).
#[derive(Clone, Debug, Default)]
pub struct LedgerApp {
    executed: u64,
    chain: Digest,
}

impl LedgerApp {
    /// Updates executed.
    pub fn executed(&self) -> u64 {
        self.executed
    }
}

impl Application for LedgerApp {
    fn execute(&mut self, updates: &[ExecutedUpdate<'_>], timestamp_ms: u64) -> Vec<Vec<u8>> {
        updates
            .iter()
            .map(|e| {
                self.executed += 1;
                let u = e.update;
                self.chain = hash_parts(
                    b"ledger",
                    &[
                        &self.chain,
                        &u.client.0.to_le_bytes(),
                        &u.seq.to_le_bytes(),
                        &u.op,
                        &timestamp_ms.to_le_bytes(),
                    ],
                );
                self.executed.to_le_bytes().to_vec()
            })
            .collect()
    }
    fn checkpoint(&self) -> Vec<u8> {
        let mut out = self.executed.to_le_bytes().to_vec();
        out.extend_from_slice(&self.chain);
        out
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let (count, chain) = snapshot
            .split_first_chunk::<8>()
            .ok_or_else(|| RestoreError("ledger snapshot shorter than 8 bytes".into()))?;
        self.chain = chain
            .try_into()
            .map_err(|_| RestoreError("ledger chain is not 32 bytes".into()))?;
        self.executed = u64::from_le_bytes(*count);
        Ok(())
    }
    fn digest(&self) -> Digest {
        self.chain
    }
}

/// Slots whose agreed content the agreement checker remembers (64 bytes each).
pub const AGREEMENT_SLOTS_KEPT_MAX: usize = 100_000;

/// Agreement and total order (PRIME.md safety): each server executes slots 1, 2, 3, ... in order,
/// and all servers that execute a slot report the same content and the same state digest. A server
/// restarted after a crash keeps no execution state and executes again from slot 1; its re-run is
/// checked against the same record. The record keeps the latest `AGREEMENT_SLOTS_KEPT_MAX` slots.
pub struct AgreementChecker {
    last_executed: Vec<u64>,
    slots: BTreeMap<u64, (Digest, Digest)>,
}

impl AgreementChecker {
    /// A checker for `n` servers.
    pub fn new(n: usize) -> AgreementChecker {
        AgreementChecker {
            last_executed: vec![0; n],
            slots: BTreeMap::new(),
        }
    }
}

impl Checker<Prime<LedgerApp>> for AgreementChecker {
    fn name(&self) -> &str {
        "prime agreement and total order"
    }

    fn on_output(&mut self, _at: Time, node: NodeId, output: &PrimeOutput) -> Result<(), String> {
        if let PrimeOutput::Jumped { global_seq, state } = output {
            // State transfer: the server continues after the checkpoint, in the agreed state.
            let last = self
                .last_executed
                .get_mut(node.index())
                .ok_or_else(|| format!("output from unknown node {node}"))?;
            *last = *global_seq;
            return match self.slots.get(global_seq) {
                Some((_, agreed)) if agreed != state => Err(format!(
                    "{node} jumped to slot {global_seq} in a state nobody executed to"
                )),
                _ => Ok(()),
            };
        }
        let PrimeOutput::Executed {
            global_seq,
            content,
            state,
            ..
        } = output
        else {
            return Ok(());
        };
        let last = self
            .last_executed
            .get_mut(node.index())
            .ok_or_else(|| format!("output from unknown node {node}"))?;
        if *global_seq == 1 {
            // A fresh start (or a restart: execution state is rebuilt from slot 1).
            *last = 0;
        }
        if *global_seq != *last + 1 {
            return Err(format!(
                "{node} executed slot {global_seq} after slot {last}"
            ));
        }
        *last = *global_seq;
        let agreed = self.slots.entry(*global_seq).or_insert((*content, *state));
        if *agreed != (*content, *state) {
            let how = if agreed.0 == *content {
                "reached a different state"
            } else {
                "executed different content"
            };
            return Err(format!("{node} {how} at slot {global_seq}"));
        }
        if self.slots.len() > AGREEMENT_SLOTS_KEPT_MAX {
            self.slots.pop_first();
        }
        Ok(())
    }
}

const PRIME_NORMAL_ARGS: [&str; 8] = [
    "loss",
    "f",
    "seconds",
    "rate",
    "latency-ms",
    "crypto",
    "op-bytes",
    "crash-server",
];

/// `stockade sim prime-normal`.
pub struct PrimeNormalScenario;

impl Scenario for PrimeNormalScenario {
    fn name(&self) -> &'static str {
        "prime-normal"
    }

    fn description(&self) -> &'static str {
        "Prime with 3f+1 correct servers, every server's clients submitting updates; checks agreement, \
         total order, and that every update executes everywhere \
         [--f 1 --seconds 5 --rate 200 --loss 0 (updates/s per server) --latency-ms 1 --op-bytes 200 --crypto sim-fast|real]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&PRIME_NORMAL_ARGS)?;
        let f = options.u64_arg("f", 1)? as usize;
        let seconds = options.u64_arg("seconds", 5)?;
        let rate = options.u64_arg("rate", 200)?;
        let latency_ms = options.u64_arg("latency-ms", 1)?;
        let op_bytes = options.u64_arg("op-bytes", 200)? as usize;
        let loss = options.f64_arg("loss", 0.0)?;
        // A server to crash at a third of the run and restart from its store at half of it.
        let crash_server = match options.args.get("crash-server") {
            None => None,
            Some(_) => Some(options.u64_arg("crash-server", 0)?),
        };
        let mode = match options.args.get("crypto").map(String::as_str) {
            None | Some("sim-fast") => CryptoMode::SimFast,
            Some("real") => CryptoMode::Real,
            Some(other) => {
                return Err(ScenarioError::BadArgument {
                    name: "crypto".into(),
                    value: other.into(),
                    expected: "sim-fast or real",
                })
            }
        };
        let out_of_range = |name: &str, reason: &str| ScenarioError::OutOfRange {
            name: name.into(),
            reason: reason.into(),
        };
        if !(1..=10).contains(&f) {
            return Err(out_of_range("f", "between 1 and 10 (N = 3f+1 <= 31)"));
        }
        if !(1..=100_000).contains(&rate) {
            return Err(out_of_range(
                "rate",
                "between 1 and 100000 updates per second per server",
            ));
        }
        if !(0.0..=0.2).contains(&loss) {
            return Err(out_of_range("loss", "a probability between 0 and 0.2"));
        }
        if op_bytes > crate::messages::UPDATE_OP_BYTES_MAX {
            return Err(out_of_range("op-bytes", "at most 16384"));
        }
        if crash_server.is_some_and(|s| s > 3 * f as u64) {
            return Err(out_of_range("crash-server", "a server index below 3f+1"));
        }
        let crash_arg = crash_server.map_or(String::new(), |s| format!(" --crash-server {s}"));

        let cfg = PrimeConfig::new(f, 0);
        let n = cfg.quorums.n();
        let mut config = SimConfig::new("prime-normal", options.seed);
        config.repro_command = format!(
            "stockade sim prime-normal --seed {{seed}} --f {f} --seconds {seconds} --rate {rate} --latency-ms {latency_ms} --op-bytes {op_bytes} --crypto {mode} --loss {loss}{crash_arg}"
        );
        config.crypto_mode = mode.describe().to_string();
        config.cost_table = CostTable::design_defaults();
        let topology = Topology::full_mesh(
            n as u32,
            LinkSpec::wan(Duration::from_millis(latency_ms), 1_000_000_000).with_loss(loss),
        );
        let keys = SimulationKeys::new(mode, options.seed);
        let auths = SimulationAuths::deal(&keys, cfg.quorums)
            .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let setup = |e: crate::config::ConfigError| ScenarioError::Setup(e.to_string());
        let membership = Membership::new((0..n as u32).map(NodeId).collect()).map_err(setup)?;
        cfg.validate(&membership).map_err(setup)?;
        let factory_cfg = cfg.clone();
        let mut world = World::new(config, topology, move |id, store| {
            let auth = auths.auth(ParticipantId(id.0 as u16));
            let me = ParticipantId(id.0 as u16);
            // An empty store gives a fresh server; a restarted one recovers what it persisted.
            let recovered = Prime::recover(
                factory_cfg.clone(),
                membership.clone(),
                me,
                Box::new(auth),
                LedgerApp::default(),
                store,
            );
            match recovered {
                Ok(prime) => prime,
                // The configuration was validated above and the store holds only what Prime
                // wrote in this run: failing here is a bug in Prime, and the run must stop.
                Err(e) => panic!("{id}: cannot rebuild Prime in simulation: {e}"),
            }
        })
        .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        world.add_checker(AgreementChecker::new(n));

        // Each server's client c = server id submits update s at s / rate seconds (plus a per-server
        // offset); the latency of a reply is known from (client, seq) alone.
        let interval_ns = 1_000_000_000 / rate;
        let submit_at = move |client: u64, seq: u64| {
            Time::from_nanos(seq * interval_ns + client * interval_ns / n as u64)
        };
        let per_server = seconds * rate;
        // The crashed server's clients are elsewhere: it only takes part in the protocol.
        let client_servers: Vec<u64> = (0..n as u64).filter(|s| Some(*s) != crash_server).collect();
        for &server in &client_servers {
            for seq in 1..=per_server {
                let update = Update {
                    client: ClientId(server),
                    incarnation: 1,
                    seq,
                    reply_to: None,
                    op: vec![seq as u8; op_bytes],
                };
                world.request_at(submit_at(server, seq), NodeId(server as u32), update);
            }
        }
        world.set_output_sink(OutputSink::Handler(Box::new(
            move |at, _node, output, metrics| match output {
                PrimeOutput::Reply(reply) => {
                    metrics.add("replies", 1);
                    let latency = at
                        .as_nanos()
                        .saturating_sub(submit_at(reply.client.0, reply.seq).as_nanos());
                    metrics.record("update_latency_ns", latency);
                }
                PrimeOutput::Executed { updates, .. } => {
                    metrics.add("slots_executed", 1);
                    metrics.add("updates_executed", updates as u64);
                }
                PrimeOutput::Rejected { .. } => metrics.add("rejected", 1),
                PrimeOutput::LeaderSuspected { .. } => metrics.add("leader_suspected", 1),
                PrimeOutput::Jumped { .. } => metrics.add("jumps", 1),
                PrimeOutput::Misbehaviour { .. } | PrimeOutput::NewLeaderProven { .. } => {
                    metrics.add("misbehaviour_or_view_change", 1)
                }
            },
        )));
        if let Some(progress) = &options.progress {
            let progress = progress.clone();
            world.set_progress(Duration::from_secs(1), move |p| progress(p));
        }

        let repro = world.config().repro();
        let total = per_server * client_servers.len() as u64;
        if let Some(server) = crash_server {
            let node = NodeId(server as u32);
            world.schedule_fault(Time::from_millis(seconds * 1000 / 3), Fault::Crash(node));
            world.schedule_fault(Time::from_millis(seconds * 1000 / 2), Fault::Restart(node));
        }
        let safety = world.run_until(Time::from_secs(seconds));
        let liveness = safety.and_then(|()| {
            world.liveness(
                Duration::from_secs(5),
                "every submitted update executed on every server",
                |view| {
                    view.nodes()
                        .all(|node| node.protocol().is_some_and(|p| p.app().executed() == total))
                },
            )
        });
        // Outputs leave a node after its handler's CPU work: let the last replies out.
        let liveness = liveness.and_then(|_| world.run_for(Duration::from_millis(100)));
        let metrics = world.metrics();
        let replies = metrics.counter("replies");
        let latency = metrics
            .histogram("update_latency_ns")
            .cloned()
            .unwrap_or_default();
        let suspected = metrics.counter("leader_suspected");
        let report = world.report(json!({
            "f": f,
            "servers": n,
            "updates_submitted": total,
            "replies": replies,
            "slots_executed_per_server": metrics.counter("slots_executed") / n as u64,
            "throughput_updates_per_s": replies as f64 / seconds as f64,
            "latency_p50_ms": latency.quantile(0.5) as f64 / 1e6,
            "latency_p99_ms": latency.quantile(0.99) as f64 / 1e6,
            "leader_suspected": suspected,
            "jumps": metrics.counter("jumps"),
        }));
        // "Sometimes" checks: a run that executed nothing proves nothing.
        let leader_crashed = crash_server == Some(0);
        let failure = match liveness {
            Err(e) => Some(e.to_string()),
            Ok(_) if replies < total => {
                Some(format!("only {replies} of {total} updates were answered"))
            }
            // The first leader (server 0) crashing must be noticed; otherwise the leader is
            // correct and timely and must never be suspected.
            Ok(_) if leader_crashed && suspected == 0 => {
                Some("the crashed leader was never suspected".to_string())
            }
            Ok(_) if !leader_crashed && suspected > 0 => {
                Some(format!("a correct leader was suspected {suspected} times"))
            }
            Ok(_) => None,
        };
        ScenarioOutcome::from_report(report, options, repro, failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_normal_passes_and_is_reproducible() {
        let options = RunOptions::with_seed(3).arg("seconds", 2).arg("rate", 50);
        let first = PrimeNormalScenario.run(&options).expect("runs");
        assert!(first.passed, "{:?}", first.failure);
        assert_eq!(first.headline["updates_submitted"], 400);
        assert_eq!(first.headline["replies"], 400);
        let second = PrimeNormalScenario.run(&options).expect("runs");
        assert_eq!(
            first.headline["digest"], second.headline["digest"],
            "same seed, same run"
        );
    }

    /// A server crashed mid-run restarts from what it persisted, catches up, and the run stays in
    /// agreement; the interesting event (the crash and a restart that then executed) did happen.
    #[test]
    fn crashed_server_recovers_and_catches_up() {
        let options = RunOptions::with_seed(5)
            .arg("seconds", 3)
            .arg("rate", 40)
            .arg("crash-server", 2);
        let outcome = PrimeNormalScenario.run(&options).expect("runs");
        assert!(outcome.passed, "{:?}", outcome.failure);
        assert_eq!(outcome.headline["updates_submitted"], 360);
        assert_eq!(outcome.headline["replies"], 360);
        assert!(outcome.repro.contains("--crash-server 2"));
    }

    /// With 1% message loss on every link, the repairs (votes sent again for a stuck slot,
    /// requests and acks sent again to peers whose summaries lag) keep every update executing.
    #[test]
    fn lossy_links_still_execute_everything() {
        for seed in 1..=3 {
            let options = RunOptions::with_seed(seed)
                .arg("seconds", 2)
                .arg("rate", 50)
                .arg("loss", 0.01);
            let outcome = PrimeNormalScenario.run(&options).expect("runs");
            assert!(outcome.passed, "seed {seed}: {:?}", outcome.failure);
            assert!(
                outcome.headline["dropped"].as_u64().unwrap_or(0) > 0,
                "seed {seed}: messages were lost"
            );
        }
    }

    /// At a higher rate the peers have forgotten the PO-REQUESTs the restarted server needs, so it
    /// must JUMP to a stable checkpoint; the checker verifies the state it jumped to.
    #[test]
    fn crashed_server_far_behind_jumps_to_a_checkpoint() {
        let options = RunOptions::with_seed(1)
            .arg("seconds", 3)
            .arg("rate", 200)
            .arg("crash-server", 1);
        let outcome = PrimeNormalScenario.run(&options).expect("runs");
        assert!(outcome.passed, "{:?}", outcome.failure);
        assert!(
            outcome.headline["jumps"].as_u64().unwrap_or(0) >= 1,
            "the restarted server jumped"
        );
    }

    #[test]
    fn agreement_checker_catches_divergence_and_gaps() {
        let mut checker = AgreementChecker::new(2);
        let executed = |seq, content: u8| PrimeOutput::Executed {
            global_seq: seq,
            content: [content; 32],
            updates: 1,
            state: [0; 32],
        };
        assert!(checker
            .on_output(Time::ZERO, NodeId(0), &executed(1, 1))
            .is_ok());
        assert!(
            checker
                .on_output(Time::ZERO, NodeId(1), &executed(1, 2))
                .is_err(),
            "divergence"
        );
        assert!(
            checker
                .on_output(Time::ZERO, NodeId(0), &executed(3, 1))
                .is_err(),
            "gap"
        );
        let restart = checker.on_output(Time::ZERO, NodeId(0), &executed(1, 1));
        assert!(restart.is_ok(), "a restart executes again from slot 1");
        let diverging = checker.on_output(Time::ZERO, NodeId(1), &executed(1, 3));
        assert!(
            diverging.is_err(),
            "a restarted run is checked against the record too"
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        let unknown = PrimeNormalScenario.run(&RunOptions::with_seed(1).arg("nodes", 4));
        assert!(matches!(
            unknown,
            Err(ScenarioError::UnknownArgument { .. })
        ));
        let crypto = PrimeNormalScenario.run(&RunOptions::with_seed(1).arg("crypto", "rsa"));
        assert!(matches!(crypto, Err(ScenarioError::BadArgument { .. })));
    }
}
