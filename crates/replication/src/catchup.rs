//! Reconciliation and catch-up (PRIME.md "Reconciliation", "Catch-up and recovery"): getting every
//! correct server the PO-REQUESTs and ordering certificates it needs to execute.

use stockade_core::Context;

use crate::app::Application;
use crate::auth::Signed;
use crate::config::ParticipantId;
use crate::messages::{CatchupRequest, OrderCertificate, PoAck, PrimeMessage};
use crate::replica::Prime;

/// Catch-up state.
#[derive(Debug, Default)]
pub(crate) struct CatchupState {
    /// `executed_seq` at the previous catch-up period: no progress since then and a known higher
    /// slot means this server lags.
    executed_at_last_period: u64,
    /// Catch-up periods since the last request.
    idle_periods: u32,
    /// Requests and acks sent again to peers that had not pre-ordered them (for metrics).
    pub(crate) pre_order_repairs: u64,
    /// Own votes sent again for a stuck slot (for tests and metrics).
    pub(crate) votes_resent: u64,
    /// CATCHUP-REQUESTs sent (for tests and metrics).
    pub(crate) requests_sent: u64,
}

impl<A: Application> Prime<A> {
    /// Reconciliation: when a slot makes PO-REQUESTs eligible, a designated set of 2f+k+1 holders
    /// (the originator and the next participants in index order) sends each one, with its PO
    /// certificate, to every server whose acknowledgement it never saw. Faulty servers that sent their PO-REQUESTs to only some
    /// servers cannot keep the others from executing.
    pub(crate) fn reconcile_newly_eligible(
        &mut self,
        cx: &mut Context<'_, Self>,
        eligible: &[u64],
    ) {
        let n = self.n();
        let quorum = self.cfg.quorums.certificate();
        for (i, (&from, &to)) in self.exec.last_executed.iter().zip(eligible).enumerate() {
            let rank = (self.me.index() + n - i) % n;
            if rank >= quorum {
                continue;
            }
            let originator = ParticipantId(i as u16);
            for po_seq in from + 1..=to {
                let Some(certificate) = self.po_certificate(&(originator, po_seq)) else {
                    continue;
                };
                let acked = |p: &ParticipantId| {
                    self.pre
                        .slots
                        .get(&(originator, po_seq))
                        .is_some_and(|s| s.acks.contains_key(p))
                };
                let unacked: Vec<ParticipantId> = self
                    .membership
                    .participants()
                    .filter(|p| *p != self.me && !acked(p))
                    .collect();
                for p in unacked {
                    self.activity.reconciliation_sends += 1;
                    self.send_to(cx, p, PrimeMessage::PoCertificate(certificate.clone()));
                }
            }
        }
    }

    /// Ask every other participant for what execution lacks: the missing PO-REQUESTs, and ordering
    /// certificates after our last executed slot.
    pub(crate) fn request_catchup(&mut self, cx: &mut Context<'_, Self>) {
        let missing_po = self.exec.missing.clone();
        let request = self.sign(
            cx,
            CatchupRequest {
                executed_seq: self.exec.executed_seq,
                missing_po,
            },
        );
        self.catchup.requests_sent += 1;
        self.broadcast(cx, &PrimeMessage::CatchupRequest(request));
    }

    /// Every catch-up period: ask again while blocked on missing PO-REQUESTs, or when others
    /// ordered slots beyond ours and we made no progress in a whole period. Otherwise ask every
    /// `catchup_idle_periods` periods anyway: a server that was cut off while the others finished
    /// their work sees no new slot that would tell it that it lags.
    pub(crate) fn on_catchup_period(&mut self, cx: &mut Context<'_, Self>) {
        let stalled = self.exec.executed_seq == self.catchup.executed_at_last_period
            && self.ord.highest_seen_seq > self.exec.executed_seq;
        self.catchup.executed_at_last_period = self.exec.executed_seq;
        self.catchup.idle_periods += 1;
        if !self.exec.missing.is_empty()
            || stalled
            || self.catchup.idle_periods >= self.cfg.catchup_idle_periods
        {
            self.catchup.idle_periods = 0;
            self.request_catchup(cx);
        }
        if stalled {
            self.resend_own_votes(cx, self.exec.executed_seq + 1);
        }
        self.repair_lost_pre_ordering(cx);
    }

