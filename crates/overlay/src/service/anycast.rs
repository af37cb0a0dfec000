//! The service's anycasts in flight (paper 002, "Scribe: Anycast"): each has the caller's ticket
//! and a Scribe request number; Scribe's one answer (a member took it, or none matched) or the
//! service's deadline, whichever comes first, ends it. A bounded table: beyond
//! `anycasts_pending_max` an anycast is refused at once. Request numbers are random 64-bit
//! values, so a node that never saw the anycast cannot answer it in a member's place by guessing
//! its number (the nodes on the search's path do see it).
//!
//! The daemon's predicate: subscribers join with an empty label and anycasts search with the
//! empty label prefix, so any member accepts. A node is a member while its daemon has a
//! subscribed control connection for the topic (it leaves the topic when the last one closes).

use std::collections::BTreeMap;

use rand::RngCore;
use thiserror::Error;

use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::scribe::ScribeError;

/// How an anycast ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnycastOutcome {
    /// Member node `by` took the message (and handed it to one of its subscribers).
    Accepted {
        /// The member.
        by: NodeHandle,
    },
    /// The search found no member: the topic has no tree, or the search walked all of it.
    NoSubscriber,
    /// It was refused, or its answer never came.
    Failed(AnycastError),
}

/// Why an anycast has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AnycastError {
    /// Scribe refused it (too large, or the node has not joined).
    #[error(transparent)]
    Refused(#[from] ScribeError),
    /// Too many anycasts are waiting for answers on this node.
    #[error("{pending_max} anycasts already await answers on this node; wait for some to finish")]
    Busy {
        /// The bound.
        pending_max: usize,
    },
    /// Neither a member nor the search's end answered in time.
    #[error("no answer within {timeout_ms} ms: the search or its answer was lost (a tree node may have failed), so the message may or may not have been delivered")]
    TimedOut {
        /// The deadline.
        timeout_ms: u64,
    },
}

/// One anycast in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PendingAnycast {
    /// The caller's ticket.
    pub ticket: u64,
    /// The topic.
    pub topic: OverlayId,
}

/// The anycasts in flight, by Scribe request number.
#[derive(Debug)]
pub(super) struct PendingAnycasts {
    by_request: BTreeMap<u64, PendingAnycast>,
    pending_max: usize,
}

impl PendingAnycasts {
    /// An empty table of at most `pending_max` anycasts.
    pub fn new(pending_max: usize) -> PendingAnycasts {
        PendingAnycasts {
            by_request: BTreeMap::new(),
            pending_max,
        }
    }

    /// Register an anycast; its Scribe request number (random, unused), or `Busy` when the table
    /// is full.
    pub fn start(
        &mut self,
        ticket: u64,
        topic: OverlayId,
        rng: &mut dyn RngCore,
    ) -> Result<u64, AnycastError> {
        if self.by_request.len() >= self.pending_max {
            return Err(AnycastError::Busy {
                pending_max: self.pending_max,
            });
        }
        let mut request = rng.next_u64();
        while self.by_request.contains_key(&request) {
            request = rng.next_u64();
        }
        self.by_request
            .insert(request, PendingAnycast { ticket, topic });
        Ok(request)
    }

    /// End the anycast numbered `request`; `None` when it already ended (a late or forged answer).
    pub fn finish(&mut self, request: u64) -> Option<PendingAnycast> {
        self.by_request.remove(&request)
    }

    /// Anycasts in flight.
    pub fn len(&self) -> usize {
        self.by_request.len()
    }

    /// The bound.
    pub fn pending_max(&self) -> usize {
        self.pending_max
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_table_is_bounded_and_each_anycast_ends_once() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut table = PendingAnycasts::new(2);
        let first = table.start(10, OverlayId(1), &mut rng).expect("room");
        let second = table.start(11, OverlayId(1), &mut rng).expect("room");
        assert_ne!(first, second, "concurrent anycasts are told apart");
        assert_eq!(
            table.start(12, OverlayId(2), &mut rng),
            Err(AnycastError::Busy { pending_max: 2 })
        );
        assert_eq!(
            table.finish(second),
            Some(PendingAnycast {
                ticket: 11,
                topic: OverlayId(1)
            })
        );
        assert_eq!(table.finish(second), None, "a second answer is ignored");
        assert!(
            table.finish(first.wrapping_add(1)).is_none(),
            "a guess ends nothing"
        );
        assert!(
            table.start(12, OverlayId(2), &mut rng).is_ok(),
            "room again"
        );
        assert_eq!(table.len(), 2);
    }
}
