//! [`BrachaBroadcast`]: one node's reliable broadcast state machine, a `stockade_core::Protocol`.
//!
//! Bracha's protocol (G. Bracha, "Asynchronous Byzantine agreement protocols", Information and
//! Computation 75(2), 1987; the broadcast primitive PRIME.md's view change names as "init, echo,
//! ready"), for `n >= 3f + 1`:
//!
//! 1. the origin sends `(initial, v)` to all;
//! 2. upon the first `(initial, v)` from the origin, send `(echo, v)` to all;
//! 3. upon `2f + 1` `(echo, v)` or `f + 1` `(ready, v)`, send `(ready, v)` to all (once);
//! 4. upon `2f + 1` `(ready, v)`, deliver `v`.
//!
//! It guarantees, with at most f Byzantine nodes: *validity* (a correct origin's broadcast is
//! delivered by every correct node), *agreement* (no two correct nodes deliver different payloads
//! for one `(origin, seq)`, even when the origin equivocates), *integrity* (each is delivered at
//! most once) and *totality* (if one correct node delivers, every correct node does).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use stockade_core::{Context, CostKind, CpuWork, InvariantViolation, NodeId, Protocol};

use crate::config::{BroadcastConfig, ConfigError};
use crate::delivered::{DeliveredCache, DeliveredEntry};
use crate::instance::{Instance, VoteRecorded};
use crate::message::{BroadcastMessage, InstanceId, Phase};
use crate::signing::{payload_digest, KeyRing, PayloadDigest};
use crate::stats::BroadcastStats;

/// What the local application asks: broadcast this payload to the committee.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BroadcastRequest {
    /// The bytes to broadcast (at most `payload_bytes_max`).
    pub payload: Vec<u8>,
}

/// What the broadcast hands the local application.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BroadcastOutput {
    /// Broadcast `instance` is delivered with this payload; it is never delivered again.
    Delivered {
        /// Origin and sequence number.
        instance: InstanceId,
        /// The payload every correct node delivers for it.
        payload: Vec<u8>,
    },
    /// A local request was not accepted; nothing was sent.
    Refused {
        /// Length of the refused payload.
        payload_len: usize,
        /// Why.
        reason: RefusedReason,
    },
}

/// Why a local request was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RefusedReason {
    /// The payload is larger than `payload_bytes_max`.
    PayloadTooLarge {
        /// The limit.
        payload_bytes_max: usize,
    },
    /// The window is full and `request_queue_len_max` requests already wait: slow down.
    QueueFull {
        /// The limit.
        request_queue_len_max: usize,
    },
}

/// The broadcast's one timer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BroadcastTimer {
    /// Re-send this node's messages for undelivered broadcasts (links may lose messages).
    Retransmit,
}

/// Per-origin state: the window of sequence numbers this node accepts from that origin.
#[derive(Clone, Debug)]
pub(crate) struct OriginWindow {
    /// The lowest sequence number not yet delivered: everything below it was delivered.
    pub(crate) low: u64,
    /// Delivered sequence numbers above `low` (deliveries within the window may be out of order).
    pub(crate) delivered_above_low: BTreeSet<u64>,
    /// Undelivered broadcasts with some valid vote, by sequence number.
    pub(crate) active: BTreeMap<u64, Instance>,
}

/// Where a message's broadcast stands at this node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Standing {
    /// Inside the window and not delivered: votes count.
    Undelivered,
    /// Delivered and still cached: the sender may be behind.
    Delivered,
    /// Beyond the window, or delivered so long ago that it was forgotten.
    Unavailable,
}

/// One node's Bracha reliable broadcast.
///
/// # How to drive it
///
/// Build it with [`BrachaBroadcast::new`], call `on_start`, then feed it:
/// - `on_request(BroadcastRequest)` to broadcast a payload as this node (origin); the node assigns
///   the next sequence number, or queues the request while its own window is full, or refuses it
///   with [`BroadcastOutput::Refused`];
/// - `on_message(from, msg)` for each message from peer `from` over an authenticated link; the
///   message is also checked here: its signer must be `from` and its signature must verify;
/// - `on_timer(BroadcastTimer::Retransmit)` when that timer fires.
///
/// It emits sends, the retransmission timer, CPU charges (hash, sign, verify) and
/// [`BroadcastOutput`] deliveries. It persists nothing: a restarted node rejoins as a new member
/// would, and only delivers broadcasts still in progress (a Bracha node that crashes counts as one
/// of the f faults).
pub struct BrachaBroadcast {
    config: BroadcastConfig,
    keys: KeyRing,
    pub(crate) origins: Vec<OriginWindow>,
    pub(crate) delivered: DeliveredCache,
    next_own_seq: u64,
    request_queue: VecDeque<Vec<u8>>,
    retransmit_armed: bool,
    pub(crate) stats: BroadcastStats,
}

