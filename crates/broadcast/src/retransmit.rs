//! Retransmission rounds: Bracha assumes reliable links, but datagrams get lost, so each round
//! re-sends this node's own signed messages to the peers that may still need them.
//!
//! For an undelivered broadcast: a peer that has shown a READY already holds the payload and only
//! needs READYs; any other peer gets this node's INITIAL (if origin), ECHO and READY. For a
//! delivered broadcast: this node's READY goes to peers it has not seen a READY from, for at most
//! `retransmit_rounds_after_delivery_max` rounds. A broadcast whose own messages went out within
//! the last interval is skipped (they are still in flight). A round sends at most
//! `retransmit_messages_per_round_max` messages, lowest sequence numbers first.

use stockade_core::{Context, NodeId};

use crate::message::BroadcastMessage;
use crate::node::BrachaBroadcast;

impl BrachaBroadcast {
    /// One retransmission round (the `Retransmit` timer fired).
    pub(crate) fn retransmit_round(&mut self, cx: &mut Context<'_, Self>) {
        self.disarm_retransmit();
        let me = self.me();
        let peers = self.peers();
        let mut budget = RoundBudget {
            left: self.config().retransmit_messages_per_round_max,
            truncated: false,
        };

        let sent_recently_after = cx
            .now()
            .as_nanos()
            .saturating_sub(self.config().retransmit_interval.as_nanos() as u64);
        'undelivered: for window in &mut self.origins {
            for instance in window.active.values_mut() {
                if instance.last_sent_at.as_nanos() > sent_recently_after {
                    continue;
                }
                instance.last_sent_at = cx.now();
                for &peer in &peers {
                    let peer_has_payload = instance.readies[peer.index()].is_some();
                    let own = [&instance.my_initial, &instance.my_echo, &instance.my_ready];
                    let needed = own
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !peer_has_payload || *i == 2);
                    for (_, message) in needed {
                        if let Some(message) = message {
                            if !budget.send(cx, peer, message, &mut self.stats.retransmissions) {
                                break 'undelivered;
                            }
                        }
                    }
                }
            }
        }

        for entry in self.delivered.values_mut() {
            if budget.truncated || entry.rounds_left == 0 {
                continue;
            }
            entry.rounds_left -= 1;
            let targets: Vec<NodeId> = entry.peers_without_ready(me).collect();
            for peer in targets {
                if !budget.send(cx, peer, &entry.my_ready, &mut self.stats.retransmissions) {
                    break;
                }
            }
        }

        if budget.truncated {
            self.stats.retransmit_rounds_truncated += 1;
        }
        if self.has_retransmit_work() {
            self.ensure_retransmit_armed(cx);
        }
    }
}

/// The messages a round may still send.
struct RoundBudget {
    left: usize,
    truncated: bool,
}

impl RoundBudget {
    /// Send `message` to `peer` if the budget allows; false once it is exhausted.
    fn send(
        &mut self,
        cx: &mut Context<'_, BrachaBroadcast>,
        peer: NodeId,
        message: &BroadcastMessage,
        sent: &mut u64,
    ) -> bool {
        if self.left == 0 {
            self.truncated = true;
            return false;
        }
        self.left -= 1;
        *sent += 1;
        cx.send(peer, message.clone());
        true
    }
}
