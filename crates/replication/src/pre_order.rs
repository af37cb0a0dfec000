//! Pre-ordering (PRIME.md steps 1-7): each server disseminates its own clients' updates in
//! PO-REQUESTs, everyone acknowledges them, and cumulative PO-SUMMARY vectors record what is
//! pre-ordered. The leader later orders summaries, not requests (paper 004 section 3.2: each Prime
//! participant disseminates requests from its own clients).

use std::collections::{BTreeMap, VecDeque};

use stockade_core::wire::Wire;
use stockade_core::{Context, PersistToken};

use crate::app::Application;
use crate::auth::Signed;
use crate::config::ParticipantId;
use crate::execute::made_eligible;
use crate::messages::{
    AckPart, ClientId, Digest, PoAck, PoCertificate, PoRequest, PoSummary, PrimeMessage,
    SummaryMatrix, Update,
};
use crate::replica::{Misbehaviour, Prime, PrimeOutput, RejectReason};

/// One originator's slot: the first PO-REQUEST received for it and the acknowledgements seen.
#[derive(Default, Debug)]
pub(crate) struct PoSlot {
    /// The first validly signed PO-REQUEST for the slot (step 3).
    pub(crate) request: Option<Signed<PoRequest>>,
    /// Its digest.
    pub(crate) digest: Option<Digest>,
    /// The digest this server acknowledged for the slot (remembered across crashes).
    pub(crate) acked: Option<Digest>,
    /// The first ack each participant sent for the slot.
    pub(crate) acks: BTreeMap<ParticipantId, Signed<AckPart>>,
}

impl PoSlot {
    fn matching_acks(&self) -> usize {
        self.digest.map_or(0, |d| self.acks_for(&d))
    }
    fn acks_for(&self, digest: &Digest) -> usize {
        self.acks
            .values()
            .filter(|a| a.body.digest == *digest)
            .count()
    }
}

/// Pre-ordering state.
#[derive(Debug)]
pub(crate) struct PreOrderState {
    /// Client updates admitted here, waiting for a PO-REQUEST (bounded by `pending_updates_max`).
    pub(crate) pending: VecDeque<Update>,
    /// Per client, the highest (incarnation, seq) admitted here (bounded by `clients_max`).
    pub(crate) admitted: BTreeMap<ClientId, (u64, u64)>,
    /// This server's last PO-REQUEST slot.
    pub(crate) last_sent_po_seq: u64,
    /// PO slots of every originator inside the window.
    pub(crate) slots: BTreeMap<(ParticipantId, u64), PoSlot>,
    /// `cum_aru[i]`: originator i's PO-REQUESTs are pre-ordered here up to this slot (step 5).
    pub(crate) cum_aru: Vec<u64>,
    /// Ack parts for the next PO-ACK (bounded by `pending_ack_parts_max`).
    pub(crate) pending_acks: Vec<AckPart>,
    /// Counter of this server's last PO-SUMMARY.
    pub(crate) summary_counter: u64,
    /// `cum_aru` changed since the last PO-SUMMARY.
    pub(crate) summary_dirty: bool,
    /// The persist batch of our latest PO-SUMMARY. Every message that carries it (the summary
    /// itself, a summary matrix, its re-sending by repair) waits for this batch: a summary that
    /// left before it was durable would be contradicted by the restarted server's next one, with
    /// the same counter and another vector (a false `LowerSummary`).
    pub(crate) own_summary_durable: Option<PersistToken>,
    /// The latest signed summary held from each participant (steps 6-7).
    pub(crate) latest_summaries: Vec<Option<Signed<PoSummary>>>,
    /// The eligible vector of the last summary matrix sent to the leader (step 7).
    pub(crate) matrix_sent_eligible: Vec<u64>,
}

impl PreOrderState {
    pub(crate) fn new(n: usize) -> PreOrderState {
        PreOrderState {
            pending: VecDeque::new(),
            admitted: BTreeMap::new(),
            last_sent_po_seq: 0,
            slots: BTreeMap::new(),
            cum_aru: vec![0; n],
            pending_acks: Vec::new(),
            summary_counter: 0,
            summary_dirty: false,
            own_summary_durable: None,
            latest_summaries: vec![None; n],
            matrix_sent_eligible: vec![0; n],
        }
    }
}