impl BrachaBroadcast {
    /// A node with `config` and its `keys`; the key ring's committee must have `config.n` members.
    pub fn new(config: BroadcastConfig, keys: KeyRing) -> Result<BrachaBroadcast, ConfigError> {
        config.validate()?;
        if keys.committee_len() != config.n {
            return Err(ConfigError::CommitteeSizeMismatch {
                n: config.n,
                keys: keys.committee_len(),
            });
        }
        let origins = (0..config.n)
            .map(|_| OriginWindow {
                low: 0,
                delivered_above_low: BTreeSet::new(),
                active: BTreeMap::new(),
            })
            .collect();
        let delivered = DeliveredCache::new(config.delivered_cache_len_max);
        Ok(BrachaBroadcast {
            config,
            keys,
            origins,
            delivered,
            next_own_seq: 0,
            request_queue: VecDeque::new(),
            retransmit_armed: false,
            stats: BroadcastStats::default(),
        })
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.keys.me()
    }

    /// The configuration.
    pub fn config(&self) -> &BroadcastConfig {
        &self.config
    }

    /// Counters of what this node did and saw.
    pub fn stats(&self) -> BroadcastStats {
        self.stats
    }

    /// Every broadcast of `origin` below this sequence number was delivered here.
    pub fn delivered_below(&self, origin: NodeId) -> u64 {
        self.origins.get(origin.index()).map_or(0, |w| w.low)
    }

    /// Undelivered broadcasts this node holds votes for, over all origins.
    pub fn undelivered_instances(&self) -> usize {
        self.origins.iter().map(|w| w.active.len()).sum()
    }

    /// Local requests waiting for room in this node's own window.
    pub fn queued_requests(&self) -> usize {
        self.request_queue.len()
    }

    /// True when nothing is in flight here: no undelivered broadcast, no queued request, and no
    /// delivered broadcast still being pushed to peers.
    pub fn is_idle(&self) -> bool {
        self.undelivered_instances() == 0
            && self.request_queue.is_empty()
            && !self.has_retransmit_work()
    }

    /// The messages's shape, checked before any hashing or signature work.
    fn well_formed(&self, from: NodeId, m: &BroadcastMessage) -> bool {
        m.signer == from
            && m.signer.index() < self.config.n
            && m.instance.origin.index() < self.config.n
            && m.payload.len() <= self.config.payload_bytes_max
            && (m.phase != Phase::Initial || m.signer == m.instance.origin)
    }

    fn standing(&self, id: InstanceId) -> Standing {
        let window = &self.origins[id.origin.index()];
        if id.seq >= window.low.saturating_add(self.config.window_per_origin) {
            return Standing::Unavailable;
        }
        if id.seq < window.low || window.delivered_above_low.contains(&id.seq) {
            return if self.delivered.contains(&id) {
                Standing::Delivered
            } else {
                Standing::Unavailable
            };
        }
        Standing::Undelivered
    }

