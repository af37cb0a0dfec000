//! The vote tally of one undelivered broadcast: which digest each node echoed and readied, the
//! candidate payloads, and this node's own signed messages (kept for retransmission).
//!
//! Each node's first ECHO and first READY count; a later one with another digest is evidence of
//! equivocation and is ignored. So one instance holds at most `2n + 1` candidate payloads.

use std::collections::BTreeMap;

use stockade_core::{NodeId, Time};

use crate::message::{BroadcastMessage, Phase};
use crate::signing::PayloadDigest;

/// What recording one vote did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum VoteRecorded {
    /// The signer's first vote of this phase.
    New,
    /// The same vote again (a retransmission).
    Duplicate,
    /// The signer already voted for another digest in this phase: equivocation.
    Conflicting,
}

/// One undelivered broadcast.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    /// The digest of the first INITIAL received from the origin.
    pub(crate) initial: Option<PayloadDigest>,
    /// `echoes[i]`: the digest node `i` first echoed.
    pub(crate) echoes: Vec<Option<PayloadDigest>>,
    /// `readies[i]`: the digest node `i` first readied.
    pub(crate) readies: Vec<Option<PayloadDigest>>,
    /// Payloads of the digests that some vote names.
    pub(crate) payloads: BTreeMap<PayloadDigest, Vec<u8>>,
    /// This node's INITIAL, when it is the origin.
    pub(crate) my_initial: Option<BroadcastMessage>,
    /// This node's ECHO, once sent.
    pub(crate) my_echo: Option<BroadcastMessage>,
    /// This node's READY, once sent.
    pub(crate) my_ready: Option<BroadcastMessage>,
    /// When this node last sent its own messages for the broadcast: a retransmission round skips
    /// broadcasts that sent within the last interval (their messages are still in flight).
    pub(crate) last_sent_at: Time,
}

impl Instance {
    /// An empty tally for a committee of `n`.
    pub(crate) fn new(n: usize) -> Instance {
        Instance {
            initial: None,
            echoes: vec![None; n],
            readies: vec![None; n],
            payloads: BTreeMap::new(),
            my_initial: None,
            my_echo: None,
            my_ready: None,
            last_sent_at: Time::ZERO,
        }
    }

    /// Record `signer`'s vote of `phase` (ECHO or READY; INITIAL is recorded by `record_initial`).
    pub(crate) fn record_vote(
        &mut self,
        phase: Phase,
        signer: NodeId,
        digest: PayloadDigest,
        payload: &[u8],
    ) -> VoteRecorded {
        let votes = match phase {
            Phase::Echo => &mut self.echoes,
            Phase::Ready => &mut self.readies,
            Phase::Initial => return self.record_initial(digest, payload),
        };
        let Some(slot) = votes.get_mut(signer.index()) else {
            return VoteRecorded::Conflicting;
        };
        let outcome = match slot {
            None => {
                *slot = Some(digest);
                VoteRecorded::New
            }
            Some(previous) if *previous == digest => VoteRecorded::Duplicate,
            Some(_) => VoteRecorded::Conflicting,
        };
        if outcome == VoteRecorded::New {
            self.payloads
                .entry(digest)
                .or_insert_with(|| payload.to_vec());
        }
        outcome
    }

    /// Record an INITIAL from the origin.
    pub(crate) fn record_initial(&mut self, digest: PayloadDigest, payload: &[u8]) -> VoteRecorded {
        match self.initial {
            None => {
                self.initial = Some(digest);
                self.payloads
                    .entry(digest)
                    .or_insert_with(|| payload.to_vec());
                VoteRecorded::New
            }
            Some(previous) if previous == digest => VoteRecorded::Duplicate,
            Some(_) => VoteRecorded::Conflicting,
        }
    }

    /// A digest with at least `threshold` votes of `phase`, if any. At most one digest can reach a
    /// quorum among correct nodes; with a Byzantine minority the smallest such digest is returned,
    /// so every node picks deterministically.
    pub(crate) fn digest_with_votes(
        &self,
        phase: Phase,
        threshold: usize,
    ) -> Option<PayloadDigest> {
        let votes = match phase {
            Phase::Echo => &self.echoes,
            Phase::Ready => &self.readies,
            Phase::Initial => return None,
        };
        let mut counts: BTreeMap<PayloadDigest, usize> = BTreeMap::new();
        for digest in votes.iter().flatten() {
            *counts.entry(*digest).or_default() += 1;
        }
        counts
            .into_iter()
            .find(|(_, count)| *count >= threshold)
            .map(|(digest, _)| digest)
    }

    /// The number of distinct candidate payloads held (at most `2n + 1`).
    pub(crate) fn payloads_held(&self) -> usize {
        self.payloads.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_vote_counts_and_a_different_second_is_conflicting() {
        let mut inst = Instance::new(4);
        assert_eq!(
            inst.record_vote(Phase::Echo, NodeId(1), [1; 32], b"a"),
            VoteRecorded::New
        );
        assert_eq!(
            inst.record_vote(Phase::Echo, NodeId(1), [1; 32], b"a"),
            VoteRecorded::Duplicate
        );
        assert_eq!(
            inst.record_vote(Phase::Echo, NodeId(1), [2; 32], b"b"),
            VoteRecorded::Conflicting
        );
        assert_eq!(inst.echoes[1], Some([1; 32]));
        assert_eq!(
            inst.payloads_held(),
            1,
            "the conflicting payload is not kept"
        );
        assert_eq!(
            inst.record_vote(Phase::Ready, NodeId(7), [1; 32], b"a"),
            VoteRecorded::Conflicting
        );
    }

    #[test]
    fn threshold_counts_votes_per_digest() {
        let mut inst = Instance::new(4);
        inst.record_vote(Phase::Ready, NodeId(0), [1; 32], b"a");
        inst.record_vote(Phase::Ready, NodeId(1), [2; 32], b"b");
        inst.record_vote(Phase::Ready, NodeId(2), [1; 32], b"a");
        assert_eq!(inst.digest_with_votes(Phase::Ready, 2), Some([1; 32]));
        assert_eq!(inst.digest_with_votes(Phase::Ready, 3), None);
        assert_eq!(inst.digest_with_votes(Phase::Echo, 1), None);
    }

    #[test]
    fn initial_equivocation_is_detected() {
        let mut inst = Instance::new(4);
        assert_eq!(inst.record_initial([1; 32], b"a"), VoteRecorded::New);
        assert_eq!(
            inst.record_initial([2; 32], b"b"),
            VoteRecorded::Conflicting
        );
        assert_eq!(inst.initial, Some([1; 32]));
    }
}
