//! A tiny deterministic event loop for unit tests of [`LaGroups`] across several nodes: fixed link
//! latency, crashed nodes and cut links drop messages, timers replace and cancel like the real
//! drivers. The simulator (`stockade-sim`) is the real thing; this exists so the crate's own tests
//! can run a few nodes without depending on it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::{Context, Effect, NodeId, Protocol, Time};

use crate::group::{GroupConfig, GroupOutput, GroupRequest, GroupTimer, LaGroups};
use stockade_crypto::CryptoMode;

use crate::keys::test_only::{node_keys, simulation_keys};
use crate::keys::SchemeKeys;
use crate::messages::GroupMessage;
use crate::transcript::MemberDirectory;

enum Event {
    Deliver {
        to: NodeId,
        from: NodeId,
        message: GroupMessage,
    },
    Timer {
        node: NodeId,
        timer: GroupTimer,
    },
}

/// Nodes `n0..n{count-1}` running [`LaGroups`] over links of one fixed latency.
pub struct TestNet {
    pub nodes: Vec<LaGroups>,
    pub now: Time,
    pub latency: Duration,
    pub crashed: BTreeSet<NodeId>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub outputs: Vec<Vec<(Time, GroupOutput)>>,
    pub messages_sent: u64,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    events: BTreeMap<u64, Event>,
    timers: BTreeMap<(NodeId, GroupTimer), Time>,
    seq: u64,
    rng: ChaCha8Rng,
    tokens: u64,
}

impl TestNet {
    /// `count` nodes with `config`, none with MAC keys.
    pub fn new(count: u32, config: GroupConfig) -> TestNet {
        let keys = node_keys(count);
        Self::with_keys(keys, config)
    }

    /// One node per key set, node `i` holding `keys[i]`.
    pub fn with_keys(keys: Vec<SchemeKeys>, config: GroupConfig) -> TestNet {
        let view_keys = simulation_keys(CryptoMode::SimFast);
        let count = keys.len();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                LaGroups::new(NodeId(i as u32), config.clone(), Box::new(k))
                    .with_view_signing(view_keys.multi_signer(i as u32))
            })
            .collect();
        let mut net = TestNet {
            nodes,
            now: Time::ZERO,
            latency: Duration::from_millis(10),
            crashed: BTreeSet::new(),
            cut: BTreeSet::new(),
            outputs: vec![Vec::new(); count],
            messages_sent: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            timers: BTreeMap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(7),
            tokens: 0,
        };
        for i in 0..count {
            net.call(NodeId(i as u32), |p, cx| p.on_start(cx));
        }
        net
    }

    fn push(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn call(&mut self, node: NodeId, f: impl FnOnce(&mut LaGroups, &mut Context<'_, LaGroups>)) {
        let mut cx = Context::new(self.now, node, &mut self.rng, &mut self.tokens, Vec::new());
        f(&mut self.nodes[node.index()], &mut cx);
        if let Err(v) = self.nodes[node.index()].check_invariants() {
            panic!("invariant broken at {node}: {v}");
        }
        for effect in cx.into_effects() {
            match effect {
                Effect::Send { to, message, .. } => {
                    self.messages_sent += 1;
                    let at = self.now + self.latency;
                    self.push(
                        at,
                        Event::Deliver {
                            to,
                            from: node,
                            message,
                        },
                    );
                }
                Effect::SetTimer { timer, at } => {
                    self.timers.insert((node, timer.clone()), at);
                    self.push(at, Event::Timer { node, timer });
                }
                Effect::CancelTimer { timer } => {
                    self.timers.remove(&(node, timer));
                }
                Effect::Deliver(output) => self.outputs[node.index()].push((self.now, output)),
                Effect::Persist { .. } | Effect::Charge(_) => {}
            }
        }
    }

    /// Hand `request` to `node` now.
    pub fn request(&mut self, node: NodeId, request: GroupRequest) {
        self.call(node, |p, cx| p.on_request(cx, request));
    }

    /// Run every event up to and including `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            match event {
                Event::Deliver { to, from, message } => {
                    if self.crashed.contains(&to) || self.cut.contains(&(from, to)) {
                        continue;
                    }
                    self.call(to, |p, cx| p.on_message(cx, from, message));
                }
                Event::Timer { node, timer } => {
                    if self.crashed.contains(&node)
                        || self.timers.get(&(node, timer.clone())) != Some(&at)
                    {
                        continue;
                    }
                    self.timers.remove(&(node, timer.clone()));
                    self.call(node, |p, cx| p.on_timer(cx, timer));
                }
            }
        }
        self.now = self.now.max(until);
    }

    /// Run for `d` from now.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// `node` asks `contact` to let it into `group`; run 200 ms, enough for the join to settle.
    pub fn join_through(
        &mut self,
        node: NodeId,
        group: crate::attestation::GroupId,
        contact: NodeId,
    ) {
        self.request(
            node,
            GroupRequest::Join {
                group,
                contacts: vec![contact],
            },
        );
        self.run_for(Duration::from_millis(200));
    }

    /// The view-signing directory of nodes `0..count`, as a verifier outside the group holds it.
    pub fn directory(count: u32) -> MemberDirectory {
        let ids: Vec<u32> = (0..count).collect();
        let keys = simulation_keys(CryptoMode::SimFast).membership(&ids);
        match MemberDirectory::new(ids.into_iter().map(NodeId), keys) {
            Ok(d) => d,
            Err(e) => panic!("a test directory of {count} nodes: {e}"),
        }
    }

    /// The outputs `node` received, without times.
    pub fn outputs_of(&self, node: NodeId) -> Vec<GroupOutput> {
        self.outputs[node.index()]
            .iter()
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// The group `node` created (its first `Created` output).
    pub fn created_group(&self, node: NodeId) -> Option<crate::attestation::GroupId> {
        self.outputs_of(node).into_iter().find_map(|o| match o {
            GroupOutput::Created { group } => Some(group),
            _ => None,
        })
    }
}
