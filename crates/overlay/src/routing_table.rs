//! The Pastry routing table: row r, column c holds a node that shares r digits with this node and
//! whose digit r is c, chosen by proximity neighbour selection.
//!
//! Paper 002, "Pastry: Routing table" and "Proximity invariant": each entry refers to a node close
//! to the local node (in the network) among all nodes with the appropriate id prefix.

use crate::handle::NodeHandle;
use crate::id::{DigitBits, OverlayId};

/// One routing-table slot: the peer and the proximity (round-trip estimate, microseconds) that
/// chose it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RouteEntry {
    /// The peer.
    pub peer: NodeHandle,
    /// Its measured proximity to this node; smaller is closer.
    pub proximity_us: u32,
}

/// The routing table of one node. Rows are allocated only as far as they hold entries, so a node
/// in a 100,000-node overlay keeps about 5 rows of 2^b slots, not 128/b.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    me: OverlayId,
    digits: DigitBits,
    rows: Vec<Vec<Option<RouteEntry>>>,
}

/// What an insertion did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TableChange {
    /// The slot was empty and now holds the peer.
    Filled,
    /// The peer replaced a farther one (proximity neighbour selection).
    Replaced(NodeHandle),
    /// The peer is the local node, or the slot holds a closer (or the same) peer.
    Unchanged,
}

impl RoutingTable {
    /// An empty table for the node `me`.
    pub fn new(me: OverlayId, digits: DigitBits) -> RoutingTable {
        RoutingTable {
            me,
            digits,
            rows: Vec::new(),
        }
    }

    /// The digit width.
    pub fn digits(&self) -> DigitBits {
        self.digits
    }

    /// Whether `id` would fill an empty slot (it is not this node, and its slot holds nobody).
    pub fn slot_is_free_for(&self, id: OverlayId) -> bool {
        self.slot_of(id)
            .is_some_and(|(row, column)| self.get(row, column).is_none())
    }

    /// The row and column where `id` belongs, or `None` for the local id itself.
    pub fn slot_of(&self, id: OverlayId) -> Option<(usize, usize)> {
        if id == self.me {
            return None;
        }
        let row = self.digits.shared_prefix_len(self.me, id);
        Some((row, self.digits.digit(id, row)))
    }

    /// The entry at (row, column), if any.
    pub fn get(&self, row: usize, column: usize) -> Option<&RouteEntry> {
        self.rows
            .get(row)
            .and_then(|r| r.get(column))
            .and_then(Option::as_ref)
    }

    /// Offer `peer` at `proximity_us`: it takes its slot if empty or if it is closer than the
    /// current occupant (proximity neighbour selection).
    pub fn offer(&mut self, peer: NodeHandle, proximity_us: u32) -> TableChange {
        let Some((row, column)) = self.slot_of(peer.id) else {
            return TableChange::Unchanged;
        };
        let radix = self.digits.radix();
        while self.rows.len() <= row {
            self.rows.push(vec![None; radix]);
        }
        let slot = &mut self.rows[row][column];
        match slot {
            None => {
                *slot = Some(RouteEntry { peer, proximity_us });
                TableChange::Filled
            }
            Some(old) if old.peer.id == peer.id => {
                // The same node measured again: keep the fresher figure.
                old.proximity_us = proximity_us;
                old.peer = peer;
                TableChange::Unchanged
            }
            Some(old) if proximity_us < old.proximity_us => {
                let replaced = old.peer;
                *old = RouteEntry { peer, proximity_us };
                TableChange::Replaced(replaced)
            }
            Some(_) => TableChange::Unchanged,
        }
    }

    /// Remove the node `id` (it failed or left). Returns its slot if it was present.
    pub fn remove(&mut self, id: OverlayId) -> Option<(usize, usize)> {
        let (row, column) = self.slot_of(id)?;
        let slot = self.rows.get_mut(row)?.get_mut(column)?;
        if slot.is_some_and(|e| e.peer.id == id) {
            *slot = None;
            self.trim();
            return Some((row, column));
        }
        None
    }

    fn trim(&mut self) {
        while self
            .rows
            .last()
            .is_some_and(|r| r.iter().all(Option::is_none))
        {
            self.rows.pop();
        }
    }

    /// Row `row` as a list of present entries (what a join returns to the joining node).
    pub fn row(&self, row: usize) -> Vec<RouteEntry> {
        self.rows
            .get(row)
            .map(|r| r.iter().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// Rows allocated (the last one holds at least one entry).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Every entry, row by row.
    pub fn entries(&self) -> impl Iterator<Item = &RouteEntry> + '_ {
        self.rows.iter().flat_map(|r| r.iter().flatten())
    }

    /// Number of entries present.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// Whether no entry is present.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the table contains node `id`.
    pub fn contains(&self, id: OverlayId) -> bool {
        self.slot_of(id)
            .and_then(|(r, c)| self.get(r, c))
            .is_some_and(|e| e.peer.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_core::NodeId;

    fn h(id: u128, addr: u32) -> NodeHandle {
        NodeHandle {
            id: OverlayId(id),
            addr: NodeId(addr),
        }
    }

    const ME: u128 = 0x65a1_fc00_0000_0000_0000_0000_0000_0000;

    #[test]
    fn entries_land_in_the_row_of_the_shared_prefix() {
        let mut t = RoutingTable::new(OverlayId(ME), DigitBits::HEX);
        assert_eq!(t.offer(h(0x1000 << 112, 1), 50), TableChange::Filled);
        assert_eq!(t.offer(h(0x65b0 << 112, 2), 50), TableChange::Filled);
        assert_eq!(t.get(0, 1).map(|e| e.peer.addr), Some(NodeId(1)));
        assert_eq!(t.get(2, 0xb).map(|e| e.peer.addr), Some(NodeId(2)));
        assert_eq!(t.row_count(), 3);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.offer(h(ME, 9), 0),
            TableChange::Unchanged,
            "the local node is never an entry"
        );
    }

    #[test]
    fn proximity_selection_keeps_the_closer_node() {
        let mut t = RoutingTable::new(OverlayId(ME), DigitBits::HEX);
        let far = h(0x1000 << 112, 1);
        let near = h(0x1fff << 112, 2);
        t.offer(far, 80);
        assert_eq!(t.offer(near, 20), TableChange::Replaced(far));
        assert_eq!(t.offer(far, 80), TableChange::Unchanged);
        assert_eq!(t.get(0, 1).map(|e| e.peer), Some(near));
        assert!(!t.slot_is_free_for(far.id), "(0, 1) is taken");
        assert!(
            t.slot_is_free_for(OverlayId(0x2000 << 112)),
            "(0, 2) is empty"
        );
        assert!(
            !t.slot_is_free_for(OverlayId(ME)),
            "the local id has no slot"
        );
    }

    #[test]
    fn removal_trims_empty_rows() {
        let mut t = RoutingTable::new(OverlayId(ME), DigitBits::HEX);
        let deep = h(0x6_5a10 << 108, 3);
        t.offer(deep, 10);
        assert_eq!(t.row_count(), 5);
        assert_eq!(t.remove(deep.id), Some((4, 0)));
        assert!(t.is_empty());
        assert_eq!(t.remove(deep.id), None);
    }
}
