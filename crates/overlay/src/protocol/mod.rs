//! The event-driven Pastry protocol: a sans-IO [`Protocol`] that joins an overlay through a
//! bootstrap node, keeps its leaf set alive, repairs its tables, and routes application messages
//! by key (the KBR API).
//!
//! Paper 002 sections and where they live:
//! - "Pastry: Node addition": [`join`];
//! - "Node departure (failure)": keep-alives, eager leaf-set repair, lazy routing-table repair:
//!   [`maintenance`];
//! - "Key-based routing (KBR) API": route / deliver / forward and the local calls: [`kbr`];
//! - "Pastry: Proximity routing": every table entry is probed and offered with its round-trip time,
//!   so a closer node with the same prefix replaces a farther one.

pub mod join;
pub mod kbr;
pub mod maintenance;
pub mod messages;
#[cfg(test)]
pub(crate) mod testnet;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use stockade_core::{Context, InvariantViolation, NodeId, Protocol, Time};

pub use kbr::{DeliverAll, ForwardVerdict, KbrApplication, PastryOutput, RouteRefused};
pub use maintenance::RepairTally;
pub use messages::PastryMessage;

use crate::certificate::NodeCertificate;
use crate::handle::NodeHandle;
use crate::id::{DigitBits, OverlayId};
use crate::leaf_set::{LeafSet, LEAF_SET_SIZE_DEFAULT};
use crate::neighborhood::{NeighborhoodSet, NEIGHBORHOOD_SIZE_DEFAULT};
use crate::route::RoutingView;
use crate::routing_table::RoutingTable;

/// Proximity recorded for a node that has not answered a probe yet: any measured node is closer.
pub const PROXIMITY_UNKNOWN_US: u32 = u32::MAX;

/// Tunables of one Pastry node.
#[derive(Clone, Debug)]
pub struct PastryConfig {
    /// Digit width b.
    pub digits: DigitBits,
    /// Leaf-set size L.
    pub leaf_set_size: usize,
    /// Neighbourhood-set size M.
    pub neighborhood_size: usize,
    /// Period of keep-alives to leaf-set members and of table probing, ms.
    pub keepalive_interval_ms: u64,
    /// A probed node that has not answered for this long is declared failed, ms.
    pub failure_timeout_ms: u64,
    /// A join that has not completed after this long is retried, ms.
    pub join_timeout_ms: u64,
    /// Join attempts before giving up.
    pub join_attempts_max: u32,
    /// Probes awaiting an answer at once (liveness and proximity).
    pub probes_outstanding_max: usize,
    /// Routing-table entries probed per keep-alive period (round robin).
    pub table_probes_per_tick: usize,
    /// Recently failed nodes remembered, so repair answers do not bring them back.
    pub failed_memory_max: usize,
    /// How long a failed node stays excluded, ms. A live node that was only slow to answer (a
    /// false suspicion under load) is learnt again from gossip after this, instead of being kept
    /// out of every leaf set for good.
    pub failed_memory_ms: u64,
    /// Overlay hops after which a routed message is dropped as looping.
    pub route_hops_max: u8,
    /// The certificate authority's public key when node ids are certified: peers enter this
    /// node's tables only after proving their id (see [`crate::certificate`]).
    pub certificate_authority: Option<[u8; 32]>,
    /// Verified peer ids remembered (so keep-alives do not re-verify).
    pub verified_ids_max: usize,
    /// A forwarded message not acknowledged by its next hop within this is rerouted and the next
    /// hop declared failed (checked each maintenance period), ms.
    pub route_ack_timeout_ms: u64,
    /// Forwarded messages awaiting acknowledgement; beyond this, forwards are not watched.
    pub unacked_forwards_max: usize,
}

impl Default for PastryConfig {
    fn default() -> Self {
        PastryConfig {
            digits: DigitBits::HEX,
            leaf_set_size: LEAF_SET_SIZE_DEFAULT,
            neighborhood_size: NEIGHBORHOOD_SIZE_DEFAULT,
            keepalive_interval_ms: 1_000,
            failure_timeout_ms: 3_000,
            join_timeout_ms: 5_000,
            join_attempts_max: 5,
            probes_outstanding_max: 512,
            table_probes_per_tick: 4,
            failed_memory_max: 64,
            failed_memory_ms: 10_000,
            route_hops_max: 64,
            certificate_authority: None,
            verified_ids_max: 4_096,
            route_ack_timeout_ms: 1_000,
            unacked_forwards_max: 1_024,
        }
    }
}

/// Pastry's named timers.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum PastryTimer {
    /// Keep-alives, table probes and failure detection.
    Maintenance,
    /// The join has not completed: try again.
    JoinRetry,
}

