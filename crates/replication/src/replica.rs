//! One Prime participant: its state, its timers, and the dispatch of inputs to the phase modules.
//!
//! The rules of each phase live in their own module ([`crate::pre_order`], [`crate::order`],
//! [`crate::execute`], [`crate::suspect`], [`crate::catchup`]); this file owns what they share: the
//! configuration, the signing and sending helpers, and the [`Protocol`] implementation.

use std::collections::{BTreeMap, BTreeSet};

use stockade_core::{Context, InvariantViolation, NodeId, PersistToken, Protocol};

use crate::app::Application;
use crate::attack::AttackState;
use crate::auth::{body_digest, MessageAuth, Signed, SignedBody};
use crate::catchup::CatchupState;
use crate::checkpoint::CheckpointState;
use crate::config::{ConfigError, Membership, ParticipantId, PrimeConfig};
use crate::execute::ExecState;
use crate::messages::{ClientId, Digest, PrepareCertificate, PrimeMessage, Reply, Update};
use crate::order::OrderState;
use crate::persist::Votes;
use crate::pre_order::PreOrderState;
use crate::state_transfer::Reassembly;
use crate::suspect::SuspectState;
use crate::view_change::ViewChangeState;

/// Prime's named timers; each is periodic and re-armed when it fires.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum PrimeTimer {
    /// Send the PO-ACK of what arrived since the last one (step 4).
    PoAck,
    /// Send a PO-SUMMARY if the cumulative vector changed (step 6).
    PoSummary,
    /// Send the summary matrix to the leader if an eligible value rose (step 7).
    SummaryMatrix,
    /// The leader proposes the next global slot (step 8).
    PrePrepare,
    /// Ping every participant; broadcast TAT-UB and TAT-MEASURE (suspect-leader).
    Ping,
    /// Re-measure unanswered turnaround challenges (suspect-leader).
    TurnaroundCheck,
    /// Re-send NEW-LEADER while the view has not changed (suspect-leader).
    NewLeaderResend,
    /// Ask for what execution is missing (catch-up).
    Catchup,
    /// Re-send the view change's state while the view is being installed (view change).
    ViewChangeResend,
    /// Ask again for the snapshot chunks still missing (state transfer).
    SnapshotFetch,
}

/// Why a client update was not admitted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RejectReason {
    /// `pending_updates_max` updates already wait for a PO-REQUEST: retry later.
    Busy,
    /// The update's (incarnation, seq) is not above the last one admitted for its client, and no
    /// cached reply answers it (it is still being ordered, or its reply was evicted or superseded).
    Duplicate,
    /// `clients_max` clients are known and this one is new: retry later or through another server.
    TooManyClients,
}

/// Evidence that a participant broke the protocol.
#[derive(Clone, PartialEq, Debug)]
pub enum Misbehaviour {
    /// Two different PO-REQUESTs for one slot, both signed by the originator (step 3).
    PoRequestEquivocation {
        /// The slot.
        po_seq: u64,
    },
    /// A PO-SUMMARY lower than an earlier one from the same sender (step 6).
    LowerSummary {
        /// The earlier counter.
        earlier_counter: u64,
        /// The later, lower one.
        later_counter: u64,
    },
    /// Two different pre-prepares for one slot of one view, both signed by the leader (step 8).
    PrePrepareEquivocation {
        /// The view.
        view: u64,
        /// The slot.
        seq: u64,
    },
    /// A signed VC-PARTIAL-SIG whose threshold share does not verify (view change step 3; paper
    /// 004 section 3: a server that submits a bad partial is identified and ignored).
    BadThresholdShare {
        /// The view being installed.
        view: u64,
    },
}