impl<A: Application> Prime<A> {
    /// Step 1: admit a client update, de-duplicated per client by (incarnation, seq).
    pub(crate) fn admit_update(&mut self, cx: &mut Context<'_, Self>, update: Update) {
        let reject = |cx: &mut Context<'_, Self>, reason| {
            cx.deliver(PrimeOutput::Rejected {
                client: update.client,
                seq: update.seq,
                reason,
            })
        };
        let key = (update.incarnation, update.seq);
        if self.resend_cached_reply(cx, &update) {
            return;
        }
        let executed = self.exec.clients.get(&update.client);
        if executed.is_some_and(|r| key <= (r.incarnation, r.seq)) {
            // Executed already, and its reply is no longer cached: ordering it again would only
            // have execution skip it.
            return reject(cx, RejectReason::Duplicate);
        }
        if self.pre.admitted.len() >= self.cfg.clients_max {
            self.forget_executed_clients();
        }
        match self.pre.admitted.get(&update.client) {
            Some(last) if key <= *last => return reject(cx, RejectReason::Duplicate),
            None if self.pre.admitted.len() >= self.cfg.clients_max => {
                return reject(cx, RejectReason::TooManyClients)
            }
            _ => {}
        }
        if self.pre.pending.len() >= self.cfg.pending_updates_max {
            return reject(cx, RejectReason::Busy);
        }
        self.pre.admitted.insert(update.client, key);
        self.pre.pending.push_back(update);
        self.send_po_requests(cx);
    }

    /// Drop admission records of clients whose last admitted update has executed: execution
    /// de-duplicates them from then on.
    fn forget_executed_clients(&mut self) {
        let executed = &self.exec.clients;
        self.pre.admitted.retain(|client, admitted| {
            executed
                .get(client)
                .is_none_or(|r| (r.incarnation, r.seq) < *admitted)
        });
    }

    /// This server's PO-REQUESTs not yet executed.
    fn po_requests_in_flight(&self) -> u64 {
        self.pre
            .last_sent_po_seq
            .saturating_sub(self.exec.last_executed[self.me.index()])
    }

    /// Step 2: send the queued updates in PO-REQUESTs while fewer than `po_requests_in_flight_max`
    /// of ours are unexecuted; each batch is bounded in updates and bytes.
    pub(crate) fn send_po_requests(&mut self, cx: &mut Context<'_, Self>) {
        while !self.pre.pending.is_empty()
            && self.po_requests_in_flight() < self.cfg.po_requests_in_flight_max
        {
            let mut updates = Vec::new();
            let mut bytes = 0;
            while let Some(next) = self.pre.pending.front() {
                let len = next.wire_len();
                let full = updates.len() >= self.cfg.updates_per_po_request_max
                    || (!updates.is_empty() && bytes + len > self.cfg.po_request_bytes_max);
                if full {
                    break;
                }
                bytes += len;
                updates.extend(self.pre.pending.pop_front());
            }
            self.pre.last_sent_po_seq += 1;
            let request = self.sign(
                cx,
                PoRequest {
                    po_seq: self.pre.last_sent_po_seq,
                    updates,
                },
            );
            let durable = self.persist_own_request(cx, &request);
            self.broadcast_after(cx, durable, &PrimeMessage::PoRequest(request.clone()));
            self.accept_po_request(cx, request);
        }
    }

    /// A PO-REQUEST from the network, forwarded or not: check the signature, then store it.
    pub(crate) fn on_po_request(&mut self, cx: &mut Context<'_, Self>, request: Signed<PoRequest>) {
        if !self.in_po_window(request.signer, request.body.po_seq) {
            self.drops.out_of_window += 1;
            return;
        }
        if self.verify(cx, &request) {
            self.accept_po_request(cx, request);
        }
    }

    fn in_po_window(&self, originator: ParticipantId, po_seq: u64) -> bool {
        let executed = self.exec.last_executed.get(originator.index()).copied();
        executed.is_some_and(|e| po_seq > e && po_seq <= e + self.cfg.po_window_max)
    }

    /// Step 3: store the first PO-REQUEST per slot and acknowledge only that one; a second,
    /// different one signed by the originator is proof of equivocation. The held request is
    /// replaced only by one that carries a PO certificate while the held one has none, so that a
    /// server shown a minority version still executes the certified one.
    fn accept_po_request(&mut self, cx: &mut Context<'_, Self>, request: Signed<PoRequest>) {
        let originator = request.signer;
        let po_seq = request.body.po_seq;
        let digest = request.digest();
        let quorum = self.cfg.quorums.certificate();
        let slot = self.pre.slots.entry((originator, po_seq)).or_default();
        match slot.digest {
            Some(held) if held == digest => {
                // Known by digest only (our ack survived a crash): keep the request, do not re-ack.
                if slot.request.is_none() {
                    slot.request = Some(request);
                    self.advance_cum_aru(originator);
                    self.try_execute(cx);
                }
                return;
            }
            Some(held) => {
                let replace = slot.acks_for(&digest) >= quorum && slot.acks_for(&held) < quorum;
                if replace {
                    slot.digest = Some(digest);
                    slot.request = Some(request);
                }
                self.report_misbehaviour(
                    cx,
                    originator,
                    Misbehaviour::PoRequestEquivocation { po_seq },
                );
                if replace {
                    self.advance_cum_aru(originator);
                    self.try_execute(cx);
                }
                return;
            }
            None => {}
        }
        slot.digest = Some(digest);
        slot.request = Some(request);
        slot.acked = Some(digest);
        self.pre.pending_acks.push(AckPart {
            originator,
            po_seq,
            digest,
        });
        if self.pre.pending_acks.len() >= self.cfg.pending_ack_parts_max {
            self.flush_po_ack(cx);
        }
        self.advance_cum_aru(originator);
        // A request that was missing may unblock execution (reconciliation, catch-up).
        self.try_execute(cx);
    }

    /// Step 4: acknowledge everything received since the last PO-ACK, to everyone and to
    /// ourselves; one batch signature covers all parts.
    pub(crate) fn flush_po_ack(&mut self, cx: &mut Context<'_, Self>) {
        if self.pre.pending_acks.is_empty() {
            return;
        }
        let parts = std::mem::take(&mut self.pre.pending_acks);
        let records: Vec<_> = parts
            .iter()
            .map(|p| (p.originator, p.po_seq, p.digest))
            .collect();
        let durable = self.persist_acks(cx, &records);
        let parts = self.sign_many(cx, parts);
        let ack = PrimeMessage::PoAck(PoAck {
            parts: parts.clone(),
        });
        self.broadcast_after(cx, durable, &ack);
        for part in parts {
            self.record_ack(part);
        }
    }

    /// A PO-ACK from the network: each in-window part not yet held from its signer is verified
    /// and recorded, then step 5.
    pub(crate) fn on_po_ack(&mut self, cx: &mut Context<'_, Self>, ack: PoAck) {
        for part in ack.parts {
            let body = part.body;
            if !self.in_po_window(body.originator, body.po_seq) {
                self.drops.out_of_window += 1;
                continue;
            }
            let held = self.pre.slots.get(&(body.originator, body.po_seq));
            if held.is_some_and(|s| s.acks.contains_key(&part.signer)) {
                continue;
            }
            if self.verify(cx, &part) {
                self.record_ack(part);
            }
        }
    }

    /// Keep the first ack of each participant for a slot (a correct one never sends two).
    fn record_ack(&mut self, part: Signed<AckPart>) {
        let originator = part.body.originator;
        let slot = self
            .pre
            .slots
            .entry((originator, part.body.po_seq))
            .or_default();
        slot.acks.entry(part.signer).or_insert(part);
        self.advance_cum_aru(originator);
    }

    /// The PO certificate of a slot, if held: the request and its matching acks.
    pub(crate) fn po_certificate(&self, key: &(ParticipantId, u64)) -> Option<PoCertificate> {
        let slot = self.pre.slots.get(key)?;
        let digest = slot.digest?;
        let acks: Vec<Signed<AckPart>> = slot
            .acks
            .values()
            .filter(|a| a.body.digest == digest)
            .cloned()
            .collect();
        if acks.len() < self.cfg.quorums.certificate() {
            return None;
        }
        Some(PoCertificate {
            request: slot.request.clone()?,
            acks,
        })
    }

    /// A PO certificate from reconciliation or catch-up: a validly signed request and 2f+k+1
    /// distinct valid acks of its digest.
    pub(crate) fn on_po_certificate(
        &mut self,
        cx: &mut Context<'_, Self>,
        certificate: PoCertificate,
    ) {
        let request = certificate.request;
        let (originator, po_seq) = (request.signer, request.body.po_seq);
        if !self.in_po_window(originator, po_seq) {
            self.drops.out_of_window += 1;
            return;
        }
        if self.certified_request(originator, po_seq).is_some() || !self.verify(cx, &request) {
            return;
        }
        let digest = request.digest();
        let mut valid = Vec::new();
        for ack in certificate.acks {
            let body = ack.body;
            let fits =
                body.originator == originator && body.po_seq == po_seq && body.digest == digest;
            if fits
                && !valid
                    .iter()
                    .any(|v: &Signed<AckPart>| v.signer == ack.signer)
                && self.verify(cx, &ack)
            {
                valid.push(ack);
            }
        }
        if valid.len() < self.cfg.quorums.certificate() {
            self.drops.malformed += 1;
            return;
        }
        let slot = self.pre.slots.entry((originator, po_seq)).or_default();
        for ack in valid {
            // The certificate's acks replace none we hold: a signer's first ack stays.
            slot.acks.entry(ack.signer).or_insert(ack);
        }
        self.accept_po_request(cx, request);
        self.advance_cum_aru(originator);
        self.try_execute(cx);
    }

    /// The request of a slot, if it is held with a PO certificate (2f+k+1 matching acks): only such
    /// a request may execute (step 11).
    pub(crate) fn certified_request(
        &self,
        originator: ParticipantId,
        po_seq: u64,
    ) -> Option<&Signed<PoRequest>> {
        let slot = self.pre.slots.get(&(originator, po_seq))?;
        let digest = slot.digest?;
        (slot.acks_for(&digest) >= self.cfg.quorums.certificate()).then_some(slot.request.as_ref()?)
    }

    /// Step 5: a PO-REQUEST is pre-ordered once held with 2f+k+1 matching acks; `cum_aru` advances
    /// over consecutive pre-ordered slots.
    fn advance_cum_aru(&mut self, originator: ParticipantId) {
        let quorum = self.cfg.quorums.certificate();
        let i = originator.index();
        loop {
            let next = self.pre.cum_aru[i] + 1;
            let ready = self
                .pre
                .slots
                .get(&(originator, next))
                .is_some_and(|s| s.request.is_some() && s.matching_acks() >= quorum);
            if !ready {
                break;
            }
            self.pre.cum_aru[i] = next;
            self.pre.summary_dirty = true;
        }
    }

    /// Step 6: broadcast a signed PO-SUMMARY when `cum_aru` changed.
    pub(crate) fn send_po_summary_if_changed(&mut self, cx: &mut Context<'_, Self>) {
        if !self.pre.summary_dirty {
            return;
        }
        self.pre.summary_dirty = false;
        self.pre.summary_counter += 1;
        let body = PoSummary {
            counter: self.pre.summary_counter,
            cum_aru: self.pre.cum_aru.clone(),
        };
        let summary = self.sign(cx, body);
        let durable = self.persist_summary(cx, &summary);
        self.pre.own_summary_durable = Some(durable);
        self.broadcast_after(cx, durable, &PrimeMessage::PoSummary(summary.clone()));
        self.absorb_summary(cx, summary);
    }

    /// A PO-SUMMARY from the network.
    pub(crate) fn on_po_summary(&mut self, cx: &mut Context<'_, Self>, summary: Signed<PoSummary>) {
        if summary.body.cum_aru.len() != self.n() {
            self.drops.malformed += 1;
            return;
        }
        if self.verify(cx, &summary) {
            self.absorb_summary(cx, summary);
        }
    }

    /// Keep the latest summary per sender (step 6). A later summary (higher counter) with some entry
    /// lower than the earlier one proves misbehaviour; so do two different summaries with one counter.
    /// Returns whether the held summary changed. The summary must already be verified.
    pub(crate) fn absorb_summary(
        &mut self,
        cx: &mut Context<'_, Self>,
        summary: Signed<PoSummary>,
    ) -> bool {
        let sender = summary.signer;
        let Some(held) = self.pre.latest_summaries.get(sender.index()) else {
            return false;
        };
        if let Some(held) = held {
            let (earlier, later) = if summary.body.counter >= held.body.counter {
                (&held.body, &summary.body)
            } else {
                (&summary.body, &held.body)
            };
            let lower = later
                .cum_aru
                .iter()
                .zip(&earlier.cum_aru)
                .any(|(l, e)| l < e);
            let same_counter_differs =
                held.body.counter == summary.body.counter && held.body != summary.body;
            if lower || same_counter_differs {
                let evidence = Misbehaviour::LowerSummary {
                    earlier_counter: earlier.counter,
                    later_counter: later.counter,
                };
                self.report_misbehaviour(cx, sender, evidence);
                return false;
            }
            if summary.body.counter <= held.body.counter {
                return false;
            }
        }
        self.pre.latest_summaries[sender.index()] = Some(summary);
        true
    }

    /// Step 7: a non-leader sends the leader its latest summaries when some column's eligible value
    /// rose since its last matrix, and starts a turnaround challenge (suspect-leader).
    pub(crate) fn send_summary_matrix_if_risen(&mut self, cx: &mut Context<'_, Self>) {
        // While a view is installed the new leader cannot propose; it is timed on its REPLAY
        // instead (`start_replay_challenge`), and the first matrix after installation asks again.
        if self.is_leader() || self.vc.installing {
            return;
        }
        let eligible = made_eligible(
            &self.pre.latest_summaries,
            &self.pre.matrix_sent_eligible,
            self.cfg.quorums,
        );
        if eligible == self.pre.matrix_sent_eligible {
            return;
        }
        self.pre.matrix_sent_eligible = eligible.clone();
        if self.already_ordered(&eligible) {
            // A pre-prepare that arrived first already covers it: nothing to ask, nothing to time.
            return;
        }
        let matrix = SummaryMatrix {
            summaries: self.pre.latest_summaries.clone(),
        };
        let leader = self.leader_of(self.view);
        self.send_carrying_own_summary(cx, Some(leader), PrimeMessage::SummaryMatrix(matrix));
        match self.pre.own_summary_durable {
            Some(token) => self.start_turnaround_challenge_after(cx, token, eligible),
            None => self.start_turnaround_challenge(cx, eligible),
        }
    }

    /// The leader merges a non-leader's matrix into its latest summaries. Entries identical to the
    /// held ones are not verified again.
    pub(crate) fn on_summary_matrix(&mut self, cx: &mut Context<'_, Self>, matrix: SummaryMatrix) {
        if matrix.summaries.len() != self.n() {
            self.drops.malformed += 1;
            return;
        }
        self.absorb_summary_row(cx, matrix.summaries);
    }

    /// Absorb each summary of a row (a matrix or a pre-prepare's), checking that entry j is signed by
    /// participant j. Returns false if any entry is invalid.
    pub(crate) fn absorb_summary_row(
        &mut self,
        cx: &mut Context<'_, Self>,
        row: Vec<Option<Signed<PoSummary>>>,
    ) -> bool {
        let mut valid = true;
        for (j, entry) in row.into_iter().enumerate() {
            let Some(summary) = entry else { continue };
            if self.pre.latest_summaries[j].as_ref() == Some(&summary) {
                continue;
            }
            if summary.signer.index() != j || summary.body.cum_aru.len() != self.n() {
                self.drops.malformed += 1;
                valid = false;
                continue;
            }
            if !self.verify(cx, &summary) {
                valid = false;
                continue;
            }
            self.absorb_summary(cx, summary);
        }
        valid
    }

    /// Forget PO slots that execution passed long ago: they stay `po_window_max` slots behind the
    /// last executed one so that catch-up can serve them, and never below what the stable
    /// checkpoint had executed: a server JUMPed to that checkpoint needs every PO-REQUEST the
    /// later slots made eligible, and no later checkpoint may come while the system is idle.
    pub(crate) fn collect_po_garbage(&mut self) {
        let window = self.cfg.po_window_max;
        let stable_seq = self.checkpoints.stable.as_ref().map(|(seq, ..)| *seq);
        let kept = &mut self.exec.last_executed_at_checkpoints;
        if let Some(stable) = stable_seq {
            kept.retain(|seq, _| *seq >= stable);
        }
        let at_stable = stable_seq.and_then(|s| kept.get(&s));
        let floor: Vec<u64> = self
            .exec
            .last_executed
            .iter()
            .enumerate()
            .map(|(i, e)| at_stable.map_or(*e, |v| v.get(i).copied().unwrap_or(0).min(*e)))
            .collect();
        self.pre
            .slots
            .retain(|(originator, seq), _| seq + window > floor[originator.index()]);
    }
}

