//! Whole committees over an in-memory network: fault-free, lossy, with a crashed node, and with
//! an equivocating origin. Checks validity, agreement and totality at the end of each run.

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stockade_core::{Effect, NodeId, Protocol, Time};

use super::{committee_keys, node, signed, Driver};
use crate::{
    BroadcastConfig, BroadcastMessage, BroadcastOutput, BroadcastRequest, BroadcastTimer,
    InstanceId, Phase,
};

/// A committee whose messages travel through one FIFO queue, losing each with `loss_percent`.
struct Committee {
    nodes: Vec<Driver>,
    /// Nodes whose protocol does not run: crashed, or Byzantine with scripted messages.
    silent: Vec<bool>,
    queue: VecDeque<(NodeId, NodeId, BroadcastMessage)>,
    timers: Vec<Option<Time>>,
    delivered: Vec<BTreeMap<InstanceId, Vec<u8>>>,
    loss_percent: u32,
    rng: ChaCha8Rng,
    now: Time,
    messages_lost: u64,
}

impl Committee {
    fn new(f: usize, loss_percent: u32, seed: u64) -> Committee {
        let config = BroadcastConfig::for_faults(f);
        let keys = committee_keys(config.n);
        let nodes = (0..config.n as u32)
            .map(|i| Driver::new(node(&config, &keys, i)))
            .collect();
        Committee {
            nodes,
            silent: vec![false; config.n],
            queue: VecDeque::new(),
            timers: vec![None; config.n],
            delivered: vec![BTreeMap::new(); config.n],
            loss_percent,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: Time::ZERO,
            messages_lost: 0,
        }
    }

    fn apply(&mut self, at: usize, effects: Vec<Effect<crate::BrachaBroadcast>>) {
        for effect in effects {
            match effect {
                Effect::Send { to, message, .. } => {
                    self.queue.push_back((NodeId(at as u32), to, message))
                }
                Effect::SetTimer { at: deadline, .. } => self.timers[at] = Some(deadline),
                Effect::CancelTimer { .. } => self.timers[at] = None,
                Effect::Deliver(BroadcastOutput::Delivered { instance, payload }) => {
                    let previous = self.delivered[at].insert(instance, payload);
                    assert!(
                        previous.is_none(),
                        "integrity: n{at} delivered {instance:?} twice"
                    );
                }
                Effect::Deliver(BroadcastOutput::Refused { .. }) => {
                    panic!("no request is refused here")
                }
                Effect::Persist { .. } | Effect::Charge(_) => {}
            }
        }
    }

    fn request(&mut self, at: usize, payload: Vec<u8>) {
        let effects = self.nodes[at].call(|n, cx| n.on_request(cx, BroadcastRequest { payload }));
        self.apply(at, effects);
    }

    /// Run until nothing is queued and no timer is pending, or `deadline` passes.
    fn run(&mut self, deadline: Time) {
        while self.now < deadline {
            if let Some((from, to, message)) = self.queue.pop_front() {
                if self.rng.next_u32() % 100 < self.loss_percent {
                    self.messages_lost += 1;
                    continue;
                }
                let at = to.index();
                if self.silent[at] {
                    continue;
                }
                self.nodes[at].now = self.now;
                let effects = self.nodes[at].message(from.0, message);
                self.apply(at, effects);
                continue;
            }
            let next = (0..self.nodes.len())
                .filter(|i| !self.silent[*i])
                .filter_map(|i| self.timers[i].map(|t| (t, i)))
                .min();
            let Some((at_time, at)) = next else { return };
            self.now = at_time;
            self.timers[at] = None;
            self.nodes[at].now = self.now;
            let effects = self.nodes[at].call(|n, cx| n.on_timer(cx, BroadcastTimer::Retransmit));
            self.apply(at, effects);
        }
    }

    fn correct(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| !self.silent[*i]).collect()
    }

    /// Agreement: no two correct nodes deliver different payloads for one broadcast.
    fn check_agreement(&self) {
        let mut first: BTreeMap<InstanceId, (usize, &Vec<u8>)> = BTreeMap::new();
        for i in self.correct() {
            for (id, payload) in &self.delivered[i] {
                let (j, other) = *first.entry(*id).or_insert((i, payload));
                assert_eq!(
                    payload, other,
                    "agreement: n{i} and n{j} delivered different payloads for {id:?}"
                );
            }
        }
    }

    /// Totality: what one correct node delivered, every correct node delivered.
    fn check_totality(&self) {
        let correct = self.correct();
        for &i in &correct {
            for &j in &correct {
                let missing: Vec<_> = self.delivered[i]
                    .keys()
                    .filter(|id| !self.delivered[j].contains_key(id))
                    .collect();
                assert!(
                    missing.is_empty(),
                    "totality: n{j} lacks {missing:?} that n{i} delivered"
                );
            }
        }
    }
}