/// What Prime hands to the local application.
#[derive(Clone, PartialEq, Debug)]
pub enum PrimeOutput {
    /// The reply to an update this server admitted without a `reply_to` address (its own clients).
    Reply(Reply),
    /// A client update was not admitted.
    Rejected {
        /// The client.
        client: ClientId,
        /// The update's sequence number.
        seq: u64,
        /// Why.
        reason: RejectReason,
    },
    /// A global slot executed (for checkers: every correct server reports the same digest per slot).
    Executed {
        /// The slot.
        global_seq: u64,
        /// Digest of what the slot ordered (its matrix and timestamp): a slot re-proposed in a
        /// later view has the same content.
        content: Digest,
        /// Updates executed (after de-duplication).
        updates: usize,
        /// The application's state digest afterwards.
        state: Digest,
    },
    /// This server restored a stable checkpoint (JUMP) instead of executing the slots up to it.
    Jumped {
        /// The checkpoint's slot: execution continues after it.
        global_seq: u64,
        /// The application's state digest after the restore.
        state: Digest,
    },
    /// A participant was caught misbehaving.
    Misbehaviour {
        /// Who.
        participant: ParticipantId,
        /// What.
        evidence: Misbehaviour,
    },
    /// This server suspects the leader of `view` and asks for `view + 1`.
    LeaderSuspected {
        /// The suspected view.
        view: u64,
    },
    /// 2f+k+1 participants asked for `view`: the NEW-LEADER proof is complete.
    NewLeaderProven {
        /// The view proven.
        view: u64,
    },
}

/// Counters of inputs dropped, by reason (for metrics and tests).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct DropCounters {
    /// A signature or tag did not verify, or named a participant outside the membership.
    pub bad_signature: u64,
    /// A message outside the accepted window (too old or too far ahead).
    pub out_of_window: u64,
    /// A message that contradicts protocol rules (wrong leader, malformed vector).
    pub malformed: u64,
    /// A protocol message from a transport address outside the membership.
    pub unknown_sender: u64,
}

/// Counters of protocol activity since this server (re)started (for metrics and scenarios).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct ActivityCounters {
    /// PO certificates sent by reconciliation to servers that never acknowledged them.
    pub reconciliation_sends: u64,
    /// Views installed (view changes completed here).
    pub views_installed: u64,
    /// Rounds of view-change re-sending.
    pub view_change_resend_rounds: u64,
}

/// A Prime participant running application `A`.
///
/// # How to drive it
/// Build it with [`Prime::new`], then drive it as every [`Protocol`]: `on_start` once, then
/// `on_message` for each authenticated datagram (protocol messages from members, client updates
/// from clients), `on_timer` for each [`PrimeTimer`] that fires, and `on_request` for updates of the
/// server's own clients. Replies leave as [`PrimeOutput::Reply`] (own clients) or as signed
/// [`PrimeMessage::Reply`] messages to an update's `reply_to`. Time never goes backwards.
pub struct Prime<A: Application> {
    pub(crate) cfg: PrimeConfig,
    pub(crate) membership: Membership,
    pub(crate) me: ParticipantId,
    pub(crate) auth: Box<dyn MessageAuth>,
    pub(crate) app: A,
    pub(crate) view: u64,
    pub(crate) pre: PreOrderState,
    pub(crate) ord: OrderState,
    pub(crate) exec: ExecState,
    pub(crate) suspect: SuspectState,
    pub(crate) catchup: CatchupState,
    pub(crate) vc: ViewChangeState,
    pub(crate) checkpoints: CheckpointState,
    /// The snapshot being fetched after a JUMP, if any (state transfer).
    pub(crate) transfer: Option<Reassembly>,
    /// Prepare certificates of slots prepared here and not yet executed (reported at a view change).
    pub(crate) vc_prepared: BTreeMap<u64, PrepareCertificate>,
    /// Every vote cast in the order window, persisted (see [`crate::persist`]).
    pub(crate) votes: Votes,
    pub(crate) misbehaving: BTreeSet<ParticipantId>,
    pub(crate) drops: DropCounters,
    pub(crate) activity: ActivityCounters,
    /// Attack switches (simulation scenarios; off on a correct server).
    pub(crate) attack: AttackState,
}