#[cfg(test)]
mod tests {
    use stockade_core::Time;

    use super::*;
    use crate::config::PrimeConfig;
    use crate::messages::PoSummary;
    use crate::test_support::{call, count, node, outputs, sends, signed_by, update};

    const T: Time = Time::from_millis(1);

    fn duplicate_of_client_5() -> PrimeOutput {
        PrimeOutput::Rejected {
            client: ClientId(5),
            seq: 1,
            reason: RejectReason::Duplicate,
        }
    }

    fn is_po_request(m: &PrimeMessage) -> bool {
        matches!(m, PrimeMessage::PoRequest(_))
    }

    #[test]
    fn step_1_2_admitted_update_is_broadcast_and_duplicates_rejected() {
        let mut p = node(&PrimeConfig::new(1, 0), 1);
        let effects = call(&mut p, T, |p, cx| p.admit_update(cx, update(5, 1)));
        let sent = sends(&effects);
        assert_eq!(
            count(&sent, is_po_request),
            3,
            "a PO-REQUEST to each of the 3 others"
        );
        assert!(sent.iter().all(|(to, _)| to.0 != 1), "never to itself");
        let effects = call(&mut p, T, |p, cx| p.admit_update(cx, update(5, 1)));
        assert!(sends(&effects).is_empty());
        assert_eq!(outputs(&effects), vec![duplicate_of_client_5()]);
    }