fn payload(origin: usize, k: usize) -> Vec<u8> {
    format!("n{origin} message {k}").into_bytes()
}

/// Validity: every correct node delivered every correct origin's `per_origin` broadcasts.
fn check_validity(c: &Committee, per_origin: usize) {
    for i in c.correct() {
        for origin in c.correct() {
            for k in 0..per_origin {
                let id = InstanceId {
                    origin: NodeId(origin as u32),
                    seq: k as u64,
                };
                assert_eq!(
                    c.delivered[i].get(&id),
                    Some(&payload(origin, k)),
                    "validity: n{i} for {id:?}"
                );
            }
        }
    }
}

fn broadcast_all(c: &mut Committee, per_origin: usize) {
    for k in 0..per_origin {
        for origin in c.correct() {
            c.request(origin, payload(origin, k));
        }
    }
}

#[test]
fn fault_free_committee_delivers_everything_and_goes_idle() {
    let mut c = Committee::new(1, 0, 0);
    broadcast_all(&mut c, 5);
    c.run(Time::from_secs(10));
    check_validity(&c, 5);
    c.check_agreement();
    for node in &c.nodes {
        assert!(node.node.is_idle(), "n{} still has work", node.node.me());
        assert_eq!(
            node.node.stats().retransmissions,
            0,
            "nothing was lost, nothing re-sent"
        );
    }
}

#[test]
fn lossy_links_still_deliver_everything_through_retransmission() {
    for seed in 0..20 {
        let mut c = Committee::new(1, 30, seed);
        broadcast_all(&mut c, 4);
        c.run(Time::from_secs(120));
        check_validity(&c, 4);
        c.check_agreement();
        c.check_totality();
        assert!(
            c.messages_lost > 0,
            "seed {seed}: the run must actually lose messages"
        );
        let retransmitted: u64 = c.nodes.iter().map(|n| n.node.stats().retransmissions).sum();
        assert!(
            retransmitted > 0,
            "seed {seed}: loss was repaired by retransmission"
        );
    }
}

#[test]
fn a_crashed_node_does_not_stop_the_others() {
    let mut c = Committee::new(2, 10, 7);
    c.silent[4] = true;
    c.silent[6] = true;
    broadcast_all(&mut c, 3);
    c.run(Time::from_secs(60));
    check_validity(&c, 3);
    c.check_agreement();
    c.check_totality();
}

#[test]
fn an_equivocating_origin_cannot_split_correct_nodes() {
    let keys = committee_keys(4);
    let id = InstanceId {
        origin: NodeId(3),
        seq: 0,
    };
    let mut split_seen = false;
    for seed in 0..30 {
        let mut c = Committee::new(1, if seed % 2 == 0 { 0 } else { 20 }, seed);
        c.silent[3] = true;
        // n3 sends INITIAL "a" to n0 and n1 and "b" to n2, and votes for both, inconsistently.
        let script: [(u32, Phase, &[u8]); 9] = [
            (0, Phase::Initial, b"a"),
            (1, Phase::Initial, b"a"),
            (2, Phase::Initial, b"b"),
            (0, Phase::Echo, b"a"),
            (1, Phase::Echo, b"b"),
            (2, Phase::Echo, b"b"),
            (0, Phase::Ready, b"b"),
            (1, Phase::Ready, b"a"),
            (2, Phase::Ready, b"b"),
        ];
        for (to, phase, value) in script {
            let m = signed(&keys[3], phase, 3, 0, value);
            c.queue.push_back((NodeId(3), NodeId(to), m));
        }
        broadcast_all(&mut c, 2);
        c.run(Time::from_secs(60));
        c.check_agreement();
        c.check_totality();
        check_validity(&c, 2);
        let noticed: u64 = c
            .nodes
            .iter()
            .map(|n| n.node.stats().conflicting_votes)
            .sum();
        assert!(
            noticed > 0,
            "seed {seed}: some correct node saw a vote against its INITIAL"
        );
        split_seen |= c.delivered[0].contains_key(&id);
    }
    assert!(
        split_seen,
        "in some run the correct nodes still delivered the equivocated broadcast"
    );
}
