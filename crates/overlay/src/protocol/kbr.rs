//! The key-based routing (KBR) API (paper 002, "Key-based routing (KBR) API", IPTPS'03):
//! `route(M, X)`, the `deliver` and `forward` upcalls, and the local calls `local_lookup`,
//! `neighbor_set`, `replica_set` and `range`.
//!
//! `route` is a [`super::PastryRequest::Route`]; `deliver` is a [`PastryOutput::Delivered`]
//! output; `forward` is a synchronous call into the node's [`KbrApplication`], which may change
//! the payload or stop the message (how PAST caches and Scribe builds trees).

use stockade_core::Context;

use super::{Pastry, PastryMessage, Phase, RoutedMessage, UnackedForward};
use crate::certificate::CertificateError;
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::messages::ROUTE_PAYLOAD_BYTES_MAX;
use crate::route::{next_hop, progress_candidates, NextHop};

/// What the forward upcall decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ForwardVerdict {
    /// Send the (possibly changed) message on to the next hop.
    Continue,
    /// The application consumed the message here.
    Stop,
}

/// The application above a Pastry node: its `forward` upcall runs on every node a message passes
/// through before it goes on.
pub trait KbrApplication {
    /// `payload` for `key` is about to go to `next`; the application may change it or stop it.
    fn forward(
        &mut self,
        key: OverlayId,
        payload: &mut Vec<u8>,
        next: NodeHandle,
    ) -> ForwardVerdict {
        let _ = (key, payload, next);
        ForwardVerdict::Continue
    }
}

/// The application that lets every message through to its root.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeliverAll;

impl KbrApplication for DeliverAll {}

/// Why a `route` request was not sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RouteRefused {
    /// The node has not finished joining (or has left).
    #[error(
        "this node is not part of the overlay yet (or has left); wait for Joined before routing"
    )]
    NotJoined,
    /// The payload is over the limit.
    #[error("payload of {bytes} bytes exceeds the {ROUTE_PAYLOAD_BYTES_MAX}-byte limit of a routed message; chunk it")]
    PayloadTooLarge {
        /// The payload's size.
        bytes: usize,
    },
}

/// What a Pastry node tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PastryOutput {
    /// The node is part of the overlay.
    Joined {
        /// Leaf-set members at that moment.
        leaf_set_len: usize,
        /// Routing-table entries at that moment.
        table_entries: usize,
    },
    /// The bootstrap never completed our join.
    JoinFailed {
        /// Attempts made.
        attempts: u32,
    },
    /// The `deliver` upcall: this node is the root of `key`.
    Delivered {
        /// The key.
        key: OverlayId,
        /// Who routed it.
        origin: NodeHandle,
        /// Overlay hops it took.
        hops: u8,
        /// The application's bytes.
        payload: Vec<u8>,
    },
    /// The forward upcall stopped a message here.
    Consumed {
        /// The key.
        key: OverlayId,
        /// The payload as the application left it.
        payload: Vec<u8>,
    },
    /// A `route` request was refused.
    RouteRefused(RouteRefused),
    /// A routed message was dropped after too many hops (a routing loop).
    RouteDropped {
        /// The key.
        key: OverlayId,
        /// Hops it had taken.
        hops: u8,
    },
    /// A peer was found failed (or left) and removed.
    PeerFailed {
        /// The peer.
        id: OverlayId,
        /// Whether it was in the leaf set (repair started).
        was_leaf: bool,
    },
    /// A peer failed to prove its certified id and was kept out of the tables.
    PeerRejected {
        /// The id it claimed.
        id: OverlayId,
        /// Why it was refused.
        reason: CertificateError,
    },
    /// This node left the overlay.
    Left,
}

impl<A: super::KbrApplication> Pastry<A> {
    /// `route(payload, key)` from the local application.
    pub(super) fn route_from_here(
        &mut self,
        cx: &mut Context<'_, Self>,
        key: OverlayId,
        payload: Vec<u8>,
    ) {
        if self.phase != Phase::Joined {
            cx.deliver(PastryOutput::RouteRefused(RouteRefused::NotJoined));
            return;
        }
        if payload.len() > ROUTE_PAYLOAD_BYTES_MAX {
            cx.deliver(PastryOutput::RouteRefused(RouteRefused::PayloadTooLarge {
                bytes: payload.len(),
            }));
            return;
        }
        self.route_step(
            cx,
            RoutedMessage {
                key,
                origin: self.me,
                hops: 0,
                payload,
            },
            true,
        );
    }

