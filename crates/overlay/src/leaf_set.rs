//! The leaf set: the L/2 nodes with the numerically closest larger ids and the L/2 with the closest
//! smaller ids (paper 002, "Pastry: Leaf sets").
//!
//! It decides delivery (a key inside the leaf set's range goes to the numerically closest member),
//! it is what keep-alives watch, and it is where replicas live.

use crate::handle::NodeHandle;
use crate::id::OverlayId;

/// Pastry's default leaf-set size L.
pub const LEAF_SET_SIZE_DEFAULT: usize = 16;

/// The leaf set of one node. In an overlay of at most L nodes a peer may sit on both sides: each
/// side is simply the L/2 known nodes nearest in its direction.
#[derive(Clone, Debug)]
pub struct LeafSet {
    me: OverlayId,
    half_len_max: usize,
    /// Clockwise (larger ids), nearest first.
    clockwise: Vec<NodeHandle>,
    /// Counter-clockwise (smaller ids), nearest first.
    counter_clockwise: Vec<NodeHandle>,
}

impl LeafSet {
    /// An empty leaf set of size `size` (L; an odd L is rounded down) for the node `me`.
    pub fn new(me: OverlayId, size: usize) -> LeafSet {
        let half_len_max = (size / 2).max(1);
        LeafSet {
            me,
            half_len_max,
            clockwise: Vec::new(),
            counter_clockwise: Vec::new(),
        }
    }

    /// The local node's id.
    pub fn me(&self) -> OverlayId {
        self.me
    }

    /// L/2, the most members kept on each side.
    pub fn half_len_max(&self) -> usize {
        self.half_len_max
    }

    /// Offer `peer`; returns whether it entered either side.
    pub fn offer(&mut self, peer: NodeHandle) -> bool {
        if peer.id == self.me {
            return false;
        }
        let me = self.me;
        let cw = insert_nearest(&mut self.clockwise, peer, self.half_len_max, |p| {
            me.clockwise_to(p.id)
        });
        let ccw = insert_nearest(&mut self.counter_clockwise, peer, self.half_len_max, |p| {
            p.id.clockwise_to(me)
        });
        cw || ccw
    }

    /// Whether `id`, not yet a member, would enter either side if offered.
    pub fn would_admit(&self, id: OverlayId) -> bool {
        if id == self.me || self.contains(id) {
            return false;
        }
        let me = self.me;
        let fits = |side: &[NodeHandle], distance: &dyn Fn(OverlayId) -> u128| {
            side.len() < self.half_len_max
                || side
                    .last()
                    .is_some_and(|far| distance(id) < distance(far.id))
        };
        fits(&self.clockwise, &|x| me.clockwise_to(x))
            || fits(&self.counter_clockwise, &|x| x.clockwise_to(me))
    }

    /// Drop `id` from both sides; returns whether it was a member.
    pub fn remove(&mut self, id: OverlayId) -> bool {
        let before = self.clockwise.len() + self.counter_clockwise.len();
        self.clockwise.retain(|p| p.id != id);
        self.counter_clockwise.retain(|p| p.id != id);
        before != self.clockwise.len() + self.counter_clockwise.len()
    }

    /// Members with larger ids, nearest first.
    pub fn clockwise(&self) -> &[NodeHandle] {
        &self.clockwise
    }

    /// Members with smaller ids, nearest first.
    pub fn counter_clockwise(&self) -> &[NodeHandle] {
        &self.counter_clockwise
    }

    /// Every member once (a peer on both sides appears once).
    pub fn members(&self) -> Vec<NodeHandle> {
        let mut all = self.clockwise.clone();
        for p in &self.counter_clockwise {
            if !all.iter().any(|q| q.id == p.id) {
                all.push(*p);
            }
        }
        all
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: OverlayId) -> bool {
        self.clockwise
            .iter()
            .chain(&self.counter_clockwise)
            .any(|p| p.id == id)
    }

    /// Whether the two sides meet, so the leaf set holds every node of the overlay.
    pub fn covers_ring(&self) -> bool {
        if self.clockwise.len() < self.half_len_max
            || self.counter_clockwise.len() < self.half_len_max
        {
            return true;
        }
        let far_cw = self.clockwise[self.clockwise.len() - 1];
        self.counter_clockwise.iter().any(|p| p.id == far_cw.id)
    }

    /// Whether `key` lies between the farthest members on the two sides (inclusive), so that the
    /// numerically closest member (or this node) is the key's root.
    pub fn in_range(&self, key: OverlayId) -> bool {
        if self.covers_ring() {
            return true;
        }
        let (Some(low), Some(high)) = (self.counter_clockwise.last(), self.clockwise.last()) else {
            return true;
        };
        low.id.clockwise_to(key) <= low.id.clockwise_to(high.id)
    }

    /// The member numerically closest to `key`, or `None` when this node is at least as close.
    pub fn closest(&self, key: OverlayId) -> Option<NodeHandle> {
        let mut best: Option<NodeHandle> = None;
        let mut best_id = self.me;
        for p in self.clockwise.iter().chain(&self.counter_clockwise) {
            if key.prefers(p.id, best_id) {
                best = Some(*p);
                best_id = p.id;
            }
        }
        best
    }

