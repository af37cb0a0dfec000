//! Global ordering (PRIME.md steps 8-10): the leader proposes summary matrices in PRE-PREPAREs,
//! non-leaders re-flood them, and PREPARE/COMMIT agree on each slot's pre-prepare.

use std::collections::BTreeMap;

use stockade_core::Context;

use crate::app::Application;
use crate::auth::Signed;
use crate::config::ParticipantId;
use crate::execute::made_eligible;
use crate::messages::{Commit, Digest, PrePrepare, Prepare, PrimeMessage, Vote};
use crate::persist::VoteKind;
use crate::replica::{Misbehaviour, Prime};

/// What one global slot holds in the current view.
#[derive(Default, Debug)]
pub(crate) struct OrderSlot {
    /// The leader's proposal.
    pub(crate) pre_prepare: Option<Signed<PrePrepare>>,
    /// Its digest.
    pub(crate) digest: Option<Digest>,
    /// The first prepare from each non-leader.
    pub(crate) prepares: BTreeMap<ParticipantId, Signed<Prepare>>,
    /// The first commit from each participant.
    pub(crate) commits: BTreeMap<ParticipantId, Signed<Commit>>,
    /// We sent our commit (the slot is prepared here).
    pub(crate) commit_sent: bool,
    /// A commit certificate is held: the slot may execute.
    pub(crate) committed: bool,
}

impl OrderSlot {
    fn matching_prepares(&self) -> usize {
        self.digest.map_or(0, |d| {
            self.prepares
                .values()
                .filter(|p| p.body.0.digest == d)
                .count()
        })
    }
    fn matching_commits(&self) -> usize {
        self.digest.map_or(0, |d| {
            self.commits
                .values()
                .filter(|c| c.body.0.digest == d)
                .count()
        })
    }
    /// The commits that match the pre-prepare: with it, an ordering certificate.
    pub(crate) fn certificate_commits(&self) -> Vec<Signed<Commit>> {
        let Some(d) = self.digest else {
            return Vec::new();
        };
        self.commits
            .values()
            .filter(|c| c.body.0.digest == d)
            .cloned()
            .collect()
    }
}

/// Global ordering state.
#[derive(Debug)]
pub(crate) struct OrderState {
    /// Slots from the oldest retained executed one to the window's end.
    pub(crate) slots: BTreeMap<u64, OrderSlot>,
    /// The leader's last proposed slot.
    pub(crate) last_proposed_seq: u64,
    /// The eligible vector of the leader's last proposal.
    pub(crate) last_proposed_eligible: Vec<u64>,
    /// The highest slot this non-leader prepared; prepares go out in slot order (step 10).
    pub(crate) last_prepared_seq: u64,
    /// The highest slot any valid vote or pre-prepare named (catch-up uses it to notice a lag).
    pub(crate) highest_seen_seq: u64,
}

impl OrderState {
    pub(crate) fn new(n: usize) -> OrderState {
        OrderState {
            slots: BTreeMap::new(),
            last_proposed_seq: 0,
            last_proposed_eligible: vec![0; n],
            last_prepared_seq: 0,
            highest_seen_seq: 0,
        }
    }
}

impl<A: Application> Prime<A> {
    fn in_order_window(&self, seq: u64) -> bool {
        seq > self.exec.executed_seq && seq <= self.exec.executed_seq + self.cfg.order_window_max
    }

    /// Step 8: every period, if a newer summary makes something eligible, the leader proposes the
    /// next slot with the latest summary it holds from every participant.
    pub(crate) fn propose_if_leader(&mut self, cx: &mut Context<'_, Self>) {
        if !self.is_leader()
            || self.vc.installing
            || !self.in_order_window(self.ord.last_proposed_seq + 1)
        {
            return;
        }
        let eligible = made_eligible(
            &self.pre.latest_summaries,
            &self.ord.last_proposed_eligible,
            self.cfg.quorums,
        );
        if eligible == self.ord.last_proposed_eligible || self.attack_holds_proposal(cx.now()) {
            return;
        }
        self.attack_note_proposal(cx.now());
        let seq = self.ord.last_proposed_seq + 1;
        let body = PrePrepare {
            view: self.view,
            seq,
            timestamp_ms: cx.now().as_nanos() / 1_000_000,
            matrix: self.pre.latest_summaries.clone(),
        };
        self.ord.last_proposed_eligible = eligible;
        self.send_proposal(cx, body);
    }

