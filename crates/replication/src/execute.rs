//! Execution (PRIME.md steps 9 and 11): which PO-REQUESTs a committed slot makes eligible, the
//! deterministic order in which their updates run, client de-duplication, and replies.

use std::collections::BTreeMap;

use stockade_core::{Context, CostKind, CpuWork, InvariantViolation};

use crate::app::{Application, ExecutedUpdate};
use crate::auth::Signed;
use crate::config::{ParticipantId, PrimeConfig, Quorums};
use crate::messages::{ClientId, PoSummary, PrimeMessage, Reply};
use crate::replica::{Prime, PrimeOutput};
use crate::reply_cache::ReplyCache;

/// Step 9 for one column: the (2f+k+1)-th highest value among the summaries present, or 0 when
/// fewer are present. At least f+k+1 of those summaries come from correct servers, so a correct
/// server has pre-ordered (and holds a PO certificate for) every slot up to the value.
pub fn column_eligible(row: &[Option<Signed<PoSummary>>], column: usize, quorums: Quorums) -> u64 {
    let mut values: Vec<u64> = row
        .iter()
        .flatten()
        .filter_map(|s| s.body.cum_aru.get(column).copied())
        .collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.get(quorums.certificate() - 1).copied().unwrap_or(0)
}

/// Step 9: `made_eligible[i] = max(column_eligible(i), last_executed[i])`, so eligibility never
/// goes backwards from one slot to the next.
pub fn made_eligible(
    row: &[Option<Signed<PoSummary>>],
    last_executed: &[u64],
    quorums: Quorums,
) -> Vec<u64> {
    last_executed
        .iter()
        .enumerate()
        .map(|(i, last)| column_eligible(row, i, quorums).max(*last))
        .collect()
}

/// What a client last had executed: updates at or below it are duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientRecord {
    pub(crate) incarnation: u64,
    pub(crate) seq: u64,
    pub(crate) global_seq: u64,
}

/// Execution state: identical on every correct server after the same slot.
#[derive(Debug)]
pub(crate) struct ExecState {
    /// The last executed global slot.
    pub(crate) executed_seq: u64,
    /// `made_eligible` of that slot: per originator, the last executed PO-REQUEST.
    pub(crate) last_executed: Vec<u64>,
    /// The agreed timestamp of that slot.
    pub(crate) timestamp_ms: u64,
    /// Per client, its last executed update (bounded by `clients_max`; evicts the least recent).
    pub(crate) clients: BTreeMap<ClientId, ClientRecord>,
    /// PO-REQUESTs the next slot needs and this server lacks.
    pub(crate) missing: Vec<(ParticipantId, u64)>,
    /// Per client, the reply to its last executed update (local, not part of the agreed state).
    pub(crate) replies: ReplyCache,
    /// `last_executed` at each checkpoint slot not older than the stable checkpoint (at most
    /// [`CHECKPOINT_VECTORS_MAX`]): PO-REQUESTs made eligible after the stable checkpoint are kept,
    /// since a server JUMPed to that checkpoint still needs them.
    pub(crate) last_executed_at_checkpoints: BTreeMap<u64, Vec<u64>>,
}

/// Checkpoint slots whose `last_executed` vectors are kept for PO garbage collection.
pub(crate) const CHECKPOINT_VECTORS_MAX: usize = 8;

impl ExecState {
    pub(crate) fn new(n: usize, cfg: &PrimeConfig) -> ExecState {
        ExecState {
            executed_seq: 0,
            last_executed: vec![0; n],
            timestamp_ms: 0,
            clients: BTreeMap::new(),
            missing: Vec::new(),
            replies: ReplyCache::new(cfg.reply_cache_len_max, cfg.reply_cache_bytes_max),
            last_executed_at_checkpoints: BTreeMap::new(),
        }
    }
}

impl<A: Application> Prime<A> {
    /// Step 11: execute committed slots in order while every PO-REQUEST they make eligible is held.
    pub(crate) fn try_execute(&mut self, cx: &mut Context<'_, Self>) {
        let mut executed_any = false;
        while self.execute_next_slot(cx) {
            executed_any = true;
        }
        if executed_any {
            self.collect_order_garbage();
            self.collect_po_garbage();
            self.collect_prepared_garbage();
            self.collect_persisted_garbage(cx);
            // Our own PO-REQUESTs executed: more client updates may go out (step 2).
            self.send_po_requests(cx);
        }
    }