    /// The farthest member on each side, the ones to ask for their leaf sets when a member fails
    /// (paper 002, "Leaf set repair (eager): request set from farthest live node in set").
    pub fn farthest(&self) -> (Option<NodeHandle>, Option<NodeHandle>) {
        (
            self.counter_clockwise.last().copied(),
            self.clockwise.last().copied(),
        )
    }

    /// The up to `count` nodes, this node included, numerically closest to `key` that this leaf set
    /// knows (the replica set; meaningful for keys in range and `count <= L/2 + 1`).
    pub fn closest_n(&self, key: OverlayId, count: usize) -> Vec<OverlayId> {
        let mut ids: Vec<OverlayId> = self.members().iter().map(|p| p.id).collect();
        ids.push(self.me);
        ids.sort_by(|a, b| key.closeness_order(*a, *b));
        ids.truncate(count);
        ids
    }

    /// Number of distinct members.
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Whether the leaf set is empty (a lone node).
    pub fn is_empty(&self) -> bool {
        self.clockwise.is_empty() && self.counter_clockwise.is_empty()
    }
}

/// Insert `peer` into `side` (sorted by `distance`, nearest first), keeping at most `len_max`.
fn insert_nearest(
    side: &mut Vec<NodeHandle>,
    peer: NodeHandle,
    len_max: usize,
    distance: impl Fn(&NodeHandle) -> u128,
) -> bool {
    if let Some(existing) = side.iter_mut().find(|p| p.id == peer.id) {
        // A known member may have a new address (it restarted elsewhere).
        existing.addr = peer.addr;
        return false;
    }
    let d = distance(&peer);
    let at = side.partition_point(|p| distance(p) < d);
    if at >= len_max {
        return false;
    }
    side.insert(at, peer);
    side.truncate(len_max);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::test_handle as h;

    #[test]
    fn keeps_the_nearest_half_on_each_side() {
        let mut leaves = LeafSet::new(OverlayId(1000), 4);
        for id in [900, 950, 990, 1010, 1050, 1100, 1200] {
            leaves.offer(h(id));
        }
        let cw: Vec<u128> = leaves.clockwise().iter().map(|p| p.id.0).collect();
        let ccw: Vec<u128> = leaves.counter_clockwise().iter().map(|p| p.id.0).collect();
        assert_eq!(cw, vec![1010, 1050]);
        assert_eq!(ccw, vec![990, 950]);
        assert!(!leaves.covers_ring());
        assert!(leaves.in_range(OverlayId(960)));
        assert!(leaves.in_range(OverlayId(1050)));
        assert!(!leaves.in_range(OverlayId(1051)));
        assert_eq!(leaves.closest(OverlayId(1031)).map(|p| p.id.0), Some(1050));
        assert_eq!(
            leaves.closest(OverlayId(1004)),
            None,
            "this node is closest"
        );
        assert_eq!(leaves.farthest(), (Some(h(950)), Some(h(1050))));
        assert!(leaves.would_admit(OverlayId(1030)));
        assert!(leaves.would_admit(OverlayId(960)));
        assert!(
            !leaves.would_admit(OverlayId(1100)),
            "beyond the clockwise side"
        );
        assert!(
            !leaves.would_admit(OverlayId(900)),
            "beyond the counter-clockwise side"
        );
        assert!(!leaves.would_admit(OverlayId(1010)), "already a member");
        assert!(!leaves.would_admit(OverlayId(1000)), "itself");
    }

    #[test]
    fn a_small_ring_is_covered_and_peers_sit_on_both_sides() {
        let mut leaves = LeafSet::new(OverlayId(10), 16);
        for id in [20, 30, u128::MAX - 5] {
            leaves.offer(h(id));
        }
        assert!(leaves.covers_ring());
        assert!(leaves.in_range(OverlayId(1 << 100)));
        assert_eq!(leaves.len(), 3);
        assert_eq!(leaves.clockwise().len(), 3);
        assert_eq!(
            leaves.closest(OverlayId(u128::MAX)).map(|p| p.id.0),
            Some(u128::MAX - 5)
        );
    }

    #[test]
    fn a_ring_of_l_plus_one_nodes_has_one_gap() {
        // 5 nodes, L=4: each side holds 2 and the sides do not overlap; the one gap between the two
        // farthest members (200..300) is outside the range and left to the routing table.
        let mut leaves = LeafSet::new(OverlayId(0), 4);
        for id in [100, 200, 300, 400] {
            leaves.offer(h(id));
        }
        assert!(!leaves.covers_ring());
        assert!(leaves.in_range(OverlayId(150)));
        assert!(leaves.in_range(OverlayId(u128::MAX)));
        assert!(!leaves.in_range(OverlayId(250)));
        assert_eq!(leaves.closest(OverlayId(140)).map(|p| p.id.0), Some(100));
    }

    #[test]
    fn removal_and_replica_sets() {
        let mut leaves = LeafSet::new(OverlayId(1000), 4);
        for id in [990, 1010, 1020] {
            leaves.offer(h(id));
        }
        assert!(leaves.remove(OverlayId(1010)));
        assert!(!leaves.remove(OverlayId(1010)));
        assert_eq!(
            leaves.closest_n(OverlayId(1015), 2),
            vec![OverlayId(1020), OverlayId(1000)]
        );
    }
}