    /// Links may lose messages: a peer whose latest PO-SUMMARY shows it has not pre-ordered a slot
    /// we pre-ordered, and whose ack we never saw, gets the request and our signed ack again (at
    /// most `catchup_items_max` slots per peer per period). Our own latest summary goes out again,
    /// and the leader gets our matrix again if a turnaround challenge waits longer than a period.
    fn repair_lost_pre_ordering(&mut self, cx: &mut Context<'_, Self>) {
        let peers: Vec<ParticipantId> = self
            .membership
            .participants()
            .filter(|p| *p != self.me)
            .collect();
        for peer in peers {
            // A peer that never sent a summary has pre-ordered nothing we know of: its vector is
            // all zeros. (It may never send one: a request lost on the way to it, or an ack lost
            // on the way from it, holds its `cum_aru` at zero, and only this repair unblocks it.)
            let theirs = self.pre.latest_summaries[peer.index()]
                .as_ref()
                .map_or_else(|| vec![0; self.n()], |s| s.body.cum_aru.clone());
            let mut budget = self.cfg.catchup_items_max;
            for (i, (&their_aru, &our_aru)) in theirs.iter().zip(&self.pre.cum_aru).enumerate() {
                let originator = ParticipantId(i as u16);
                let from = their_aru.max(self.exec.last_executed[i]) + 1;
                // Our own requests are repaired up to the last one sent: nobody else may hold them.
                let to = if originator == self.me {
                    self.pre.last_sent_po_seq
                } else {
                    our_aru
                };
                for po_seq in from..=to {
                    if budget == 0 {
                        break;
                    }
                    if !self.pre.slots.contains_key(&(originator, po_seq)) {
                        continue;
                    }
                    budget -= 1;
                    self.catchup.pre_order_repairs += 1;
                    // Their summary says they have not pre-ordered it. An ack we saw does not prove
                    // they still hold the request (a crash loses it) nor that they saw the others'
                    // acks (links lose them): a PO certificate we hold gives them both at once.
                    if let Some(certificate) = self.po_certificate(&(originator, po_seq)) {
                        self.send_to(cx, peer, PrimeMessage::PoCertificate(certificate));
                        continue;
                    }
                    let Some(slot) = self.pre.slots.get(&(originator, po_seq)) else {
                        continue;
                    };
                    // They lack the request if we never saw their ack; they may lack our ack anyway.
                    let request = slot
                        .request
                        .clone()
                        .filter(|_| !slot.acks.contains_key(&peer));
                    let ack = slot.acks.get(&self.me).cloned();
                    if let Some(request) = request {
                        self.send_to(cx, peer, PrimeMessage::PoRequest(request));
                    }
                    if let Some(ack) = ack {
                        self.send_to(cx, peer, PrimeMessage::PoAck(PoAck { parts: vec![ack] }));
                    }
                }
            }
        }
        if let Some(summary) = self.pre.latest_summaries[self.me.index()].clone() {
            self.send_carrying_own_summary(cx, None, PrimeMessage::PoSummary(summary));
        }
        let now = cx.now();
        let waiting = self
            .suspect_oldest_challenge()
            .is_some_and(|started| now.since(started) > self.cfg.catchup_period);
        if waiting {
            // The matrix that started the challenge may have been lost: send the next one anyway.
            self.pre.matrix_sent_eligible = vec![0; self.n()];
        }
    }

