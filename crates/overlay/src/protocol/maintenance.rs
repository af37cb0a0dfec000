//! Keeping the overlay whole as nodes fail and leave (paper 002, "Node departure (failure)").
//!
//! - Leaf-set members exchange keep-alives (pings) every period; a member silent for the failure
//!   timeout is declared failed. An unanswered ping is sent again each period (datagrams get
//!   lost), so a peer is asked about three times before it is declared failed.
//! - Leaf-set repair is eager: at once, ask the farthest live member on the failed node's side for
//!   its leaf set and take the nodes that belong.
//! - Routing-table repair is lazy: entries are probed a few per period (and measured, keeping the
//!   proximity invariant); a dead entry is replaced by asking a peer in the same row (then higher
//!   rows) for its entry in that row.
//! - Leaf-set gossip: every period one leaf-set exchange with a far leaf, so members a join or a
//!   repair missed are found.
//! - Routed messages are acknowledged hop by hop; a next hop silent for the acknowledgement
//!   timeout is declared failed and the message rerouted (the Pastry paper, section 2.5).
//! - Graceful departure: a leaving node tells everyone it knows, who treat it as failed at once.

use std::collections::BTreeSet;

use stockade_core::{Context, CostKind, CpuWork, NodeId, Time};

use super::{
    KbrApplication, Pastry, PastryMessage, PastryOutput, PastryTimer, PendingProbe, Phase,
};
use crate::certificate::{CertificateError, NodeCertificate};
use crate::handle::NodeHandle;
use crate::id::OverlayId;

/// Messages a node spent repairing its state after failures (paper 002, "Node departure
/// (failure)"): what `pastry-failures --model events` sums per failed node. Keep-alives and
/// leaf-set gossip run whether or not anything failed, and are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairTally {
    /// Leaf-set requests sent because a leaf failed (eager leaf-set repair).
    pub leaf_set_requests: u64,
    /// Row requests sent because a routing-table entry failed (lazy table repair).
    pub row_requests: u64,
    /// Answers received to those requests.
    pub replies: u64,
    /// Probes (pings) sent to nodes learned from those answers.
    pub probes: u64,
}

impl RepairTally {
    /// Messages on the wire: requests, replies, and each probe's ping and pong (a probe of a
    /// dead node gets no pong, so this is at most that many too high).
    pub fn messages(&self) -> u64 {
        self.leaf_set_requests + self.row_requests + self.replies + 2 * self.probes
    }

    /// What was spent after `earlier` (a tally of the same node taken before).
    pub fn since(&self, earlier: &RepairTally) -> RepairTally {
        RepairTally {
            leaf_set_requests: self
                .leaf_set_requests
                .saturating_sub(earlier.leaf_set_requests),
            row_requests: self.row_requests.saturating_sub(earlier.row_requests),
            replies: self.replies.saturating_sub(earlier.replies),
            probes: self.probes.saturating_sub(earlier.probes),
        }
    }

    /// Add `other`'s counts.
    pub fn add(&mut self, other: &RepairTally) {
        self.leaf_set_requests += other.leaf_set_requests;
        self.row_requests += other.row_requests;
        self.replies += other.replies;
        self.probes += other.probes;
    }
}