    /// Sign, persist (a leader never proposes two pre-prepares for one slot of a view) and send a
    /// proposal, then handle it as received.
    pub(crate) fn send_proposal(&mut self, cx: &mut Context<'_, Self>, body: PrePrepare) {
        let seq = body.seq;
        let pre_prepare = self.sign(cx, body);
        self.ord.last_proposed_seq = seq;
        let durable = self.persist_vote(cx, seq, VoteKind::PrePrepare, pre_prepare.digest());
        if !self.attack_send_equivocating(cx, durable, &pre_prepare) {
            self.broadcast_after(cx, durable, &PrimeMessage::PrePrepare(pre_prepare.clone()));
        }
        self.store_pre_prepare(cx, pre_prepare);
    }

    /// A pre-prepare from the leader or re-flooded by anyone. Valid: signed by the view's leader, in
    /// the window, with one correctly signed summary (or none) per participant.
    pub(crate) fn on_pre_prepare(
        &mut self,
        cx: &mut Context<'_, Self>,
        pre_prepare: Signed<PrePrepare>,
    ) {
        let body = &pre_prepare.body;
        if body.view < self.view {
            // Its sender is still in an older view (restarted, or it missed the change): answer
            // it with this view's change (see `crate::view_change_resend`).
            self.note_laggard(cx, self.view, pre_prepare.signer);
        }
        if body.view != self.view
            || pre_prepare.signer != self.leader_of(self.view)
            || self.vc.installing
        {
            self.drops.malformed += 1;
            return;
        }
        if !self.in_order_window(body.seq) {
            self.drops.out_of_window += 1;
            return;
        }
        if body.matrix.len() != self.n() {
            self.drops.malformed += 1;
            return;
        }
        let digest = pre_prepare.digest();
        if let Some(slot) = self.ord.slots.get(&body.seq).filter(|s| s.digest.is_some()) {
            // Only a second proposal of the same view is equivocation: a slot committed in an
            // earlier view keeps its proposal, and the new leader's re-proposal of it (view change
            // replay) carries the same content under another view, hence another digest.
            let same_view = slot
                .pre_prepare
                .as_ref()
                .is_some_and(|held| held.body.view == body.view);
            if same_view && slot.digest != Some(digest) && self.verify(cx, &pre_prepare) {
                // Step 8: a leader that shows two proposals for one slot is suspected at once.
                let (view, seq) = (body.view, body.seq);
                self.report_misbehaviour(
                    cx,
                    pre_prepare.signer,
                    Misbehaviour::PrePrepareEquivocation { view, seq },
                );
                self.suspect_leader(cx);
            }
            return;
        }
        if !self.verify(cx, &pre_prepare)
            || !self.absorb_summary_row(cx, pre_prepare.body.matrix.clone())
        {
            return;
        }
        if !self.replay_allows(&pre_prepare.body) {
            // The new leader re-proposed a replayed slot with other content than agreed.
            self.drops.malformed += 1;
            self.suspect_leader(cx);
            return;
        }
        // Step 8: re-flood so that a leader showing different servers different proposals is caught.
        self.broadcast_except(
            cx,
            &PrimeMessage::PrePrepare(pre_prepare.clone()),
            Some(pre_prepare.signer),
        );
        self.store_pre_prepare(cx, pre_prepare);
    }

    /// Keep a verified pre-prepare, then prepare in slot order and check certificates.
    pub(crate) fn store_pre_prepare(
        &mut self,
        cx: &mut Context<'_, Self>,
        pre_prepare: Signed<PrePrepare>,
    ) {
        let seq = pre_prepare.body.seq;
        self.ord.highest_seen_seq = self.ord.highest_seen_seq.max(seq);
        let slot = self.ord.slots.entry(seq).or_default();
        if slot.committed {
            // The slot's content is proven (here or by a catch-up ordering certificate, possibly of
            // a later view than ours after a restart): a proposal of ours or of an older view's
            // leader must not replace it.
            self.drops.out_of_window += 1;
            return;
        }
        slot.digest = Some(pre_prepare.digest());
        slot.pre_prepare = Some(pre_prepare);
        self.prepare_in_order(cx);
        self.check_slot(cx, seq);
    }