    /// Links may lose messages: when the next slot is stuck, send again what we already said about
    /// it (the leader's pre-prepare as we hold it, our prepare and commit), so that a slot whose votes were lost
    /// everywhere still completes. The copies are the signed, persisted originals.
    fn resend_own_votes(&mut self, cx: &mut Context<'_, Self>, seq: u64) {
        let Some(slot) = self.ord.slots.get(&seq) else {
            return;
        };
        // Everyone re-floods the pre-prepare it holds (PRIME.md step 8), not only the leader: a
        // leader that showed servers different proposals while some were cut off is then exposed
        // once the slot stalls, instead of leaving the slot stuck with nobody suspecting.
        let mut again: Vec<PrimeMessage> = slot
            .pre_prepare
            .clone()
            .map(PrimeMessage::PrePrepare)
            .into_iter()
            .collect();
        again.extend(
            slot.prepares
                .get(&self.me)
                .cloned()
                .map(PrimeMessage::Prepare),
        );
        again.extend(
            slot.commits
                .get(&self.me)
                .cloned()
                .map(PrimeMessage::Commit),
        );
        self.catchup.votes_resent += again.len() as u64;
        for message in again {
            self.broadcast(cx, &message);
        }
    }

    /// Answer with the PO-REQUESTs asked for that we hold, and with ordering certificates for the
    /// slots after the requester's (at most `catchup_items_max` of each).
    pub(crate) fn on_catchup_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: Signed<CatchupRequest>,
    ) {
        if !self.verify(cx, &request) {
            return;
        }
        let to = request.signer;
        let items_max = self.cfg.catchup_items_max;
        for key in request.body.missing_po.iter().take(items_max) {
            if let Some(certificate) = self.po_certificate(key) {
                self.send_to(cx, to, PrimeMessage::PoCertificate(certificate));
            }
        }
        // PO-REQUESTs we executed and already forgot can only be replaced by a checkpoint.
        let forgotten = request.body.missing_po.iter().any(|(originator, po_seq)| {
            let executed = self
                .exec
                .last_executed
                .get(originator.index())
                .copied()
                .unwrap_or(0);
            *po_seq <= executed && !self.pre.slots.contains_key(&(*originator, *po_seq))
        });
        self.jump_if_needed(cx, to, request.body.executed_seq, forgotten);
        let first = request.body.executed_seq.saturating_add(1);
        let certificates: Vec<OrderCertificate> = self
            .ord
            .slots
            .range(first..)
            .filter(|(_, s)| s.committed)
            .take(items_max)
            .filter_map(|(_, s)| {
                Some(OrderCertificate {
                    pre_prepare: s.pre_prepare.clone()?,
                    commits: s.certificate_commits(),
                })
            })
            .collect();
        for certificate in certificates {
            self.send_to(cx, to, PrimeMessage::OrderCertificate(certificate));
        }
    }

    /// An ordering certificate: a pre-prepare signed by its view's leader and 2f+k+1 matching commits
    /// from distinct participants proves the slot's content, whatever view we are in.
    pub(crate) fn on_order_certificate(
        &mut self,
        cx: &mut Context<'_, Self>,
        certificate: OrderCertificate,
    ) {
        let pre_prepare = certificate.pre_prepare;
        let (view, seq) = (pre_prepare.body.view, pre_prepare.body.seq);
        let executed = self.exec.executed_seq;
        if seq <= executed || seq > executed + self.cfg.order_window_max {
            self.drops.out_of_window += 1;
            return;
        }
        if self.ord.slots.get(&seq).is_some_and(|s| s.committed) {
            return;
        }
        if pre_prepare.signer != self.leader_of(view) || pre_prepare.body.matrix.len() != self.n() {
            self.drops.malformed += 1;
            return;
        }
        if !self.verify(cx, &pre_prepare) {
            return;
        }
        let digest = pre_prepare.digest();
        let mut signers = Vec::new();
        let mut commits = Vec::new();
        for commit in certificate.commits {
            let vote = commit.body.0;
            if vote.view != view
                || vote.seq != seq
                || vote.digest != digest
                || signers.contains(&commit.signer)
            {
                continue;
            }
            if self.verify(cx, &commit) {
                signers.push(commit.signer);
                commits.push(commit);
            }
        }
        if commits.len() < self.cfg.quorums.certificate() {
            self.drops.malformed += 1;
            return;
        }
        self.ord.highest_seen_seq = self.ord.highest_seen_seq.max(seq);
        self.install_committed(cx, pre_prepare, commits);
    }
}

