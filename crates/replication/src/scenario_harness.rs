//! What the attack, recovery and fuzz scenarios of [`crate::scenario_attacks`] share: building a
//! simulated Prime cluster (with per-server attack switches), submitting a steady client load,
//! running the safety phase and the liveness phase, and checking the client history.
//!
//! The history check is linearizability as far as the ledger's history allows: every reply
//! carries the update's position in the one total order (the ledger's count after it), so
//! positions must be distinct across all replies, each client's positions must rise with its
//! sequence numbers, and an update submitted after another's reply arrived must be ordered after
//! it (real-time order).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use stockade_core::{CostTable, NodeId, Time};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_sim::{LinkSpec, OutputSink, RunOptions, ScenarioError, SimConfig, Topology, World};

use crate::attack::Attack;
use crate::config::{Membership, ParticipantId, PrimeConfig};
use crate::messages::{ClientId, Update};
use crate::replica::{Prime, PrimeOutput};
use crate::scenarios::{AgreementChecker, LedgerApp};
use crate::threshold_auth::SimulationAuths;

/// Replies whose history the linearizability check keeps (40 bytes each).
pub const HISTORY_REPLIES_MAX: usize = 1_000_000;

/// A simulated Prime cluster under a client load.
pub struct ClusterSpec {
    /// Scenario name (for the simulator's configuration).
    pub name: &'static str,
    /// Protocol configuration (its `f` fixes N).
    pub cfg: PrimeConfig,
    /// Seconds of client load (the safety phase).
    pub seconds: u64,
    /// Updates per second per client host.
    pub rate: u64,
    /// One-way link latency.
    pub latency: Duration,
    /// Per-link loss probability.
    pub loss: f64,
    /// Servers whose clients submit updates.
    pub client_hosts: Vec<u32>,
    /// Byzantine servers and how they misbehave.
    pub attacks: BTreeMap<u32, Attack>,
    /// `stockade sim ...` with `{seed}` for the seed.
    pub repro_command: String,
    /// How long the liveness phase may take once faults are healed.
    pub liveness_within: Duration,
}

/// One client reply seen by the scenario.
#[derive(Clone, Copy, Debug)]
struct HistoryEntry {
    client: u64,
    seq: u64,
    position: u64,
    replied_at: Time,
}

/// A built cluster, ready for faults to be scheduled on it.
pub struct Cluster {
    /// The simulated world.
    pub world: World<Prime<LedgerApp>>,
    spec_seconds: u64,
    total: u64,
    submit_at: std::sync::Arc<dyn Fn(u64, u64) -> Time + Send + Sync>,
    history: std::rc::Rc<std::cell::RefCell<Vec<HistoryEntry>>>,
    /// The first misbehaviour report against a server without attack switches.
    false_accusation: std::rc::Rc<std::cell::RefCell<Option<String>>>,
}

/// What a finished run measured.
pub struct ClusterOutcome {
    /// Headline fields common to all Prime scenarios.
    pub fields: Value,
    /// A safety, liveness or history failure, if any.
    pub failure: Option<String>,
    /// Replies received.
    pub replies: u64,
    /// NEW-LEADER proofs seen (a view change started), summed over servers.
    pub view_changes: u64,
    /// JUMPs (state transfers), summed over servers.
    pub jumps: u64,
    /// Misbehaviour reports, summed over servers.
    pub misbehaviour_reports: u64,
    /// Leader suspicions, summed over servers.
    pub leader_suspicions: u64,
    /// Update latency (submission to reply), in nanoseconds, p50 and p99.
    pub latency_p50_ns: u64,
    /// See `latency_p50_ns`.
    pub latency_p99_ns: u64,
    /// PO certificates sent by reconciliation (live servers' counters at the end).
    pub reconciliation_sends: u64,
    /// The report, for the headline and CSV files.
    pub report: stockade_sim::Report,
}

