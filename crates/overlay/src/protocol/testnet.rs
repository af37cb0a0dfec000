//! A small deterministic network for the overlay's tests: nodes on a plane, one-way latency by
//! distance, an event queue ordered by (time, sequence), crashes. A test harness only; scenarios
//! at scale run on `stockade-sim`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stockade_core::{Context, Effect, NodeId, Protocol, Time};

use super::{KbrApplication, Pastry, PastryConfig, PastryMessage, Phase};
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::latency::{LatencyModel, Position};

/// What the harness needs to know of a node.
pub trait OverlayNode: Protocol {
    fn overlay_handle(&self) -> NodeHandle;
    fn is_joined(&self) -> bool;
    /// Whether a message belongs to the join protocol (counted separately).
    fn is_join_message(message: &Self::Message) -> bool;
}

impl<A: KbrApplication> OverlayNode for Pastry<A> {
    fn overlay_handle(&self) -> NodeHandle {
        self.handle()
    }
    fn is_joined(&self) -> bool {
        self.phase() == Phase::Joined
    }
    fn is_join_message(message: &PastryMessage) -> bool {
        matches!(
            message,
            PastryMessage::JoinRequest { .. }
                | PastryMessage::JoinState { .. }
                | PastryMessage::JoinReply { .. }
                | PastryMessage::Announce { .. }
        )
    }
}

enum Event<P: Protocol> {
    Message {
        to: NodeId,
        from: NodeId,
        message: P::Message,
    },
    Timer {
        node: NodeId,
        timer: P::Timer,
        generation: u64,
    },
}

type Factory<P> = Box<dyn Fn(NodeHandle, Option<NodeId>) -> P>;

/// Nodes, their positions, the queue, and what each node delivered.
pub struct TestNet<P: OverlayNode> {
    pub nodes: Vec<Option<P>>,
    positions: Vec<Position>,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    events: BTreeMap<u64, Event<P>>,
    timers: BTreeMap<(u32, String), u64>,
    pub outputs: Vec<Vec<P::Output>>,
    pub messages_sent: u64,
    /// Messages of the join protocol (JOIN hops, state, reply, announcements).
    pub join_messages_sent: u64,
    rng: ChaCha8Rng,
    tokens: Vec<u64>,
    factory: Factory<P>,
    /// Fraction of messages lost on the way (as UDP loses datagrams), 0.0 by default.
    pub loss: f64,
    /// Messages the network lost.
    pub messages_lost: u64,
}

impl TestNet<Pastry> {
    /// A network of plain Pastry nodes.
    pub fn new(seed: u64, config: PastryConfig) -> TestNet<Pastry> {
        TestNet::with_factory(
            seed,
            Box::new(move |me, bootstrap| Pastry::new(config.clone(), me, bootstrap)),
        )
    }
}

impl<P: OverlayNode> TestNet<P> {
    pub fn with_factory(seed: u64, factory: Factory<P>) -> TestNet<P> {
        TestNet {
            nodes: Vec::new(),
            positions: Vec::new(),
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            timers: BTreeMap::new(),
            outputs: Vec::new(),
            messages_sent: 0,
            join_messages_sent: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            tokens: Vec::new(),
            factory,
            loss: 0.0,
            messages_lost: 0,
        }
    }

    /// Add a node with a random id and position and start it; unless it is the first node it
    /// joins through the joined node nearest to it by latency, as Pastry assumes.
    pub fn add_node(&mut self) -> NodeId {
        let addr = NodeId(self.nodes.len() as u32);
        let id = OverlayId(self.rng.gen());
        let position = LatencyModel::Plane.place(&mut self.rng);
        let bootstrap = self.nearest_joined(position);
        let node = (self.factory)(NodeHandle { id, addr }, bootstrap);
        self.nodes.push(Some(node));
        self.positions.push(position);
        self.outputs.push(Vec::new());
        self.tokens.push(0);
        self.call(addr, |p, cx| p.on_start(cx));
        addr
    }

    /// Grow to `n` nodes, one join every 400 ms, then let the overlay settle for 5 s.
    pub fn grow(&mut self, n: usize) {
        for _ in 0..n {
            self.add_node();
            self.run_for(Duration::from_millis(400));
        }
        self.run_for(Duration::from_secs(5));
    }