impl<A: Application> Prime<A> {
    /// Participant `me` of `membership`, signing with `auth`, replicating `app`.
    pub fn new(
        cfg: PrimeConfig,
        membership: Membership,
        me: ParticipantId,
        auth: Box<dyn MessageAuth>,
        app: A,
    ) -> Result<Prime<A>, ConfigError> {
        cfg.validate(&membership)?;
        if membership.node(me).is_none() {
            return Err(ConfigError::NotAMember(me));
        }
        // PRIME.md "View change" step 3: 2f+k+1 shares make the VC-PROOF.
        let needed = cfg.quorums.certificate();
        match auth.shares_needed() {
            None => return Err(ConfigError::NoThresholdKey),
            Some(shares) if shares != needed => {
                return Err(ConfigError::ThresholdMismatch {
                    shares,
                    needed,
                    f: cfg.quorums.f,
                    k: cfg.quorums.k,
                })
            }
            Some(_) => {}
        }
        let n = membership.len();
        Ok(Prime {
            pre: PreOrderState::new(n),
            ord: OrderState::new(n),
            exec: ExecState::new(n, &cfg),
            suspect: SuspectState::new(n),
            catchup: CatchupState::default(),
            vc: ViewChangeState::default(),
            checkpoints: CheckpointState::default(),
            transfer: None,
            vc_prepared: BTreeMap::new(),
            cfg,
            membership,
            me,
            auth,
            app,
            view: 0,
            votes: Votes::new(),
            misbehaving: BTreeSet::new(),
            drops: DropCounters::default(),
            activity: ActivityCounters::default(),
            attack: AttackState::default(),
        })
    }