    /// Step 10: non-leaders send PREPARE for consecutive slots whose pre-prepare they hold. Each
    /// answered slot may also answer turnaround challenges (suspect-leader).
    pub(crate) fn prepare_in_order(&mut self, cx: &mut Context<'_, Self>) {
        loop {
            let seq = self.ord.last_prepared_seq.max(self.exec.executed_seq) + 1;
            let Some((digest, pre_prepare)) = self
                .ord
                .slots
                .get(&seq)
                .and_then(|s| Some((s.digest?, s.pre_prepare.clone()?)))
            else {
                return;
            };
            self.ord.last_prepared_seq = seq;
            self.answer_turnaround_challenges(cx, &pre_prepare.body);
            if self.is_leader() {
                continue;
            }
            if !self.may_vote(seq, VoteKind::Prepare, &digest) {
                // Before a crash we prepared another proposal for this slot in this view.
                return;
            }
            let durable = self.persist_vote(cx, seq, VoteKind::Prepare, digest);
            let prepare = self.sign(
                cx,
                Prepare(Vote {
                    view: self.view,
                    seq,
                    digest,
                }),
            );
            self.broadcast_after(cx, durable, &PrimeMessage::Prepare(prepare.clone()));
            self.ord
                .slots
                .entry(seq)
                .or_default()
                .prepares
                .insert(self.me, prepare);
            self.check_slot(cx, seq);
        }
    }

    /// A PREPARE from a non-leader.
    pub(crate) fn on_prepare(&mut self, cx: &mut Context<'_, Self>, prepare: Signed<Prepare>) {
        let vote = prepare.body.0;
        if vote.view < self.view {
            self.note_laggard(cx, self.view, prepare.signer);
        }
        if !self.vote_acceptable(&vote) || prepare.signer == self.leader_of(vote.view) {
            return;
        }
        if self
            .ord
            .slots
            .get(&vote.seq)
            .is_some_and(|s| s.prepares.contains_key(&prepare.signer))
        {
            return;
        }
        if self.verify(cx, &prepare) {
            self.ord
                .slots
                .entry(vote.seq)
                .or_default()
                .prepares
                .insert(prepare.signer, prepare);
            self.check_slot(cx, vote.seq);
        }
    }

    /// A COMMIT from anyone.
    pub(crate) fn on_commit(&mut self, cx: &mut Context<'_, Self>, commit: Signed<Commit>) {
        let vote = commit.body.0;
        if vote.view < self.view {
            self.note_laggard(cx, self.view, commit.signer);
        }
        if !self.vote_acceptable(&vote) {
            return;
        }
        if self
            .ord
            .slots
            .get(&vote.seq)
            .is_some_and(|s| s.commits.contains_key(&commit.signer))
        {
            return;
        }
        if self.verify(cx, &commit) {
            self.ord
                .slots
                .entry(vote.seq)
                .or_default()
                .commits
                .insert(commit.signer, commit);
            self.check_slot(cx, vote.seq);
        }
    }

    fn vote_acceptable(&mut self, vote: &Vote) -> bool {
        if vote.view != self.view {
            self.drops.malformed += 1;
            return false;
        }
        if !self.in_order_window(vote.seq) {
            self.drops.out_of_window += 1;
            return false;
        }
        self.ord.highest_seen_seq = self.ord.highest_seen_seq.max(vote.seq);
        true
    }

    /// Step 10: a prepare certificate (the pre-prepare and 2f+k matching prepares from non-leaders)
    /// makes us commit; a commit certificate (2f+k+1 matching commits) lets the slot execute.
    fn check_slot(&mut self, cx: &mut Context<'_, Self>, seq: u64) {
        let quorums = self.cfg.quorums;
        let Some(slot) = self.ord.slots.get(&seq) else {
            return;
        };
        let Some(digest) = slot.digest else { return };
        if !slot.commit_sent
            && slot.matching_prepares() >= quorums.prepares_from_non_leaders()
            && self.may_vote(seq, VoteKind::Commit, &digest)
        {
            let durable = self.persist_vote(cx, seq, VoteKind::Commit, digest);
            let commit = self.sign(
                cx,
                Commit(Vote {
                    view: self.view,
                    seq,
                    digest,
                }),
            );
            self.broadcast_after(cx, durable, &PrimeMessage::Commit(commit.clone()));
            let slot = self.ord.slots.entry(seq).or_default();
            slot.commit_sent = true;
            slot.commits.insert(self.me, commit);
            self.remember_prepare_certificate(seq);
        }
        let Some(slot) = self.ord.slots.get_mut(&seq) else {
            return;
        };
        if !slot.committed && slot.matching_commits() >= quorums.certificate() {
            slot.committed = true;
            self.try_execute(cx);
        }
    }

