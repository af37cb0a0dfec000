//! Test-only helpers: a logging application and a tiny in-test message pump that routes the Send
//! effects of N in-memory Prime instances over links with a fixed delay, with a fake clock the test
//! advances. (The deterministic simulator `stockade-sim` replaces the pump for scenario runs.)

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::wire::Wire;
use stockade_core::{Context, Effect, NodeId, Protocol, Time};

use crate::app::{Application, ExecutedUpdate, RestoreError};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;

use crate::auth::{hash_parts, Digest, InsecureTestAuth, MessageAuth};
use crate::config::{Membership, ParticipantId, PrimeConfig};
use crate::messages::{ClientId, PrimeMessage, Update};
use crate::replica::{Prime, PrimeOutput, PrimeTimer};
use crate::threshold_auth::SimulationAuths;

/// An application that logs what it executes and chains a digest over it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogApp {
    /// (global slot, client, seq, op) in execution order.
    pub log: Vec<(u64, ClientId, u64, Vec<u8>)>,
    /// Timestamps handed to `execute`.
    pub timestamps: Vec<u64>,
    /// Filler bytes added to every checkpoint, to make the state as large as a test needs.
    pub ballast_bytes: usize,
    chain: Digest,
}

/// The filler byte of [`LogApp::ballast_bytes`].
const BALLAST: u8 = 0xb5;

