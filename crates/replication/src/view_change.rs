//! View change (PRIME.md "View change"), started by a NEW-LEADER proof: every server reliably
//! broadcasts its REPORT (executed ARU and prepare certificates above it), servers agree through
//! VC-LIST and VC-PARTIAL-SIG on whose state to replay and from which slot, and the new leader's
//! REPLAY re-proposes the certified slots in the new view before normal ordering resumes.
//!
//! Departures, each kept to the same message flow: a REPORT names its certificates by digest so
//! that reliable broadcast carries only the small report (certificates are self-verifying and travel
//! beside it); the shares are broadcast, so the new leader combines them itself (one combine per view
//! change, rather than every server combining and sending it a VC-PROOF); and the replayed slots are ordered by the normal PREPARE/COMMIT of the new view (the new leader
//! re-proposes each one, and everyone checks the re-proposal against the agreed replay), which makes
//! them ordinary ordering certificates for catch-up.
//!
//! The VC-PROOF is one threshold signature (PRIME.md step 3): each server's VC-PARTIAL-SIG carries its
//! share of the participants' (2f+k+1)-of-N key ([`crate::threshold_auth`]) over the agreed replay,
//! and the REPLAY carries the combined signature. Shares are checked optimistically: the leader
//! combines and verifies once; only if that fails does it check each share, blame the senders of bad
//! ones ([`Misbehaviour::BadThresholdShare`]), ignore them from then on, and combine the valid ones.

use std::collections::{BTreeMap, BTreeSet};

use stockade_core::Context;

use crate::app::Application;
use crate::auth::{AuthTag, Signed};
use crate::config::ParticipantId;
use crate::execute::made_eligible;
use crate::messages::{
    Digest, NewLeaderProof, PrePrepare, PrepareCertificate, PrimeMessage, Replay, SummaryRow,
    VcAgreement, VcList, VcPartialSig, VcRelay, VcReport,
};
use crate::replica::{Misbehaviour, Prime, PrimeTimer};
use crate::threshold_auth::ShareCombineError;

/// Distinct reports one origin may have relayed before the rest are ignored: a correct origin has
/// one per view, so more only come from a faulty one trying to exhaust memory.
const REPORTS_PER_ORIGIN_MAX: usize = 4;

/// Bracha reliable broadcast of one origin's report.
#[derive(Default, Debug)]
struct ReportBroadcast {
    /// The distinct reports seen, by digest (bounded by `REPORTS_PER_ORIGIN_MAX`).
    reports: BTreeMap<Digest, Signed<VcReport>>,
    echoes: BTreeMap<Digest, BTreeSet<ParticipantId>>,
    readies: BTreeMap<Digest, BTreeSet<ParticipantId>>,
    echoed: bool,
    readied: bool,
}

/// What a slot of the replay orders: a certified proposal's matrix and timestamp, or nothing (a
/// slot no listed server held a certificate for).
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct ReplayContent {
    timestamp_ms: u64,
    matrix: SummaryRow,
}

/// View-change state for the view being installed.
#[derive(Default, Debug)]
pub(crate) struct ViewChangeState {
    /// True from the NEW-LEADER proof until the replay is agreed and applied.
    pub(crate) installing: bool,
    broadcasts: BTreeMap<ParticipantId, ReportBroadcast>,
    /// Reports reliably delivered, per origin.
    pub(crate) delivered: BTreeMap<ParticipantId, Signed<VcReport>>,
    /// Prepare certificates received, by pre-prepare digest (bounded: only ones some delivered or
    /// pending report names are useful, and each report names at most `order_window_max`).
    certificates: BTreeMap<Digest, PrepareCertificate>,
    list_sent: bool,
    /// The latest list from each sender.
    lists: BTreeMap<ParticipantId, u64>,
    /// Lists this server signed a share for.
    signed_lists: BTreeSet<u64>,
    /// Threshold shares per agreement, from signed VC-PARTIAL-SIGs (bounded: at most N
    /// agreements, one share per participant each).
    shares: BTreeMap<VcAgreement, BTreeMap<ParticipantId, AuthTag>>,
    replay_sent: bool,
    /// The agreed replay, waiting for the complete state it names.
    agreed: Option<VcAgreement>,
    /// Expected content of each replayed slot, checked against the new leader's re-proposals.
    pub(crate) expected: BTreeMap<u64, ReplayContent>,
    /// The NEW-LEADER proof that started this view change (re-sent with the state).
    pub(crate) proof: Option<NewLeaderProof>,
    /// Every view-change message this server sent in this view change, in order, for re-sending:
    /// one report, one echo and one ready per origin, one list, one share per list (at most N
    /// lists) and one REPLAY, so at most 3N + 3 messages.
    pub(crate) sent: Vec<PrimeMessage>,
    /// The REPLAY accepted in this view (forwarded to servers still installing it).
    pub(crate) replay: Option<Replay>,
    /// Re-send rounds done in this view change (bounded by `view_change_resends_max`).
    pub(crate) resends: u32,
    /// Servers seen still installing this view after this server installed it (at most N).
    pub(crate) laggards: BTreeSet<ParticipantId>,
}