    fn nearest_joined(&self, position: Position) -> Option<NodeId> {
        let distance = |i: usize| LatencyModel::Plane.latency_ms(position, self.positions[i]);
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].as_ref().is_some_and(|p| p.is_joined()))
            .min_by(|a, b| distance(*a).total_cmp(&distance(*b)))
            .map(|i| NodeId(i as u32))
    }

    fn latency(&self, a: NodeId, b: NodeId) -> f64 {
        LatencyModel::Plane.latency_ms(self.positions[a.index()], self.positions[b.index()])
    }

    /// Stop a node without warning.
    pub fn crash(&mut self, addr: NodeId) {
        self.nodes[addr.index()] = None;
    }

    pub fn request(&mut self, addr: NodeId, request: P::Request) {
        self.call(addr, |p, cx| p.on_request(cx, request));
    }

    fn call(&mut self, addr: NodeId, run: impl FnOnce(&mut P, &mut Context<'_, P>)) {
        let Some(node) = self.nodes[addr.index()].as_mut() else {
            return;
        };
        let mut cx = Context::new(
            self.now,
            addr,
            &mut self.rng,
            &mut self.tokens[addr.index()],
            Vec::new(),
        );
        run(node, &mut cx);
        let effects = cx.into_effects();
        if let Err(violation) = node.check_invariants() {
            panic!("invariant broken at {addr:?}: {violation}");
        }
        for effect in effects {
            self.apply(addr, effect);
        }
    }

    fn push(&mut self, at: Time, event: Event<P>) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn apply(&mut self, addr: NodeId, effect: Effect<P>) {
        match effect {
            Effect::Send { to, message, .. } => {
                self.messages_sent += 1;
                if P::is_join_message(&message) {
                    self.join_messages_sent += 1;
                }
                if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
                    self.messages_lost += 1;
                    return;
                }
                let delay = Duration::from_micros((self.latency(addr, to) * 1000.0) as u64 + 100);
                self.push(
                    self.now + delay,
                    Event::Message {
                        to,
                        from: addr,
                        message,
                    },
                );
            }
            Effect::SetTimer { timer, at } => {
                self.seq += 1;
                let generation = self.seq;
                self.timers
                    .insert((addr.0, format!("{timer:?}")), generation);
                self.push(
                    at,
                    Event::Timer {
                        node: addr,
                        timer,
                        generation,
                    },
                );
            }
            Effect::CancelTimer { timer } => {
                self.timers.remove(&(addr.0, format!("{timer:?}")));
            }
            Effect::Deliver(output) => self.outputs[addr.index()].push(output),
            Effect::Persist { .. } | Effect::Charge(_) => {}
        }
    }

    /// Process events until `until`.
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
                Event::Message { to, from, message } => {
                    self.call(to, |p, cx| p.on_message(cx, from, message))
                }
                Event::Timer {
                    node,
                    timer,
                    generation,
                } => {
                    let key = (node.0, format!("{timer:?}"));
                    if self.timers.get(&key) == Some(&generation) {
                        self.timers.remove(&key);
                        self.call(node, |p, cx| p.on_timer(cx, timer));
                    }
                }
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Live, joined nodes' handles, sorted by id.
    pub fn live_sorted(&self) -> Vec<NodeHandle> {
        let mut all: Vec<NodeHandle> = self
            .nodes
            .iter()
            .flatten()
            .filter(|p| p.is_joined())
            .map(|p| p.overlay_handle())
            .collect();
        all.sort_by_key(|h| h.id);
        all
    }

    /// The live node numerically closest to `key`.
    pub fn root_of(&self, key: OverlayId) -> NodeHandle {
        let live = self.live_sorted();
        let mut best = live[0];
        for h in &live {
            if key.prefers(h.id, best.id) {
                best = *h;
            }
        }
        best
    }

    /// The `k` live nodes numerically closest to `key`.
    pub fn closest_live(&self, key: OverlayId, k: usize) -> Vec<NodeHandle> {
        let mut live = self.live_sorted();
        live.sort_by(|a, b| key.closeness_order(a.id, b.id));
        live.truncate(k);
        live
    }
}