    fn handle_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, m: BroadcastMessage) {
        if !self.well_formed(from, &m) {
            self.stats.malformed += 1;
            return;
        }
        let standing = self.standing(m.instance);
        if standing == Standing::Unavailable {
            self.stats.outside_window += 1;
            return;
        }
        cx.charge(CpuWork::bytes(CostKind::Sha256, m.payload.len()));
        let digest = payload_digest(&m.payload);
        cx.charge(CpuWork::ops(CostKind::Ed25519Verify, 1));
        if !self
            .keys
            .verify(m.signer, m.phase, m.instance, &digest, &m.signature)
        {
            self.stats.invalid_signatures += 1;
            return;
        }
        match standing {
            Standing::Undelivered => self.record_vote(cx, &m, digest),
            Standing::Delivered => self.help_peer_behind(cx, from, m.phase, m.instance),
            Standing::Unavailable => {}
        }
    }

    fn record_vote(
        &mut self,
        cx: &mut Context<'_, Self>,
        m: &BroadcastMessage,
        digest: PayloadDigest,
    ) {
        let n = self.config.n;
        let instance = self.origins[m.instance.origin.index()]
            .active
            .entry(m.instance.seq)
            .or_insert_with(|| Instance::new(n));
        match instance.record_vote(m.phase, m.signer, digest, &m.payload) {
            VoteRecorded::Conflicting => self.stats.equivocations_detected += 1,
            VoteRecorded::New
                if m.phase != Phase::Initial && instance.initial.is_some_and(|d| d != digest) =>
            {
                self.stats.conflicting_votes += 1
            }
            VoteRecorded::New | VoteRecorded::Duplicate => {}
        }
        self.ensure_retransmit_armed(cx);
        self.progress(cx, m.instance);
    }

    /// Apply Bracha's rules 2-4 to `id` after its tally changed.
    fn progress(&mut self, cx: &mut Context<'_, Self>, id: InstanceId) {
        let quorum = self.config.quorum();
        let amplification = self.config.ready_amplification();
        let origin = id.origin.index();

        // Rule 2: upon the first (initial, v) from the origin, send (echo, v) to all.
        if let Some(instance) = self.origins[origin].active.get(&id.seq) {
            if instance.my_echo.is_none() {
                if let Some(digest) = instance.initial {
                    self.send_own(cx, Phase::Echo, id, digest);
                }
            }
        }
        // Rule 3: upon 2f+1 (echo, v) or f+1 (ready, v), send (ready, v) to all, once.
        if let Some(instance) = self.origins[origin].active.get(&id.seq) {
            if instance.my_ready.is_none() {
                let ready_for = instance
                    .digest_with_votes(Phase::Echo, quorum)
                    .or_else(|| instance.digest_with_votes(Phase::Ready, amplification));
                if let Some(digest) = ready_for {
                    self.send_own(cx, Phase::Ready, id, digest);
                }
            }
        }
        // Rule 4: upon 2f+1 (ready, v), deliver v.
        let deliverable = self.origins[origin]
            .active
            .get(&id.seq)
            .and_then(|i| i.digest_with_votes(Phase::Ready, quorum));
        if let Some(digest) = deliverable {
            self.deliver(cx, id, digest);
        }
    }

    /// Sign and send this node's own `phase` message for `id` to every peer, and count it as this
    /// node's vote. The instance must exist and hold the payload of `digest`.
    fn send_own(
        &mut self,
        cx: &mut Context<'_, Self>,
        phase: Phase,
        id: InstanceId,
        digest: PayloadDigest,
    ) {
        let me = self.me();
        let Some(instance) = self.origins[id.origin.index()].active.get_mut(&id.seq) else {
            return;
        };
        let Some(payload) = instance.payloads.get(&digest).cloned() else {
            return;
        };
        cx.charge(CpuWork::ops(CostKind::Ed25519Sign, 1));
        let message = BroadcastMessage::signed(&self.keys, phase, id, payload);
        instance.record_vote(phase, me, digest, &message.payload);
        cx.send_all(peers_of(self.config.n, me), &message);
        instance.last_sent_at = cx.now();
        match phase {
            Phase::Initial => instance.my_initial = Some(message),
            Phase::Echo => instance.my_echo = Some(message),
            Phase::Ready => instance.my_ready = Some(message),
        }
    }

    fn deliver(&mut self, cx: &mut Context<'_, Self>, id: InstanceId, digest: PayloadDigest) {
        let window = &mut self.origins[id.origin.index()];
        let Some(mut instance) = window.active.remove(&id.seq) else {
            return;
        };
        let Some(payload) = instance.payloads.remove(&digest) else {
            return;
        };
        window.delivered_above_low.insert(id.seq);
        while window.delivered_above_low.remove(&window.low) {
            window.low += 1;
        }
        // Rule 4 needs f+1 correct READYs, so rule 3 has fired here first: my_ready is set.
        if let Some(my_ready) = instance.my_ready.take() {
            let ready_seen = instance.readies.iter().map(Option::is_some).collect();
            let entry = DeliveredEntry {
                digest,
                my_ready,
                ready_seen,
                last_reply_at: vec![None; self.config.n],
                rounds_left: self.config.retransmit_rounds_after_delivery_max,
            };
            self.delivered.insert(id, entry);
        }
        self.stats.delivered += 1;
        cx.deliver(BroadcastOutput::Delivered {
            instance: id,
            payload,
        });
        self.ensure_retransmit_armed(cx);
        if id.origin == self.me() {
            self.start_queued(cx);
        }
    }

    /// A peer sent a valid message about a broadcast delivered here. If it looks stuck, answer with
    /// this node's READY, at most once per peer per retransmission interval.
    ///
    /// A peer's first READY is the normal flow (it gets this node's READY from the broadcast rule 3
    /// made); a READY seen again is a retransmission, so the peer has not delivered. An INITIAL or
    /// ECHO is answered only once this node stopped pushing its READY to peers on its own.
    fn help_peer_behind(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        phase: Phase,
        id: InstanceId,
    ) {
        let Some(entry) = self.delivered.get_mut(&id) else {
            return;
        };
        let peer = from.index();
        let looks_stuck = match phase {
            Phase::Ready => std::mem::replace(&mut entry.ready_seen[peer], true),
            Phase::Initial | Phase::Echo => entry.rounds_left == 0,
        };
        let replied_recently = entry.last_reply_at[peer]
            .is_some_and(|at| cx.now() < at + self.config.retransmit_interval);
        if !looks_stuck || replied_recently {
            return;
        }
        entry.last_reply_at[peer] = Some(cx.now());
        cx.send(from, entry.my_ready.clone());
        self.stats.catch_up_replies += 1;
    }

    fn handle_request(&mut self, cx: &mut Context<'_, Self>, request: BroadcastRequest) {
        let payload_len = request.payload.len();
        let refusal = if payload_len > self.config.payload_bytes_max {
            Some(RefusedReason::PayloadTooLarge {
                payload_bytes_max: self.config.payload_bytes_max,
            })
        } else if self.request_queue.len() >= self.config.request_queue_len_max {
            Some(RefusedReason::QueueFull {
                request_queue_len_max: self.config.request_queue_len_max,
            })
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.stats.requests_refused += 1;
            cx.deliver(BroadcastOutput::Refused {
                payload_len,
                reason,
            });
            return;
        }
        self.request_queue.push_back(request.payload);
        self.start_queued(cx);
    }

    /// Start queued requests while this node's own window has room (rule 1).
    fn start_queued(&mut self, cx: &mut Context<'_, Self>) {
        let me = self.me();
        loop {
            let own_low = self.origins[me.index()].low;
            if self.next_own_seq >= own_low.saturating_add(self.config.window_per_origin) {
                return;
            }
            let Some(payload) = self.request_queue.pop_front() else {
                return;
            };
            let id = InstanceId {
                origin: me,
                seq: self.next_own_seq,
            };
            self.next_own_seq += 1;
            cx.charge(CpuWork::bytes(CostKind::Sha256, payload.len()));
            let digest = payload_digest(&payload);
            let mut instance = Instance::new(self.config.n);
            instance.payloads.insert(digest, payload);
            self.origins[me.index()].active.insert(id.seq, instance);
            self.stats.broadcasts_started += 1;
            // Rule 1: the origin sends (initial, v) to all, and treats it as received itself.
            self.send_own(cx, Phase::Initial, id, digest);
            self.ensure_retransmit_armed(cx);
            self.progress(cx, id);
        }
    }

    pub(crate) fn ensure_retransmit_armed(&mut self, cx: &mut Context<'_, Self>) {
        if !self.retransmit_armed {
            self.retransmit_armed = true;
            cx.set_timer(BroadcastTimer::Retransmit, self.config.retransmit_interval);
        }
    }

    pub(crate) fn has_retransmit_work(&self) -> bool {
        let me = self.me();
        self.origins.iter().any(|w| !w.active.is_empty())
            || self.delivered.iter().any(|(_, entry)| entry.wants_push(me))
    }

    /// Every committee member but this node.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        peers_of(self.config.n, self.me()).collect()
    }

    pub(crate) fn disarm_retransmit(&mut self) {
        self.retransmit_armed = false;
    }
}

/// Every member of a committee of `n` except `me`.
fn peers_of(n: usize, me: NodeId) -> impl Iterator<Item = NodeId> {
    (0..n as u32).map(NodeId).filter(move |p| *p != me)
}

impl Protocol for BrachaBroadcast {
    type Message = BroadcastMessage;
    type Timer = BroadcastTimer;
    type Request = BroadcastRequest;
    type Output = BroadcastOutput;

    /// Nothing to do until a request or a message arrives: the retransmission timer runs only
    /// while there is something to retransmit.
    fn on_start(&mut self, _cx: &mut Context<'_, Self>) {}

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: BroadcastMessage) {
        self.handle_message(cx, from, message);
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: BroadcastTimer) {
        match timer {
            BroadcastTimer::Retransmit => self.retransmit_round(cx),
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: BroadcastRequest) {
        self.handle_request(cx, request);
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        crate::invariants::check(self, &self.config, self.request_queue.len(), self.me())
    }
}