    /// Install a slot proven committed by an ordering certificate from catch-up.
    pub(crate) fn install_committed(
        &mut self,
        cx: &mut Context<'_, Self>,
        pre_prepare: Signed<PrePrepare>,
        commits: Vec<Signed<Commit>>,
    ) {
        let seq = pre_prepare.body.seq;
        let slot = self.ord.slots.entry(seq).or_default();
        slot.digest = Some(pre_prepare.digest());
        slot.pre_prepare = Some(pre_prepare);
        slot.commits = commits.into_iter().map(|c| (c.signer, c)).collect();
        slot.commit_sent = true;
        slot.committed = true;
        self.try_execute(cx);
    }

    /// Forget ordering state of slots executed more than `retained_slots_max` ago.
    pub(crate) fn collect_order_garbage(&mut self) {
        let keep_from = self
            .exec
            .executed_seq
            .saturating_sub(self.cfg.retained_slots_max);
        self.ord.slots = self.ord.slots.split_off(&keep_from.saturating_add(1));
    }
}

#[cfg(test)]
mod tests {
    use stockade_core::Time;

    use super::*;
    use crate::config::PrimeConfig;
    use crate::execute::column_eligible;
    use crate::messages::PoSummary;
    use crate::replica::PrimeOutput;
    use crate::test_support::{call, count, node, outputs, sends, signed_by, LogApp};

    const T: Time = Time::from_millis(20);

    fn summary(p: u16, counter: u64, cum_aru: Vec<u64>) -> Option<Signed<PoSummary>> {
        Some(signed_by(p, PoSummary { counter, cum_aru }))
    }

    fn pre_prepare(
        seq: u64,
        timestamp_ms: u64,
        matrix: Vec<Option<Signed<PoSummary>>>,
    ) -> Signed<PrePrepare> {
        pre_prepare_of_view(0, seq, timestamp_ms)(matrix)
    }

    /// A pre-prepare of `view` signed by its leader, given its matrix.
    fn pre_prepare_of_view(
        view: u64,
        seq: u64,
        timestamp_ms: u64,
    ) -> impl FnOnce(Vec<Option<Signed<PoSummary>>>) -> Signed<PrePrepare> {
        move |matrix| {
            signed_by(
                (view % 4) as u16,
                PrePrepare {
                    view,
                    seq,
                    timestamp_ms,
                    matrix,
                },
            )
        }
    }

    /// Install `pre_prepare` as committed in `p`; return its digest.
    fn hold_committed(p: &mut Prime<LogApp>, pre_prepare: Signed<PrePrepare>) -> Digest {
        let digest = pre_prepare.digest();
        let slot = p.ord.slots.entry(pre_prepare.body.seq).or_default();
        slot.digest = Some(digest);
        slot.pre_prepare = Some(pre_prepare);
        slot.committed = true;
        digest
    }

    /// A restarted old leader re-proposing a slot that catch-up already installed as committed
    /// (possibly from a later view) must not replace its content: that broke agreement.
    #[test]
    fn a_committed_slot_keeps_its_pre_prepare() {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        let digest = hold_committed(&mut p, pre_prepare(1, 7, vec![None; 4]));
        let other = pre_prepare(1, 8, vec![None; 4]);
        assert_ne!(other.digest(), digest);
        call(&mut p, T, |p, cx| p.store_pre_prepare(cx, other));
        assert_eq!(p.ord.slots[&1].digest, Some(digest));
        assert_eq!(p.drops.out_of_window, 1, "the proposal was dropped");
    }