impl ViewChangeState {
    /// The prepare certificates held for this view change.
    pub(crate) fn held_certificates(&self) -> impl Iterator<Item = &PrepareCertificate> {
        self.certificates.values()
    }
}

fn members_of(bitmap: u64, n: usize) -> impl Iterator<Item = ParticipantId> {
    (0..n)
        .filter(move |i| bitmap >> i & 1 == 1)
        .map(|i| ParticipantId(i as u16))
}

impl<A: Application> Prime<A> {
    /// The NEW-LEADER proof for `view` is complete: move to it and broadcast our REPORT and
    /// certificates (view change step 1).
    pub(crate) fn start_view_change(&mut self, cx: &mut Context<'_, Self>, proof: NewLeaderProof) {
        let view = proof.view;
        if view <= self.view {
            return;
        }
        self.view = view;
        self.vc = ViewChangeState {
            installing: true,
            proof: Some(proof),
            ..ViewChangeState::default()
        };
        cx.set_timer(
            PrimeTimer::ViewChangeResend,
            self.cfg.view_change_resend_period,
        );
        // Uncommitted slots carry votes of the old view; the replay re-orders what matters.
        self.ord.slots.retain(|_, s| s.committed);
        self.pre.matrix_sent_eligible = vec![0; self.n()];
        self.reset_suspect_for_new_view(cx);
        let quorum = self.cfg.quorums.prepares_from_non_leaders();
        let certificates: Vec<PrepareCertificate> = self
            .vc_prepared
            .range(self.exec.executed_seq + 1..)
            .map(|(_, c)| c.clone())
            .filter(|c| c.prepares.len() >= quorum)
            .collect();
        let named = certificates
            .iter()
            .map(|c| (c.pre_prepare.body.seq, c.pre_prepare.digest()))
            .collect();
        let report = self.sign(
            cx,
            VcReport {
                view,
                executed_seq: self.exec.executed_seq,
                certificates: named,
            },
        );
        let durable = self.persist_view(cx);
        self.broadcast_after(cx, durable, &PrimeMessage::VcReport(report.clone()));
        self.vc.sent.push(PrimeMessage::VcReport(report.clone()));
        for certificate in certificates {
            self.broadcast(cx, &PrimeMessage::VcCertificate(certificate.clone()));
            self.vc
                .certificates
                .insert(certificate.pre_prepare.digest(), certificate);
        }
        self.on_vc_report(cx, report);
    }

    /// A participant's own REPORT: the init of its reliable broadcast; we echo it.
    pub(crate) fn on_vc_report(&mut self, cx: &mut Context<'_, Self>, report: Signed<VcReport>) {
        if !self.vc.installing || report.body.view != self.view {
            self.note_laggard(cx, report.body.view, report.signer);
            return;
        }
        if report.signer != self.me && !self.verify(cx, &report) {
            return;
        }
        let origin = report.signer;
        let echoed = self.vc.broadcasts.get(&origin).is_some_and(|b| b.echoed);
        if !echoed {
            self.vc.broadcasts.entry(origin).or_default().echoed = true;
            self.relay_report(cx, false, report);
        }
    }

