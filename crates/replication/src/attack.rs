//! Attack switches of the authors' release (PRIME.md "Parameters of the release"), for simulation
//! scenarios only: a leader that delays its pre-prepares, and a leader that sends different
//! pre-prepares to different servers; and two of ours, a server that sends bad threshold shares in
//! a view change and one that serves corrupted snapshot chunks. A correct deployment never sets them ([`Attack::default`] is
//! a correct server); they exist so that scenarios can show what suspect-leader and the re-flooding
//! of pre-prepares do against such a leader (paper 004 section 5.1, Prime's bounded delay).

use std::time::Duration;

use stockade_core::{Context, PersistToken, Time};

use crate::app::Application;
use crate::auth::{AuthTag, Signed};
use crate::messages::{PrePrepare, PrimeMessage};
use crate::replica::Prime;
use crate::state_transfer::SnapshotChunk;

/// How a Byzantine server misbehaves when it leads (all off: a correct server).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attack {
    /// As leader, propose at most once per this delay instead of every pre-prepare period
    /// (the release's "delay pre-prepares" attack, here with a configurable delay).
    pub pre_prepare_delay: Option<Duration>,
    /// As leader, sign two different pre-prepares for each slot and send one to the lower half of
    /// the other servers and the other to the upper half.
    pub equivocate_pre_prepares: bool,
    /// In a view change, send a threshold share that does not verify (inside a correctly signed
    /// VC-PARTIAL-SIG, so the bad share is provably this server's).
    pub bad_vc_shares: bool,
    /// Serve snapshot chunks with one byte flipped (state transfer must reject them and fetch the
    /// chunks from another server).
    pub corrupt_snapshot_chunks: bool,
}

/// What the attack switches keep between proposals.
#[derive(Clone, Debug, Default)]
pub(crate) struct AttackState {
    pub(crate) attack: Attack,
    last_proposal_at: Option<Time>,
}

impl<A: Application> Prime<A> {
    /// Make this server misbehave as `attack` says (simulation scenarios only).
    pub fn set_attack(&mut self, attack: Attack) {
        self.attack.attack = attack;
    }

    /// The delay attack: whether a proposal now would come sooner than the attacker allows.
    pub(crate) fn attack_holds_proposal(&self, now: Time) -> bool {
        match (
            self.attack.attack.pre_prepare_delay,
            self.attack.last_proposal_at,
        ) {
            (Some(delay), Some(last)) => now < last + delay,
            _ => false,
        }
    }

    /// The bad-share attack: corrupt this server's own threshold share before it is sent.
    pub(crate) fn attack_corrupt_share(&self, share: &mut AuthTag) {
        if self.attack.attack.bad_vc_shares {
            match share.0.first_mut() {
                Some(byte) => *byte ^= 0x5a,
                None => share.0.push(0),
            }
        }
    }

    /// The bad-chunk attack: corrupt a snapshot chunk before it is served.
    pub(crate) fn attack_corrupt_chunk(&self, chunk: &mut SnapshotChunk) {
        if self.attack.attack.corrupt_snapshot_chunks {
            match chunk.bytes.first_mut() {
                Some(byte) => *byte ^= 0x5a,
                None => chunk.bytes.push(0),
            }
        }
    }

    pub(crate) fn attack_note_proposal(&mut self, now: Time) {
        self.attack.last_proposal_at = Some(now);
    }

    /// The equivocation attack: send `pre_prepare` to the lower half of the other servers and a
    /// conflicting twin (one millisecond later timestamp) to the upper half. Returns false when
    /// the attack is off (the caller sends normally).
    pub(crate) fn attack_send_equivocating(
        &mut self,
        cx: &mut Context<'_, Self>,
        durable: PersistToken,
        pre_prepare: &Signed<PrePrepare>,
    ) -> bool {
        if !self.attack.attack.equivocate_pre_prepares {
            return false;
        }
        let mut twin_body = pre_prepare.body.clone();
        twin_body.timestamp_ms += 1;
        let twin = self.sign(cx, twin_body);
        let half = self.n() / 2;
        for p in self.membership.participants() {
            let Some(node) = self.membership.node(p).filter(|_| p != self.me) else {
                continue;
            };
            let sent = if p.index() <= half {
                pre_prepare
            } else {
                &twin
            };
            cx.send_after(durable, node, PrimeMessage::PrePrepare(sent.clone()));
        }
        true
    }
}