    /// Seeds 1126 and 1199 of `prime-fuzz` (found by the harness's false-accusation check): a slot
    /// committed in view 0 but not yet executed survives the view change; the new leader of view 1
    /// re-proposes it with the same content, whose digest differs because the view does. That is
    /// not equivocation, and the committed proposal stays.
    #[test]
    fn a_new_views_re_proposal_of_a_committed_slot_is_not_equivocation() {
        let mut p = node(&PrimeConfig::new(1, 0), 2);
        let digest = hold_committed(&mut p, pre_prepare(1, 7, vec![None; 4]));
        p.view = 1;
        let re_proposal = pre_prepare_of_view(1, 1, 7)(vec![None; 4]);
        let effects = call(&mut p, T, |p, cx| p.on_pre_prepare(cx, re_proposal));
        assert!(outputs(&effects).is_empty(), "nobody accused or suspected");
        assert_eq!(p.ord.slots[&1].digest, Some(digest));
        // A second, different proposal of view 1 itself is still caught.
        let first = pre_prepare_of_view(1, 2, 8)(vec![None; 4]);
        let second = pre_prepare_of_view(1, 2, 9)(vec![None; 4]);
        call(&mut p, T, |p, cx| p.on_pre_prepare(cx, first));
        let effects = call(&mut p, T, |p, cx| p.on_pre_prepare(cx, second));
        assert!(outputs(&effects).contains(&PrimeOutput::Misbehaviour {
            participant: ParticipantId(1),
            evidence: Misbehaviour::PrePrepareEquivocation { view: 1, seq: 2 }
        }));
    }

    #[test]
    fn step_9_eligibility_is_the_2f_k_plus_1th_highest_of_each_column() {
        let q = PrimeConfig::new(1, 0).quorums;
        let row = vec![
            summary(0, 1, vec![5, 1, 0, 0]),
            summary(1, 1, vec![3, 2, 0, 0]),
            None,
            summary(3, 1, vec![9, 2, 0, 7]),
        ];
        assert_eq!(column_eligible(&row, 0, q), 3, "third highest of 9, 5, 3");
        assert_eq!(column_eligible(&row, 1, q), 1);
        assert_eq!(column_eligible(&row, 3, q), 0);
        // Never below what the previous slot already made eligible.
        assert_eq!(made_eligible(&row, &[4, 0, 1, 0], q), vec![4, 1, 1, 0]);
        // Fewer than 2f+k+1 summaries make nothing eligible.
        assert_eq!(column_eligible(&row[..2], 0, q), 0);
    }