    fn relay_report(&mut self, cx: &mut Context<'_, Self>, ready: bool, report: Signed<VcReport>) {
        let relay = self.sign(cx, VcRelay { ready, report });
        self.broadcast_view_change(cx, PrimeMessage::VcRelay(relay.clone()));
        self.count_relay(cx, self.me, relay.body);
    }

    /// A Bracha echo or ready from another server.
    pub(crate) fn on_vc_relay(&mut self, cx: &mut Context<'_, Self>, relay: Signed<VcRelay>) {
        if !self.vc.installing || relay.body.report.body.view != self.view {
            self.note_laggard(cx, relay.body.report.body.view, relay.signer);
            return;
        }
        let known = self
            .vc
            .broadcasts
            .get(&relay.body.report.signer)
            .is_some_and(|b| b.reports.contains_key(&relay.body.report.digest()));
        if !self.verify(cx, &relay) || (!known && !self.verify(cx, &relay.body.report)) {
            return;
        }
        self.count_relay(cx, relay.signer, relay.body);
    }

    /// Bracha: ready after 2f+k+1 echoes or f+k+1 readies; deliver after 2f+k+1 readies.
    fn count_relay(&mut self, cx: &mut Context<'_, Self>, from: ParticipantId, relay: VcRelay) {
        let quorums = self.cfg.quorums;
        let origin = relay.report.signer;
        let digest = relay.report.digest();
        let broadcast = self.vc.broadcasts.entry(origin).or_default();
        if !broadcast.reports.contains_key(&digest) {
            if broadcast.reports.len() >= REPORTS_PER_ORIGIN_MAX {
                return;
            }
            broadcast.reports.insert(digest, relay.report.clone());
        }
        let votes = if relay.ready {
            &mut broadcast.readies
        } else {
            &mut broadcast.echoes
        };
        votes.entry(digest).or_default().insert(from);
        let echoes = broadcast.echoes.get(&digest).map_or(0, BTreeSet::len);
        let readies = broadcast.readies.get(&digest).map_or(0, BTreeSet::len);
        if !broadcast.readied
            && (echoes >= quorums.certificate() || readies >= quorums.suspect_rank())
        {
            broadcast.readied = true;
            return self.relay_report(cx, true, relay.report);
        }
        if readies >= quorums.certificate() && !self.vc.delivered.contains_key(&origin) {
            self.vc.delivered.insert(origin, relay.report);
            self.advance_view_change(cx);
        }
    }

    /// A prepare certificate some report names: keep it if it verifies.
    pub(crate) fn on_vc_certificate(
        &mut self,
        cx: &mut Context<'_, Self>,
        certificate: PrepareCertificate,
    ) {
        let digest = certificate.pre_prepare.digest();
        let bound = self.n() * self.cfg.order_window_max as usize;
        if !self.vc.installing
            || self.vc.certificates.contains_key(&digest)
            || self.vc.certificates.len() >= bound
        {
            return;
        }
        if self.prepare_certificate_valid(cx, &certificate) {
            self.vc.certificates.insert(digest, certificate);
            self.advance_view_change(cx);
        }
    }

    /// The pre-prepare is signed by its view's leader, and 2f+k distinct non-leaders prepared it.
    fn prepare_certificate_valid(
        &mut self,
        cx: &mut Context<'_, Self>,
        certificate: &PrepareCertificate,
    ) -> bool {
        let pre_prepare = &certificate.pre_prepare;
        let (view, seq) = (pre_prepare.body.view, pre_prepare.body.seq);
        let leader = self.leader_of(view);
        if pre_prepare.signer != leader
            || pre_prepare.body.matrix.len() != self.n()
            || !self.verify(cx, pre_prepare)
        {
            return false;
        }
        let digest = pre_prepare.digest();
        let mut signers = BTreeSet::new();
        for prepare in &certificate.prepares {
            let vote = prepare.body.0;
            let matches = vote.view == view && vote.seq == seq && vote.digest == digest;
            if matches
                && prepare.signer != leader
                && !signers.contains(&prepare.signer)
                && self.verify(cx, prepare)
            {
                signers.insert(prepare.signer);
            }
        }
        signers.len() >= self.cfg.quorums.prepares_from_non_leaders()
    }