impl Application for LogApp {
    fn execute(&mut self, updates: &[ExecutedUpdate<'_>], timestamp_ms: u64) -> Vec<Vec<u8>> {
        self.timestamps.push(timestamp_ms);
        updates
            .iter()
            .map(|e| {
                let u = e.update;
                self.chain = hash_parts(b"log-app", &[&self.chain, &u.to_bytes()]);
                self.log.push((e.global_seq, u.client, u.seq, u.op.clone()));
                format!("done {}", self.log.len()).into_bytes()
            })
            .collect()
    }
    fn checkpoint(&self) -> Vec<u8> {
        let mut snapshot = self.chain.to_vec();
        snapshot.resize(32 + self.ballast_bytes, BALLAST);
        snapshot
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let (chain, ballast) = snapshot
            .split_at_checked(32)
            .ok_or_else(|| RestoreError("snapshot is shorter than 32 bytes".into()))?;
        if ballast.iter().any(|b| *b != BALLAST) {
            return Err(RestoreError("snapshot ballast is corrupt".into()));
        }
        self.chain = chain
            .try_into()
            .map_err(|_| RestoreError("snapshot chain is not 32 bytes".into()))?;
        self.ballast_bytes = ballast.len();
        self.log.clear();
        Ok(())
    }
    fn digest(&self) -> Digest {
        self.chain
    }
}

/// A client update with an op naming the client and sequence.
pub fn update(client: u64, seq: u64) -> Update {
    Update {
        client: ClientId(client),
        incarnation: 1,
        seq,
        reply_to: None,
        op: format!("c{client}-{seq}").into_bytes(),
    }
}

/// A Prime node for tests: participant `me` of `n = 3f+1` nodes `0..n`.
pub fn node(cfg: &PrimeConfig, me: u16) -> Prime<LogApp> {
    node_with_auth(
        cfg,
        me,
        Box::new(InsecureTestAuth {
            me: ParticipantId(me),
        }),
    )
}

/// A Prime node for tests with the given authenticator.
pub fn node_with_auth(cfg: &PrimeConfig, me: u16, auth: Box<dyn MessageAuth>) -> Prime<LogApp> {
    let n = cfg.quorums.n() as u32;
    let membership = Membership::new((0..n).map(NodeId).collect()).expect("membership");
    Prime::new(
        cfg.clone(),
        membership,
        ParticipantId(me),
        auth,
        LogApp::default(),
    )
    .expect("valid config")
}

/// Real Ed25519 + Merkle authenticators for `n` participants, from one seed.
pub fn real_auth(n: u32, me: u16) -> Box<dyn MessageAuth> {
    let keys = SimulationKeys::new(CryptoMode::Real, 11);
    let quorums = crate::config::Quorums::new((n as usize - 1) / 3, 0);
    let auths = SimulationAuths::deal(&keys, quorums).expect("dealt");
    Box::new(auths.auth(ParticipantId(me)))
}

/// Run one handler call on `node` at `now` and return its effects.
pub fn call(
    node: &mut Prime<LogApp>,
    now: Time,
    f: impl FnOnce(&mut Prime<LogApp>, &mut Context<'_, Prime<LogApp>>),
) -> Vec<Effect<Prime<LogApp>>> {
    call_with_tokens(node, now, &mut 0, f)
}

/// [`call`] with the node's persist-token counter, so tokens stay unique across calls.
pub fn call_with_tokens(
    node: &mut Prime<LogApp>,
    now: Time,
    tokens: &mut u64,
    f: impl FnOnce(&mut Prime<LogApp>, &mut Context<'_, Prime<LogApp>>),
) -> Vec<Effect<Prime<LogApp>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let me = NodeId(node.me.0 as u32);
    let mut cx = Context::new(now, me, &mut rng, tokens, Vec::new());
    f(node, &mut cx);
    cx.into_effects()
}

/// Hand `node` a PO-SUMMARY signed by participant `from`; return the effects.
pub fn receive_summary(
    node: &mut Prime<LogApp>,
    from: u16,
    counter: u64,
    cum_aru: Vec<u64>,
) -> Vec<Effect<Prime<LogApp>>> {
    let summary = signed_by(from, crate::messages::PoSummary { counter, cum_aru });
    call(node, Time::ZERO, |p, cx| p.on_po_summary(cx, summary))
}

/// The messages sent among `effects`, with their destinations.
pub fn sends(effects: &[Effect<Prime<LogApp>>]) -> Vec<(NodeId, PrimeMessage)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, message, .. } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// The outputs delivered among `effects`.
pub fn outputs(effects: &[Effect<Prime<LogApp>>]) -> Vec<PrimeOutput> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

/// Decides whether a message from one node to another is dropped (for fault injection).
pub type DropRule = Box<dyn FnMut(NodeId, NodeId, &PrimeMessage) -> bool>;

/// N Prime nodes, a fake clock, links of fixed delay, and a disk per node whose persist batches
/// become durable in order after that node's `persist_latency` (sends held behind a batch leave
/// then, and the node's `on_persisted` runs).
pub struct Pump {
    /// The nodes; node i is participant i at `NodeId(i)`.
    pub nodes: Vec<Prime<LogApp>>,
    /// The fake clock.
    pub now: Time,
    /// One-way delay of every link.
    pub link_delay: Duration,
    /// Drops messages it returns true for.
    pub drop_rule: DropRule,
    /// Everything each node delivered to its application.
    pub outputs: Vec<Vec<PrimeOutput>>,
    /// Messages sent to addresses outside the cluster (clients).
    pub to_clients: Vec<(NodeId, PrimeMessage)>,
    /// Messages delivered so far.
    pub delivered: u64,
    /// The CPU work each node charged.
    pub charges: Vec<Vec<stockade_core::CpuWork>>,
    /// Per node, how long a persist batch takes to become durable (zero by default).
    pub persist_latency: Vec<Duration>,
    in_flight: BinaryHeap<Reverse<(Time, u64, u32, u32)>>,
    /// Persist batches not yet durable: (when durable, node, token).
    persisting: BinaryHeap<Reverse<(Time, u32, u64)>>,
    /// Sends waiting for their batch: (node, token) to (destination, message).
    held: BTreeMap<(u32, u64), Vec<(NodeId, PrimeMessage)>>,
    /// Per node, the next persist token and when its last batch becomes durable.
    tokens: Vec<u64>,
    disk_free_at: Vec<Time>,
    payloads: BTreeMap<u64, PrimeMessage>,
    timers: Vec<BTreeMap<PrimeTimer, Time>>,
    next_id: u64,
}

impl Pump {
    /// Start `3f+1` nodes with `cfg` and links of `link_delay`.
    pub fn new(cfg: &PrimeConfig, link_delay: Duration) -> Pump {
        Pump::with_nodes(
            (0..cfg.quorums.n() as u16).map(|i| node(cfg, i)).collect(),
            link_delay,
        )
    }