    #[test]
    fn step_8_leader_proposes_only_when_eligibility_rises() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        for s in 1..4 {
            let sum = summary(s, 1, vec![1, 0, 0, 0]).expect("summary");
            call(&mut p, T, |p, cx| p.on_po_summary(cx, sum));
        }
        let effects = call(&mut p, T, |p, cx| p.propose_if_leader(cx));
        let sent = sends(&effects);
        assert_eq!(
            count(
                &sent,
                |m| matches!(m, PrimeMessage::PrePrepare(pp) if pp.body.seq == 1 && pp.body.timestamp_ms == 20)
            ),
            3
        );
        let effects = call(&mut p, T, |p, cx| p.propose_if_leader(cx));
        assert!(
            sends(&effects).is_empty(),
            "nothing newly eligible: no proposal"
        );
        let mut follower = node(&PrimeConfig::new(1, 0), 1);
        let effects = call(&mut follower, T, |p, cx| p.propose_if_leader(cx));
        assert!(sends(&effects).is_empty(), "only the leader proposes");
    }

    #[test]
    fn steps_8_10_non_leader_refloods_prepares_commits_and_executes() {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        let pp = pre_prepare(1, 5, vec![None; 4]);
        let digest = pp.digest();
        let effects = call(&mut p, T, |p, cx| p.on_pre_prepare(cx, pp.clone()));
        let sent = sends(&effects);
        let reflood: Vec<u32> = sent
            .iter()
            .filter(|(_, m)| matches!(m, PrimeMessage::PrePrepare(_)))
            .map(|(to, _)| to.0)
            .collect();
        assert_eq!(reflood, vec![2, 3], "re-flooded to everyone but the leader");
        assert_eq!(
            count(
                &sent,
                |m| matches!(m, PrimeMessage::Prepare(v) if v.body.0.digest == digest)
            ),
            3
        );
        // A re-flooded copy of the same pre-prepare changes nothing.
        assert!(sends(&call(&mut p, T, |p, cx| p.on_pre_prepare(cx, pp.clone()))).is_empty());
        // A prepare from the leader does not count; one from another non-leader completes 2f+k.
        let vote = Vote {
            view: 0,
            seq: 1,
            digest,
        };
        assert!(sends(&call(&mut p, T, |p, cx| p
            .on_prepare(cx, signed_by(0, Prepare(vote)))))
        .is_empty());
        let effects = call(&mut p, T, |p, cx| {
            p.on_prepare(cx, signed_by(2, Prepare(vote)))
        });
        assert_eq!(
            count(&sends(&effects), |m| matches!(m, PrimeMessage::Commit(_))),
            3
        );
        call(&mut p, T, |p, cx| {
            p.on_commit(cx, signed_by(0, Commit(vote)))
        });
        assert_eq!(p.executed_seq(), 0, "two commits are not 2f+k+1");
        let effects = call(&mut p, T, |p, cx| {
            p.on_commit(cx, signed_by(3, Commit(vote)))
        });
        assert_eq!(p.executed_seq(), 1);
        assert!(outputs(&effects).iter().any(|o| matches!(o, PrimeOutput::Executed { global_seq: 1, content, updates: 0, .. } if *content == pp.body.content_digest())));
        assert_eq!(p.app().timestamps, vec![5]);
    }

    #[test]
    fn step_10_prepares_go_out_in_slot_order() {
        let mut p = node(&PrimeConfig::new(1, 0), 2);
        let second = pre_prepare(2, 5, vec![None; 4]);
        let effects = call(&mut p, T, |p, cx| p.on_pre_prepare(cx, second));
        assert_eq!(
            count(&sends(&effects), |m| matches!(m, PrimeMessage::Prepare(_))),
            0,
            "slot 1 first"
        );
        let effects = call(&mut p, T, |p, cx| {
            p.on_pre_prepare(cx, pre_prepare(1, 4, vec![None; 4]))
        });
        let seqs: Vec<u64> = sends(&effects)
            .into_iter()
            .filter_map(|(to, m)| match m {
                PrimeMessage::Prepare(v) if to.0 == 0 => Some(v.body.0.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![1, 2]);
    }

    #[test]
    fn step_8_equivocating_leader_is_suspected_at_once() {
        let mut p = node(&PrimeConfig::new(1, 0), 3);
        call(&mut p, T, |p, cx| {
            p.on_pre_prepare(cx, pre_prepare(1, 5, vec![None; 4]))
        });
        let effects = call(&mut p, T, |p, cx| {
            p.on_pre_prepare(cx, pre_prepare(1, 6, vec![None; 4]))
        });
        let outs = outputs(&effects);
        assert!(outs.contains(&PrimeOutput::Misbehaviour {
            participant: ParticipantId(0),
            evidence: Misbehaviour::PrePrepareEquivocation { view: 0, seq: 1 }
        }));
        assert!(outs.contains(&PrimeOutput::LeaderSuspected { view: 0 }));
        assert_eq!(
            count(
                &sends(&effects),
                |m| matches!(m, PrimeMessage::NewLeader(v) if v.body.view == 1)
            ),
            3
        );
    }

    #[test]
    fn pre_prepares_from_a_non_leader_or_beyond_the_window_or_with_bad_summaries_are_dropped() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.order_window_max = 3;
        let mut p: Prime<LogApp> = node(&cfg, 1);
        let wrong_leader = signed_by(
            2,
            PrePrepare {
                view: 0,
                seq: 1,
                timestamp_ms: 0,
                matrix: vec![None; 4],
            },
        );
        call(&mut p, T, |p, cx| p.on_pre_prepare(cx, wrong_leader));
        call(&mut p, T, |p, cx| {
            p.on_pre_prepare(cx, pre_prepare(4, 0, vec![None; 4]))
        });
        let mut forged = summary(2, 1, vec![1, 1, 1, 1]);
        if let Some(s) = forged.as_mut() {
            s.body.counter = 2;
        }
        call(&mut p, T, |p, cx| {
            p.on_pre_prepare(cx, pre_prepare(1, 0, vec![None, None, forged, None]))
        });
        assert_eq!(
            (
                p.drops.malformed,
                p.drops.out_of_window,
                p.drops.bad_signature
            ),
            (1, 1, 1)
        );
        assert!(p.ord.slots.is_empty());
    }
}
