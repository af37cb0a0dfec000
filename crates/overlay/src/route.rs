//! The Pastry routing decision, written once over a [`RoutingView`] so that the event-driven
//! protocol and the static scale model route by exactly the same rule.
//!
//! Paper 002, "Pastry: Prefix-based routing" (the rule of the Pastry paper, Table 1):
//! 1. if the key is within the leaf set's range, deliver to the numerically closest leaf (or here);
//! 2. else forward to the routing-table entry that shares one more digit with the key;
//! 3. else (rare) forward to any known node that shares at least as long a prefix with the key and
//!    is numerically closer to it than this node; if none, this node is the root.
//!
//! Every forward either lengthens the prefix shared with the key or gets numerically closer to it
//! (leaf-set and rare-case hops), so a route makes progress at every hop and ends (property-tested
//! in `static_overlay`).

use crate::id::{DigitBits, OverlayId};

/// What a node knows, as the routing rule needs it. `Peer` is whatever names a peer cheaply:
/// a [`crate::NodeHandle`] in the protocol, a `u32` index in the static scale model.
pub trait RoutingView {
    /// A known node.
    type Peer: Copy;
    /// The local node's id.
    fn local_id(&self) -> OverlayId;
    /// The id of a known peer.
    fn id_of(&self, peer: Self::Peer) -> OverlayId;
    /// The digit width of the routing table.
    fn digits(&self) -> DigitBits;
    /// Whether `key` is within the leaf set's range.
    fn leaf_range_contains(&self, key: OverlayId) -> bool;
    /// The leaf numerically closest to `key`, or `None` when the local node is at least as close.
    fn closest_leaf(&self, key: OverlayId) -> Option<Self::Peer>;
    /// The routing-table entry at (row, column).
    fn table_entry(&self, row: usize, column: usize) -> Option<Self::Peer>;
    /// Calls `visit` on every known peer (leaf set, routing table, neighbourhood set).
    fn for_each_known(&self, visit: &mut dyn FnMut(Self::Peer));
}

/// Which rule produced a hop; the scale experiments count them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HopRule {
    /// The key is in the leaf set's range.
    LeafSet,
    /// A routing-table entry with a longer shared prefix.
    RoutingTable,
    /// The rare case: a known node with an equal prefix, numerically closer.
    RareCase,
}

/// The routing decision for one key at one node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NextHop<P> {
    /// This node is the key's root: deliver here.
    Deliver,
    /// Forward to `peer`, by `rule`.
    Forward {
        /// The next node.
        peer: P,
        /// The rule that chose it.
        rule: HopRule,
    },
}

/// Decide where a message for `key` goes next from the node that `view` describes.
pub fn next_hop<V: RoutingView + ?Sized>(view: &V, key: OverlayId) -> NextHop<V::Peer> {
    let me = view.local_id();
    if view.leaf_range_contains(key) {
        return match view.closest_leaf(key) {
            Some(peer) => NextHop::Forward {
                peer,
                rule: HopRule::LeafSet,
            },
            None => NextHop::Deliver,
        };
    }
    let digits = view.digits();
    let shared = digits.shared_prefix_len(me, key);
    if shared >= digits.digit_count() {
        return NextHop::Deliver;
    }
    if let Some(peer) = view.table_entry(shared, digits.digit(key, shared)) {
        return NextHop::Forward {
            peer,
            rule: HopRule::RoutingTable,
        };
    }
    match rare_case_candidate(view, key, shared) {
        Some(peer) => NextHop::Forward {
            peer,
            rule: HopRule::RareCase,
        },
        None => NextHop::Deliver,
    }
}

/// The known node that shares at least `shared` digits with `key` and is numerically closest to
/// it, if it is closer than the local node.
fn rare_case_candidate<V: RoutingView + ?Sized>(
    view: &V,
    key: OverlayId,
    shared: usize,
) -> Option<V::Peer> {
    let digits = view.digits();
    let mut best: Option<(V::Peer, OverlayId)> = None;
    let mut best_id = view.local_id();
    view.for_each_known(&mut |peer| {
        let id = view.id_of(peer);
        if digits.shared_prefix_len(id, key) >= shared && key.prefers(id, best_id) {
            best = Some((peer, id));
            best_id = id;
        }
    });
    best.map(|(peer, _)| peer)
}

/// Up to `count` candidate next hops for `key`, best first: the chosen next hop, then other known
/// nodes that also make progress (longer shared prefix, or equal prefix and numerically closer),
/// ordered by shared prefix then closeness. This is the KBR API's `local_lookup(key, num)`.
pub fn progress_candidates<V: RoutingView + ?Sized>(
    view: &V,
    key: OverlayId,
    count: usize,
) -> Vec<V::Peer> {
    let digits = view.digits();
    let me = view.local_id();
    let my_prefix = digits.shared_prefix_len(me, key);
    let mut ranked: Vec<(usize, u128, u128, V::Peer)> = Vec::new();
    view.for_each_known(&mut |peer| {
        let id = view.id_of(peer);
        let prefix = digits.shared_prefix_len(id, key);
        let makes_progress = prefix > my_prefix || (prefix == my_prefix && key.prefers(id, me));
        if makes_progress {
            ranked.push((prefix, key.ring_distance(id), id.0, peer));
        }
    });
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out: Vec<V::Peer> = Vec::with_capacity(count);
    let mut seen: Vec<u128> = Vec::with_capacity(count);
    if let NextHop::Forward { peer, .. } = next_hop(view, key) {
        out.push(peer);
        seen.push(view.id_of(peer).0);
    }
    for (_, _, id, peer) in ranked {
        if out.len() >= count {
            break;
        }
        if !seen.contains(&id) {
            seen.push(id);
            out.push(peer);
        }
    }
    out.truncate(count);
    out
}