    /// Start the given nodes (node i must be participant i).
    pub fn with_nodes(nodes: Vec<Prime<LogApp>>, link_delay: Duration) -> Pump {
        let n = nodes.len();
        let mut pump = Pump {
            nodes,
            now: Time::ZERO,
            link_delay,
            drop_rule: Box::new(|_, _, _| false),
            outputs: vec![Vec::new(); n],
            to_clients: Vec::new(),
            delivered: 0,
            charges: vec![Vec::new(); n],
            persist_latency: vec![Duration::ZERO; n],
            in_flight: BinaryHeap::new(),
            persisting: BinaryHeap::new(),
            held: BTreeMap::new(),
            tokens: vec![0; n],
            disk_free_at: vec![Time::ZERO; n],
            payloads: BTreeMap::new(),
            timers: vec![BTreeMap::new(); n],
            next_id: 0,
        };
        for i in 0..n {
            pump.run_on(i, |p, cx| p.on_start(cx));
        }
        pump
    }

    /// Call into node `i` now and carry out its effects.
    pub fn run_on(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Prime<LogApp>, &mut Context<'_, Prime<LogApp>>),
    ) {
        let effects = call_with_tokens(&mut self.nodes[i], self.now, &mut self.tokens[i], f);
        for effect in effects {
            match effect {
                Effect::Send { to, message, after } => {
                    let batch = after.map(|token| (i as u32, token.0));
                    match batch.and_then(|key| self.held.get_mut(&key)) {
                        Some(held) => held.push((to, message)),
                        None => self.route(i, to, message),
                    }
                }
                Effect::Persist { token, .. } => {
                    let done = (self.now + self.persist_latency[i]).max(self.disk_free_at[i]);
                    self.disk_free_at[i] = done;
                    self.persisting.push(Reverse((done, i as u32, token.0)));
                    self.held.insert((i as u32, token.0), Vec::new());
                }
                Effect::SetTimer { timer, at } => {
                    self.timers[i].insert(timer, at);
                }
                Effect::CancelTimer { timer } => {
                    self.timers[i].remove(&timer);
                }
                Effect::Deliver(o) => self.outputs[i].push(o),
                Effect::Charge(work) => self.charges[i].push(work),
            }
        }
    }

    /// Put a message from node `i` on its link now (or hand it to the client log).
    fn route(&mut self, i: usize, to: NodeId, message: PrimeMessage) {
        if to.index() >= self.nodes.len() {
            self.to_clients.push((to, message));
        } else if !(self.drop_rule)(NodeId(i as u32), to, &message) {
            self.next_id += 1;
            self.payloads.insert(self.next_id, message);
            let at = self.now + self.link_delay;
            self.in_flight
                .push(Reverse((at, self.next_id, i as u32, to.0)));
        }
    }

    /// Node `i`'s batch `token` is durable: release the sends held behind it, then tell the node.
    fn complete_persist(&mut self, i: usize, token: u64) {
        for (to, message) in self.held.remove(&(i as u32, token)).unwrap_or_default() {
            self.route(i, to, message);
        }
        self.run_on(i, |p, cx| {
            p.on_persisted(cx, stockade_core::PersistToken(token))
        });
    }

    /// Submit a client update to node `i` through `on_request`.
    pub fn submit(&mut self, i: usize, u: Update) {
        self.run_on(i, |p, cx| p.on_request(cx, u));
    }

