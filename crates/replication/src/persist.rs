//! What a Prime server must remember across a crash so that, restarted, it never contradicts what
//! it said before (PRIME.md: a correct server "never acknowledges two different digests for the
//! same slot"; a lower PO-SUMMARY is proof of misbehaviour; a leader never proposes two
//! pre-prepares for one slot; no server votes twice differently). Each record is persisted before
//! the message that promises it leaves (`send_after`), and records of long-executed slots are
//! deleted. Execution state itself is not persisted: a restarted server catches up from its peers.

use std::collections::BTreeMap;

use stockade_core::wire::Wire;
use stockade_core::{Context, DecodeLimits, PersistToken, StoreOp, StoreRead};
use thiserror::Error;

use crate::app::Application;
use crate::auth::{MessageAuth, Signed};
use crate::config::{ConfigError, Membership, ParticipantId, PrimeConfig};
use crate::messages::{Digest, PoRequest, PoSummary, PrimeMessage};
use crate::replica::Prime;

const VIEW_KEY: &[u8] = b"prime/view";
const PO_LAST_KEY: &[u8] = b"prime/po-last";
const SUMMARY_KEY: &[u8] = b"prime/summary";
const OWN_REQUEST_PREFIX: &[u8] = b"prime/po-own/";
const ACK_PREFIX: &[u8] = b"prime/ack/";
const VOTE_PREFIX: &[u8] = b"prime/vote/";

/// Which of a server's votes a record is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum VoteKind {
    /// The leader's own proposal.
    PrePrepare = 0,
    /// A prepare.
    Prepare = 1,
    /// A commit.
    Commit = 2,
}

/// Why a server could not be rebuilt from its store.
#[derive(Debug, Error)]
pub enum RecoverError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A record is corrupt: the store was not written by this version of Prime, or was damaged.
    #[error(
        "corrupt persisted record {key}: {reason}; remove the node's store to restart it empty"
    )]
    Corrupt {
        /// The record's key, printed lossily.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn corrupt(key: &[u8], reason: impl ToString) -> RecoverError {
    RecoverError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_string(),
    }
}