impl<A: KbrApplication> Pastry<A> {
    /// The periodic maintenance tick.
    pub(super) fn on_maintenance(&mut self, cx: &mut Context<'_, Self>) {
        if self.phase != Phase::Joined {
            return;
        }
        let timeout = std::time::Duration::from_millis(self.config.failure_timeout_ms);
        let now = cx.now();
        // Failures are remembered for a while only: a node suspected by mistake comes back.
        let memory = std::time::Duration::from_millis(self.config.failed_memory_ms);
        while let Some(&(_, since)) = self.recently_failed.front() {
            if now - since < memory {
                break;
            }
            self.recently_failed.pop_front();
        }
        let expired: Vec<(NodeId, PendingProbe)> = self
            .probes
            .iter()
            .filter(|(_, p)| now - p.since >= timeout)
            .map(|(addr, p)| (*addr, *p))
            .collect();
        for (addr, probe) in expired {
            self.probes.remove(&addr);
            self.on_peer_failed(cx, addr, probe.id);
        }
        self.reroute_unacknowledged(cx);
        self.ping_again_unanswered(cx);
        // Keep-alives to every leaf.
        for peer in self.leaves.members() {
            self.probe(cx, peer);
        }
        // Leaf-set gossip: each period ask the farthest leaf on one side (alternating) for its
        // leaf set, so members a join or repair missed are found within a few periods.
        let (far_ccw, far_cw) = self.leaves.farthest();
        self.maintenance_ticks += 1;
        let ask = if self.maintenance_ticks.is_multiple_of(2) {
            far_cw.or(far_ccw)
        } else {
            far_ccw.or(far_cw)
        };
        if let Some(peer) = ask {
            cx.send(peer.addr, PastryMessage::LeafSetRequest);
        }
        // A few routing-table entries per period, round robin.
        let entries: Vec<NodeHandle> = self.table.entries().map(|e| e.peer).collect();
        if !entries.is_empty() {
            for k in 0..self.config.table_probes_per_tick.min(entries.len()) {
                let peer = entries[(self.table_probe_cursor + k) % entries.len()];
                self.probe(cx, peer);
            }
            self.table_probe_cursor =
                (self.table_probe_cursor + self.config.table_probes_per_tick) % entries.len();
        }
        cx.set_timer(PastryTimer::Maintenance, self.maintenance_interval());
    }

    /// Ping again every peer whose last ping has gone unanswered for a keep-alive period. Over
    /// UDP a ping or pong may be lost; without this, a peer that keeps sending us other messages
    /// (its own keep-alives restart its failure clock) would never be asked again, and with
    /// certified ids, where only a pong admits a peer, it would stay out of our tables for good.
    fn ping_again_unanswered(&mut self, cx: &mut Context<'_, Self>) {
        let now = cx.now();
        let interval = self.maintenance_interval();
        let ping = self.ping(now);
        for (addr, probe) in self.probes.iter_mut() {
            if now - probe.pinged >= interval {
                probe.pinged = now;
                cx.send(*addr, ping.clone());
            }
        }
    }

    /// A ping came back: the sender is alive, and the round trip is its proximity. With
    /// certified ids, a peer not yet verified must present a certificate for exactly its id and
    /// address.
    pub(super) fn on_pong(
        &mut self,
        cx: &mut Context<'_, Self>,
        probe: Option<PendingProbe>,
        from: NodeId,
        sent_nanos: u64,
        certificate: Option<NodeCertificate>,
    ) {
        let Some(probe) = probe else {
            return;
        };
        let peer = NodeHandle {
            id: probe.id,
            addr: from,
        };
        if let Some(authority) = self.config.certificate_authority {
            if !self.verified.contains(&peer.id) {
                cx.charge(CpuWork::ops(CostKind::Ed25519Verify, 1));
                let checked = certificate
                    .ok_or(CertificateError::Missing)
                    .and_then(|c| c.verify_for(peer, &authority));
                if let Err(reason) = checked {
                    cx.deliver(PastryOutput::PeerRejected {
                        id: peer.id,
                        reason,
                    });
                    return;
                }
                if self.verified.len() >= self.config.verified_ids_max {
                    // Keep only the nodes we still use; the rest re-verify if they come back.
                    let known: BTreeSet<OverlayId> =
                        self.known_nodes().iter().map(|p| p.id).collect();
                    self.verified.retain(|id| known.contains(id));
                }
                self.verified.insert(peer.id);
            }
        }
        let rtt_nanos = cx.now().as_nanos().saturating_sub(sent_nanos);
        let rtt_us = u32::try_from(rtt_nanos / 1_000)
            .unwrap_or(u32::MAX - 1)
            .min(u32::MAX - 1);
        self.learn(peer, rtt_us);
    }