    /// Process every event up to `until`, advancing the clock.
    pub fn run_until(&mut self, until: Time) {
        loop {
            if let Some(Reverse((at, node, token))) = self.persisting.peek().copied() {
                let before_others = self
                    .in_flight
                    .peek()
                    .is_none_or(|Reverse((m, ..))| at <= *m)
                    && self.timers.iter().all(|ts| ts.values().all(|t| at <= *t));
                if before_others && at <= until {
                    self.persisting.pop();
                    self.now = self.now.max(at);
                    self.complete_persist(node as usize, token);
                    continue;
                }
            }
            let next_message = self.in_flight.peek().map(|Reverse((at, ..))| *at);
            let next_timer = self
                .timers
                .iter()
                .enumerate()
                .flat_map(|(i, ts)| ts.iter().map(move |(t, at)| (*at, i, *t)))
                .min_by_key(|(at, i, _)| (*at, *i));
            let message_first = match (next_message, next_timer) {
                (Some(m), Some((t, ..))) => m <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if message_first {
                let Some(Reverse((at, id, from, to))) = self.in_flight.peek().copied() else {
                    break;
                };
                if at > until {
                    break;
                }
                self.in_flight.pop();
                self.now = at;
                let message = self
                    .payloads
                    .remove(&id)
                    .expect("payload of an in-flight message");
                self.delivered += 1;
                self.run_on(to as usize, |p, cx| p.on_message(cx, NodeId(from), message));
            } else {
                let Some((at, i, timer)) = next_timer else {
                    break;
                };
                if at > until {
                    break;
                }
                self.timers[i].remove(&timer);
                self.now = at;
                self.run_on(i, |p, cx| p.on_timer(cx, timer));
            }
        }
        self.now = self.now.max(until);
    }

    /// Run for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Check every node's invariants and that all nodes reached the same state (for runs where a
    /// node restored a snapshot and so did not execute every slot itself).
    pub fn check_agreement_from_state(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            node.check_invariants().expect("invariants hold");
            assert_eq!(
                node.app().digest(),
                self.nodes[0].app().digest(),
                "node {i} state"
            );
        }
    }

    /// Check every node's invariants, and that all executed slots agree (same pre-prepare, same
    /// state digest per slot): agreement and total order.
    pub fn check_agreement(&self) {
        let mut by_slot: BTreeMap<u64, (Digest, Digest, usize)> = BTreeMap::new();
        for (i, outs) in self.outputs.iter().enumerate() {
            self.nodes[i].check_invariants().expect("invariants hold");
            let mut last = 0;
            for o in outs {
                if let PrimeOutput::Executed {
                    global_seq,
                    content,
                    state,
                    ..
                } = o
                {
                    assert_eq!(*global_seq, last + 1, "node {i} executes slots in order");
                    last = *global_seq;
                    let entry = by_slot.entry(*global_seq).or_insert((*content, *state, i));
                    assert_eq!(
                        (entry.0, entry.1),
                        (*content, *state),
                        "node {i} and node {} disagree at slot {global_seq}",
                        entry.2
                    );
                }
            }
        }
    }
}

/// `body` signed by participant `p` with the test authenticator.
pub fn signed_by<T: crate::auth::SignedBody>(p: u16, body: T) -> crate::auth::Signed<T> {
    use crate::auth::MessageAuth;
    let signer = ParticipantId(p);
    let digest = crate::auth::body_digest(signer, &body);
    let tag = InsecureTestAuth { me: signer }
        .sign_batch(&[digest])
        .remove(0);
    crate::auth::Signed { signer, body, tag }
}

/// How many messages of the kind `is_kind` selects are among `sends`.
pub fn count(sends: &[(NodeId, PrimeMessage)], is_kind: impl Fn(&PrimeMessage) -> bool) -> usize {
    sends.iter().filter(|(_, m)| is_kind(m)).count()
}