    /// A participant's state is complete once its report is delivered and every certificate it
    /// names is held.
    fn state_complete(&self, p: ParticipantId) -> bool {
        self.vc.delivered.get(&p).is_some_and(|r| {
            r.body
                .certificates
                .iter()
                .all(|(_, d)| self.vc.certificates.contains_key(d))
        })
    }

    /// Steps 2-4 as far as the state held allows.
    fn advance_view_change(&mut self, cx: &mut Context<'_, Self>) {
        let complete: Vec<ParticipantId> = self
            .membership
            .participants()
            .filter(|p| self.state_complete(*p))
            .collect();
        if !self.vc.list_sent && complete.len() >= self.cfg.quorums.certificate() {
            self.vc.list_sent = true;
            let members = complete.iter().fold(0u64, |bits, p| bits | 1 << p.index());
            let list = self.sign(
                cx,
                VcList {
                    view: self.view,
                    members,
                },
            );
            self.broadcast_view_change(cx, PrimeMessage::VcList(list));
            self.vc.lists.insert(self.me, members);
        }
        self.sign_complete_lists(cx);
        if let Some(agreed) = self.vc.agreed {
            if self.vc.installing
                && members_of(agreed.members, self.n()).all(|p| self.state_complete(p))
            {
                self.apply_replay(cx, agreed);
            }
        }
    }

    pub(crate) fn on_vc_list(&mut self, cx: &mut Context<'_, Self>, list: Signed<VcList>) {
        if !self.vc.installing || list.body.view != self.view {
            self.note_laggard(cx, list.body.view, list.signer);
            return;
        }
        if !self.verify(cx, &list) {
            return;
        }
        self.vc.lists.insert(list.signer, list.body.members);
        self.sign_complete_lists(cx);
    }

    /// Step 3: a share for each list with 2f+k+1 members whose state we hold.
    fn sign_complete_lists(&mut self, cx: &mut Context<'_, Self>) {
        let n = self.n();
        let candidates: Vec<u64> = self.vc.lists.values().copied().collect();
        for members in candidates {
            let count = members_of(members, n).count();
            if self.vc.signed_lists.contains(&members)
                || count < self.cfg.quorums.certificate()
                || !members_of(members, n).all(|p| self.state_complete(p))
            {
                continue;
            }
            let start_seq = members_of(members, n)
                .filter_map(|p| self.vc.delivered.get(&p).map(|r| r.body.executed_seq))
                .max()
                .unwrap_or(0)
                + 1;
            self.vc.signed_lists.insert(members);
            let agreed = VcAgreement {
                view: self.view,
                members,
                start_seq,
            };
            let mut share = self
                .auth
                .sign_share(&agreed.proof_digest(), &mut |w| cx.charge(w));
            self.attack_corrupt_share(&mut share);
            let message = self.sign(cx, VcPartialSig { agreed, share });
            self.broadcast_view_change(cx, PrimeMessage::VcPartialSig(message.clone()));
            self.count_share(cx, message.signer, message.body);
        }
    }

    pub(crate) fn on_vc_partial_sig(
        &mut self,
        cx: &mut Context<'_, Self>,
        message: Signed<VcPartialSig>,
    ) {
        if !self.vc.installing || message.body.agreed.view != self.view {
            self.note_laggard(cx, message.body.agreed.view, message.signer);
            return;
        }
        // Paper 004 section 3: a server caught with a bad share is ignored from then on.
        if self.misbehaving.contains(&message.signer) || !self.verify(cx, &message) {
            return;
        }
        self.count_share(cx, message.signer, message.body);
    }