/// What the local application asks of a Pastry node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PastryRequest {
    /// The KBR API's `route(message, key)`.
    Route {
        /// Destination key.
        key: OverlayId,
        /// Application bytes, at most [`messages::ROUTE_PAYLOAD_BYTES_MAX`].
        payload: Vec<u8>,
    },
    /// Leave the overlay gracefully: tell every known node, then go quiet.
    Leave,
}

/// Where a node is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Waiting for the join's last hop to hand over its leaf set.
    Joining {
        /// Attempts made so far.
        attempts: u32,
    },
    /// Part of the overlay.
    Joined,
    /// Gave up joining (the bootstrap never answered).
    JoinFailed,
    /// Left gracefully.
    Left,
}

/// A probe awaiting its answer.
#[derive(Clone, Copy, Debug)]
struct PendingProbe {
    id: OverlayId,
    /// When the peer was last heard from (or first pinged): its failure clock.
    since: Time,
    /// When the last ping went out. Unanswered pings are sent again every keep-alive period,
    /// since a lost ping or pong is not a failure, and the peer's other messages, which keep its
    /// failure clock running, do not answer the probe.
    pinged: Time,
}

/// A routed message in transit through this node.
#[derive(Clone, Debug)]
pub(crate) struct RoutedMessage {
    pub(crate) key: OverlayId,
    pub(crate) origin: NodeHandle,
    pub(crate) hops: u8,
    pub(crate) payload: Vec<u8>,
}

/// A message forwarded to `next` and not yet acknowledged (paper 002 / the Pastry paper: a
/// message is rerouted when its next hop does not respond).
#[derive(Clone, Debug)]
struct UnackedForward {
    message: RoutedMessage,
    next: NodeHandle,
    sent: Time,
}

/// One Pastry node.
///
/// # How to drive it
/// Build it with [`Pastry::new`] (its own handle, and a bootstrap address unless it is the first
/// node), call `on_start` once, then feed messages, timers and [`PastryRequest`]s. It emits sends,
/// timers and [`PastryOutput`]s; it never persists (overlay state is soft and rebuilt by joining).
/// The local KBR calls ([`Pastry::local_lookup`], [`Pastry::neighbor_set`],
/// [`Pastry::replica_set`], [`Pastry::range`]) read its state directly.
pub struct Pastry<A: KbrApplication = DeliverAll> {
    config: PastryConfig,
    me: NodeHandle,
    bootstrap: Option<NodeId>,
    phase: Phase,
    leaves: LeafSet,
    table: RoutingTable,
    neighborhood: NeighborhoodSet,
    probes: BTreeMap<NodeId, PendingProbe>,
    /// Failed nodes with when they failed, oldest first.
    recently_failed: VecDeque<(OverlayId, Time)>,
    table_probe_cursor: usize,
    maintenance_ticks: u64,
    next_route_seq: u64,
    unacked: BTreeMap<u64, UnackedForward>,
    certificate: Option<NodeCertificate>,
    verified: BTreeSet<OverlayId>,
    repair: RepairTally,
    /// Leaf-set requests sent for repair and not yet answered (at most the leaf-set size).
    leaf_repairs_pending: usize,
    pings_sent: u64,
    app: A,
}

impl Pastry<DeliverAll> {
    /// A node with the default application (every delivery becomes an output).
    pub fn new(config: PastryConfig, me: NodeHandle, bootstrap: Option<NodeId>) -> Self {
        Pastry::with_application(config, me, bootstrap, DeliverAll)
    }
}

impl<A: KbrApplication> Pastry<A> {
    /// A node whose forward upcalls go to `app`.
    pub fn with_application(
        config: PastryConfig,
        me: NodeHandle,
        bootstrap: Option<NodeId>,
        app: A,
    ) -> Self {
        Pastry {
            leaves: LeafSet::new(me.id, config.leaf_set_size),
            table: RoutingTable::new(me.id, config.digits),
            neighborhood: NeighborhoodSet::new(me.id, config.neighborhood_size),
            config,
            me,
            bootstrap,
            phase: Phase::Joining { attempts: 0 },
            probes: BTreeMap::new(),
            recently_failed: VecDeque::new(),
            table_probe_cursor: 0,
            maintenance_ticks: 0,
            next_route_seq: 0,
            unacked: BTreeMap::new(),
            certificate: None,
            verified: BTreeSet::new(),
            repair: RepairTally::default(),
            leaf_repairs_pending: 0,
            pings_sent: 0,
            app,
        }
    }

    /// This node's certificate, sent in every probe answer (needed when the overlay certifies ids).
    pub fn with_certificate(mut self, certificate: NodeCertificate) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// This node's handle.
    pub fn handle(&self) -> NodeHandle {
        self.me
    }

    /// Where the node is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The leaf set.
    pub fn leaf_set(&self) -> &LeafSet {
        &self.leaves
    }

