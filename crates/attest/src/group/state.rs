//! One node's state in one LA-group: the attestations it holds, whom it attests, whether it is a
//! member, and the announcements waiting to be flooded.

use std::collections::{BTreeMap, BTreeSet};

use stockade_core::{NodeId, Time};

use crate::attestation::{AttestationStore, SignedAttestation};
use crate::graph::AttestationGraph;

/// An attestation waiting to be announced, and the neighbour it came from (who needs no copy).
#[derive(Clone, Debug)]
pub(crate) struct PendingAnnouncement {
    pub attestation: SignedAttestation,
    pub learned_from: Option<NodeId>,
}

/// Where this node stands in joining the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Membership {
    /// Asked contacts to attest it; no member has yet.
    Joining,
    /// Created the group, or some member attested it (paper 000, section "LA-groups abstraction":
    /// "a join succeeds once the node receives an attestation from a group member").
    Member,
}

/// One group as seen by one node.
#[derive(Clone, Debug)]
pub(crate) struct GroupState {
    pub store: AttestationStore,
    /// Whom this node attests, with the info it attaches.
    pub attesting: BTreeMap<NodeId, Vec<u8>>,
    pub membership: Membership,
    /// Keyed by link, so a second change to one link before the flush replaces the first: the
    /// intermediate-node aggregation of paper 000, section "Compact signature representation".
    /// Bounded by the store's `links_max`, since every entry is a link the store holds.
    pub pending: BTreeMap<(NodeId, NodeId), PendingAnnouncement>,
    /// Whether a flush timer is armed.
    pub flush_armed: bool,
    /// The view last reported to the application.
    pub reported_view: BTreeSet<NodeId>,
}

impl GroupState {
    pub fn new(store: AttestationStore, membership: Membership, me: NodeId) -> Self {
        GroupState {
            store,
            attesting: BTreeMap::new(),
            membership,
            pending: BTreeMap::new(),
            flush_armed: false,
            reported_view: BTreeSet::from([me]),
        }
    }

    /// Queue `attestation` for the next flush.
    pub fn queue(&mut self, attestation: SignedAttestation, learned_from: Option<NodeId>) {
        self.pending.insert(
            attestation.link(),
            PendingAnnouncement {
                attestation,
                learned_from,
            },
        );
    }

    /// The nodes this node exchanges link state with: everyone it attests or is attested by.
    pub fn neighbours(&self, me: NodeId, now: Time) -> BTreeSet<NodeId> {
        let mut out: BTreeSet<NodeId> = self.attesting.keys().copied().collect();
        for s in self.store.live(now) {
            let (a, b) = s.link();
            if a == me {
                out.insert(b);
            } else if b == me {
                out.insert(a);
            }
        }
        out.remove(&me);
        out
    }

    /// The attestation graph of the live attestations, holding `me` even before any link.
    pub fn graph(&self, me: NodeId, now: Time) -> AttestationGraph {
        let mut g = self.store.graph(now);
        g.add_node(me);
        g
    }

    /// The nodes reachable from `me` along live attestations (paper 000, section "Views and
    /// link-state announcements").
    pub fn view(&self, me: NodeId, now: Time) -> BTreeSet<NodeId> {
        let mut v = self.store.graph(now).reachable_from(me);
        v.insert(me);
        v
    }
}