    /// One routing step for a message at this node. `upcall` is false when a message is
    /// rerouted after its first next hop failed: the application already saw it here.
    pub(super) fn route_step(
        &mut self,
        cx: &mut Context<'_, Self>,
        message: RoutedMessage,
        upcall: bool,
    ) {
        if self.phase != Phase::Joined {
            return;
        }
        let RoutedMessage {
            key,
            origin,
            hops,
            mut payload,
        } = message;
        match next_hop(self, key) {
            NextHop::Deliver => cx.deliver(PastryOutput::Delivered {
                key,
                origin,
                hops,
                payload,
            }),
            NextHop::Forward { peer, .. } => {
                if hops >= self.config.route_hops_max {
                    cx.deliver(PastryOutput::RouteDropped { key, hops });
                    return;
                }
                if upcall && self.app.forward(key, &mut payload, peer) == ForwardVerdict::Stop {
                    cx.deliver(PastryOutput::Consumed { key, payload });
                    return;
                }
                let seq = self.next_route_seq;
                self.next_route_seq += 1;
                if self.unacked.len() < self.config.unacked_forwards_max {
                    let message = RoutedMessage {
                        key,
                        origin,
                        hops,
                        payload: payload.clone(),
                    };
                    self.unacked.insert(
                        seq,
                        UnackedForward {
                            message,
                            next: peer,
                            sent: cx.now(),
                        },
                    );
                }
                cx.send(
                    peer.addr,
                    PastryMessage::Route {
                        key,
                        origin,
                        hops: hops + 1,
                        seq,
                        payload,
                    },
                );
            }
        }
    }

    /// Forwards whose next hop stayed silent: declare it failed and route the message again.
    pub(super) fn reroute_unacknowledged(&mut self, cx: &mut Context<'_, Self>) {
        let timeout = std::time::Duration::from_millis(self.config.route_ack_timeout_ms);
        let now = cx.now();
        let expired: Vec<u64> = self
            .unacked
            .iter()
            .filter(|(_, f)| now - f.sent >= timeout)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            let Some(forward) = self.unacked.remove(&seq) else {
                continue;
            };
            // Wherever it is known (leaf set, table, neighbourhood set), it must not be chosen
            // again for this message.
            self.on_peer_failed(cx, forward.next.addr, forward.next.id);
            self.route_step(cx, forward.message, false);
        }
    }

    /// KBR `local_lookup(key, num)`: up to `num` next hops for `key`, best first (empty when this
    /// node is the root and knows no node making progress).
    pub fn local_lookup(&self, key: OverlayId, num: usize) -> Vec<NodeHandle> {
        progress_candidates(self, key, num)
    }

    /// KBR `neighborSet`: the leaf set (the nodes nearest in the id space).
    pub fn neighbor_set(&self) -> Vec<NodeHandle> {
        self.leaves.members()
    }

    /// KBR `replicaSet(key, r)`: the up to `r` nodes, this one included, numerically closest to
    /// `key` among those this node knows in its leaf set. Meaningful when this node is near the
    /// key (in its leaf set's range) and `r <= L/2 + 1`.
    pub fn replica_set(&self, key: OverlayId, r: usize) -> Vec<NodeHandle> {
        let mut all = self.leaves.members();
        all.push(self.me);
        all.sort_by(|a, b| key.closeness_order(a.id, b.id));
        all.truncate(r);
        all
    }

    /// KBR `range(node, r)`: the keys for which `node` (this node or a leaf) is among the `r`
    /// numerically closest nodes, as the clockwise arc `(low, high]` (ties at the two midpoints go
    /// by [`OverlayId::prefers`]). `None` when this node cannot tell: `node` is unknown, `r` is 0,
    /// or the leaf set does not reach `r` nodes past `node` on both sides.
    pub fn range(&self, node: OverlayId, r: usize) -> Option<(OverlayId, OverlayId)> {
        if r == 0 {
            return None;
        }
        let mut ring: Vec<OverlayId> = self.leaves.members().iter().map(|p| p.id).collect();
        ring.push(self.me.id);
        // Order the known arc clockwise starting just after our farthest counter-clockwise leaf.
        let start = self
            .leaves
            .counter_clockwise()
            .last()
            .map_or(self.me.id, |p| p.id);
        ring.sort_by_key(|id| start.clockwise_to(*id));
        let at = ring.iter().position(|id| *id == node)?;
        if self.leaves.covers_ring() {
            let n = ring.len();
            if r >= n {
                return Some((node, node));
            }
            let below = ring[(at + n - r) % n];
            let above = ring[(at + r) % n];
            return Some((midpoint(below, node), midpoint(node, above)));
        }
        let below = *ring.get(at.checked_sub(r)?)?;
        let above = *ring.get(at + r)?;
        Some((midpoint(below, node), midpoint(node, above)))
    }
}

/// The point halfway clockwise from `a` to `b`.
fn midpoint(a: OverlayId, b: OverlayId) -> OverlayId {
    OverlayId(a.0.wrapping_add(a.clockwise_to(b) / 2))
}