    #[test]
    fn step_2_in_flight_limit_batches_waiting_updates_and_bounds_the_queue() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.po_requests_in_flight_max = 1;
        cfg.pending_updates_max = 3;
        let mut p = node(&cfg, 2);
        let mut effects = Vec::new();
        for seq in 1..=5 {
            effects.extend(call(&mut p, T, |p, cx| p.admit_update(cx, update(1, seq))));
        }
        assert_eq!(
            count(&sends(&effects), is_po_request),
            3,
            "only one PO-REQUEST in flight"
        );
        assert_eq!(
            p.pre.pending.len(),
            3,
            "the queue reached pending_updates_max"
        );
        assert_eq!(
            outputs(&effects),
            vec![PrimeOutput::Rejected {
                client: ClientId(1),
                seq: 5,
                reason: RejectReason::Busy
            }]
        );
        // Once our first PO-REQUEST executes, the three waiting updates leave in one batch.
        p.exec.last_executed[2] = 1;
        let effects = call(&mut p, T, |p, cx| p.send_po_requests(cx));
        let batch = sends(&effects).into_iter().find_map(|(_, m)| match m {
            PrimeMessage::PoRequest(r) => Some(r.body),
            _ => None,
        });
        let batch = batch.expect("a second PO-REQUEST");
        assert_eq!((batch.po_seq, batch.updates.len()), (2, 3));
    }

    #[test]
    fn client_table_bound_rejects_new_clients() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.clients_max = 2;
        let mut p = node(&cfg, 0);
        let mut effects = Vec::new();
        for client in 1..=3 {
            effects.extend(call(&mut p, T, |p, cx| {
                p.admit_update(cx, update(client, 1))
            }));
        }
        assert_eq!(p.pre.admitted.len(), 2);
        assert_eq!(
            outputs(&effects),
            vec![PrimeOutput::Rejected {
                client: ClientId(3),
                seq: 1,
                reason: RejectReason::TooManyClients
            }]
        );
        // Once client 1's update executed, its admission record makes room for a new client.
        let record = crate::execute::ClientRecord {
            incarnation: 1,
            seq: 1,
            global_seq: 1,
        };
        p.exec.clients.insert(ClientId(1), record);
        let effects = call(&mut p, T, |p, cx| p.admit_update(cx, update(3, 1)));
        assert!(outputs(&effects).is_empty(), "client 3 admitted");
        assert!(
            p.pre.admitted.contains_key(&ClientId(3)) && !p.pre.admitted.contains_key(&ClientId(1))
        );
    }

    #[test]
    fn a_duplicate_of_an_executed_update_is_answered_from_the_reply_cache_while_it_holds_it() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.reply_cache_len_max = 1;
        let mut p = node(&cfg, 0);
        for (client, global_seq) in [(5, 3), (6, 4)] {
            p.exec.clients.insert(
                ClientId(client),
                crate::execute::ClientRecord {
                    incarnation: 1,
                    seq: 1,
                    global_seq,
                },
            );
        }
        let reply = |client| crate::messages::Reply {
            client: ClientId(client),
            incarnation: 1,
            seq: 1,
            global_seq: 3,
            result: b"ok".to_vec(),
        };
        p.exec.replies.insert(reply(5));
        let effects = call(&mut p, T, |p, cx| p.admit_update(cx, update(5, 1)));
        assert_eq!(outputs(&effects), vec![PrimeOutput::Reply(reply(5))]);
        assert!(p.pre.pending.is_empty(), "not ordered again");
        // Client 6's reply pushes client 5's out (reply_cache_len_max = 1): a duplicate then
        // gets the Duplicate rejection, and is still not ordered again.
        p.exec.replies.insert(crate::messages::Reply {
            global_seq: 4,
            ..reply(6)
        });
        let effects = call(&mut p, T, |p, cx| p.admit_update(cx, update(5, 1)));
        assert_eq!(outputs(&effects), vec![duplicate_of_client_5()]);
        assert!(p.pre.pending.is_empty() && sends(&effects).is_empty());
    }

    #[test]
    fn steps_3_to_6_request_is_pre_ordered_by_a_quorum_of_acks_then_summarised() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        let request = signed_by(
            1,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 1)],
            },
        );
        let digest = request.digest();
        call(&mut p, T, |p, cx| p.on_po_request(cx, request));
        let effects = call(&mut p, T, |p, cx| p.flush_po_ack(cx));
        let acks = sends(&effects);
        assert_eq!(
            count(
                &acks,
                |m| matches!(m, PrimeMessage::PoAck(a) if a.parts[0].body.digest == digest)
            ),
            3
        );
        let part = AckPart {
            originator: ParticipantId(1),
            po_seq: 1,
            digest,
        };
        call(&mut p, T, |p, cx| {
            p.on_po_ack(
                cx,
                PoAck {
                    parts: vec![signed_by(1, part)],
                },
            )
        });
        assert_eq!(
            p.pre.cum_aru,
            vec![0, 0, 0, 0],
            "two acks are not 2f+k+1 = 3"
        );
        call(&mut p, T, |p, cx| {
            p.on_po_ack(
                cx,
                PoAck {
                    parts: vec![signed_by(2, part)],
                },
            )
        });
        assert_eq!(
            p.pre.cum_aru,
            vec![0, 1, 0, 0],
            "pre-ordered with three matching acks"
        );
        let effects = call(&mut p, T, |p, cx| p.send_po_summary_if_changed(cx));
        let summaries: Vec<PoSummary> = sends(&effects)
            .into_iter()
            .filter_map(|(_, m)| match m {
                PrimeMessage::PoSummary(s) => Some(s.body),
                _ => None,
            })
            .collect();
        assert_eq!(
            summaries,
            vec![
                PoSummary {
                    counter: 1,
                    cum_aru: vec![0, 1, 0, 0]
                };
                3
            ]
        );
        let effects = call(&mut p, T, |p, cx| p.send_po_summary_if_changed(cx));
        assert!(
            sends(&effects).is_empty(),
            "no summary when nothing changed"
        );
    }

    #[test]
    fn step_3_equivocating_originator_is_caught_and_only_the_first_is_acked() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        let first = signed_by(
            1,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 1)],
            },
        );
        let second = signed_by(
            1,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 2)],
            },
        );
        call(&mut p, T, |p, cx| p.on_po_request(cx, first.clone()));
        let effects = call(&mut p, T, |p, cx| p.on_po_request(cx, second));
        assert_eq!(
            outputs(&effects),
            vec![PrimeOutput::Misbehaviour {
                participant: ParticipantId(1),
                evidence: Misbehaviour::PoRequestEquivocation { po_seq: 1 }
            }]
        );
        assert_eq!(p.pre.pending_acks.len(), 1);
        assert_eq!(p.pre.pending_acks[0].digest, first.digest());
    }

    #[test]
    fn a_server_shown_a_minority_version_executes_the_certified_one() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        let minority = signed_by(
            3,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 1)],
            },
        );
        let certified = signed_by(
            3,
            PoRequest {
                po_seq: 1,
                updates: vec![update(9, 2)],
            },
        );
        call(&mut p, T, |p, cx| p.on_po_request(cx, minority));
        assert!(p.certified_request(ParticipantId(3), 1).is_none());
        let part = AckPart {
            originator: ParticipantId(3),
            po_seq: 1,
            digest: certified.digest(),
        };
        let acks = vec![signed_by(1, part), signed_by(2, part)];
        let short = PoCertificate {
            request: certified.clone(),
            acks: acks.clone(),
        };
        call(&mut p, T, |p, cx| p.on_po_certificate(cx, short));
        assert!(
            p.certified_request(ParticipantId(3), 1).is_none(),
            "two acks are no certificate"
        );
        let mut acks = acks;
        acks.push(signed_by(3, part));
        let effects = call(&mut p, T, |p, cx| {
            p.on_po_certificate(
                cx,
                PoCertificate {
                    request: certified.clone(),
                    acks,
                },
            )
        });
        assert_eq!(p.certified_request(ParticipantId(3), 1), Some(&certified));
        assert!(outputs(&effects).contains(&PrimeOutput::Misbehaviour {
            participant: ParticipantId(3),
            evidence: Misbehaviour::PoRequestEquivocation { po_seq: 1 }
        }));
        assert_eq!(p.pre.cum_aru[3], 1, "pre-ordered through the certificate");
    }

    #[test]
    fn step_6_a_lower_summary_is_proof_of_misbehaviour() {
        let mut p = node(&PrimeConfig::new(1, 0), 0);
        let earlier = signed_by(
            3,
            PoSummary {
                counter: 2,
                cum_aru: vec![1, 1, 0, 0],
            },
        );
        let later = signed_by(
            3,
            PoSummary {
                counter: 3,
                cum_aru: vec![0, 1, 0, 0],
            },
        );
        call(&mut p, T, |p, cx| p.on_po_summary(cx, earlier.clone()));
        let effects = call(&mut p, T, |p, cx| p.on_po_summary(cx, later));
        assert_eq!(
            outputs(&effects),
            vec![PrimeOutput::Misbehaviour {
                participant: ParticipantId(3),
                evidence: Misbehaviour::LowerSummary {
                    earlier_counter: 2,
                    later_counter: 3
                }
            }]
        );
        assert_eq!(
            p.pre.latest_summaries[3],
            Some(earlier),
            "the earlier summary is kept"
        );
    }

    #[test]
    fn forged_and_out_of_window_requests_are_dropped() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.po_window_max = 4;
        let mut p = node(&cfg, 0);
        let mut forged = signed_by(
            1,
            PoRequest {
                po_seq: 1,
                updates: vec![],
            },
        );
        forged.signer = ParticipantId(2);
        call(&mut p, T, |p, cx| p.on_po_request(cx, forged));
        let far = signed_by(
            1,
            PoRequest {
                po_seq: 5,
                updates: vec![],
            },
        );
        call(&mut p, T, |p, cx| p.on_po_request(cx, far));
        let edge = signed_by(
            1,
            PoRequest {
                po_seq: 4,
                updates: vec![],
            },
        );
        call(&mut p, T, |p, cx| p.on_po_request(cx, edge));
        assert_eq!((p.drops.bad_signature, p.drops.out_of_window), (1, 1));
        assert_eq!(
            p.pre.pending_acks.len(),
            1,
            "only the request at the window's edge is acked"
        );
    }

    #[test]
    fn pending_ack_parts_bound_sends_the_po_ack_at_once() {
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.pending_ack_parts_max = 2;
        let mut p = node(&cfg, 0);
        call(&mut p, T, |p, cx| {
            p.on_po_request(
                cx,
                signed_by(
                    1,
                    PoRequest {
                        po_seq: 1,
                        updates: vec![],
                    },
                ),
            )
        });
        let effects = call(&mut p, T, |p, cx| {
            p.on_po_request(
                cx,
                signed_by(
                    2,
                    PoRequest {
                        po_seq: 1,
                        updates: vec![],
                    },
                ),
            )
        });
        let sent = sends(&effects);
        assert_eq!(
            count(
                &sent,
                |m| matches!(m, PrimeMessage::PoAck(a) if a.parts.len() == 2)
            ),
            3
        );
        assert!(p.pre.pending_acks.is_empty());
    }
}
