//! Suspect-leader (PRIME.md "Suspect-leader"): servers measure round-trip times to agree on an
//! acceptable turnaround time, measure the leader's actual turnaround, and replace a leader that is
//! slower than K_lat times the acceptable bound plus the pre-prepare period. This is what bounds the
//! delay a Byzantine leader can add (paper 004 section 5.1, Bounded-Delay).

use std::collections::{BTreeMap, VecDeque};

use stockade_core::{Context, PersistToken, Time};

use crate::app::Application;
use crate::auth::Signed;
use crate::config::ParticipantId;
use crate::execute::made_eligible;
use crate::messages::{
    NewLeader, NewLeaderProof, Ping, Pong, PrePrepare, PrimeMessage, RttMeasure, TatMeasure, TatUb,
};
use crate::replica::{Prime, PrimeOutput, PrimeTimer};

/// A turnaround challenge: the eligible vector of a summary matrix sent to the leader, and when
/// the matrix left this server.
#[derive(Clone, Debug)]
pub(crate) struct Challenge {
    eligible: Vec<u64>,
    clock: ChallengeClock,
}

/// When a challenge's stopwatch starts. PRIME.md step 7: *sending* a summary matrix starts the
/// challenge. A matrix carries this server's own PO-SUMMARY, so it leaves only once that summary
/// is durable (see [`crate::persist`]); until then the leader cannot act on it, and the wait for
/// this server's own disk is not counted as the leader's turnaround.
#[derive(Clone, Copy, Debug)]
enum ChallengeClock {
    /// The matrix left at this time.
    Started(Time),
    /// The matrix is held until persist batch `token` is durable.
    LeavesAfter(PersistToken),
}

impl Challenge {
    fn started(&self) -> Option<Time> {
        match self.clock {
            ChallengeClock::Started(at) => Some(at),
            ChallengeClock::LeavesAfter(_) => None,
        }
    }
}

/// Suspect-leader state.
#[derive(Debug)]
pub(crate) struct SuspectState {
    next_nonce: u64,
    /// Per peer, the outstanding ping's nonce and send time (one per peer: a new ping replaces it).
    outstanding_pings: Vec<Option<(u64, Time)>>,
    /// Per pinger, the RTTs it reported to us, newest last, in nanoseconds (at most
    /// `rtt_window_len` each).
    rtts_from: Vec<VecDeque<u64>>,
    /// Per participant, its latest TAT-UB alpha (ours included), in nanoseconds.
    alphas: Vec<Option<u64>>,
    /// Unanswered challenges, oldest first (bounded by `turnaround_challenges_max`).
    pub(crate) challenges: VecDeque<Challenge>,
    /// The eligible vector of the in-order pre-prepares seen so far (what the leader has proposed).
    ordered_eligible: Vec<u64>,
    /// While a view is installed: since when this server has known that a VC-PROOF for it exists,
    /// awaiting the new leader's REPLAY (the new leader's turnaround in the view change).
    pub(crate) replay_challenge: Option<Time>,
    /// Persist batches become durable in token order: every batch up to this one is durable.
    durable_through: Option<PersistToken>,
    /// The largest turnaround measured for the current view, in nanoseconds.
    pub(crate) max_tat_ns: u64,
    /// The value of our last TAT-MEASURE.
    tat_reported_ns: Option<u64>,
    /// Per participant, the largest turnaround it reported for the current view.
    tat_reports: Vec<Option<u64>>,
    /// NEW-LEADER votes for the view after the current one.
    pub(crate) new_leader_votes: BTreeMap<ParticipantId, Signed<NewLeader>>,
    /// Our own NEW-LEADER, while we ask for a new view.
    pub(crate) my_new_leader: Option<Signed<NewLeader>>,
    /// The view whose NEW-LEADER proof is complete, awaiting the view change.
    pub(crate) proven_view: Option<u64>,
}