    /// Keep a share; at the new leader, 2f+k+1 of them for one agreement are combined into the
    /// VC-PROOF and sent in the REPLAY (step 4). Shares are not checked one by one here: combining
    /// verifies the result once, and checks shares singly only if that fails.
    fn count_share(
        &mut self,
        cx: &mut Context<'_, Self>,
        signer: ParticipantId,
        message: VcPartialSig,
    ) {
        let agreed = message.agreed;
        if !self.vc.shares.contains_key(&agreed) && self.vc.shares.len() >= self.n() {
            return;
        }
        let shares = self.vc.shares.entry(agreed).or_default();
        shares.entry(signer).or_insert(message.share);
        let held = shares.len();
        if held < self.cfg.quorums.certificate() {
            return;
        }
        if !self.is_leader() {
            if self.vc.agreed.is_none() {
                // Suspect-leader: the new leader owes its REPLAY from now on.
                self.start_replay_challenge(cx);
            }
        } else if !self.vc.replay_sent {
            self.combine_replay_proof(cx, agreed);
        }
    }

    /// Combine the shares held for `agreed`; blame and drop the bad ones. On success, broadcast
    /// the REPLAY; otherwise wait for more shares.
    fn combine_replay_proof(&mut self, cx: &mut Context<'_, Self>, agreed: VcAgreement) {
        let held: Vec<(ParticipantId, AuthTag)> = self
            .vc
            .shares
            .get(&agreed)
            .map(|s| s.iter().map(|(p, t)| (*p, t.clone())).collect())
            .unwrap_or_default();
        let digest = agreed.proof_digest();
        let result = self
            .auth
            .combine_shares(&digest, &held, &mut |w| cx.charge(w));
        let invalid = match &result {
            Ok(combined) => combined.invalid.clone(),
            Err(ShareCombineError::NotEnoughValid { invalid, .. }) => invalid.clone(),
            Err(_) => Vec::new(),
        };
        for p in invalid {
            self.drops.bad_signature += 1;
            for shares in self.vc.shares.values_mut() {
                shares.remove(&p);
            }
            let evidence = Misbehaviour::BadThresholdShare { view: agreed.view };
            self.report_misbehaviour(cx, p, evidence);
        }
        let Ok(combined) = result else {
            return;
        };
        self.vc.replay_sent = true;
        let replay = Replay {
            agreed,
            proof: combined.proof,
        };
        self.vc.replay = Some(replay.clone());
        self.broadcast(cx, &PrimeMessage::Replay(replay));
        self.accept_replay(cx, agreed);
    }

    /// REPLAY from the new leader (or forwarded by anyone): its threshold signature proves that
    /// 2f+k+1 participants agreed to it.
    pub(crate) fn on_replay(&mut self, cx: &mut Context<'_, Self>, replay: Replay) {
        let agreed = replay.agreed;
        if !self.vc.installing || agreed.view != self.view || self.vc.agreed.is_some() {
            return;
        }
        let digest = agreed.proof_digest();
        if !self
            .auth
            .verify_combined(&digest, &replay.proof, &mut |w| cx.charge(w))
        {
            self.drops.bad_signature += 1;
            return;
        }
        self.vc.replay = Some(replay);
        self.accept_replay(cx, agreed);
    }

    fn accept_replay(&mut self, cx: &mut Context<'_, Self>, agreed: VcAgreement) {
        self.answer_replay_challenge(cx);
        self.vc.agreed = Some(agreed);
        self.advance_view_change(cx);
    }