    /// The routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// The neighbourhood set.
    pub fn neighborhood(&self) -> &NeighborhoodSet {
        &self.neighborhood
    }

    /// The application behind the forward upcall.
    pub fn application(&self) -> &A {
        &self.app
    }

    /// Mutable access to the application behind the forward upcall.
    pub fn application_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Learn about `peer` measured at `proximity_us`: it may enter the leaf set, the routing
    /// table (proximity neighbour selection) and the neighbourhood set.
    fn learn(&mut self, peer: NodeHandle, proximity_us: u32) {
        if peer.id == self.me.id || self.failed_recently(peer.id) {
            return;
        }
        // Certified ids: nobody enters our tables before proving its id (paper 002, "Secure
        // nodeId assignment").
        if self.config.certificate_authority.is_some() && !self.verified.contains(&peer.id) {
            return;
        }
        self.leaves.offer(peer);
        self.table.offer(peer, proximity_us);
        if proximity_us != PROXIMITY_UNKNOWN_US {
            self.neighborhood.offer(peer, proximity_us);
        }
    }

    /// Whether `id` failed within the last `failed_memory_ms`.
    fn failed_recently(&self, id: OverlayId) -> bool {
        self.recently_failed.iter().any(|(f, _)| *f == id)
    }

    /// Learn about `peer` without a measurement yet, and probe it for one.
    fn learn_and_probe(&mut self, cx: &mut Context<'_, Self>, peer: NodeHandle) {
        if peer.id == self.me.id || self.failed_recently(peer.id) {
            return;
        }
        self.learn(peer, PROXIMITY_UNKNOWN_US);
        self.probe(cx, peer);
    }

    /// Send a ping to `peer` unless one is already waiting or too many are.
    fn probe(&mut self, cx: &mut Context<'_, Self>, peer: NodeHandle) {
        if self.probes.contains_key(&peer.addr)
            || self.probes.len() >= self.config.probes_outstanding_max
        {
            return;
        }
        self.pings_sent += 1;
        self.probes.insert(
            peer.addr,
            PendingProbe {
                id: peer.id,
                since: cx.now(),
                pinged: cx.now(),
            },
        );
        cx.send(peer.addr, self.ping(cx.now()));
    }

    /// A ping sent at `now`: it names this node once it has joined (a joining node cannot route
    /// yet, so nobody may learn of it from its pings).
    fn ping(&self, now: Time) -> PastryMessage {
        PastryMessage::Ping {
            sender: (self.phase == Phase::Joined).then_some(self.me),
            sent_nanos: now.as_nanos(),
        }
    }

    /// Every distinct node in the leaf set, routing table and neighbourhood set.
    pub fn known_nodes(&self) -> Vec<NodeHandle> {
        let mut all = self.leaves.members();
        let rest = self
            .table
            .entries()
            .map(|e| e.peer)
            .chain(self.neighborhood.members().iter().map(|e| e.peer));
        for peer in rest {
            if !all.iter().any(|p| p.id == peer.id) {
                all.push(peer);
            }
        }
        all
    }

    fn maintenance_interval(&self) -> Duration {
        Duration::from_millis(self.config.keepalive_interval_ms)
    }

    fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Joined | Phase::Joining { .. })
    }
}

impl<A: KbrApplication> RoutingView for Pastry<A> {
    type Peer = NodeHandle;

    fn local_id(&self) -> OverlayId {
        self.me.id
    }
    fn id_of(&self, peer: NodeHandle) -> OverlayId {
        peer.id
    }
    fn digits(&self) -> DigitBits {
        self.config.digits
    }
    fn leaf_range_contains(&self, key: OverlayId) -> bool {
        self.leaves.in_range(key)
    }
    fn closest_leaf(&self, key: OverlayId) -> Option<NodeHandle> {
        self.leaves.closest(key)
    }
    fn table_entry(&self, row: usize, column: usize) -> Option<NodeHandle> {
        self.table.get(row, column).map(|e| e.peer)
    }
    fn for_each_known(&self, visit: &mut dyn FnMut(NodeHandle)) {
        self.leaves.members().into_iter().for_each(&mut *visit);
        self.table.entries().for_each(|e| visit(e.peer));
        self.neighborhood
            .members()
            .iter()
            .for_each(|e| visit(e.peer));
    }
}