fn u64_value(key: &[u8], value: &[u8]) -> Result<u64, RecoverError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| corrupt(key, "expected 8 bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn key_with(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

fn own_request_key(po_seq: u64) -> Vec<u8> {
    key_with(OWN_REQUEST_PREFIX, &[&po_seq.to_be_bytes()])
}

fn ack_key(originator: ParticipantId, po_seq: u64) -> Vec<u8> {
    key_with(
        ACK_PREFIX,
        &[&originator.0.to_be_bytes(), &po_seq.to_be_bytes()],
    )
}

fn vote_key(seq: u64, kind: VoteKind) -> Vec<u8> {
    key_with(VOTE_PREFIX, &[&seq.to_be_bytes(), &[kind as u8]])
}

/// The last 8 bytes of a key as a big-endian u64 (the slot of per-slot records).
fn trailing_u64(key: &[u8], offset: usize) -> Result<u64, RecoverError> {
    let bytes: [u8; 8] = key
        .get(offset..offset + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(key, "short key"))?;
    Ok(u64::from_be_bytes(bytes))
}

impl<A: Application> Prime<A> {
    /// Rebuild participant `me` after a crash from what it persisted: its view, its own PO-REQUESTs,
    /// every ack it sent, its last PO-SUMMARY and its votes. It then catches up from its peers.
    pub fn recover(
        cfg: PrimeConfig,
        membership: Membership,
        me: ParticipantId,
        auth: Box<dyn MessageAuth>,
        app: A,
        store: &dyn StoreRead,
    ) -> Result<Prime<A>, RecoverError> {
        let mut prime = Prime::new(cfg, membership, me, auth, app)?;
        let limits = DecodeLimits::MESSAGE;
        if let Some(v) = store.get(VIEW_KEY) {
            prime.view = u64_value(VIEW_KEY, &v)?;
        }
        if let Some(v) = store.get(PO_LAST_KEY) {
            prime.pre.last_sent_po_seq = u64_value(PO_LAST_KEY, &v)?;
        }
        if let Some(v) = store.get(SUMMARY_KEY) {
            let summary =
                Signed::<PoSummary>::from_bytes(&v, limits).map_err(|e| corrupt(SUMMARY_KEY, e))?;
            if summary.body.cum_aru.len() != prime.n() || summary.signer != me {
                return Err(corrupt(
                    SUMMARY_KEY,
                    "not this participant's summary over this membership",
                ));
            }
            // PRIME.md step 6: the restarted server continues from the summary it last sent (its
            // counter and vector), and holds it as its own latest one, as before the crash.
            prime.pre.summary_counter = summary.body.counter;
            prime.pre.cum_aru = summary.body.cum_aru.clone();
            prime.pre.latest_summaries[me.index()] = Some(summary);
        }
        for (key, value) in store.scan_prefix(OWN_REQUEST_PREFIX) {
            let request =
                Signed::<PoRequest>::from_bytes(&value, limits).map_err(|e| corrupt(&key, e))?;
            let slot = prime
                .pre
                .slots
                .entry((me, request.body.po_seq))
                .or_default();
            slot.digest = Some(request.digest());
            slot.request = Some(request);
        }
        for (key, value) in store.scan_prefix(ACK_PREFIX) {
            let originator = key
                .get(ACK_PREFIX.len()..ACK_PREFIX.len() + 2)
                .and_then(|b| b.try_into().ok())
                .map(|b| ParticipantId(u16::from_be_bytes(b)))
                .ok_or_else(|| corrupt(&key, "short key"))?;
            let po_seq = trailing_u64(&key, ACK_PREFIX.len() + 2)?;
            let digest: Digest = value
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(&key, "expected a 32-byte digest"))?;
            let slot = prime.pre.slots.entry((originator, po_seq)).or_default();
            slot.digest.get_or_insert(digest);
            slot.acked = Some(digest);
        }
        for (key, value) in store.scan_prefix(VOTE_PREFIX) {
            let seq = trailing_u64(&key, VOTE_PREFIX.len())?;
            let kind = match key.get(VOTE_PREFIX.len() + 8) {
                Some(0) => VoteKind::PrePrepare,
                Some(1) => VoteKind::Prepare,
                Some(2) => VoteKind::Commit,
                _ => return Err(corrupt(&key, "unknown vote kind")),
            };
            let (view, digest) =
                <(u64, Digest)>::from_bytes(&value, limits).map_err(|e| corrupt(&key, e))?;
            prime.votes.insert((seq, kind), (view, digest));
            if kind == VoteKind::PrePrepare && view == prime.view {
                prime.ord.last_proposed_seq = prime.ord.last_proposed_seq.max(seq);
            }
        }
        Ok(prime)
    }

    /// Persist this server's PO-REQUEST before it is sent.
    pub(crate) fn persist_own_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: &Signed<PoRequest>,
    ) -> PersistToken {
        cx.persist(vec![
            StoreOp::Put {
                key: PO_LAST_KEY.to_vec(),
                value: request.body.po_seq.to_le_bytes().to_vec(),
            },
            StoreOp::Put {
                key: own_request_key(request.body.po_seq),
                value: request.to_bytes(),
            },
        ])
    }

    /// Persist acks before the PO-ACK carrying them is sent.
    pub(crate) fn persist_acks(
        &mut self,
        cx: &mut Context<'_, Self>,
        parts: &[(ParticipantId, u64, Digest)],
    ) -> PersistToken {
        let ops = parts
            .iter()
            .map(|(originator, po_seq, digest)| StoreOp::Put {
                key: ack_key(*originator, *po_seq),
                value: digest.to_vec(),
            })
            .collect();
        cx.persist(ops)
    }

    /// Persist a signed PO-SUMMARY before it is sent: a restarted server never sends a lower one.
    pub(crate) fn persist_summary(
        &mut self,
        cx: &mut Context<'_, Self>,
        summary: &Signed<PoSummary>,
    ) -> PersistToken {
        cx.persist(vec![StoreOp::Put {
            key: SUMMARY_KEY.to_vec(),
            value: summary.to_bytes(),
        }])
    }

    /// Persist the view when it changes.
    pub(crate) fn persist_view(&mut self, cx: &mut Context<'_, Self>) -> PersistToken {
        cx.persist(vec![StoreOp::Put {
            key: VIEW_KEY.to_vec(),
            value: self.view.to_le_bytes().to_vec(),
        }])
    }

    /// Whether a vote for `digest` in slot `seq` of the current view is allowed: no earlier vote of
    /// the same kind in this view for another digest (remembered across crashes).
    pub(crate) fn may_vote(&self, seq: u64, kind: VoteKind, digest: &Digest) -> bool {
        self.votes
            .get(&(seq, kind))
            .is_none_or(|(view, held)| *view != self.view || held == digest)
    }

    /// Record and persist a vote before the message carrying it is sent.
    pub(crate) fn persist_vote(
        &mut self,
        cx: &mut Context<'_, Self>,
        seq: u64,
        kind: VoteKind,
        digest: Digest,
    ) -> PersistToken {
        self.votes.insert((seq, kind), (self.view, digest));
        cx.persist(vec![StoreOp::Put {
            key: vote_key(seq, kind),
            value: (self.view, digest).to_bytes(),
        }])
    }

    /// Send `message` to every other participant once batch `token` is durable.
    pub(crate) fn broadcast_after(
        &self,
        cx: &mut Context<'_, Self>,
        token: PersistToken,
        message: &PrimeMessage,
    ) {
        for p in self.membership.participants() {
            if let (true, Some(node)) = (p != self.me, self.membership.node(p)) {
                cx.send_after(token, node, message.clone());
            }
        }
    }

    /// Send a message that carries our latest PO-SUMMARY (to `to`, or to every other participant)
    /// once that summary is durable.
    pub(crate) fn send_carrying_own_summary(
        &self,
        cx: &mut Context<'_, Self>,
        to: Option<ParticipantId>,
        message: PrimeMessage,
    ) {
        match (self.pre.own_summary_durable, to) {
            (Some(token), None) => self.broadcast_after(cx, token, &message),
            (Some(token), Some(to)) => {
                if let Some(node) = self.membership.node(to) {
                    cx.send_after(token, node, message);
                }
            }
            (None, None) => self.broadcast(cx, &message),
            (None, Some(to)) => self.send_to(cx, to, message),
        }
    }

    /// Delete records of slots executed long enough ago that no peer can ask about them any more:
    /// own requests and acks `po_window_max` behind execution, votes `retained_slots_max` behind.
    pub(crate) fn collect_persisted_garbage(&mut self, cx: &mut Context<'_, Self>) {
        let mut ops = Vec::new();
        let window = self.cfg.po_window_max;
        for (i, executed) in self.exec.last_executed.iter().enumerate() {
            let below = executed.saturating_sub(window);
            if below == 0 {
                continue;
            }
            let originator = ParticipantId(i as u16);
            ops.push(StoreOp::DeleteRange {
                start: ack_key(originator, 0),
                end: ack_key(originator, below),
            });
            if originator == self.me {
                ops.push(StoreOp::DeleteRange {
                    start: own_request_key(0),
                    end: own_request_key(below),
                });
            }
        }
        let below = self
            .exec
            .executed_seq
            .saturating_sub(self.cfg.retained_slots_max);
        if below > 0 {
            ops.push(StoreOp::DeleteRange {
                start: vote_key(0, VoteKind::PrePrepare),
                end: vote_key(below, VoteKind::PrePrepare),
            });
            self.votes = self.votes.split_off(&(below, VoteKind::PrePrepare));
        }
        if !ops.is_empty() {
            cx.persist(ops);
        }
    }
}

