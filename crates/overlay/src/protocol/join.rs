//! Joining the overlay (paper 002, "Pastry: Node addition"; the Pastry paper, section 2.4).
//!
//! The new node X sends a JOIN for its own id to a nearby bootstrap node A. The JOIN is routed
//! like any message toward X's id; every node on the way sends X its routing-table rows up to the
//! prefix it shares with X (A also sends its neighbourhood set, since A is near X), and the last
//! node Z, numerically closest to X, sends its leaf set. X then tells every node in its tables
//! that it has arrived, and those nodes fold X into their own state.

use stockade_core::Context;

use super::{KbrApplication, Pastry, PastryMessage, PastryOutput, PastryTimer, Phase};
use crate::handle::NodeHandle;
use crate::id::{DigitBits, OverlayId};
use crate::protocol::messages::HANDLES_PER_MESSAGE_MAX;
use crate::route::{next_hop, NextHop, RoutingView};

impl<A: KbrApplication> Pastry<A> {
    pub(super) fn start_join(&mut self, cx: &mut Context<'_, Self>) {
        let attempts = match self.phase {
            Phase::Joining { attempts } => attempts,
            _ => 0,
        };
        let Some(bootstrap) = self.bootstrap else {
            return;
        };
        self.phase = Phase::Joining {
            attempts: attempts + 1,
        };
        cx.send(
            bootstrap,
            PastryMessage::JoinRequest {
                joiner: self.me,
                hops: 0,
            },
        );
        cx.set_timer(
            PastryTimer::JoinRetry,
            std::time::Duration::from_millis(self.config.join_timeout_ms),
        );
    }

    pub(super) fn on_join_retry(&mut self, cx: &mut Context<'_, Self>) {
        match self.phase {
            Phase::Joining { attempts } if attempts >= self.config.join_attempts_max => {
                self.phase = Phase::JoinFailed;
                cx.deliver(PastryOutput::JoinFailed { attempts });
            }
            Phase::Joining { .. } => self.start_join(cx),
            _ => {}
        }
    }

    /// A JOIN for `joiner` passes through this node.
    pub(super) fn on_join_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        joiner: NodeHandle,
        hops: u8,
    ) {
        if self.phase != Phase::Joined
            || joiner.id == self.me.id
            || hops >= self.config.route_hops_max
        {
            return;
        }
        // Rows 0..=l, where l is the prefix this node shares with the joiner: the joiner shares
        // exactly as much with every entry of those rows (the Pastry paper sends row l from the
        // l-th hop; sending all lower rows too costs little and survives lost hops).
        let digits = self.config.digits;
        let shared = digits.shared_prefix_len(self.me.id, joiner.id);
        let mut known: Vec<NodeHandle> = Vec::new();
        for row in 0..=shared.min(self.table.row_count()) {
            known.extend(self.table.row(row).into_iter().map(|e| e.peer));
        }
        if hops == 0 {
            known.extend(self.neighborhood.members().iter().map(|e| e.peer));
        }
        known.retain(|p| p.id != joiner.id);
        known.truncate(HANDLES_PER_MESSAGE_MAX);
        cx.send(
            joiner.addr,
            PastryMessage::JoinState {
                sender: self.me,
                known,
            },
        );

        // Route on toward the joiner's id, never to the joiner itself: it is already known here
        // when this is a retry or when it announced itself before.
        let next = next_hop(
            &WithoutNode {
                pastry: self,
                excluded: joiner.id,
            },
            joiner.id,
        );
        match next {
            NextHop::Forward { peer, .. } => {
                cx.send(
                    peer.addr,
                    PastryMessage::JoinRequest {
                        joiner,
                        hops: hops + 1,
                    },
                );
            }
            NextHop::Deliver => {
                let leaves = self.leaves.members();
                cx.send(
                    joiner.addr,
                    PastryMessage::JoinReply {
                        root: self.me,
                        leaves,
                    },
                );
            }
        }
    }

    /// A hop of our JOIN sent its state.
    pub(super) fn on_join_state(
        &mut self,
        cx: &mut Context<'_, Self>,
        sender: NodeHandle,
        known: Vec<NodeHandle>,
    ) {
        if !matches!(self.phase, Phase::Joining { .. } | Phase::Joined) {
            return;
        }
        self.learn_and_probe(cx, sender);
        for peer in known {
            self.learn_and_probe(cx, peer);
        }
    }

    /// The JOIN reached the node numerically closest to our id: its leaf set is ours.
    pub(super) fn on_join_reply(
        &mut self,
        cx: &mut Context<'_, Self>,
        root: NodeHandle,
        leaves: Vec<NodeHandle>,
    ) {
        if !matches!(self.phase, Phase::Joining { .. }) {
            return;
        }
        self.learn_and_probe(cx, root);
        for peer in leaves {
            self.learn_and_probe(cx, peer);
        }
        cx.cancel_timer(PastryTimer::JoinRetry);
        self.become_joined(cx);
        // Announce to every node we know or are still probing: with certified ids the tables
        // fill only as probe answers prove identities, but those nodes must hear of us now.
        let mut targets: Vec<stockade_core::NodeId> =
            self.known_nodes().iter().map(|p| p.addr).collect();
        targets.extend(self.probes.keys().copied());
        targets.sort();
        targets.dedup();
        for addr in targets {
            cx.send(addr, PastryMessage::Announce { node: self.me });
        }
    }

    /// Start serving: begin maintenance and tell the application.
    pub(super) fn become_joined(&mut self, cx: &mut Context<'_, Self>) {
        self.phase = Phase::Joined;
        cx.set_timer(PastryTimer::Maintenance, self.maintenance_interval());
        cx.deliver(PastryOutput::Joined {
            leaf_set_len: self.leaves.len(),
            table_entries: self.table.len(),
        });
    }
}

/// A node's routing state with one node left out: the joiner, while routing its own JOIN.
struct WithoutNode<'a, A: KbrApplication> {
    pastry: &'a Pastry<A>,
    excluded: OverlayId,
}

impl<A: KbrApplication> RoutingView for WithoutNode<'_, A> {
    type Peer = NodeHandle;

    fn local_id(&self) -> OverlayId {
        self.pastry.me.id
    }
    fn id_of(&self, peer: NodeHandle) -> OverlayId {
        peer.id
    }
    fn digits(&self) -> DigitBits {
        self.pastry.config.digits
    }
    fn leaf_range_contains(&self, key: OverlayId) -> bool {
        self.pastry.leaves.in_range(key)
    }
    fn closest_leaf(&self, key: OverlayId) -> Option<NodeHandle> {
        let mut best: Option<NodeHandle> = None;
        let mut best_id = self.pastry.me.id;
        for peer in self.pastry.leaves.members() {
            if peer.id != self.excluded && key.prefers(peer.id, best_id) {
                best = Some(peer);
                best_id = peer.id;
            }
        }
        best
    }
    fn table_entry(&self, row: usize, column: usize) -> Option<NodeHandle> {
        self.pastry
            .table_entry(row, column)
            .filter(|p| p.id != self.excluded)
    }
    fn for_each_known(&self, visit: &mut dyn FnMut(NodeHandle)) {
        let excluded = self.excluded;
        self.pastry.for_each_known(&mut |p| {
            if p.id != excluded {
                visit(p)
            }
        });
    }
}
