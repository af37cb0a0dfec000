//! The `broadcast` and `broadcast-byzantine` simulation scenarios: a committee runs Bracha
//! broadcast under the simulator, first with faults (safety phase, checked after every event),
//! then healed until every correct node delivered everything (liveness phase).
//!
//! `broadcast-byzantine` adds link loss, one Byzantine node (the simulator's [`Byzantine`]
//! wrapper replaying [`crate::attack`], and corrupting some packets' bytes) and, when
//! `f >= 2`, one node that crashes mid-run.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use stockade_broadcast::{
    BrachaBroadcast, BroadcastConfig, BroadcastMessage, BroadcastRequest, BroadcastStats, KeyRing,
};
use stockade_core::{CostTable, NodeId, Time};
use stockade_crypto::CryptoMode;
use stockade_sim::{
    Byzantine, Corruption, Fault, Histogram, LinkSpec, RunOptions, Scenario, ScenarioError,
    ScenarioOutcome, SimConfig, Topology, World,
};

use super::checkers::{AgreementChecker, DeliveryLog, SharedLog};
use crate::attack::equivocate;

/// Time between two broadcasts of one origin.
const BROADCAST_INTERVAL: Duration = Duration::from_millis(10);
/// One-way latency of every link.
const LINK_LATENCY: Duration = Duration::from_millis(5);
/// Bandwidth of every link.
const LINK_BANDWIDTH_BPS: u64 = 100_000_000;
/// How long after healing every correct node must have delivered everything.
const LIVENESS_WITHIN: Duration = Duration::from_secs(30);

/// Which of the two scenarios.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BroadcastScenario {
    /// `broadcast-byzantine` when true, `broadcast` when false.
    pub byzantine: bool,
}

/// A run's parameters, parsed from `--name value` arguments.
#[derive(Clone, Debug)]
struct Plan {
    f: usize,
    messages: u64,
    payload_bytes: usize,
    loss: f64,
    byzantine: Option<NodeId>,
    crashed: Option<NodeId>,
    crypto: CryptoMode,
}

impl Plan {
    fn parse(byzantine: bool, options: &RunOptions) -> Result<Plan, ScenarioError> {
        options.reject_unknown(&["f", "messages", "payload-bytes", "loss", "crypto"])?;
        let f = options.u64_arg("f", if byzantine { 2 } else { 1 })? as usize;
        let messages = options.u64_arg("messages", 20)?;
        let payload_bytes = options.u64_arg("payload-bytes", 100)? as usize;
        let loss = options.f64_arg("loss", if byzantine { 0.05 } else { 0.0 })?;
        let out_of_range = |name: &str, reason: &str| ScenarioError::OutOfRange {
            name: name.into(),
            reason: reason.into(),
        };
        if !(1..=10).contains(&f) {
            return Err(out_of_range("f", "between 1 and 10"));
        }
        if !(1..=1000).contains(&messages) {
            return Err(out_of_range("messages", "between 1 and 1000"));
        }
        if !(16..=stockade_broadcast::PAYLOAD_BYTES_MAX).contains(&payload_bytes) {
            return Err(out_of_range("payload-bytes", "between 16 and 61440"));
        }
        let crypto = match options.args.get("crypto").map(String::as_str) {
            None | Some("real") => CryptoMode::Real,
            Some("sim-fast") => CryptoMode::SimFast,
            Some(_) => return Err(out_of_range("crypto", "`real` or `sim-fast`")),
        };
        if !(0.0..0.5).contains(&loss) {
            return Err(out_of_range("loss", "a probability below 0.5"));
        }
        let n = 3 * f + 1;
        let last = NodeId(n as u32 - 1);
        Ok(Plan {
            f,
            messages,
            payload_bytes,
            loss,
            byzantine: byzantine.then_some(last),
            // One Byzantine node and one crash are two faults: only when f allows it.
            crashed: (byzantine && f >= 2).then_some(NodeId(n as u32 - 2)),
            crypto,
        })
    }

    fn n(&self) -> usize {
        3 * self.f + 1
    }

    /// Nodes that stay correct and up for the whole run: validity and totality are about them.
    fn correct(&self) -> Vec<NodeId> {
        (0..self.n() as u32)
            .map(NodeId)
            .filter(|id| Some(*id) != self.byzantine && Some(*id) != self.crashed)
            .collect()
    }