    /// The number of participants.
    pub fn n(&self) -> usize {
        self.membership.len()
    }
    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }
    /// Whether a view change is in progress (normal ordering is suspended).
    pub fn installing_view(&self) -> bool {
        self.vc.installing
    }
    /// The leader of `view`: participants take turns (view mod N).
    pub fn leader_of(&self, view: u64) -> ParticipantId {
        ParticipantId((view % self.n() as u64) as u16)
    }
    /// Whether this participant leads the current view.
    pub fn is_leader(&self) -> bool {
        self.leader_of(self.view) == self.me
    }
    /// The last executed global slot.
    pub fn executed_seq(&self) -> u64 {
        self.exec.executed_seq
    }
    /// Per originator, the last executed PO-REQUEST.
    pub fn last_executed(&self) -> &[u64] {
        &self.exec.last_executed
    }
    /// The replicated application.
    pub fn app(&self) -> &A {
        &self.app
    }
    /// Participants caught misbehaving.
    pub fn misbehaving(&self) -> &BTreeSet<ParticipantId> {
        &self.misbehaving
    }
    /// Inputs dropped so far, by reason.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }
    /// Protocol activity so far.
    pub fn activity(&self) -> &ActivityCounters {
        &self.activity
    }

    /// Sign `body` as this participant (a batch of one; PRIME.md signs PO-SUMMARYs individually,
    /// and the Merkle batching of other messages lives in the [`MessageAuth`] implementation).
    pub(crate) fn sign<T: SignedBody>(&mut self, cx: &mut Context<'_, Self>, body: T) -> Signed<T> {
        let digest = body_digest(self.me, &body);
        cx.charge(self.auth.sign_cost(1));
        let tag = self.auth.sign_batch(&[digest]).pop().unwrap_or_default();
        Signed {
            signer: self.me,
            body,
            tag,
        }
    }

    /// Sign several bodies with one batch signature (a Merkle tree over their digests): used where
    /// one event produces many signed messages (the replies of a slot, a round of pings).
    pub(crate) fn sign_many<T: SignedBody>(
        &mut self,
        cx: &mut Context<'_, Self>,
        bodies: Vec<T>,
    ) -> Vec<Signed<T>> {
        if bodies.is_empty() {
            return Vec::new();
        }
        let digests: Vec<Digest> = bodies.iter().map(|b| body_digest(self.me, b)).collect();
        cx.charge(self.auth.sign_cost(digests.len()));
        let tags = self.auth.sign_batch(&digests);
        bodies
            .into_iter()
            .zip(
                tags.into_iter()
                    .chain(std::iter::repeat_with(Default::default)),
            )
            .map(|(body, tag)| Signed {
                signer: self.me,
                body,
                tag,
            })
            .collect()
    }

    /// Check a signed message from anyone: the signer is a member and the tag verifies. Counts a
    /// failure.
    pub(crate) fn verify<T: SignedBody>(
        &mut self,
        cx: &mut Context<'_, Self>,
        m: &Signed<T>,
    ) -> bool {
        if m.signer.index() >= self.n() {
            self.drops.bad_signature += 1;
            return false;
        }
        cx.charge(self.auth.verify_cost());
        if m.verify(self.auth.as_ref()) {
            true
        } else {
            self.drops.bad_signature += 1;
            false
        }
    }

    /// Send to one participant.
    pub(crate) fn send_to(
        &self,
        cx: &mut Context<'_, Self>,
        to: ParticipantId,
        message: PrimeMessage,
    ) {
        if let Some(node) = self.membership.node(to) {
            cx.send(node, message);
        }
    }

    /// Send to every other participant.
    pub(crate) fn broadcast(&self, cx: &mut Context<'_, Self>, message: &PrimeMessage) {
        self.broadcast_except(cx, message, None);
    }

    /// Send to every other participant except `skip`.
    pub(crate) fn broadcast_except(
        &self,
        cx: &mut Context<'_, Self>,
        message: &PrimeMessage,
        skip: Option<ParticipantId>,
    ) {
        for p in self.membership.participants() {
            if p != self.me && Some(p) != skip {
                self.send_to(cx, p, message.clone());
            }
        }
    }

    /// Record misbehaviour once per participant and kind, and tell the application.
    pub(crate) fn report_misbehaviour(
        &mut self,
        cx: &mut Context<'_, Self>,
        participant: ParticipantId,
        evidence: Misbehaviour,
    ) {
        self.misbehaving.insert(participant);
        cx.deliver(PrimeOutput::Misbehaviour {
            participant,
            evidence,
        });
    }

    fn on_protocol_message(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: ParticipantId,
        message: PrimeMessage,
    ) {
        match message {
            PrimeMessage::ClientUpdate(_) | PrimeMessage::Reply(_) => {}
            PrimeMessage::PoRequest(m) => self.on_po_request(cx, m),
            PrimeMessage::PoAck(m) => self.on_po_ack(cx, m),
            PrimeMessage::PoCertificate(m) => self.on_po_certificate(cx, m),
            PrimeMessage::PoSummary(m) => self.on_po_summary(cx, m),
            PrimeMessage::SummaryMatrix(m) => self.on_summary_matrix(cx, m),
            PrimeMessage::PrePrepare(m) => self.on_pre_prepare(cx, m),
            PrimeMessage::Prepare(m) => self.on_prepare(cx, m),
            PrimeMessage::Commit(m) => self.on_commit(cx, m),
            PrimeMessage::Ping(m) => self.on_ping(cx, m),
            PrimeMessage::Pong(m) => self.on_pong(cx, m),
            PrimeMessage::RttMeasure(m) => self.on_rtt_measure(cx, m),
            PrimeMessage::TatUb(m) => self.on_tat_ub(cx, m),
            PrimeMessage::TatMeasure(m) => self.on_tat_measure(cx, m),
            PrimeMessage::NewLeader(m) => self.on_new_leader(cx, m),
            PrimeMessage::NewLeaderProof(m) => self.on_new_leader_proof(cx, m),
            PrimeMessage::CatchupRequest(m) => self.on_catchup_request(cx, m),
            PrimeMessage::OrderCertificate(m) => self.on_order_certificate(cx, m),
            PrimeMessage::VcReport(m) => self.on_vc_report(cx, m),
            PrimeMessage::VcRelay(m) => self.on_vc_relay(cx, m),
            PrimeMessage::VcCertificate(m) => self.on_vc_certificate(cx, m),
            PrimeMessage::VcList(m) => self.on_vc_list(cx, m),
            PrimeMessage::VcPartialSig(m) => self.on_vc_partial_sig(cx, m),
            PrimeMessage::Replay(m) => self.on_replay(cx, m),
            PrimeMessage::Checkpoint(m) => self.on_checkpoint(cx, m),
            PrimeMessage::Jump(m) => self.on_jump(cx, from, m),
            PrimeMessage::SnapshotChunkRequest(m) => self.on_snapshot_chunk_request(cx, from, m),
            PrimeMessage::SnapshotChunk(m) => self.on_snapshot_chunk(cx, from, m),
        }
    }
}