    /// Execute slot `executed_seq + 1` if committed and complete; report what is missing otherwise.
    fn execute_next_slot(&mut self, cx: &mut Context<'_, Self>) -> bool {
        let seq = self.exec.executed_seq + 1;
        let Some(slot) = self.ord.slots.get(&seq).filter(|s| s.committed) else {
            return false;
        };
        let Some(pre_prepare) = slot.pre_prepare.clone() else {
            return false;
        };
        let eligible = made_eligible(
            &pre_prepare.body.matrix,
            &self.exec.last_executed,
            self.cfg.quorums,
        );
        // Step 11: originators in index order, each one's PO-REQUESTs in slot order.
        let mut requests = Vec::new();
        let mut missing = Vec::new();
        for (i, (&from, &to)) in self.exec.last_executed.iter().zip(&eligible).enumerate() {
            let originator = ParticipantId(i as u16);
            for po_seq in from + 1..=to {
                match self.certified_request(originator, po_seq) {
                    Some(request) => requests.push(request.clone()),
                    None if missing.len() < self.cfg.catchup_items_max => {
                        missing.push((originator, po_seq))
                    }
                    None => {}
                }
            }
        }
        if !missing.is_empty() {
            // A missing PO-REQUEST blocks the slot until reconciliation or catch-up supplies it.
            let newly_blocked = self.exec.missing.is_empty();
            self.exec.missing = missing;
            if newly_blocked {
                self.request_catchup(cx);
            }
            return false;
        }
        self.exec.missing.clear();

        let timestamp_ms = pre_prepare.body.timestamp_ms.max(self.exec.timestamp_ms);
        let mut batch = Vec::new();
        // Updates of our own clients (no `reply_to`) that executed before, re-submitted through
        // us: only we answer our own clients, so they get the cached reply again. (A `reply_to`
        // address got a reply from every server when the update first executed.)
        let mut own_duplicates = Vec::new();
        for request in &requests {
            for update in &request.body.updates {
                let key = (update.incarnation, update.seq);
                let fresh = self
                    .exec
                    .clients
                    .get(&update.client)
                    .is_none_or(|r| key > (r.incarnation, r.seq));
                if !fresh && request.signer == self.me && update.reply_to.is_none() {
                    own_duplicates.push(update.clone());
                }
                if fresh {
                    // Mark now so a duplicate later in the same batch is skipped too.
                    let record = ClientRecord {
                        incarnation: key.0,
                        seq: key.1,
                        global_seq: seq,
                    };
                    self.exec.clients.insert(update.client, record);
                    batch.push((request.signer, update));
                }
            }
        }
        let executed: Vec<ExecutedUpdate<'_>> = batch
            .iter()
            .map(|(_, update)| ExecutedUpdate {
                update,
                global_seq: seq,
            })
            .collect();
        cx.charge(CpuWork::ops(CostKind::Execute, executed.len() as u32));
        let results = self.app.execute(&executed, timestamp_ms);
        let replies: Vec<(ParticipantId, Reply, Option<stockade_core::NodeId>)> = batch
            .iter()
            .zip(results.into_iter().chain(std::iter::repeat_with(Vec::new)))
            .map(|((originator, u), result)| {
                let reply = Reply {
                    client: u.client,
                    incarnation: u.incarnation,
                    seq: u.seq,
                    global_seq: seq,
                    result,
                };
                (*originator, reply, u.reply_to)
            })
            .collect();
        let updates = batch.len();
        drop(batch);

        self.exec.executed_seq = seq;
        self.exec.timestamp_ms = timestamp_ms;
        self.reconcile_newly_eligible(cx, &eligible);
        for (i, e) in eligible.iter().enumerate() {
            // Executed slots are pre-ordered by a certificate quorum; our vector may claim them.
            if self.pre.cum_aru[i] < *e {
                self.pre.cum_aru[i] = *e;
                self.pre.summary_dirty = true;
            }
        }
        if seq.is_multiple_of(self.cfg.checkpoint_interval) {
            let kept = &mut self.exec.last_executed_at_checkpoints;
            kept.insert(seq, eligible.clone());
            while kept.len() > CHECKPOINT_VECTORS_MAX {
                kept.pop_first();
            }
        }
        self.exec.last_executed = eligible;
        self.evict_clients_over_bound();
        let mut to_clients = Vec::new();
        for (originator, reply, reply_to) in replies {
            self.exec.replies.insert(reply.clone());
            match reply_to {
                Some(node) => to_clients.push((node, reply)),
                None if originator == self.me => cx.deliver(PrimeOutput::Reply(reply)),
                None => {}
            }
        }
        for update in own_duplicates {
            let cached = self
                .exec
                .replies
                .get(update.client, update.incarnation, update.seq);
            if let Some(reply) = cached.cloned() {
                cx.deliver(PrimeOutput::Reply(reply));
            }
        }
        self.send_replies(cx, to_clients);
        self.checkpoint_if_due(cx);
        let state = self.app.digest();
        cx.deliver(PrimeOutput::Executed {
            global_seq: seq,
            content: pre_prepare.body.content_digest(),
            updates,
            state,
        });
        true
    }