/// The crypto mode of `--crypto` (default sim-fast).
pub fn crypto_mode(options: &RunOptions) -> Result<CryptoMode, ScenarioError> {
    match options.args.get("crypto").map(String::as_str) {
        None | Some("sim-fast") => Ok(CryptoMode::SimFast),
        Some("real") => Ok(CryptoMode::Real),
        Some(other) => Err(ScenarioError::BadArgument {
            name: "crypto".into(),
            value: other.into(),
            expected: "sim-fast or real",
        }),
    }
}

impl Cluster {
    /// Build the cluster of `spec` for `options.seed`, with its client load scheduled.
    pub fn build(
        spec: &ClusterSpec,
        options: &RunOptions,
        mode: CryptoMode,
    ) -> Result<Cluster, ScenarioError> {
        let cfg = spec.cfg.clone();
        let n = cfg.quorums.n();
        let mut config = SimConfig::new(spec.name, options.seed);
        config.repro_command = spec.repro_command.clone();
        config.crypto_mode = mode.describe().to_string();
        config.cost_table = CostTable::design_defaults();
        let topology = Topology::full_mesh(
            n as u32,
            LinkSpec::wan(spec.latency, 1_000_000_000).with_loss(spec.loss),
        );
        let keys = SimulationKeys::new(mode, options.seed);
        let auths = SimulationAuths::deal(&keys, cfg.quorums)
            .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let setup = |e: crate::config::ConfigError| ScenarioError::Setup(e.to_string());
        let membership = Membership::new((0..n as u32).map(NodeId).collect()).map_err(setup)?;
        cfg.validate(&membership).map_err(setup)?;
        let attacks = spec.attacks.clone();
        let mut world = World::new(config, topology, move |id, store| {
            let auth = auths.auth(ParticipantId(id.0 as u16));
            let recovered = Prime::recover(
                cfg.clone(),
                membership.clone(),
                ParticipantId(id.0 as u16),
                Box::new(auth),
                LedgerApp::default(),
                store,
            );
            match recovered {
                Ok(mut prime) => {
                    if let Some(attack) = attacks.get(&id.0) {
                        prime.set_attack(attack.clone());
                    }
                    prime
                }
                // Validated configuration, store written only by Prime in this run: a failure is a
                // bug in Prime, and the run must stop.
                Err(e) => panic!("{id}: cannot rebuild Prime in simulation: {e}"),
            }
        })
        .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        world.add_checker(AgreementChecker::new(n));

        let interval_ns = 1_000_000_000 / spec.rate.max(1);
        let submit_at = std::sync::Arc::new(move |client: u64, seq: u64| {
            Time::from_nanos(seq * interval_ns + client * interval_ns / n as u64)
        });
        let per_host = spec.seconds * spec.rate;
        for &host in &spec.client_hosts {
            for seq in 1..=per_host {
                let update = Update {
                    client: ClientId(u64::from(host)),
                    incarnation: 1,
                    seq,
                    reply_to: None,
                    op: vec![seq as u8; 100],
                };
                world.request_at(submit_at(u64::from(host), seq), NodeId(host), update);
            }
        }
        let history = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink_history = history.clone();
        let sink_submit = submit_at.clone();
        let false_accusation = std::rc::Rc::new(std::cell::RefCell::new(None));
        let sink_false_accusation = false_accusation.clone();
        let byzantine: Vec<u32> = spec.attacks.keys().copied().collect();
        world.set_output_sink(OutputSink::Handler(Box::new(
            move |at, node, output, metrics| match output {
                PrimeOutput::Reply(reply) => {
                    metrics.add("replies", 1);
                    let latency = at
                        .as_nanos()
                        .saturating_sub(sink_submit(reply.client.0, reply.seq).as_nanos());
                    metrics.record("update_latency_ns", latency);
                    let position = reply
                        .result
                        .first_chunk::<8>()
                        .map_or(0, |b| u64::from_le_bytes(*b));
                    let mut history = sink_history.borrow_mut();
                    if history.len() < HISTORY_REPLIES_MAX {
                        history.push(HistoryEntry {
                            client: reply.client.0,
                            seq: reply.seq,
                            position,
                            replied_at: at,
                        });
                    }
                }
                PrimeOutput::Executed { .. } => metrics.add("slots_executed", 1),
                PrimeOutput::Rejected { .. } => metrics.add("rejected", 1),
                PrimeOutput::LeaderSuspected { .. } => metrics.add("leader_suspected", 1),
                PrimeOutput::Jumped { .. } => metrics.add("jumps", 1),
                PrimeOutput::Misbehaviour {
                    participant,
                    evidence,
                } => {
                    metrics.add("misbehaviour_reports", 1);
                    // Only the attack switches make a server misbehave: evidence against any
                    // other is a false accusation, a protocol bug (safety of the accuser's logic).
                    if !byzantine.contains(&u32::from(participant.0)) {
                        metrics.add("false_accusations", 1);
                        let mut first = sink_false_accusation.borrow_mut();
                        if first.is_none() {
                            *first = Some(format!(
                                "{node} accused correct server {participant:?} at {at}: {evidence:?}"
                            ));
                        }
                    }
                }
                PrimeOutput::NewLeaderProven { .. } => metrics.add("view_changes", 1),
            },
        )));
        if let Some(progress) = &options.progress {
            let progress = progress.clone();
            world.set_progress(Duration::from_secs(1), move |p| progress(p));
        }
        Ok(Cluster {
            world,
            spec_seconds: spec.seconds,
            total: per_host * spec.client_hosts.len() as u64,
            submit_at,
            history,
            false_accusation,
        })
    }