impl<A: Application> Protocol for Prime<A> {
    type Message = PrimeMessage;
    type Timer = PrimeTimer;
    type Request = Update;
    type Output = PrimeOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        cx.set_timer(PrimeTimer::PoAck, self.cfg.po_ack_period);
        cx.set_timer(PrimeTimer::PoSummary, self.cfg.po_summary_period);
        cx.set_timer(PrimeTimer::SummaryMatrix, self.cfg.summary_matrix_period);
        cx.set_timer(PrimeTimer::PrePrepare, self.cfg.pre_prepare_period);
        cx.set_timer(PrimeTimer::Ping, self.cfg.ping_period);
        cx.set_timer(
            PrimeTimer::TurnaroundCheck,
            self.cfg.turnaround_recheck_period,
        );
        cx.set_timer(PrimeTimer::Catchup, self.cfg.catchup_period);
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: PrimeMessage) {
        if let PrimeMessage::ClientUpdate(update) = message {
            self.admit_update(cx, update);
            return;
        }
        // Protocol messages come only from members; their content is checked by signature, since
        // a member may forward another's signed message (re-flooding, reconciliation).
        let Some(sender) = self.membership.participant(from) else {
            self.drops.unknown_sender += 1;
            return;
        };
        self.on_protocol_message(cx, sender, message);
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: PrimeTimer) {
        match timer {
            PrimeTimer::PoAck => {
                self.flush_po_ack(cx);
                cx.set_timer(PrimeTimer::PoAck, self.cfg.po_ack_period);
            }
            PrimeTimer::PoSummary => {
                self.send_po_summary_if_changed(cx);
                cx.set_timer(PrimeTimer::PoSummary, self.cfg.po_summary_period);
            }
            PrimeTimer::SummaryMatrix => {
                self.send_summary_matrix_if_risen(cx);
                cx.set_timer(PrimeTimer::SummaryMatrix, self.cfg.summary_matrix_period);
            }
            PrimeTimer::PrePrepare => {
                self.propose_if_leader(cx);
                cx.set_timer(PrimeTimer::PrePrepare, self.cfg.pre_prepare_period);
            }
            PrimeTimer::Ping => {
                self.on_ping_period(cx);
                cx.set_timer(PrimeTimer::Ping, self.cfg.ping_period);
            }
            PrimeTimer::TurnaroundCheck => {
                self.recheck_turnarounds(cx);
                cx.set_timer(
                    PrimeTimer::TurnaroundCheck,
                    self.cfg.turnaround_recheck_period,
                );
            }
            PrimeTimer::NewLeaderResend => self.resend_new_leader(cx),
            PrimeTimer::ViewChangeResend => self.resend_view_change(cx),
            PrimeTimer::SnapshotFetch => self.on_snapshot_fetch_timer(cx),
            PrimeTimer::Catchup => {
                self.on_catchup_period(cx);
                cx.set_timer(PrimeTimer::Catchup, self.cfg.catchup_period);
            }
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, update: Update) {
        self.admit_update(cx, update);
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        self.suspect_on_persisted(cx, token);
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_local_invariants()
    }
}