impl SuspectState {
    pub(crate) fn new(n: usize) -> SuspectState {
        SuspectState {
            next_nonce: 0,
            outstanding_pings: vec![None; n],
            rtts_from: vec![VecDeque::new(); n],
            alphas: vec![None; n],
            challenges: VecDeque::new(),
            replay_challenge: None,
            durable_through: None,
            ordered_eligible: vec![0; n],
            max_tat_ns: 0,
            tat_reported_ns: None,
            tat_reports: vec![None; n],
            new_leader_votes: BTreeMap::new(),
            my_new_leader: None,
            proven_view: None,
        }
    }
}

/// The `rank`-th largest of the present values (rank from 1).
fn rank_largest(values: &[Option<u64>], rank: usize) -> Option<u64> {
    let mut present: Vec<u64> = values.iter().flatten().copied().collect();
    present.sort_unstable_by(|a, b| b.cmp(a));
    present.get(rank.checked_sub(1)?).copied()
}

impl<A: Application> Prime<A> {
    /// Every ping period: ping everyone, then broadcast our alpha (TAT-UB) and our turnaround
    /// maximum (TAT-MEASURE).
    pub(crate) fn on_ping_period(&mut self, cx: &mut Context<'_, Self>) {
        let peers: Vec<ParticipantId> = self
            .membership
            .participants()
            .filter(|p| *p != self.me)
            .collect();
        let mut pings = Vec::new();
        for peer in &peers {
            self.suspect.next_nonce += 1;
            let nonce = self.suspect.next_nonce;
            self.suspect.outstanding_pings[peer.index()] = Some((nonce, cx.now()));
            pings.push(Ping { nonce });
        }
        // One batch signature covers the round of pings.
        for (peer, ping) in peers.into_iter().zip(self.sign_many(cx, pings)) {
            self.send_to(cx, peer, PrimeMessage::Ping(ping));
        }
        if let Some(alpha_ns) = self.own_alpha() {
            self.suspect.alphas[self.me.index()] = Some(alpha_ns);
            let tat_ub = self.sign(cx, TatUb { alpha_ns });
            self.broadcast(cx, &PrimeMessage::TatUb(tat_ub));
        }
        self.send_tat_measure(cx);
    }

    /// Answer a ping once a persist batch issued now is durable. A pre-prepare leaves the leader
    /// only after its vote is durable (see [`crate::persist`]), so a correct leader's turnaround
    /// includes one wait for its disk, behind whatever its storage queue already holds. The pong
    /// takes the same path, so the round trips that set TAT_acceptable include that processing
    /// delay as well: paper 004 section 5.1 states the bound as a function of round-trip times
    /// "including processing delays" between correct servers. Without it a correct leader whose
    /// disk is slower than the network (fsync of a few ms against a loopback round trip of well
    /// under one) is held to a bound its own durable step alone can exceed.
    pub(crate) fn on_ping(&mut self, cx: &mut Context<'_, Self>, ping: Signed<Ping>) {
        if self.verify(cx, &ping) {
            let pong = self.sign(
                cx,
                Pong {
                    nonce: ping.body.nonce,
                },
            );
            let durable = cx.persist(Vec::new());
            if let Some(node) = self.membership.node(ping.signer) {
                cx.send_after(durable, node, PrimeMessage::Pong(pong));
            }
        }
    }

    /// The pinger measures the RTT and tells the pinged server.
    pub(crate) fn on_pong(&mut self, cx: &mut Context<'_, Self>, pong: Signed<Pong>) {
        let Some(Some((nonce, sent))) = self
            .suspect
            .outstanding_pings
            .get(pong.signer.index())
            .copied()
        else {
            return;
        };
        if nonce != pong.body.nonce || !self.verify(cx, &pong) {
            return;
        }
        self.suspect.outstanding_pings[pong.signer.index()] = None;
        let rtt_ns = cx.now().as_nanos().saturating_sub(sent.as_nanos());
        let measure = self.sign(cx, RttMeasure { rtt_ns });
        self.send_to(cx, pong.signer, PrimeMessage::RttMeasure(measure));
    }

    /// Keep, per pinger, the latest `rtt_window_len` RTTs it measured to us.
    pub(crate) fn on_rtt_measure(
        &mut self,
        cx: &mut Context<'_, Self>,
        measure: Signed<RttMeasure>,
    ) {
        if self.verify(cx, &measure) {
            let window = &mut self.suspect.rtts_from[measure.signer.index()];
            if window.len() >= self.cfg.rtt_window_len {
                window.pop_front();
            }
            window.push_back(measure.body.rtt_ns);
        }
    }