impl<A: KbrApplication> Protocol for Pastry<A> {
    type Message = PastryMessage;
    type Timer = PastryTimer;
    type Request = PastryRequest;
    type Output = PastryOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        match self.bootstrap {
            None => self.become_joined(cx),
            Some(_) => self.start_join(cx),
        }
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: PastryMessage) {
        if !self.is_active() {
            return;
        }
        // Only a pong answers a probe (it carries the round trip and, with certified ids, the
        // proof of identity); any other message still proves the sender alive, so its failure
        // clock restarts.
        let probe = if matches!(message, PastryMessage::Pong { .. }) {
            self.probes.remove(&from)
        } else {
            if let Some(pending) = self.probes.get_mut(&from) {
                pending.since = cx.now();
            }
            None
        };
        match message {
            PastryMessage::JoinRequest { joiner, hops } => self.on_join_request(cx, joiner, hops),
            // State for our join comes straight from the hop that holds it.
            PastryMessage::JoinState { sender, known } if sender.addr == from => {
                self.on_join_state(cx, sender, known)
            }
            PastryMessage::JoinReply { root, leaves } if root.addr == from => {
                self.on_join_reply(cx, root, leaves)
            }
            PastryMessage::JoinState { .. } | PastryMessage::JoinReply { .. } => {}
            PastryMessage::Announce { node } => {
                if node.addr == from {
                    self.forget_failure(node.id);
                    self.learn_and_probe(cx, node);
                }
            }
            PastryMessage::Ping { sender, sent_nanos } => {
                let sender = sender.filter(|s| s.addr == from);
                if let Some(sender) = sender.filter(|s| self.leaves.would_admit(s.id)) {
                    // It keeps us in its leaf set and belongs in ours: leaf sets are symmetric,
                    // so a node missed by a join or a repair is found by its keep-alives.
                    self.learn_and_probe(cx, sender);
                }
                let certificate = self.certificate.clone();
                cx.send(
                    from,
                    PastryMessage::Pong {
                        sent_nanos,
                        certificate,
                    },
                );
            }
            PastryMessage::Pong {
                sent_nanos,
                certificate,
            } => self.on_pong(cx, probe, from, sent_nanos, certificate),
            PastryMessage::LeafSetRequest => {
                let leaves = self.leaves.members();
                cx.send(
                    from,
                    PastryMessage::LeafSetReply {
                        sender: self.me,
                        leaves,
                    },
                );
            }
            PastryMessage::LeafSetReply { sender, leaves } => {
                self.on_leaf_set_reply(cx, from, sender, leaves)
            }
            PastryMessage::RowRequest { row } => {
                let entries = self
                    .table
                    .row(usize::from(row))
                    .into_iter()
                    .map(|e| e.peer)
                    .collect();
                cx.send(from, PastryMessage::RowReply { entries });
            }
            PastryMessage::RowReply { entries } => {
                // Only entries that fill a slot empty in our table (the failed one among them)
                // are probed; the Pastry paper (section 2.5) takes the one entry for the failed
                // slot. Better entries for filled slots are left to joins and table probing.
                let pings_before = self.pings_sent;
                for peer in entries {
                    if self.table.slot_is_free_for(peer.id) {
                        self.learn_and_probe(cx, peer);
                    }
                }
                self.repair.replies += 1;
                self.repair.probes += self.pings_sent - pings_before;
            }
            PastryMessage::Route {
                key,
                origin,
                hops,
                seq,
                payload,
            } => {
                // Acknowledge the hop first, so the sender does not reroute around us.
                cx.send(from, PastryMessage::RouteAck { seq });
                self.route_step(
                    cx,
                    RoutedMessage {
                        key,
                        origin,
                        hops,
                        payload,
                    },
                    true,
                );
            }
            PastryMessage::RouteAck { seq } => {
                if self.unacked.get(&seq).is_some_and(|f| f.next.addr == from) {
                    self.unacked.remove(&seq);
                }
            }
            PastryMessage::Leaving { node } => {
                if node.addr == from {
                    self.on_peer_failed(cx, node.addr, node.id);
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: PastryTimer) {
        match timer {
            PastryTimer::Maintenance => self.on_maintenance(cx),
            PastryTimer::JoinRetry => self.on_join_retry(cx),
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: PastryRequest) {
        match request {
            PastryRequest::Route { key, payload } => self.route_from_here(cx, key, payload),
            PastryRequest::Leave => self.leave(cx),
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        if self.leaves.contains(self.me.id) || self.table.contains(self.me.id) {
            return Err(InvariantViolation(format!(
                "node {:?} lists itself as a peer",
                self.me.id
            )));
        }
        let half = self.leaves.half_len_max();
        if self.leaves.clockwise().len() > half || self.leaves.counter_clockwise().len() > half {
            return Err(InvariantViolation(format!(
                "leaf set of {:?} exceeds L/2 = {half} per side",
                self.me.id
            )));
        }
        if self.unacked.len() > self.config.unacked_forwards_max {
            return Err(InvariantViolation(format!(
                "{} forwards awaiting acknowledgement",
                self.unacked.len()
            )));
        }
        if self.probes.len() > self.config.probes_outstanding_max {
            return Err(InvariantViolation(format!(
                "{} probes outstanding, bound is {}",
                self.probes.len(),
                self.config.probes_outstanding_max
            )));
        }
        Ok(())
    }
}
