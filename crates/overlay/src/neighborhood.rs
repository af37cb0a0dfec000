//! The neighbourhood set: the M nodes closest to this one by the proximity metric, whatever their
//! ids. A joining node starts from its bootstrap's neighbourhood set, and the set seeds proximity
//! neighbour selection (paper 002, "Pastry: Proximity routing" and "Node addition").

use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::routing_table::RouteEntry;

/// Pastry's usual neighbourhood-set size M = 2^(b+1) for b = 4.
pub const NEIGHBORHOOD_SIZE_DEFAULT: usize = 32;

/// The M nearest known nodes by proximity, nearest first.
#[derive(Clone, Debug)]
pub struct NeighborhoodSet {
    me: OverlayId,
    len_max: usize,
    nearest: Vec<RouteEntry>,
}

impl NeighborhoodSet {
    /// An empty set of at most `len_max` members for node `me`.
    pub fn new(me: OverlayId, len_max: usize) -> NeighborhoodSet {
        NeighborhoodSet {
            me,
            len_max,
            nearest: Vec::new(),
        }
    }

    /// Offer `peer` at `proximity_us`; returns whether it is now a member.
    pub fn offer(&mut self, peer: NodeHandle, proximity_us: u32) -> bool {
        if peer.id == self.me {
            return false;
        }
        self.nearest.retain(|e| e.peer.id != peer.id);
        let at = self
            .nearest
            .partition_point(|e| e.proximity_us <= proximity_us);
        if at >= self.len_max {
            return false;
        }
        self.nearest.insert(at, RouteEntry { peer, proximity_us });
        self.nearest.truncate(self.len_max);
        true
    }

    /// Drop node `id`; returns whether it was a member.
    pub fn remove(&mut self, id: OverlayId) -> bool {
        let before = self.nearest.len();
        self.nearest.retain(|e| e.peer.id != id);
        before != self.nearest.len()
    }

    /// Members, nearest first.
    pub fn members(&self) -> &[RouteEntry] {
        &self.nearest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::test_handle as h;

    #[test]
    fn keeps_the_nearest_up_to_its_bound() {
        let mut set = NeighborhoodSet::new(OverlayId(0), 2);
        assert!(set.offer(h(1), 30));
        assert!(set.offer(h(2), 10));
        assert!(
            !set.offer(h(3), 40),
            "farther than both members of a full set"
        );
        assert!(set.offer(h(4), 20));
        let ids: Vec<u128> = set.members().iter().map(|e| e.peer.id.0).collect();
        assert_eq!(ids, vec![2, 4]);
        assert!(set.remove(OverlayId(2)));
        assert!(!set.offer(h(0), 0), "never itself");
    }
}