#[cfg(test)]
mod tests {
    use stockade_core::Time;

    use super::*;
    use crate::config::PrimeConfig;
    use crate::messages::{AckPart, PoCertificate, PoRequest};
    use crate::test_support::{call, node, receive_summary, sends, signed_by, update, LogApp};

    const T: Time = Time::from_millis(1);

    /// Server 0, holding a PO certificate of `originator`'s first PO-REQUEST acked by `ackers`.
    fn server_0_holding_certificate(originator: u16, ackers: &[u16]) -> Prime<LogApp> {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        let request = signed_by(
            originator,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 1)],
            },
        );
        let part = AckPart {
            originator: ParticipantId(originator),
            po_seq: 1,
            digest: request.digest(),
        };
        let acks = ackers.iter().map(|&j| signed_by(j, part)).collect();
        call(&mut p, T, |p, cx| {
            p.on_po_certificate(cx, PoCertificate { request, acks })
        });
        p
    }

    /// Seed 86 of `prime-fuzz`: a peer acked a PO-REQUEST, crashed and lost it, and missed the
    /// others' acks; its summary stays behind. Repair must send it a PO certificate even though
    /// its ack was seen, or pre-ordering (and so every later slot) stalls.
    #[test]
    fn repair_sends_a_po_certificate_to_a_lagging_peer_whose_ack_was_seen() {
        let mut p = server_0_holding_certificate(3, &[0, 1, 2, 3]);
        assert_eq!(p.pre.cum_aru[3], 1, "pre-ordered here");
        receive_summary(&mut p, 2, 1, vec![0; 4]);
        for up_to_date in [1, 3] {
            receive_summary(&mut p, up_to_date, 1, vec![0, 0, 0, 1]);
        }
        let effects = call(&mut p, T, |p, cx| p.on_catchup_period(cx));
        let to_lagging: Vec<PrimeMessage> = sends(&effects)
            .into_iter()
            .filter(|(to, _)| to.0 == 2)
            .map(|(_, m)| m)
            .collect();
        assert!(
            to_lagging.iter().any(|m| matches!(m,
                PrimeMessage::PoCertificate(c) if c.request.body.po_seq == 1 && c.acks.len() >= 3)),
            "the lagging peer gets the certificate: {to_lagging:?}"
        );
        assert_eq!(p.catchup.pre_order_repairs, 1);
    }

    /// Seeds 905 and 1799 of `prime-fuzz`: one server lost a PO-REQUEST and another lost an ack of
    /// it, so neither ever pre-ordered anything and neither ever sent a PO-SUMMARY. Repair skipped
    /// peers without a summary, eligibility needs three summaries, and nothing ever executed.
    /// A peer without a summary is repaired as one whose vector is all zeros.
    #[test]
    fn repair_reaches_a_peer_that_never_sent_a_summary() {
        let mut p = server_0_holding_certificate(2, &[0, 2, 3]);
        assert_eq!(p.pre.cum_aru[2], 1, "pre-ordered here");
        assert!(p.pre.latest_summaries[1].is_none() && p.pre.latest_summaries[2].is_none());
        let effects = call(&mut p, T, |p, cx| p.on_catchup_period(cx));
        for peer in [1, 2, 3] {
            assert!(
                sends(&effects).iter().any(|(to, m)| to.0 == peer
                    && matches!(m, PrimeMessage::PoCertificate(c) if c.request.body.po_seq == 1)),
                "peer {peer}, silent so far, gets the certificate"
            );
        }
        assert_eq!(p.catchup.pre_order_repairs, 3);
    }
}