    /// The replay is agreed and its state held: compute each replayed slot (the certificate of the
    /// highest view among the listed reports, or nothing), resume ordering in the new view, and, at
    /// the new leader, re-propose the replayed slots.
    fn apply_replay(&mut self, cx: &mut Context<'_, Self>, agreed: VcAgreement) {
        let n = self.n();
        let mut chosen: BTreeMap<u64, (u64, ReplayContent)> = BTreeMap::new();
        for p in members_of(agreed.members, n) {
            let Some(report) = self.vc.delivered.get(&p) else {
                continue;
            };
            for (seq, digest) in &report.body.certificates {
                let Some(certificate) = self.vc.certificates.get(digest) else {
                    continue;
                };
                let body = &certificate.pre_prepare.body;
                if *seq < agreed.start_seq || body.seq != *seq {
                    continue;
                }
                let content = ReplayContent {
                    timestamp_ms: body.timestamp_ms,
                    matrix: body.matrix.clone(),
                };
                if chosen.get(seq).is_none_or(|(view, _)| body.view > *view) {
                    chosen.insert(*seq, (body.view, content));
                }
            }
        }
        let end = chosen
            .keys()
            .next_back()
            .copied()
            .unwrap_or(agreed.start_seq - 1);
        let nothing = ReplayContent {
            timestamp_ms: 0,
            matrix: vec![None; n],
        };
        self.vc.expected = (agreed.start_seq..=end)
            .map(|seq| {
                (
                    seq,
                    chosen
                        .get(&seq)
                        .map_or_else(|| nothing.clone(), |(_, c)| c.clone()),
                )
            })
            .collect();
        self.vc.installing = false;
        self.activity.views_installed += 1;
        self.ord.last_prepared_seq = agreed.start_seq - 1;
        if self.is_leader() {
            self.ord.last_proposed_seq = agreed.start_seq - 1;
            let mut eligible = self.exec.last_executed.clone();
            let replayed: Vec<(u64, ReplayContent)> =
                self.vc.expected.clone().into_iter().collect();
            for (seq, content) in replayed {
                eligible = made_eligible(&content.matrix, &eligible, self.cfg.quorums);
                let body = PrePrepare {
                    view: self.view,
                    seq,
                    timestamp_ms: content.timestamp_ms,
                    matrix: content.matrix,
                };
                self.send_proposal(cx, body);
            }
            self.ord.last_proposed_eligible = eligible;
        }
        self.prepare_in_order(cx);
    }

    /// A new-view pre-prepare for a replayed slot must re-propose exactly the agreed content.
    pub(crate) fn replay_allows(&self, pre_prepare: &PrePrepare) -> bool {
        self.vc
            .expected
            .get(&pre_prepare.seq)
            .is_none_or(|expected| {
                expected.timestamp_ms == pre_prepare.timestamp_ms
                    && expected.matrix == pre_prepare.matrix
            })
    }

    /// Keep a prepare certificate for a slot prepared here, for a later view change's report.
    pub(crate) fn remember_prepare_certificate(&mut self, seq: u64) {
        let Some(slot) = self.ord.slots.get(&seq) else {
            return;
        };
        let (Some(pre_prepare), Some(digest)) = (slot.pre_prepare.clone(), slot.digest) else {
            return;
        };
        let prepares = slot
            .prepares
            .values()
            .filter(|p| p.body.0.digest == digest)
            .cloned()
            .collect();
        self.vc_prepared.insert(
            seq,
            PrepareCertificate {
                pre_prepare,
                prepares,
            },
        );
    }

    /// Forget prepare certificates of executed slots.
    pub(crate) fn collect_prepared_garbage(&mut self) {
        self.vc_prepared = self.vc_prepared.split_off(&(self.exec.executed_seq + 1));
    }

    /// The timers of a view change: the NEW-LEADER re-send stops once the view moved.
    pub(crate) fn cancel_new_leader_resend(&self, cx: &mut Context<'_, Self>) {
        cx.cancel_timer(PrimeTimer::NewLeaderResend);
    }
}

#[cfg(test)]
mod tests {
    use stockade_core::Time;

    use super::*;
    use crate::auth::InsecureTestAuth;
    use crate::config::PrimeConfig;
    use crate::replica::PrimeOutput;
    use crate::test_support::{call, node, outputs, sends, signed_by};