    /// Run the safety phase, the liveness phase (every update executed on every server), and the
    /// history check; collect the common figures.
    pub fn finish(mut self, liveness_within: Duration, extra: Value) -> ClusterOutcome {
        let total = self.total;
        let safety = self.world.run_until(Time::from_secs(self.spec_seconds));
        let liveness = safety.and_then(|()| {
            self.world.liveness(
                liveness_within,
                "every submitted update executed on every server",
                |view| {
                    view.nodes()
                        .all(|node| node.protocol().is_some_and(|p| p.app().executed() == total))
                },
            )
        });
        let liveness = liveness.and_then(|_| self.world.run_for(Duration::from_millis(100)));
        let reconciliation_sends = self
            .world
            .view()
            .nodes()
            .filter_map(|node| node.protocol().map(|p| p.activity().reconciliation_sends))
            .sum();
        let history_failure = check_history(&self.history.borrow(), total, &*self.submit_at);
        let metrics = self.world.metrics();
        let replies = metrics.counter("replies");
        let latency = metrics
            .histogram("update_latency_ns")
            .cloned()
            .unwrap_or_default();
        let (p50, p99) = (latency.quantile(0.5), latency.quantile(0.99));
        let n = self.world.node_count() as u64;
        let mut fields = json!({
            "updates_submitted": total,
            "replies": replies,
            "slots_executed_per_server": metrics.counter("slots_executed") / n.max(1),
            "latency_p50_ms": p50 as f64 / 1e6,
            "latency_p99_ms": p99 as f64 / 1e6,
            "leader_suspicions": metrics.counter("leader_suspected"),
            "rejected": metrics.counter("rejected"),
            "view_changes": metrics.counter("view_changes"),
            "misbehaviour_reports": metrics.counter("misbehaviour_reports"),
            "false_accusations": metrics.counter("false_accusations"),
            "state_transfers": metrics.counter("jumps"),
            "reconciliation_sends": reconciliation_sends,
        });
        if let (Value::Object(fields), Value::Object(extra)) = (&mut fields, extra) {
            fields.extend(extra);
        }
        let false_accusation = self.false_accusation.borrow().clone();
        let failure = match liveness {
            _ if false_accusation.is_some() => false_accusation,
            Err(e) => Some(format!("{e}; servers at the end: {}", self.server_states())),
            Ok(()) if replies < total => {
                Some(format!("only {replies} of {total} updates were answered"))
            }
            Ok(()) => history_failure,
        };
        ClusterOutcome {
            failure,
            replies,
            view_changes: metrics.counter("view_changes"),
            jumps: metrics.counter("jumps"),
            misbehaviour_reports: metrics.counter("misbehaviour_reports"),
            leader_suspicions: metrics.counter("leader_suspected"),
            latency_p50_ns: p50,
            latency_p99_ns: p99,
            reconciliation_sends,
            report: self.world.report(fields.clone()),
            fields,
        }
    }
}

