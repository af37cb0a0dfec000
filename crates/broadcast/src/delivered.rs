//! Broadcasts this node already delivered, kept (bounded) with its own READY so that peers that are
//! behind can still collect the READYs they need, as Bracha's totality requires.
//!
//! Vote tallies are dropped at delivery; only the signed READY and a bitmap of which peers have
//! shown a READY remain. The oldest entry is evicted when `delivered_cache_len_max` is reached.

use std::collections::{BTreeMap, VecDeque};

use stockade_core::{NodeId, Time};

use crate::message::{BroadcastMessage, InstanceId};
use crate::signing::PayloadDigest;

/// One delivered broadcast.
#[derive(Clone, Debug)]
pub(crate) struct DeliveredEntry {
    /// The digest this node delivered.
    pub(crate) digest: PayloadDigest,
    /// This node's signed READY, re-sent to peers that are behind.
    pub(crate) my_ready: BroadcastMessage,
    /// `ready_seen[i]`: node `i` has shown this node a READY for the broadcast.
    pub(crate) ready_seen: Vec<bool>,
    /// `last_reply_at[i]`: when node `i` last got a catch-up reply (at most one per interval).
    pub(crate) last_reply_at: Vec<Option<Time>>,
    /// Retransmission rounds left in which this node pushes its READY to peers not yet seen.
    pub(crate) rounds_left: u32,
}

impl DeliveredEntry {
    /// Peers (other than `me`) this node has not seen a READY from.
    pub(crate) fn peers_without_ready(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.ready_seen
            .iter()
            .enumerate()
            .filter(move |(i, seen)| !**seen && *i != me.index())
            .map(|(i, _)| NodeId(i as u32))
    }

    /// True while retransmission rounds should still push this node's READY.
    pub(crate) fn wants_push(&self, me: NodeId) -> bool {
        self.rounds_left > 0 && self.peers_without_ready(me).next().is_some()
    }
}

/// The bounded set of delivered broadcasts, oldest evicted first.
#[derive(Clone, Debug)]
pub(crate) struct DeliveredCache {
    entries: BTreeMap<InstanceId, DeliveredEntry>,
    insertion_order: VecDeque<InstanceId>,
    len_max: usize,
}

impl DeliveredCache {
    /// An empty cache holding at most `len_max` entries.
    pub(crate) fn new(len_max: usize) -> DeliveredCache {
        DeliveredCache {
            entries: BTreeMap::new(),
            insertion_order: VecDeque::new(),
            len_max,
        }
    }

    /// Add an entry, evicting the oldest when full. Returns how many were evicted.
    pub(crate) fn insert(&mut self, id: InstanceId, entry: DeliveredEntry) -> usize {
        let mut evicted = 0;
        while self.entries.len() >= self.len_max {
            let Some(oldest) = self.insertion_order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
            evicted += 1;
        }
        if self.entries.insert(id, entry).is_none() {
            self.insertion_order.push_back(id);
        }
        evicted
    }

    pub(crate) fn get_mut(&mut self, id: &InstanceId) -> Option<&mut DeliveredEntry> {
        self.entries.get_mut(id)
    }

    pub(crate) fn contains(&self, id: &InstanceId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn len_max(&self) -> usize {
        self.len_max
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&InstanceId, &DeliveredEntry)> {
        self.entries.iter()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut DeliveredEntry> {
        self.entries.values_mut()
    }
}