    /// Per pinger, the smallest RTT among its latest `rtt_window_len` (PRIME.md "Suspect-leader":
    /// the smallest RTT per pinger). The window makes it the smallest *recent* RTT: paper 004's
    /// Assumption 5.1 bounds delays by K times a minimum latency that holds from some time on, and
    /// a minimum measured while the servers were idle says nothing about the disk and CPU they
    /// share under load. A Byzantine pinger's reports are skipped by the rank in
    /// [`Prime::own_alpha`] as before.
    fn smallest_recent_rtts(&self) -> Vec<Option<u64>> {
        self.suspect
            .rtts_from
            .iter()
            .map(|window| window.iter().min().copied())
            .collect()
    }

    /// Our alpha: the (f+k+1)-th largest of the per-pinger smallest recent RTTs reported to us.
    fn own_alpha(&self) -> Option<u64> {
        rank_largest(
            &self.smallest_recent_rtts(),
            self.cfg.quorums.suspect_rank(),
        )
    }

    pub(crate) fn on_tat_ub(&mut self, cx: &mut Context<'_, Self>, tat_ub: Signed<TatUb>) {
        if self.verify(cx, &tat_ub) {
            self.suspect.alphas[tat_ub.signer.index()] = Some(tat_ub.body.alpha_ns);
        }
    }

    /// TAT_acceptable: the (f+k+1)-th largest alpha, at least `tat_acceptable_min`.
    pub(crate) fn tat_acceptable_ns(&self) -> Option<u64> {
        let floor = self.cfg.tat_acceptable_min.as_nanos() as u64;
        rank_largest(&self.suspect.alphas, self.cfg.quorums.suspect_rank()).map(|a| a.max(floor))
    }

    /// Start a turnaround challenge for a summary matrix just sent (PRIME.md step 7).
    pub(crate) fn start_turnaround_challenge(
        &mut self,
        cx: &mut Context<'_, Self>,
        eligible: Vec<u64>,
    ) {
        self.push_challenge(eligible, ChallengeClock::Started(cx.now()));
    }

    /// Start a turnaround challenge for a summary matrix that leaves once persist batch `token`
    /// is durable (it carries our own PO-SUMMARY): its stopwatch starts when the matrix leaves.
    pub(crate) fn start_turnaround_challenge_after(
        &mut self,
        cx: &mut Context<'_, Self>,
        token: PersistToken,
        eligible: Vec<u64>,
    ) {
        if self.suspect.durable_through.is_some_and(|d| d >= token) {
            self.start_turnaround_challenge(cx, eligible);
        } else {
            self.push_challenge(eligible, ChallengeClock::LeavesAfter(token));
        }
    }

    fn push_challenge(&mut self, eligible: Vec<u64>, clock: ChallengeClock) {
        // The oldest unanswered challenge already measures at least as long a delay as a new one.
        if self.suspect.challenges.len() < self.cfg.turnaround_challenges_max {
            self.suspect
                .challenges
                .push_back(Challenge { eligible, clock });
        }
    }