    /// `id` at `addr` failed or left: drop it everywhere and repair what it leaves behind.
    pub(super) fn on_peer_failed(
        &mut self,
        cx: &mut Context<'_, Self>,
        addr: NodeId,
        id: OverlayId,
    ) {
        self.probes.remove(&addr);
        self.verified.remove(&id);
        if !self.failed_recently(id) {
            if self.recently_failed.len() >= self.config.failed_memory_max {
                self.recently_failed.pop_front();
            }
            self.recently_failed.push_back((id, cx.now()));
        }
        let was_clockwise = self.leaves.clockwise().iter().any(|p| p.id == id);
        let was_leaf = self.leaves.remove(id);
        let table_slot = self.table.remove(id);
        self.neighborhood.remove(id);
        if was_leaf {
            // Eager leaf-set repair: the farthest live member on the failed node's side knows the
            // nodes just beyond our leaf set.
            let (far_ccw, far_cw) = self.leaves.farthest();
            let ask = if was_clockwise {
                far_cw.or(far_ccw)
            } else {
                far_ccw.or(far_cw)
            };
            if let Some(peer) = ask {
                cx.send(peer.addr, PastryMessage::LeafSetRequest);
                self.repair.leaf_set_requests += 1;
                self.leaf_repairs_pending =
                    (self.leaf_repairs_pending + 1).min(self.config.leaf_set_size);
            }
        }
        if let Some((row, _column)) = table_slot {
            // Lazy table repair: any peer sharing at least `row` digits with us has a row `row`
            // whose columns mean what ours do; try the same row, then higher ones.
            let helper = (row..self.table.row_count())
                .find_map(|r| self.table.row(r).first().map(|e| e.peer));
            if let Some(peer) = helper {
                cx.send(peer.addr, PastryMessage::RowRequest { row: row as u8 });
                self.repair.row_requests += 1;
            }
        }
        if was_leaf || table_slot.is_some() {
            cx.deliver(PastryOutput::PeerFailed { id, was_leaf });
        }
    }

    /// A leaf set arrived for repair.
    pub(super) fn on_leaf_set_reply(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        sender: NodeHandle,
        leaves: Vec<NodeHandle>,
    ) {
        let pings_before = self.pings_sent;
        if sender.addr == from {
            self.learn_and_probe(cx, sender);
        }
        // Only the nodes that would enter the leaf set are probed.
        for peer in leaves {
            if self.leaves.would_admit(peer.id) {
                self.learn_and_probe(cx, peer);
            }
        }
        // Gossip asks for leaf sets too; an answer counts as repair while a repair request is
        // unanswered (a gossip answer arriving first is counted in its place).
        if self.leaf_repairs_pending > 0 {
            self.leaf_repairs_pending -= 1;
            self.repair.replies += 1;
            self.repair.probes += self.pings_sent - pings_before;
        }
    }

    /// The messages this node has spent on repair since it started.
    pub fn repair_tally(&self) -> RepairTally {
        self.repair
    }

    /// A node that failed came back (it announced itself again).
    pub(super) fn forget_failure(&mut self, id: OverlayId) {
        self.recently_failed.retain(|(f, _)| *f != id);
    }

    /// Leave gracefully: tell every known node, stop maintenance, and go quiet.
    pub(super) fn leave(&mut self, cx: &mut Context<'_, Self>) {
        if self.phase != Phase::Joined {
            self.phase = Phase::Left;
            return;
        }
        for peer in self.known_nodes() {
            cx.send(peer.addr, PastryMessage::Leaving { node: self.me });
        }
        cx.cancel_timer(PastryTimer::Maintenance);
        self.phase = Phase::Left;
        cx.deliver(PastryOutput::Left);
    }

    /// When the node last started waiting for `addr` (for tests and reports).
    pub fn probe_pending_since(&self, addr: NodeId) -> Option<Time> {
        self.probes.get(&addr).map(|p| p.since)
    }
}