/// Votes this server cast, by (slot, kind): (view, digest). Bounded like the order window.
pub(crate) type Votes = BTreeMap<(u64, VoteKind), (u64, Digest)>;

#[cfg(test)]
mod tests {
    use stockade_core::{Effect, MemStore, Time};

    use super::*;
    use crate::auth::InsecureTestAuth;
    use crate::messages::{AckPart, PoAck};
    use crate::replica::{Misbehaviour, PrimeOutput};
    use crate::test_support::{
        call, node, outputs, receive_summary, sends, signed_by, update, LogApp,
    };

    const T: Time = Time::from_millis(1);

    /// Apply every persist effect to `store`; return the tokens of held sends, per message kind.
    fn persist_into(
        store: &mut MemStore,
        effects: &[Effect<Prime<LogApp>>],
    ) -> Vec<(String, Option<PersistToken>)> {
        let mut held = Vec::new();
        for e in effects {
            match e {
                Effect::Persist { ops, .. } => store.apply(ops),
                Effect::Send { message, after, .. } => {
                    let kind = format!("{message:?}")
                        .split('(')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    held.push((kind, *after));
                }
                _ => {}
            }
        }
        held
    }

    #[test]
    fn promises_are_persisted_before_they_leave_and_kept_after_a_restart() {
        let cfg = PrimeConfig::new(1, 0);
        let mut p = node(&cfg, 0);
        let mut store = MemStore::new();
        let request_a = signed_by(
            1,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 1)],
            },
        );
        let mut effects = call(&mut p, T, |p, cx| {
            p.on_po_request(cx, request_a.clone());
            p.flush_po_ack(cx);
            p.admit_update(cx, update(4, 1));
        });
        // Pre-order our own request with acks from 1 and 2, then summarise.
        let own = p.pre.slots[&(ParticipantId(0), 1)]
            .digest
            .expect("own request held");
        let part = AckPart {
            originator: ParticipantId(0),
            po_seq: 1,
            digest: own,
        };
        effects.extend(call(&mut p, T, |p, cx| {
            p.on_po_ack(
                cx,
                PoAck {
                    parts: vec![signed_by(1, part), signed_by(2, part)],
                },
            );
            p.flush_po_ack(cx);
            p.send_po_summary_if_changed(cx);
        }));
        let held = persist_into(&mut store, &effects);
        for (kind, after) in &held {
            assert!(after.is_some(), "{kind} left before its record was durable");
        }
        assert!(held.iter().any(|(k, _)| k == "PoSummary"));

        let auth = Box::new(InsecureTestAuth {
            me: ParticipantId(0),
        });
        let membership = p.membership.clone();
        let mut r = Prime::recover(
            cfg,
            membership,
            ParticipantId(0),
            auth,
            LogApp::default(),
            &store,
        )
        .expect("recovers");
        assert_eq!(r.pre.last_sent_po_seq, 1);
        assert_eq!(r.pre.summary_counter, 1);
        assert_eq!(r.pre.cum_aru, vec![1, 0, 0, 0]);
        assert_eq!(
            r.pre.slots[&(ParticipantId(1), 1)].acked,
            Some(request_a.digest())
        );
        // Shown another version of the slot it acked, the restarted server does not ack it.
        let request_b = signed_by(
            1,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 2)],
            },
        );
        let effects = call(&mut r, T, |p, cx| p.on_po_request(cx, request_b));
        assert!(r.pre.pending_acks.is_empty());
        assert!(outputs(&effects).contains(&PrimeOutput::Misbehaviour {
            participant: ParticipantId(1),
            evidence: Misbehaviour::PoRequestEquivocation { po_seq: 1 }
        }));
        // Its next PO-REQUEST takes a fresh slot (once the first has executed).
        r.exec.last_executed[0] = 1;
        call(&mut r, T, |p, cx| p.admit_update(cx, update(4, 2)));
        assert_eq!(r.pre.last_sent_po_seq, 2);
    }

    /// Found by the fuzz harness's false-accusation check (seeds 245, 321, 786, 1080): a summary
    /// matrix or a repair round carried our newest PO-SUMMARY before it was durable; the server
    /// crashed, recovered the older one, and its next summary reused the counter with another
    /// vector, so peers (and the server itself) reported a `LowerSummary` against a correct server.
    #[test]
    fn a_summary_leaves_only_once_durable_and_recovery_resumes_from_it() {
        let cfg = PrimeConfig::new(1, 0);
        let mut p = node(&cfg, 1);
        let mut store = MemStore::new();
        let pre_order = |p: &mut Prime<LogApp>, po_seq: u64| {
            let request = signed_by(
                3,
                PoRequest {
                    po_seq,
                    updates: vec![update(9, po_seq)],
                },
            );
            let part = AckPart {
                originator: ParticipantId(3),
                po_seq,
                digest: request.digest(),
            };
            call(p, T, |p, cx| {
                p.on_po_request(cx, request);
                p.on_po_ack(
                    cx,
                    PoAck {
                        parts: vec![signed_by(0, part), signed_by(2, part)],
                    },
                );
                p.flush_po_ack(cx);
                p.send_po_summary_if_changed(cx)
            })
        };
        // Summary 1 becomes durable; summary 2 is still in flight when the server crashes.
        let effects = pre_order(&mut p, 1);
        persist_into(&mut store, &effects);
        let effects = pre_order(&mut p, 2);
        let in_flight = p.pre.own_summary_durable.expect("summary 2 persisting");
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Persist { token, .. } if *token == in_flight)));
        for peer in [0, 2] {
            receive_summary(&mut p, peer, 1, vec![0, 0, 0, 2]);
        }
        let effects = call(&mut p, T, |p, cx| {
            p.send_summary_matrix_if_risen(cx);
            p.on_catchup_period(cx);
        });
        let carrying: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    message: PrimeMessage::SummaryMatrix(_) | PrimeMessage::PoSummary(_),
                    after,
                    ..
                } => Some(*after),
                _ => None,
            })
            .collect();
        assert!(
            carrying.len() >= 4,
            "the matrix and the re-sent summary: {carrying:?}"
        );
        assert!(
            carrying.iter().all(|after| *after == Some(in_flight)),
            "every message carrying summary 2 waits for it"
        );

        let auth = Box::new(InsecureTestAuth {
            me: ParticipantId(1),
        });
        let mut r = Prime::recover(
            cfg,
            p.membership.clone(),
            ParticipantId(1),
            auth,
            LogApp::default(),
            &store,
        )
        .expect("recovers");
        let held = r.pre.latest_summaries[1]
            .clone()
            .expect("own summary restored");
        assert_eq!((held.body.counter, r.pre.summary_counter), (1, 1));
        assert_eq!(r.pre.cum_aru, vec![0, 0, 0, 1]);
        // A peer that saw summary 1 accepts the restarted server's next one without complaint.
        let mut peer = node(&PrimeConfig::new(1, 0), 0);
        call(&mut peer, T, |p, cx| p.on_po_summary(cx, held));
        let effects = pre_order(&mut r, 2);
        let next = sends(&effects).into_iter().find_map(|(_, m)| match m {
            PrimeMessage::PoSummary(s) => Some(s),
            _ => None,
        });
        let next = next.expect("the restarted server summarises again");
        assert_eq!(
            (next.body.counter, next.body.cum_aru.clone()),
            (2, vec![0, 0, 0, 2])
        );
        let effects = call(&mut peer, T, |p, cx| p.on_po_summary(cx, next));
        assert!(outputs(&effects).is_empty(), "no LowerSummary");
        assert_eq!(
            peer.pre.latest_summaries[1]
                .as_ref()
                .map(|s| s.body.counter),
            Some(2)
        );
    }

    #[test]
    fn a_restarted_server_never_votes_twice_in_one_view() {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        p.votes.insert((1, VoteKind::Prepare), (0, [7; 32]));
        assert!(!p.may_vote(1, VoteKind::Prepare, &[8; 32]));
        assert!(p.may_vote(1, VoteKind::Prepare, &[7; 32]));
        assert!(p.may_vote(1, VoteKind::Commit, &[8; 32]));
        p.view = 1;
        assert!(
            p.may_vote(1, VoteKind::Prepare, &[8; 32]),
            "a new view may re-order the slot"
        );
    }

    #[test]
    fn corrupt_records_are_reported() {
        let mut store = MemStore::new();
        store.apply(&[StoreOp::Put {
            key: VIEW_KEY.to_vec(),
            value: vec![1, 2],
        }]);
        let membership =
            Membership::new((0..4).map(stockade_core::NodeId).collect()).expect("membership");
        let auth = Box::new(InsecureTestAuth {
            me: ParticipantId(0),
        });
        let result = Prime::recover(
            PrimeConfig::new(1, 0),
            membership,
            ParticipantId(0),
            auth,
            LogApp::default(),
            &store,
        );
        assert!(matches!(result, Err(RecoverError::Corrupt { .. })));
    }
}