    /// Persist batch `token` (and every earlier one: batches become durable in token order) is
    /// durable: the matrices held behind it have left, so their stopwatches start now.
    pub(crate) fn suspect_on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        self.suspect.durable_through = self.suspect.durable_through.max(Some(token));
        let now = cx.now();
        for challenge in &mut self.suspect.challenges {
            if let ChallengeClock::LeavesAfter(after) = challenge.clock {
                if after <= token {
                    challenge.clock = ChallengeClock::Started(now);
                }
            }
        }
    }

    /// When the oldest running challenge started (the view change's included).
    pub(crate) fn suspect_oldest_challenge(&self) -> Option<Time> {
        let oldest_matrix = self
            .suspect
            .challenges
            .iter()
            .filter_map(Challenge::started)
            .min();
        match (oldest_matrix, self.suspect.replay_challenge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// View change step 3 (PRIME.md "View change"): this server holds 2f+k+1 shares for one
    /// agreement, so the VC-PROOF exists and the new leader owes its REPLAY (step 4). From here the
    /// new leader is timed on the view change. The steps before (reliable broadcast of reports,
    /// VC-LIST, the shares) are bounded traffic that the leader alone does not control, and paper
    /// 004 section 5.1 bounds only timely traffic; PRIME.md's timely class holds the view-change
    /// proof and the REPLAY. Timing the whole view change instead replaced correct new leaders
    /// whenever a loaded machine took longer than the turnaround bound to run it, one after another.
    pub(crate) fn start_replay_challenge(&mut self, cx: &mut Context<'_, Self>) {
        if !self.is_leader() && self.suspect.replay_challenge.is_none() {
            self.suspect.replay_challenge = Some(cx.now());
        }
    }

    /// The REPLAY arrived: the new leader's view-change turnaround is measured.
    pub(crate) fn answer_replay_challenge(&mut self, cx: &mut Context<'_, Self>) {
        if let Some(started) = self.suspect.replay_challenge.take() {
            let turnaround = cx.now().as_nanos().saturating_sub(started.as_nanos());
            self.suspect.max_tat_ns = self.suspect.max_tat_ns.max(turnaround);
        }
    }

    /// Whether the in-order pre-prepares seen so far already make `eligible` eligible.
    pub(crate) fn already_ordered(&self, eligible: &[u64]) -> bool {
        eligible
            .iter()
            .zip(&self.suspect.ordered_eligible)
            .all(|(want, got)| got >= want)
    }

    /// An in-order pre-prepare answers every challenge its matrix dominates.
    pub(crate) fn answer_turnaround_challenges(
        &mut self,
        cx: &mut Context<'_, Self>,
        pre_prepare: &PrePrepare,
    ) {
        let ordered = made_eligible(
            &pre_prepare.matrix,
            &self.suspect.ordered_eligible,
            self.cfg.quorums,
        );
        let now = cx.now();
        let mut max_tat = self.suspect.max_tat_ns;
        self.suspect.challenges.retain(|c| {
            let answered = c
                .eligible
                .iter()
                .zip(&ordered)
                .all(|(want, got)| got >= want);
            // A challenge whose matrix has not left yet was answered before it was asked.
            if let (true, Some(started)) = (answered, c.started()) {
                let tat = now.as_nanos().saturating_sub(started.as_nanos());
                max_tat = max_tat.max(tat);
            }
            !answered
        });
        self.suspect.ordered_eligible = ordered;
        self.suspect.max_tat_ns = max_tat;
    }

    /// Every re-measure period: an unanswered challenge counts as a turnaround of its age so far.
    pub(crate) fn recheck_turnarounds(&mut self, cx: &mut Context<'_, Self>) {
        let now = cx.now().as_nanos();
        if let Some(oldest) = self.suspect_oldest_challenge() {
            let age = now.saturating_sub(oldest.as_nanos());
            self.suspect.max_tat_ns = self.suspect.max_tat_ns.max(age);
        }
        if self.suspect.tat_reported_ns != Some(self.suspect.max_tat_ns) {
            self.send_tat_measure(cx);
        }
    }

    fn send_tat_measure(&mut self, cx: &mut Context<'_, Self>) {
        let max_tat_ns = self.suspect.max_tat_ns;
        self.suspect.tat_reported_ns = Some(max_tat_ns);
        let measure = self.sign(
            cx,
            TatMeasure {
                view: self.view,
                max_tat_ns,
            },
        );
        self.broadcast(cx, &PrimeMessage::TatMeasure(measure));
        self.record_tat_report(cx, self.me, max_tat_ns);
    }

    pub(crate) fn on_tat_measure(
        &mut self,
        cx: &mut Context<'_, Self>,
        measure: Signed<TatMeasure>,
    ) {
        if measure.body.view < self.view {
            // Periodic, so a server that missed a view change is noticed here at the latest.
            self.note_laggard(cx, self.view, measure.signer);
        }
        if measure.body.view == self.view && self.verify(cx, &measure) {
            self.record_tat_report(cx, measure.signer, measure.body.max_tat_ns);
        }
    }

    /// Reported maxima only grow within a view; each report may trigger suspicion.
    fn record_tat_report(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: ParticipantId,
        max_tat_ns: u64,
    ) {
        let slot = &mut self.suspect.tat_reports[from.index()];
        *slot = Some(slot.map_or(max_tat_ns, |m| m.max(max_tat_ns)));
        if self.leader_too_slow() {
            self.suspect_leader(cx);
        }
    }

    /// TAT_leader: the (f+k+1)-th smallest reported maximum, missing reports counting as zero, so
    /// that f+k low or missing reports are ignored and f high ones cannot raise it alone.
    pub(crate) fn tat_leader_ns(&self) -> u64 {
        let mut reports: Vec<u64> = self
            .suspect
            .tat_reports
            .iter()
            .map(|r| r.unwrap_or(0))
            .collect();
        reports.sort_unstable();
        reports
            .get(self.cfg.quorums.suspect_rank() - 1)
            .copied()
            .unwrap_or(0)
    }

    /// Suspect when TAT_leader > K_lat * TAT_acceptable + the pre-prepare period.
    fn leader_too_slow(&self) -> bool {
        if let Some(timeout) = self.cfg.leader_timeout_only {
            return self.tat_leader_ns() > timeout.as_nanos() as u64;
        }
        let Some(acceptable) = self.tat_acceptable_ns() else {
            return false;
        };
        let (num, den) = self.cfg.k_lat;
        let bound = acceptable.saturating_mul(num as u64) / (den.max(1) as u64)
            + self.cfg.pre_prepare_period.as_nanos() as u64;
        self.tat_leader_ns() > bound
    }

    /// Ask for the next view: a signed NEW-LEADER, re-sent every `new_leader_resend_period`.
    pub(crate) fn suspect_leader(&mut self, cx: &mut Context<'_, Self>) {
        let view = self.view + 1;
        if self
            .suspect
            .my_new_leader
            .as_ref()
            .is_some_and(|m| m.body.view == view)
        {
            return;
        }
        let vote = self.sign(cx, NewLeader { view });
        self.suspect.my_new_leader = Some(vote.clone());
        self.broadcast(cx, &PrimeMessage::NewLeader(vote.clone()));
        cx.deliver(PrimeOutput::LeaderSuspected { view: self.view });
        cx.set_timer(
            PrimeTimer::NewLeaderResend,
            self.cfg.new_leader_resend_period,
        );
        self.count_new_leader_vote(cx, vote);
    }

    pub(crate) fn resend_new_leader(&mut self, cx: &mut Context<'_, Self>) {
        let Some(vote) = self.suspect.my_new_leader.clone() else {
            return;
        };
        if vote.body.view == self.view + 1 {
            self.broadcast(cx, &PrimeMessage::NewLeader(vote));
            cx.set_timer(
                PrimeTimer::NewLeaderResend,
                self.cfg.new_leader_resend_period,
            );
        }
    }

    pub(crate) fn on_new_leader(&mut self, cx: &mut Context<'_, Self>, vote: Signed<NewLeader>) {
        if vote.body.view <= self.view {
            // Its sender asks for a view already reached: it missed the change.
            self.note_laggard(cx, self.view, vote.signer);
        }
        if vote.body.view != self.view + 1
            || self.suspect.new_leader_votes.contains_key(&vote.signer)
        {
            return;
        }
        if self.verify(cx, &vote) {
            self.count_new_leader_vote(cx, vote);
        }
    }

    /// 2f+k+1 NEW-LEADER votes form a proof, broadcast so that everyone starts the view change.
    fn count_new_leader_vote(&mut self, cx: &mut Context<'_, Self>, vote: Signed<NewLeader>) {
        let view = vote.body.view;
        self.suspect.new_leader_votes.insert(vote.signer, vote);
        if self.suspect.new_leader_votes.len() >= self.cfg.quorums.certificate()
            && self.suspect.proven_view != Some(view)
        {
            let votes = self.suspect.new_leader_votes.values().cloned().collect();
            let proof = NewLeaderProof { view, votes };
            self.broadcast(cx, &PrimeMessage::NewLeaderProof(proof.clone()));
            self.on_new_leader_proven(cx, proof);
        }
    }

    /// A NEW-LEADER proof from another server: 2f+k+1 distinct valid votes for a later view.
    pub(crate) fn on_new_leader_proof(
        &mut self,
        cx: &mut Context<'_, Self>,
        proof: NewLeaderProof,
    ) {
        // A proof for any later view is accepted: a server that missed one or more view changes
        // (restarted, partitioned) joins the latest one it is shown.
        if proof.view <= self.view || self.suspect.proven_view == Some(proof.view) {
            return;
        }
        let mut voters = Vec::new();
        for vote in &proof.votes {
            if vote.body.view != proof.view
                || voters.contains(&vote.signer)
                || !self.verify(cx, vote)
            {
                self.drops.malformed += 1;
                return;
            }
            voters.push(vote.signer);
        }
        if voters.len() >= self.cfg.quorums.certificate() {
            self.on_new_leader_proven(cx, proof);
        }
    }

    fn on_new_leader_proven(&mut self, cx: &mut Context<'_, Self>, proof: NewLeaderProof) {
        self.suspect.proven_view = Some(proof.view);
        cx.deliver(PrimeOutput::NewLeaderProven { view: proof.view });
        self.start_view_change(cx, proof);
    }

    /// Measurements of the old leader do not carry over. The new leader is timed on the view change
    /// from the VC-PROOF to its REPLAY ([`Prime::start_replay_challenge`]), then on summary
    /// matrices once the view is installed.
    pub(crate) fn reset_suspect_for_new_view(&mut self, cx: &mut Context<'_, Self>) {
        let n = self.n();
        self.suspect.challenges.clear();
        self.suspect.replay_challenge = None;
        self.suspect.max_tat_ns = 0;
        self.suspect.tat_reported_ns = None;
        self.suspect.tat_reports = vec![None; n];
        self.suspect.new_leader_votes.clear();
        self.suspect.my_new_leader = None;
        self.cancel_new_leader_resend(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::rank_largest;

    #[test]
    fn rank_largest_counts_present_values() {
        let v = [Some(5), None, Some(9), Some(1)];
        assert_eq!(rank_largest(&v, 1), Some(9));
        assert_eq!(rank_largest(&v, 2), Some(5));
        assert_eq!(rank_largest(&v, 3), Some(1));
        assert_eq!(rank_largest(&v, 4), None);
        assert_eq!(rank_largest(&v, 0), None);
    }
}

#[cfg(test)]
mod bound_tests {
    use std::time::Duration;

    use stockade_core::Time;

    use crate::config::PrimeConfig;
    use crate::test_support::{call, node};

    #[test]
    fn turnaround_challenges_are_bounded_and_the_oldest_is_measured() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.turnaround_challenges_max = 3;
        let mut p = node(&cfg, 1);
        for i in 0..5u64 {
            let at = Time::from_millis(10 + i);
            call(&mut p, at, |p, cx| {
                p.start_turnaround_challenge(cx, vec![i + 1, 0, 0, 0])
            });
        }
        assert_eq!(
            p.suspect.challenges.len(),
            3,
            "turnaround_challenges_max reached"
        );
        call(&mut p, Time::from_millis(60), |p, cx| {
            p.recheck_turnarounds(cx)
        });
        assert_eq!(
            p.suspect.max_tat_ns,
            Duration::from_millis(50).as_nanos() as u64
        );
    }
}

/// Exact-effect tests of the three measurement rules: the stopwatch of a matrix held behind its
/// summary starts when the matrix leaves, the pong leaves only after a durable step, alpha is the
/// smallest of the recent RTTs only, and a view change is timed from the VC-PROOF to the REPLAY.
#[cfg(test)]
mod measurement_tests {
    use stockade_core::{Effect, NodeId, PersistToken, Protocol, Time};

    use crate::config::PrimeConfig;
    use crate::messages::{Ping, PrimeMessage, RttMeasure};
    use crate::test_support::{call, node, signed_by};

    const MS: u64 = 1_000_000;

    #[test]
    fn a_matrix_held_behind_its_summary_is_timed_from_when_it_leaves() {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        call(&mut p, Time::from_millis(10), |p, cx| {
            p.start_turnaround_challenge_after(cx, PersistToken(5), vec![1, 0, 0, 0])
        });
        call(&mut p, Time::from_millis(30), |p, cx| {
            p.recheck_turnarounds(cx)
        });
        assert_eq!(p.suspect.max_tat_ns, 0, "not sent yet: nothing to time");
        assert_eq!(p.suspect_oldest_challenge(), None);
        call(&mut p, Time::from_millis(40), |p, cx| {
            p.on_persisted(cx, PersistToken(5))
        });
        call(&mut p, Time::from_millis(60), |p, cx| {
            p.recheck_turnarounds(cx)
        });
        assert_eq!(p.suspect.max_tat_ns, 20 * MS, "timed from 40 ms, not 10 ms");
        // A batch already durable: the matrix leaves at once and is timed from now.
        call(&mut p, Time::from_millis(70), |p, cx| {
            p.start_turnaround_challenge_after(cx, PersistToken(4), vec![2, 0, 0, 0])
        });
        assert_eq!(p.suspect.challenges.len(), 2);
        assert_eq!(
            p.suspect.challenges[1].started(),
            Some(Time::from_millis(70))
        );
    }

    #[test]
    fn the_pong_leaves_after_a_durable_step() {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        let ping = signed_by(2, Ping { nonce: 9 });
        let effects = call(&mut p, Time::from_millis(10), |p, cx| p.on_ping(cx, ping));
        let token = effects.iter().find_map(|e| match e {
            Effect::Persist { token, .. } => Some(*token),
            _ => None,
        });
        let pong_after = effects.iter().find_map(|e| match e {
            Effect::Send {
                to: NodeId(2),
                message: PrimeMessage::Pong(_),
                after,
            } => Some(*after),
            _ => None,
        });
        assert!(token.is_some(), "a persist batch is issued");
        assert_eq!(pong_after, Some(token), "the pong waits for it");
    }

    #[test]
    fn alpha_uses_the_smallest_of_the_recent_rtts_only() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.rtt_window_len = 3;
        let mut p = node(&cfg, 0);
        let report = |p: &mut crate::replica::Prime<_>, from: u16, rtt_ms: u64| {
            let measure = signed_by(
                from,
                RttMeasure {
                    rtt_ns: rtt_ms * MS,
                },
            );
            call(p, Time::from_millis(1), |p, cx| {
                p.on_rtt_measure(cx, measure)
            });
        };
        for from in 1..4 {
            report(&mut p, from, 1);
        }
        // Rank f+k+1 = 2: the second largest of the per-pinger minima.
        assert_eq!(p.own_alpha(), Some(MS));
        for rtt_ms in [6, 5, 7] {
            for from in 1..4 {
                report(&mut p, from, rtt_ms + u64::from(from));
            }
        }
        assert_eq!(p.suspect.rtts_from[1].len(), 3, "rtt_window_len reached");
        // The 1 ms round trips left the window: minima 6, 7, 8 ms; the second largest is 7 ms.
        assert_eq!(p.own_alpha(), Some(7 * MS));
    }

    #[test]
    fn the_new_leader_is_timed_from_the_vc_proof_to_its_replay() {
        let mut p = node(&PrimeConfig::new(1, 0), 2);
        call(&mut p, Time::from_millis(100), |p, cx| {
            p.reset_suspect_for_new_view(cx)
        });
        assert_eq!(
            p.suspect_oldest_challenge(),
            None,
            "the view change's bounded steps are not timed"
        );
        call(&mut p, Time::from_millis(150), |p, cx| {
            p.start_replay_challenge(cx)
        });
        call(&mut p, Time::from_millis(170), |p, cx| {
            p.recheck_turnarounds(cx)
        });
        assert_eq!(p.suspect.max_tat_ns, 20 * MS, "an unanswered REPLAY counts");
        call(&mut p, Time::from_millis(175), |p, cx| {
            p.answer_replay_challenge(cx)
        });
        assert_eq!(p.suspect.max_tat_ns, 25 * MS);
        assert_eq!(p.suspect.replay_challenge, None);
    }
}