    fn faulty(&self) -> BTreeSet<NodeId> {
        self.byzantine.into_iter().collect()
    }

    /// When the crash happens: a third of the way through the workload.
    fn crash_at(&self) -> Time {
        Time::ZERO + BROADCAST_INTERVAL * (self.messages as u32 / 3).max(1)
    }
}

/// The payload origin `origin` broadcasts as its `seq`-th message.
fn payload(origin: NodeId, seq: u64, bytes: usize) -> Vec<u8> {
    let mut p = format!("{origin}/{seq}/").into_bytes();
    p.resize(bytes.max(p.len()), b'.');
    p
}

impl Scenario for BroadcastScenario {
    fn name(&self) -> &'static str {
        if self.byzantine {
            "broadcast-byzantine"
        } else {
            "broadcast"
        }
    }

    fn description(&self) -> &'static str {
        if self.byzantine {
            "Bracha broadcast with link loss, one equivocating and packet-corrupting Byzantine node and \
             (f >= 2) one crash; agreement, validity, totality. Args: --f 2 --messages 20 \
             --payload-bytes 100 --loss 0.05 --crypto real|sim-fast"
        } else {
            "Bracha reliable broadcast among n = 3f+1 nodes, fault-free; agreement, validity, totality. \
             Args: --f 1 --messages 20 --payload-bytes 100 --loss 0 --crypto real|sim-fast"
        }
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        let plan = Plan::parse(self.byzantine, options)?;
        run_plan(self.name(), &plan, options)
    }
}

fn run_plan(
    name: &str,
    plan: &Plan,
    options: &RunOptions,
) -> Result<ScenarioOutcome, ScenarioError> {
    let n = plan.n();
    let bcast = BroadcastConfig::for_faults(plan.f);
    bcast
        .validate()
        .map_err(|e| ScenarioError::Setup(e.to_string()))?;
    // Keys come from the seed too: the run is reproducible from `--seed` alone.
    let keys = KeyRing::for_simulation(n, options.seed, plan.crypto);

    let mut config = SimConfig::new(name, options.seed);
    config.repro_command = format!(
        "stockade sim {name} --seed {{seed}} --f {} --messages {} --payload-bytes {} --loss {} --crypto {}",
        plan.f,
        plan.messages,
        plan.payload_bytes,
        plan.loss,
        match plan.crypto {
            CryptoMode::Real => "real",
            CryptoMode::SimFast => "sim-fast",
        }
    );
    config.crypto_mode = plan.crypto.describe().to_string();
    config.cost_table = CostTable::design_defaults();
    let spec = LinkSpec::wan(LINK_LATENCY, LINK_BANDWIDTH_BPS).with_loss(plan.loss);
    let topology = Topology::full_mesh(n as u32, spec);
    let factory_keys = keys.clone();
    let factory_config = bcast.clone();
    let mut world = World::new(config, topology, move |id, _store| {
        BrachaBroadcast::new(factory_config.clone(), factory_keys[id.index()].clone())
            .expect("configuration and keys validated before the world was built")
    })
    .map_err(|e| ScenarioError::Setup(e.to_string()))?;

    let log: SharedLog = Rc::new(RefCell::new(DeliveryLog::default()));
    world.add_checker(AgreementChecker::new(log.clone(), plan.faulty()));
    if let Some(bad) = plan.byzantine {
        let bad_keys = keys[bad.index()].clone();
        let adversary = Byzantine::new()
            .equivocate(move |to, m: &BroadcastMessage, _rng| equivocate(&bad_keys, to, m))
            .corrupt(0.05, Corruption::FlipByte);
        world
            .set_adversary(bad, adversary)
            .map_err(|e| ScenarioError::Setup(e.to_string()))?;
    }
    if let Some(crashed) = plan.crashed {
        world.schedule_fault(plan.crash_at(), Fault::Crash(crashed));
    }
    for seq in 0..plan.messages {
        let at = Time::ZERO + BROADCAST_INTERVAL * seq as u32;
        for origin in 0..n as u32 {
            let payload = payload(NodeId(origin), seq, plan.payload_bytes);
            world.request_at(at, NodeId(origin), BroadcastRequest { payload });
        }
    }
    if let Some(progress) = &options.progress {
        let progress = progress.clone();
        world.set_progress(Duration::from_millis(100), move |p| progress(p));
    }

    let repro = world.config().repro();
    let workload_end = Time::ZERO + BROADCAST_INTERVAL * plan.messages as u32;
    let correct = plan.correct();
    // Byzantine origins promise nothing; a crashed origin's broadcasts after its crash never start.
    let origins = correct.clone();
    let payload_bytes = plan.payload_bytes;
    let expected = move |origin: NodeId, seq: u64| payload(origin, seq, payload_bytes);

    // Safety phase: faults active, checkers after every event.
    let mut result = world.run_until(workload_end + Duration::from_secs(1));
    // Liveness phase: heal, then every correct node must deliver everything (validity) and the
    // same set (totality).
    let mut live_at = None;
    if result.is_ok() {
        let goal =
            "every correct node delivered every correct origin's broadcasts, and the same set";
        let (c, o, m, e) = (correct.clone(), origins.clone(), plan.messages, expected);
        let log_view = log.clone();
        match world.liveness(LIVENESS_WITHIN, goal, move |_| {
            log_view.borrow().complete(&c, &o, m, e)
        }) {
            Ok(at) => live_at = Some(at),
            Err(e) => result = Err(e),
        }
    }
    // Name the property that does not hold (after a liveness timeout too: it says which).
    let unmet = {
        let log = log.borrow();
        log.check_validity(&correct, &origins, plan.messages, expected)
            .and_then(|()| log.check_totality(&correct))
            .err()
    };
    let failure = match (result, unmet) {
        (Err(e), Some(unmet)) => Some(format!("{unmet}\n{e}")),
        (Err(e), None) => Some(e.to_string()),
        (Ok(()), Some(unmet)) => Some(format!("{unmet}\nreproduce with: {repro}")),
        (Ok(()), None) => None,
    };

    let headline = headline(&world, plan, &log.borrow(), &correct, live_at);
    ScenarioOutcome::from_report(world.report(headline), options, repro, failure)
}