impl Cluster {
    /// Each server's view, whether it is installing one, its last executed slot and the updates
    /// it executed (for failure messages).
    fn server_states(&self) -> String {
        self.world
            .view()
            .nodes()
            .filter_map(|node| node.protocol())
            .map(|p| {
                format!(
                    "[view {}{}, slot {}, {} updates]",
                    p.view(),
                    if p.installing_view() {
                        " (installing)"
                    } else {
                        ""
                    },
                    p.executed_seq(),
                    p.app().executed()
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The linearizability check of the module documentation; `None` when the history passes.
fn check_history(
    history: &[HistoryEntry],
    total: u64,
    submit_at: &dyn Fn(u64, u64) -> Time,
) -> Option<String> {
    let mut by_position: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut latest: BTreeMap<(u64, u64), HistoryEntry> = BTreeMap::new();
    for entry in history {
        if entry.position == 0 || entry.position > total {
            return Some(format!(
                "client {} update {} replied with position {} outside 1..={total}",
                entry.client, entry.seq, entry.position
            ));
        }
        if let Some(other) = by_position.insert(entry.position, (entry.client, entry.seq)) {
            if other != (entry.client, entry.seq) {
                return Some(format!(
                    "updates {other:?} and {:?} were both ordered at position {}",
                    (entry.client, entry.seq),
                    entry.position
                ));
            }
        }
        latest.insert((entry.client, entry.seq), *entry);
    }
    // Per client, positions rise with sequence numbers (client order is kept).
    let mut previous: Option<HistoryEntry> = None;
    for entry in latest.values() {
        if let Some(p) = previous.filter(|p| p.client == entry.client) {
            if p.position >= entry.position {
                return Some(format!(
                    "client {} update {} ordered at {} before its update {} at {}",
                    entry.client, entry.seq, entry.position, p.seq, p.position
                ));
            }
        }
        previous = Some(*entry);
    }
    // Real time: an update submitted after another was answered is ordered after it. Sorting by
    // reply time, the earliest-answered update's position must be below every update submitted
    // after that reply; checking against the running maximum of answered positions suffices.
    let mut answered: Vec<&HistoryEntry> = latest.values().collect();
    answered.sort_by_key(|e| e.replied_at);
    let mut submitted: Vec<&HistoryEntry> = latest.values().collect();
    submitted.sort_by_key(|e| submit_at(e.client, e.seq));
    let mut max_answered = 0;
    let mut next_answer = 0;
    for entry in submitted {
        let at = submit_at(entry.client, entry.seq);
        while next_answer < answered.len() && answered[next_answer].replied_at < at {
            max_answered = max_answered.max(answered[next_answer].position);
            next_answer += 1;
        }
        if entry.position <= max_answered {
            return Some(format!(
                "client {} update {} submitted after position {max_answered} was answered, yet ordered at {}",
                entry.client, entry.seq, entry.position
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: u64, seq: u64, position: u64, replied_ms: u64) -> HistoryEntry {
        HistoryEntry {
            client,
            seq,
            position,
            replied_at: Time::from_millis(replied_ms),
        }
    }

    #[test]
    fn history_check_catches_duplicates_reorders_and_real_time_violations() {
        let submit = |_client: u64, seq: u64| Time::from_millis(seq * 10);
        let good = [entry(1, 1, 1, 15), entry(1, 2, 2, 25)];
        assert_eq!(check_history(&good, 2, &submit), None);
        let duplicate = [entry(1, 1, 1, 15), entry(2, 1, 1, 15)];
        assert!(check_history(&duplicate, 2, &submit).is_some());
        let reordered = [entry(1, 1, 2, 15), entry(1, 2, 1, 25)];
        assert!(check_history(&reordered, 2, &submit).is_some());
        // Client 2's update 3 is submitted at 30 ms, after client 1's position 3 was answered at
        // 12 ms, yet ordered before it.
        let stale = [entry(1, 1, 3, 12), entry(2, 3, 2, 40)];
        assert!(check_history(&stale, 3, &submit).is_some());
    }
}