    /// Send signed replies to clients' addresses; one batch signature covers them all.
    pub(crate) fn send_replies(
        &mut self,
        cx: &mut Context<'_, Self>,
        to_clients: Vec<(stockade_core::NodeId, Reply)>,
    ) {
        let (nodes, bodies): (Vec<_>, Vec<_>) = to_clients.into_iter().unzip();
        for (node, signed) in nodes.into_iter().zip(self.sign_many(cx, bodies)) {
            cx.send(node, PrimeMessage::Reply(signed));
        }
    }

    /// A client re-submitted an update: answer it with the cached reply if the update is the
    /// client's last executed one (PRIME.md step 11: each server keeps the last reply per client).
    /// Returns whether it was answered.
    pub(crate) fn resend_cached_reply(
        &mut self,
        cx: &mut Context<'_, Self>,
        update: &crate::messages::Update,
    ) -> bool {
        let Some(reply) = self
            .exec
            .replies
            .get(update.client, update.incarnation, update.seq)
            .cloned()
        else {
            return false;
        };
        match update.reply_to {
            Some(node) => self.send_replies(cx, vec![(node, reply)]),
            None => cx.deliver(PrimeOutput::Reply(reply)),
        }
        true
    }

    /// Keep the client table within `clients_max` by forgetting the clients executed least
    /// recently (deterministic: every correct server evicts the same ones).
    fn evict_clients_over_bound(&mut self) {
        while self.exec.clients.len() > self.cfg.clients_max {
            let oldest = self
                .exec
                .clients
                .iter()
                .min_by_key(|(id, r)| (r.global_seq, **id))
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.exec.clients.remove(&id),
                None => break,
            };
        }
    }

    /// Local invariants (the simulator calls this after every event).
    pub(crate) fn check_local_invariants(&self) -> Result<(), InvariantViolation> {
        let violation = |what: String| Err(InvariantViolation(what));
        if self.exec.clients.len() > self.cfg.clients_max {
            return violation(format!(
                "client table holds {} > clients_max",
                self.exec.clients.len()
            ));
        }
        let replies = &self.exec.replies;
        if replies.len() > self.cfg.reply_cache_len_max
            || replies.bytes() > self.cfg.reply_cache_bytes_max
        {
            return violation(format!(
                "reply cache holds {} replies, {} bytes: over its bounds",
                replies.len(),
                replies.bytes()
            ));
        }
        if self.pre.pending.len() > self.cfg.pending_updates_max {
            return violation(format!(
                "pending updates {} > pending_updates_max",
                self.pre.pending.len()
            ));
        }
        if self.pre.pending_acks.len() > self.cfg.pending_ack_parts_max {
            return violation(format!(
                "pending ack parts {} > pending_ack_parts_max",
                self.pre.pending_acks.len()
            ));
        }
        let window = self.cfg.order_window_max + self.cfg.retained_slots_max;
        if self.ord.slots.len() as u64 > window + 1 {
            return violation(format!(
                "{} order slots exceed the window {window}",
                self.ord.slots.len()
            ));
        }
        if let Some(first_uncommitted) = self
            .ord
            .slots
            .range(..=self.exec.executed_seq)
            .find(|(_, s)| !s.committed)
        {
            return violation(format!(
                "slot {} executed without a commit certificate",
                first_uncommitted.0
            ));
        }
        Ok(())
    }
}