/// The scenario's headline figures: deliveries, throughput, latency, and what was detected.
fn headline(
    world: &World<BrachaBroadcast>,
    plan: &Plan,
    log: &DeliveryLog,
    correct: &[NodeId],
    live_at: Option<Time>,
) -> serde_json::Value {
    let mut latency = Histogram::new();
    let mut deliveries = 0u64;
    let mut last_delivery = Time::ZERO;
    let mut byzantine_delivered = BTreeSet::new();
    for node in correct {
        for (id, (at, _)) in log.delivered.get(node).into_iter().flatten() {
            deliveries += 1;
            last_delivery = last_delivery.max(*at);
            if Some(id.origin) == plan.byzantine {
                byzantine_delivered.insert(*id);
                continue;
            }
            let requested = Time::ZERO + BROADCAST_INTERVAL * id.seq as u32;
            latency.record(at.since(requested).as_nanos() as u64);
        }
    }
    let mut seen = BroadcastStats::default();
    for node in correct {
        if let Some(p) = world.protocol(*node) {
            let s = p.stats();
            seen.equivocations_detected += s.equivocations_detected;
            seen.conflicting_votes += s.conflicting_votes;
            seen.invalid_signatures += s.invalid_signatures;
            seen.retransmissions += s.retransmissions;
            seen.catch_up_replies += s.catch_up_replies;
        }
    }
    let active = last_delivery.as_secs_f64().max(1e-9);
    json!({
        "n": plan.n(),
        "f": plan.f,
        "messages_per_origin": plan.messages,
        "payload_bytes": plan.payload_bytes,
        "loss": plan.loss,
        "byzantine_node": plan.byzantine.map(|b| b.0),
        "crashed_node": plan.crashed.map(|c| c.0),
        "deliveries_at_correct_nodes": deliveries,
        "deliveries_per_sec": deliveries as f64 / active,
        "latency_p50_ms": latency.quantile(0.5) as f64 / 1e6,
        "latency_p99_ms": latency.quantile(0.99) as f64 / 1e6,
        "liveness_reached_at_s": live_at.map(Time::as_secs_f64),
        "byzantine_broadcasts_delivered": byzantine_delivered.len(),
        "detected_equivocations": seen.equivocations_detected,
        "detected_conflicting_votes": seen.conflicting_votes,
        "detected_invalid_signatures": seen.invalid_signatures,
        "retransmissions": seen.retransmissions,
        "catch_up_replies": seen.catch_up_replies,
    })
}