    #[test]
    fn distinct_reports_per_origin_are_bounded() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        p.view = 1;
        p.vc.installing = true;
        for executed_seq in 0..10 {
            let report = signed_by(
                2,
                VcReport {
                    view: 1,
                    executed_seq,
                    certificates: vec![],
                },
            );
            let relay = signed_by(
                3,
                VcRelay {
                    ready: false,
                    report,
                },
            );
            call(&mut p, Time::from_millis(1), |p, cx| {
                p.on_vc_relay(cx, relay)
            });
        }
        let held =
            p.vc.broadcasts
                .get(&ParticipantId(2))
                .map_or(0, |b| b.reports.len());
        assert_eq!(held, REPORTS_PER_ORIGIN_MAX);
    }

    #[test]
    fn reliable_broadcast_delivers_after_a_quorum_of_readies_only() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        p.view = 1;
        p.vc.installing = true;
        let report = signed_by(
            2,
            VcReport {
                view: 1,
                executed_seq: 0,
                certificates: vec![],
            },
        );
        let t = Time::from_millis(1);
        for relayer in [1, 3] {
            let ready = signed_by(
                relayer,
                VcRelay {
                    ready: true,
                    report: report.clone(),
                },
            );
            call(&mut p, t, |p, cx| p.on_vc_relay(cx, ready));
        }
        // Two readies (f+k+1) make us ready too: with ours, 2f+k+1 readies deliver.
        assert!(p.vc.broadcasts[&ParticipantId(2)].readied);
        assert!(p.vc.delivered.contains_key(&ParticipantId(2)));
        let other = signed_by(
            1,
            VcReport {
                view: 1,
                executed_seq: 0,
                certificates: vec![],
            },
        );
        let ready = signed_by(
            3,
            VcRelay {
                ready: true,
                report: other,
            },
        );
        call(&mut p, t, |p, cx| p.on_vc_relay(cx, ready));
        assert!(
            !p.vc.delivered.contains_key(&ParticipantId(1)),
            "one ready delivers nothing"
        );
    }

    const AGREED: VcAgreement = VcAgreement {
        view: 1,
        members: 0b0111,
        start_seq: 1,
    };

    /// Participant `p`'s VC-PARTIAL-SIG for `AGREED`, with a valid or a corrupted share.
    fn share_from(p: u16, valid: bool) -> Signed<VcPartialSig> {
        let mut share = InsecureTestAuth::share_for(ParticipantId(p), &AGREED.proof_digest());
        if !valid {
            share.0[0] ^= 1;
        }
        signed_by(
            p,
            VcPartialSig {
                agreed: AGREED,
                share,
            },
        )
    }

    /// The new leader of view 1 (participant 1), installing it.
    fn installing_leader() -> Prime<crate::test_support::LogApp> {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        p.view = 1;
        p.vc.installing = true;
        p
    }

    fn replays(
        effects: &[stockade_core::Effect<Prime<crate::test_support::LogApp>>],
    ) -> Vec<Replay> {
        sends(effects)
            .into_iter()
            .filter_map(|(_, m)| match m {
                PrimeMessage::Replay(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// PRIME.md view change steps 3-4: the new leader combines 2f+k+1 shares into one threshold
    /// signature and broadcasts a REPLAY carrying it; fewer shares send nothing.
    #[test]
    fn leader_combines_a_quorum_of_shares_into_one_replay_signature() {
        let mut p = installing_leader();
        let t = Time::from_millis(1);
        for from in [0, 2] {
            let effects = call(&mut p, t, |p, cx| {
                p.on_vc_partial_sig(cx, share_from(from, true))
            });
            assert!(replays(&effects).is_empty(), "two shares prove nothing");
        }
        let effects = call(&mut p, t, |p, cx| {
            p.on_vc_partial_sig(cx, share_from(3, true))
        });
        let sent = replays(&effects);
        assert_eq!(sent.len(), 3, "one REPLAY to each other server");
        assert_eq!(sent[0].agreed, AGREED);
        assert_eq!(
            sent[0].proof,
            InsecureTestAuth::combined_for(&AGREED.proof_digest()),
            "the REPLAY carries the combined signature"
        );
        assert_eq!(p.vc.agreed, Some(AGREED));
        assert!(p.misbehaving().is_empty());
        let again = call(&mut p, t, |p, cx| {
            p.on_vc_partial_sig(cx, share_from(0, true))
        });
        assert!(replays(&again).is_empty(), "one REPLAY per view change");
    }

    /// Paper 004 section 3: a bad share does not block the view change. The leader's combine
    /// names its signer, who is reported and ignored from then on, and the next valid share
    /// completes the proof.
    #[test]
    fn a_bad_share_is_identified_and_does_not_block_the_replay() {
        let mut p = installing_leader();
        let t = Time::from_millis(1);
        call(&mut p, t, |p, cx| {
            p.on_vc_partial_sig(cx, share_from(0, true))
        });
        call(&mut p, t, |p, cx| {
            p.on_vc_partial_sig(cx, share_from(2, true))
        });
        let effects = call(&mut p, t, |p, cx| {
            p.on_vc_partial_sig(cx, share_from(3, false))
        });
        assert!(replays(&effects).is_empty(), "two valid shares are too few");
        assert_eq!(
            outputs(&effects),
            vec![PrimeOutput::Misbehaviour {
                participant: ParticipantId(3),
                evidence: Misbehaviour::BadThresholdShare { view: 1 },
            }]
        );
        assert!(p.misbehaving().contains(&ParticipantId(3)));
        assert!(!p.vc.shares[&AGREED].contains_key(&ParticipantId(3)));
        // Participant 3 is ignored now, even with a valid share.
        let ignored = call(&mut p, t, |p, cx| {
            p.on_vc_partial_sig(cx, share_from(3, true))
        });
        assert!(replays(&ignored).is_empty());
        assert_eq!(p.vc.shares[&AGREED].len(), 2);
        // The leader's own share is the third valid one.
        let own = {
            let mut own = share_from(1, true);
            own.tag = crate::auth::AuthTag::default();
            own.body
        };
        let effects = call(&mut p, t, |p, cx| p.count_share(cx, ParticipantId(1), own));
        let sent = replays(&effects);
        assert_eq!(sent.len(), 3);
        assert_eq!(
            sent[0].proof,
            InsecureTestAuth::combined_for(&AGREED.proof_digest())
        );
    }

    /// A REPLAY is accepted only with a valid combined signature on what it announces.
    #[test]
    fn replay_needs_a_valid_combined_signature() {
        let mut p = node(&PrimeConfig::new(1, 0), 2);
        p.view = 1;
        p.vc.installing = true;
        let t = Time::from_millis(1);
        let forged = Replay {
            agreed: AGREED,
            proof: InsecureTestAuth::share_for(ParticipantId(1), &AGREED.proof_digest()),
        };
        call(&mut p, t, |p, cx| p.on_replay(cx, forged));
        assert_eq!(p.vc.agreed, None, "one share is no proof");
        assert_eq!(p.drops().bad_signature, 1);
        let other = VcAgreement {
            start_seq: 7,
            ..AGREED
        };
        let mismatched = Replay {
            agreed: other,
            proof: InsecureTestAuth::combined_for(&AGREED.proof_digest()),
        };
        call(&mut p, t, |p, cx| p.on_replay(cx, mismatched));
        assert_eq!(p.vc.agreed, None, "a proof of another agreement");
        let genuine = Replay {
            agreed: AGREED,
            proof: InsecureTestAuth::combined_for(&AGREED.proof_digest()),
        };
        call(&mut p, t, |p, cx| p.on_replay(cx, genuine));
        assert_eq!(p.vc.agreed, Some(AGREED));
        assert_eq!(p.drops().bad_signature, 2);
    }

    /// A server signs its share of the agreement it computes, inside a signed VC-PARTIAL-SIG.
    #[test]
    fn shares_are_signed_over_the_agreement_digest() {
        let mut p = node(&PrimeConfig::new(1, 0), 2);
        p.view = 1;
        p.vc.installing = true;
        for origin in 0..3u16 {
            let report = signed_by(
                origin,
                VcReport {
                    view: 1,
                    executed_seq: 4 + origin as u64,
                    certificates: vec![],
                },
            );
            p.vc.delivered.insert(ParticipantId(origin), report);
        }
        p.vc.lists.insert(ParticipantId(0), 0b0111);
        let effects = call(&mut p, Time::from_millis(1), |p, cx| {
            p.sign_complete_lists(cx)
        });
        let shares: Vec<Signed<VcPartialSig>> = sends(&effects)
            .into_iter()
            .filter_map(|(_, m)| match m {
                PrimeMessage::VcPartialSig(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(shares.len(), 3);
        let agreed = VcAgreement {
            view: 1,
            members: 0b0111,
            start_seq: 7,
        };
        assert_eq!(
            shares[0].body.agreed, agreed,
            "start after the highest executed ARU"
        );
        assert_eq!(
            shares[0].body.share,
            InsecureTestAuth::share_for(ParticipantId(2), &agreed.proof_digest())
        );
    }
}
