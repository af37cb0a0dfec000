//! Global ordering (PRIME.md steps 8-10): the leader proposes summary matrices in PRE-PREPAREs,
//! non-leaders re-flood them, and PREPARE/COMMIT agree on each slot's pre-prepare.

use std::collections::BTreeMap;

use stockade_core::Context;

use crate::app::Application;
use crate::auth::Signed;
use crate::config::ParticipantId;
use crate::execute::made_eligible;
use crate::messages::{Commit, Digest, PrePrepare, Prepare, PrimeMessage, Vote};
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
        if !self.is_leader() || !self.in_order_window(self.ord.last_proposed_seq + 1) {
            return;
        }
        let eligible = made_eligible(
            &self.pre.latest_summaries,
            &self.ord.last_proposed_eligible,
            self.cfg.quorums,
        );
        if eligible == self.ord.last_proposed_eligible {
            return;
        }
        let seq = self.ord.last_proposed_seq + 1;
        let body = PrePrepare {
            view: self.view,
            seq,
            timestamp_ms: cx.now().as_nanos() / 1_000_000,
            matrix: self.pre.latest_summaries.clone(),
        };
        let pre_prepare = self.sign(cx, body);
        self.ord.last_proposed_seq = seq;
        self.ord.last_proposed_eligible = eligible;
        self.broadcast(cx, &PrimeMessage::PrePrepare(pre_prepare.clone()));
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
        if body.view != self.view || pre_prepare.signer != self.leader_of(self.view) {
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
        if let Some(held) = self.ord.slots.get(&body.seq).and_then(|s| s.digest) {
            if held != digest && self.verify(cx, &pre_prepare) {
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
        // Step 8: re-flood so that a leader showing different servers different proposals is caught.
        self.broadcast_except(
            cx,
            &PrimeMessage::PrePrepare(pre_prepare.clone()),
            Some(pre_prepare.signer),
        );
        self.store_pre_prepare(cx, pre_prepare);
    }

    /// Keep a verified pre-prepare, then prepare in slot order and check certificates.
    fn store_pre_prepare(&mut self, cx: &mut Context<'_, Self>, pre_prepare: Signed<PrePrepare>) {
        let seq = pre_prepare.body.seq;
        self.ord.highest_seen_seq = self.ord.highest_seen_seq.max(seq);
        let slot = self.ord.slots.entry(seq).or_default();
        slot.digest = Some(pre_prepare.digest());
        slot.pre_prepare = Some(pre_prepare);
        self.prepare_in_order(cx);
        self.check_slot(cx, seq);
    }

    /// Step 10: non-leaders send PREPARE for consecutive slots whose pre-prepare they hold. Each
    /// answered slot may also answer turnaround challenges (suspect-leader).
    fn prepare_in_order(&mut self, cx: &mut Context<'_, Self>) {
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
            let prepare = self.sign(
                cx,
                Prepare(Vote {
                    view: self.view,
                    seq,
                    digest,
                }),
            );
            self.broadcast(cx, &PrimeMessage::Prepare(prepare.clone()));
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
        if !slot.commit_sent && slot.matching_prepares() >= quorums.prepares_from_non_leaders() {
            let commit = self.sign(
                cx,
                Commit(Vote {
                    view: self.view,
                    seq,
                    digest,
                }),
            );
            self.broadcast(cx, &PrimeMessage::Commit(commit.clone()));
            let slot = self.ord.slots.entry(seq).or_default();
            slot.commit_sent = true;
            slot.commits.insert(self.me, commit);
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
